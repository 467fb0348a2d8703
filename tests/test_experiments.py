"""The experiment grid: rows, resume, and the summary beside the paper."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

import diag.experiments as experiments
from diag import layout
from diag.config import build_config
from diag.errors import ConfigError
from diag.experiments import run_grid, summarize
from diag.data.fingerprint import data_fingerprint
from diag.data.ksdd2 import read_manifest
from diag.testing import copied_set
from tests.test_classify import make_generated


@pytest.fixture(scope="module")
def generated(replica: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("generated")
    make_generated(replica, root / "diag" / "augmented_4", 4)
    make_generated(replica, root / "memseg" / "augmented_4", 4)
    return root


def demo_config(*overrides: str):
    return build_config("demo", ["grid.n_augs=4", "classifier.device=cpu", *overrides])


def grid(replica: Path, generated: Path, out: Path, seeds: list[int], scenario: str = "zero-shot", methods=("diag",),
         epochs: int = 3) -> pd.DataFrame:
    config = demo_config(f"grid.seeds={','.join(map(str, seeds))}", f"classifier.epochs={epochs}")
    return run_grid(config, scenario=scenario, methods=list(methods), data=replica, generated=generated, out=out,
                    progress=False)


def test_grid_rows_resume_and_summary(replica: Path, generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "results"
    first = grid(replica, generated, out, seeds=[0, 1])
    assert len(first) == 2 and list(first["seed"]) == [0, 1]
    for column in ("ap", "precision", "recall", "auroc", "accuracy", "val_ap", "val_precision", "epochs", "backbone", "profile",
                   "wall_s", "weights", "input_size", "batch_size", "lr", "data_fingerprint", "settings_id"):
        assert column in first.columns
    assert (first["backbone"] == "fid-inception-maps").all() and (first["epochs"] == 3).all()
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


@pytest.mark.slow
def test_a_cell_is_redone_when_its_generated_set_changes(replica: Path, generated: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    sets = tmp_path / "generated"
    shutil.copytree(generated, sets)
    first = grid(replica, sets, tmp_path / "results", seeds=[0], methods=("diag", "memseg"))
    shutil.rmtree(sets / "memseg" / "augmented_4")  # the set made again, with other images
    positives = [s.image_path for s in read_manifest(replica, "train") if s.is_positive]
    copied_set(replica, sets / "memseg" / "augmented_4", positives[:4], "memseg")
    trained = []
    original = experiments.fit
    monkeypatch.setattr(experiments, "fit", lambda *a, **k: trained.append(1) or original(*a, **k))
    again = grid(replica, sets, tmp_path / "results", seeds=[0], methods=("diag", "memseg"))
    assert len(trained) == 2  # memseg's cell only (its classifier and its validation classifier)
    assert sorted(again["method"]) == ["diag", "memseg"]
    changed = lambda frame, m: frame.loc[frame["method"] == m, "generated_sha1"].item()
    assert changed(again, "diag") == changed(first, "diag") and changed(again, "memseg") != changed(first, "memseg")


@pytest.mark.slow
def test_full_shot_reference_row(replica: Path, generated: Path, tmp_path: Path) -> None:
    results = grid(replica, generated, tmp_path / "r", seeds=[0], scenario="full-shot", methods=("none", "memseg"))
    assert set(results["method"]) == {"none", "memseg"}
    assert results.loc[results["method"] == "none", "n_aug"].item() == 0
    with pytest.raises(ConfigError, match="needs real positives: full-shot or few-shot only"):
        grid(replica, generated, tmp_path / "z", seeds=[0], methods=("none",))


@pytest.mark.slow
def test_grids_share_one_feature_cache(replica: Path, generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Zero-shot then full-shot on the same images: the second grid sends nothing through Inception."""
    import diag.classify.features as features

    shared = tmp_path / "feature-cache"
    config = demo_config("grid.seeds=0", "classifier.epochs=2")
    run = lambda scenario, out: run_grid(config, scenario=scenario, methods=["diag"], data=replica, generated=generated,
                                         out=out, feature_cache=shared, progress=False)
    run("zero-shot", tmp_path / "zero-shot")
    assert any(shared.rglob("*.npy")) and not (tmp_path / "zero-shot" / "feature-cache").exists()
    loaded = []
    original = features.load_uint8
    monkeypatch.setattr(features, "load_uint8", lambda paths, size: loaded.extend(paths) or original(paths, size))
    run("full-shot", tmp_path / "full-shot")
    new_images = set(experiments.training_set(replica, "full-shot", generated / "diag" / "augmented_4", 4).paths) \
        - set(experiments.training_set(replica, "zero-shot", generated / "diag" / "augmented_4", 4).paths)
    assert new_images and set(loaded) == new_images  # only the real positives zero-shot never used


@pytest.mark.slow
def test_rows_made_with_other_settings_are_kept_but_never_mixed(replica: Path, generated: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    two = grid(replica, generated, out, seeds=[0, 1], epochs=2)
    three = grid(replica, generated, out, seeds=[0, 1], epochs=3)  # resumed with other epochs: trained anew
    assert set(two["epochs"]) == {2} and set(three["epochs"]) == {3}
    assert two["settings_id"].iloc[0] != three["settings_id"].iloc[0]
    everything = experiments.read_rows(out)
    assert len(everything) == 4  # the 2-epoch rows are still in the file
    fingerprint = data_fingerprint(replica)
    shown = experiments.current_rows(everything, fingerprint)
    assert set(shown["epochs"]) == {3} and len(shown) == 2  # what the book averages: one run's rows
    asked = experiments.current_rows(everything, fingerprint, two["settings_id"].iloc[0])
    assert set(asked["epochs"]) == {2}  # the settings a render asks for, not merely the newest
    assert experiments.current_rows(everything, "sha1:other").empty  # never rows of other data
    paper = run_grid(build_config("paper", ["grid.n_augs=4", "grid.seeds=0", "classifier.weights=none",
                                            "classifier.epochs=1", "classifier.device=cpu", "classifier.batch_size=8"]),
                     scenario="zero-shot", methods=["diag"], data=replica, generated=generated, out=out, progress=False)
    assert set(paper["profile"]) == {"paper"} and set(paper["backbone"]) == {"resnet50"}  # not the demo rows


def test_fid_table_is_redone_only_when_a_set_changes(replica: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import diag.fid.features as features
    from diag.fid.table import fid_table

    for method in experiments.GENERATORS:
        make_generated(replica, layout.generated_dir(tmp_path / "generated", method, 4), 4)
    first = fid_table(replica, tmp_path, 4)
    assert {"kid_64", "kid_64_mean", "kid_64_std", "kid_192"} <= set(first) and set(first["kid_subsets"]) == {100}
    assert set(first["kid_subset_size"]) == {4}  # at most the smaller set
    calls = []
    original = features.folder_features
    monkeypatch.setattr(features, "folder_features", lambda *a, **k: calls.append(1) or original(*a, **k))
    pd.testing.assert_frame_equal(fid_table(replica, tmp_path, 4), first)
    assert calls == []  # same sets: read from fid_4.csv
    folder = layout.generated_dir(tmp_path / "generated", "diag", 4)
    shutil.rmtree(folder)
    positives = [s.image_path for s in read_manifest(replica, "train") if s.is_positive]
    copied_set(replica, folder, positives[:4], "diag")  # made again, with other images
    again = fid_table(replica, tmp_path, 4)
    assert len(calls) == len(experiments.GENERATORS)
    changed = lambda frame: frame.set_index("method")["generated_sha1"]
    assert (changed(again) != changed(first)).tolist() == [m == "diag" for m in first["method"]]


def test_fid_table_is_redone_when_kid_is_asked_for_with_other_subsets(replica: Path, tmp_path: Path) -> None:
    from diag.fid.table import fid_table

    for method in experiments.GENERATORS:
        make_generated(replica, layout.generated_dir(tmp_path / "generated", method, 4), 4)
    first = fid_table(replica, tmp_path, 4, kid_subset_size=3, kid_subsets=5)
    assert set(first["kid_subset_size"]) == {3} and set(first["kid_subsets"]) == {5}
    pd.testing.assert_frame_equal(fid_table(replica, tmp_path, 4, kid_subset_size=3, kid_subsets=5), first)
    other = fid_table(replica, tmp_path, 4, kid_subset_size=2, kid_subsets=5)
    assert set(other["kid_subset_size"]) == {2}  # not the table drawn from subsets of 3
