"""The experiment grid: rows, resume, and the summary beside the paper."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

import diag.experiments as experiments
from diag.experiments import run_grid, summarize
from tests.test_classify import make_generated


@pytest.fixture(scope="module")
def generated(replica: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("generated")
    make_generated(replica, root / "diag" / "augmented_4", 4)
    make_generated(replica, root / "memseg" / "augmented_4", 4)
    return root


def grid(replica: Path, generated: Path, out: Path, seeds: list[int], scenario: str = "zero-shot", methods=("diag",)) -> pd.DataFrame:
    return run_grid(scenario=scenario, methods=list(methods), n_augs=[4], seeds=seeds, profile="demo", data=replica,
                    generated=generated, out=out, overrides={"epochs": 3, "device": "cpu"}, progress=False)


def test_grid_rows_resume_and_summary(replica: Path, generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "results"
    first = grid(replica, generated, out, seeds=[0, 1])
    assert len(first) == 2 and list(first["seed"]) == [0, 1]
    for column in ("ap", "precision", "recall", "auroc", "accuracy", "val_ap", "val_precision", "epochs", "backbone", "profile", "wall_s"):
        assert column in first.columns
    assert (first["backbone"] == "fid-inception").all() and (first["epochs"] == 3).all()
    assert (out / "curves" / "zero-shot_diag_4_seed0.csv").is_file()

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr(experiments, "fit", no_training)
    again = grid(replica, generated, out, seeds=[0, 1])
    pd.testing.assert_frame_equal(again, first)
    monkeypatch.undo()
    more = grid(replica, generated, out, seeds=[0, 1, 2])
    assert len(more) == 3 and more.iloc[:2].equals(first)

    table = summarize(more, "zero-shot")
    assert table.loc[0, "method"] == "DIAG" and table.loc[0, "seeds"] == 3
    assert " ± " in table.loc[0, "ap"]
    assert pd.isna(table.loc[0, "paper_ap"])  # the paper has no N_aug = 4 row


def test_a_cell_is_redone_when_its_generated_set_changes(replica: Path, generated: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    sets = tmp_path / "generated"
    shutil.copytree(generated, sets)
    first = grid(replica, sets, tmp_path / "results", seeds=[0], methods=("diag", "memseg"))
    image = sets / "memseg" / "augmented_4" / "imgs" / "00001.png"
    image.write_bytes((sets / "memseg" / "augmented_4" / "imgs" / "00000.png").read_bytes())  # the set changed
    trained = []
    original = experiments.fit
    monkeypatch.setattr(experiments, "fit", lambda *a, **k: trained.append(1) or original(*a, **k))
    again = grid(replica, sets, tmp_path / "results", seeds=[0], methods=("diag", "memseg"))
    assert len(trained) == 2  # memseg's cell only (its classifier and its validation classifier)
    assert sorted(again["method"]) == ["diag", "memseg"]
    changed = lambda frame, m: frame.loc[frame["method"] == m, "generated_sha1"].item()
    assert changed(again, "diag") == changed(first, "diag") and changed(again, "memseg") != changed(first, "memseg")


def test_full_shot_reference_row(replica: Path, generated: Path, tmp_path: Path) -> None:
    results = grid(replica, generated, tmp_path / "r", seeds=[0], scenario="full-shot", methods=("none", "memseg"))
    assert set(results["method"]) == {"none", "memseg"}
    assert results.loc[results["method"] == "none", "n_aug"].item() == 0
    with pytest.raises(ValueError, match="full-shot reference only"):
        grid(replica, generated, tmp_path / "z", seeds=[0], methods=("none",))


def test_grids_share_one_feature_cache(replica: Path, generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Zero-shot then full-shot on the same images: the second grid sends nothing through Inception."""
    import diag.fid.features as features

    shared = tmp_path / "feature-cache"
    run = lambda scenario, out: run_grid(scenario=scenario, methods=["diag"], n_augs=[4], seeds=[0], profile="demo",
                                         data=replica, generated=generated, out=out, feature_cache=shared,
                                         overrides={"epochs": 2, "device": "cpu"}, progress=False)
    run("zero-shot", tmp_path / "zero-shot")
    assert any(shared.rglob("*.npy")) and not (tmp_path / "zero-shot" / "feature-cache").exists()
    loaded = []
    original = features.load_299
    monkeypatch.setattr(features, "load_299", lambda path: loaded.append(path) or original(path))
    run("full-shot", tmp_path / "full-shot")
    new_images = set(experiments.training_set(replica, "full-shot", generated / "diag" / "augmented_4", 4).paths) \
        - set(experiments.training_set(replica, "zero-shot", generated / "diag" / "augmented_4", 4).paths)
    assert new_images and set(loaded) == new_images  # only the real positives zero-shot never used


def test_fid_table_is_redone_only_when_a_set_changes(replica: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import diag.fid.features as features
    from diag import workflow

    for method in workflow.METHODS:
        make_generated(replica, workflow.generated_dir(tmp_path, method, 4), 4)
    first = workflow.fid_table(replica, tmp_path, 4)
    calls = []
    original = features.compute_fid
    monkeypatch.setattr(features, "compute_fid", lambda *a, **k: calls.append(1) or original(*a, **k))
    pd.testing.assert_frame_equal(workflow.fid_table(replica, tmp_path, 4), first)
    assert calls == []  # same sets: read from fid_4.csv
    images = workflow.generated_dir(tmp_path, "diag", 4) / "imgs"
    (images / "00001.png").write_bytes((images / "00000.png").read_bytes())
    again = workflow.fid_table(replica, tmp_path, 4)
    assert len(calls) == len(workflow.METHODS)
    changed = lambda frame: frame.set_index("method")["generated_sha1"]
    assert (changed(again) != changed(first)).tolist() == [m == "diag" for m in first["method"]]
