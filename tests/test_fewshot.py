"""The few-shot scenario: the nested draw of real positives, sets made from only those, the grid's rows
(k recorded with the drawn ids), the rows it takes from the zero- and full-shot grids, and chapter 9's
sentences computed from a curve."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

import diag.experiments as experiments
from diag import layout
from diag.chapters import fewshot
from diag.classify.data import count_positives, draw_positives, training_set
from diag.config import build_config
from diag.data.ksdd2 import read_manifest, split_by_label
from diag.errors import ConfigError, DataError
from diag.experiments import run_grid
from diag.generate.diag import DiagConfig, generate_diag
from diag.generate.output import set_problems
from diag.testing import copied_set, tiny_sdxl_inpaint_pipeline


def test_the_draw_is_nested_seeded_and_in_manifest_order(replica: Path) -> None:
    _, positives = split_by_label(read_manifest(replica, "train"))
    order = [s.id for s in positives]
    draws = [draw_positives(replica, k, seed=0) for k in range(len(positives) + 1)]
    for smaller, larger in zip(draws, draws[1:]):
        assert set(smaller) < set(larger) and len(larger) == len(smaller) + 1  # nested, one more each time
    assert all(d == sorted(d, key=order.index) for d in draws)  # train.csv order: k = all is full-shot's set
    assert draws[-1] == order and draws[0] == []
    assert draw_positives(replica, 3, seed=0) == draws[3]  # the same seed, the same draw
    assert any(draw_positives(replica, 3, seed=s) != draws[3] for s in (1, 2, 3))
    with pytest.raises(DataError, match=r"train\.csv: .* positive training images, so k = 99"):
        draw_positives(replica, 99, seed=0)


def test_the_few_shot_training_set_holds_the_drawn_positives(replica: Path) -> None:
    drawn = draw_positives(replica, 2, seed=0)
    train = training_set(replica, "few-shot", positives=drawn)
    negatives, positives = split_by_label(read_manifest(replica, "train"))
    assert len(train) == len(negatives) + 2 and train.labels.sum() == 2
    assert {p.name for p in train.paths[len(negatives):]} == {s.image_path.name for s in positives if s.id in drawn}
    full = training_set(replica, "full-shot")
    every = training_set(replica, "few-shot", positives=draw_positives(replica, len(positives), seed=5))
    assert every.paths == full.paths  # k = all trains on exactly the full-shot set
    with pytest.raises(ConfigError, match="only it, takes `positives`"):
        training_set(replica, "full-shot", positives=drawn)
    with pytest.raises(ConfigError, match="few-shot training without a positive"):
        training_set(replica, "few-shot", positives=[])


def test_diag_draws_masks_only_from_the_drawn_positives(replica: Path, tmp_path: Path) -> None:
    drawn = draw_positives(replica, 2, seed=0)
    config = DiagConfig(model="tiny", n_aug=6, steps=2, device="cpu")
    out = tmp_path / "diag" / layout.draw_name(2, 0) / "augmented_6"
    generate_diag(replica, out, config, pipe=tiny_sdxl_inpaint_pipeline(seed=0), progress=False, positives=drawn)
    masks = pd.read_csv(out / "manifest.csv", dtype=str)["mask"]
    assert set(masks) <= set(drawn)  # no other positive's mask (the plan draws among these at random)
    # the set records its draw: it stands only where a set from those positives belongs
    assert set_problems(out, replica, 6, "diag", False, drawn) == []
    assert "made from 2 drawn real positives, but it stands where a set made from every real positive" in " ".join(
        set_problems(out, replica, 6, "diag", False, None))
    with pytest.raises(ConfigError, match="diag.masks: a set from drawn real positives takes their masks"):
        generate_diag(replica, tmp_path / "p", replace(config, masks="procedural"), progress=False, positives=drawn)


def few_shot_sets(replica: Path, root: Path, ks: list[int], n_aug: int) -> Path:
    """Stand-in sets (copies of test positives, recorded as made by their generator) for a few-shot grid:
    the standard DIAG, procedural and MemSeg sets, and a DIAG set per draw below k = all."""
    test_positives = [s.image_path for s in read_manifest(replica, "test") if s.is_positive]
    sources = [test_positives[i % len(test_positives)] for i in range(n_aug)]
    copied_set(replica, root / "diag" / f"augmented_{n_aug}", sources, "diag")
    copied_set(replica, root / "diag-procedural" / f"augmented_{n_aug}", sources[::-1], "diag", masks="procedural")
    copied_set(replica, root / "memseg" / f"augmented_{n_aug}", sources[1:] + sources[:1], "memseg")
    for k in ks:
        draw = layout.few_shot_draw("diag", k, count_positives(replica), 0)
        if k and draw:
            copied_set(replica, layout.generated_dir(root, "diag", n_aug, draw), sources[k:] + sources[:k], "diag",
                       positives=draw_positives(replica, k, 0))
    return root


@pytest.mark.slow
def test_few_shot_grid_rows_and_the_rows_it_takes_from_the_other_grids(
    replica: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    everyone = count_positives(replica)
    ks = [0, 2, everyone]
    sets = few_shot_sets(replica, tmp_path / "generated", ks, 4)
    config = build_config("demo", ["grid.n_augs=4", "grid.seeds=0", "classifier.epochs=1", "classifier.device=cpu",
                                   f"grid.real_positives={','.join(map(str, ks))}",
                                   "grid.few_shot_methods=none,diag,diag-procedural,memseg"])
    grid = lambda scenario, methods, out=None, **kw: run_grid(  # noqa: E731
        config, scenario=scenario, methods=methods, data=replica, generated=sets, out=out or tmp_path / scenario,
        progress=False, **kw)
    zero = grid("zero-shot", ["diag-procedural", "memseg"])
    full = grid("full-shot", ["none", "diag", "memseg"])
    assert set(full["real_positives"]) == {everyone} and set(zero["real_positives"]) == {0}

    trained = []
    original = experiments.fit
    monkeypatch.setattr(experiments, "fit", lambda *a, **k: trained.append(1) or original(*a, **k))
    methods = ["none", "diag", "diag-procedural", "memseg"]
    rows = grid("few-shot", methods, reuse={"zero-shot": tmp_path / "zero-shot", "full-shot": tmp_path / "full-shot"})
    cells = set(zip(rows["method"], rows["real_positives"]))
    assert cells == {("diag-procedural", 0), ("memseg", 0), *((m, k) for m in methods for k in ks[1:])}
    # copied: k = 0 from zero-shot (2 rows), k = all from full-shot (3 rows); trained: 4 at k = 2, procedural at all
    copied = rows[rows["copied_from"].notna()]
    assert len(copied) == 5 and len(trained) == 2 * 5  # each cell: its classifier and its validation one
    assert set(copied.loc[copied["real_positives"] == 0, "copied_from"]) == {"zero-shot/results.csv"}
    negatives = len(split_by_label(read_manifest(replica, "train"))[0])
    for r in rows.itertuples(index=False):
        assert r.n_train == negatives + r.real_positives + r.n_aug
        assert len(r.positive_ids.split()) == r.real_positives or (r.real_positives, r.positive_ids) == (0, "none")
    at_two = rows[(rows["method"] == "diag") & (rows["real_positives"] == 2)]
    assert at_two["generated_sha1"].item() != full.loc[full["method"] == "diag", "generated_sha1"].item()

    # a copied row is what the few-shot cell computes: the same images in the same order
    fresh = grid("few-shot", ["memseg"], out=tmp_path / "fresh").set_index("real_positives")  # nothing to copy from
    assert "copied_from" not in fresh
    assert fresh.loc[0, "ap"] == pytest.approx(zero.set_index("method").loc["memseg", "ap"], abs=1e-6)
    assert fresh.loc[everyone, "ap"] == pytest.approx(full.set_index("method").loc["memseg", "ap"], abs=1e-6)

    # another draw seed is another folder; the first draw's set moved there is refused (other positives)
    seed = next(s for s in (1, 2, 3, 4) if draw_positives(replica, 2, s) != draw_positives(replica, 2, 0))
    shutil.copytree(sets / "diag" / "k2-draw0", sets / "diag" / f"k2-draw{seed}")
    other = replace(config, grid=replace(config.grid, positives_seed=seed))
    with pytest.raises(DataError, match="made from 2 drawn real positives, but it stands where a set made from 2"):
        run_grid(other, scenario="few-shot", methods=["diag"], data=replica, generated=sets, out=tmp_path / "other",
                 progress=False)


def test_the_few_shot_grid_refuses_more_positives_than_the_data_has(replica: Path, tmp_path: Path) -> None:
    config = build_config("demo", ["grid.n_augs=4", "grid.real_positives=0,500"])
    with pytest.raises(DataError, match="grid.real_positives: 500 real positives asked for, but the training split has"):
        run_grid(config, scenario="few-shot", methods=["memseg"], data=replica, generated=tmp_path, out=tmp_path / "o")


def test_config_checks_the_few_shot_settings() -> None:
    with pytest.raises(ConfigError, match="grid.real_positives: must be distinct non-negative integers"):
        build_config("demo", ["grid.real_positives=3,3"])
    with pytest.raises(ConfigError, match="grid.few_shot_methods: must be among"):
        build_config("demo", ["grid.few_shot_methods=diag,sdxl"])
    assert experiments.grid_cells("few-shot", ["none", "diag", "memseg"], [100], [0], [0, 5]) == [
        ("few-shot", "memseg", 100, 0, 0), ("few-shot", "none", 0, 0, 5), ("few-shot", "diag", 100, 0, 5),
        ("few-shot", "memseg", 100, 0, 5)]


def curve(values: dict[str, dict[int, tuple[float, float]]]) -> pd.DataFrame:
    """A stats table as ``fewshot.curve_stats`` returns it, from {method: {k: (mean, std)}}."""
    rows = [{"method": m, "n_aug": 100, "real_positives": k, "ap_mean": mean, "ap_std": std, "seeds": 3}
            for m, by_k in values.items() for k, (mean, std) in by_k.items()]
    return pd.DataFrame(rows)


def test_the_curve_says_where_augmentation_stops_adding_and_what_it_is_worth() -> None:
    stats = curve({
        "none": {3: (0.50, 0.01), 12: (0.80, 0.01), 49: (0.90, 0.01)},
        "diag": {3: (0.78, 0.01), 12: (0.85, 0.01), 49: (0.905, 0.01)},
        "memseg": {0: (0.60, 0.02), 3: (0.52, 0.02), 12: (0.81, 0.02), 49: (0.90, 0.02)},
        "diag-procedural": {0: (0.95, 0.01), 3: (0.96, 0.01), 12: (0.97, 0.01), 49: (0.97, 0.01)},
    })
    assert fewshot.stops_adding(stats, "diag") == ("from", 49)  # +0.05 at 12 is beyond 0.02; +0.005 at 49 is not
    assert fewshot.stops_adding(stats, "memseg") == ("never added", None)  # +0.02 at 3 is within 0.03
    assert fewshot.stops_adding(stats, "diag-procedural") == ("still adds", None)
    k0, ap0, equal = fewshot.worth(stats, "memseg")
    assert (k0, ap0) == (0, 0.60) and equal == pytest.approx(3 + (0.60 - 0.50) / 0.30 * 9)  # 6 real positives
    assert fewshot.worth(stats, "diag-procedural")[2] is None  # none never reaches 0.95
    text = fewshot.curve_text(stats, "DEMO", 49, [])
    assert "DIAG stops adding AP beyond the seeds' spread from k = 49" in text
    assert "MemSeg adds no AP beyond the seeds' spread" in text and "worth about 6 real positives" in text
    assert "more than no augmentation reaches with any k measured (up to 49)" in text


def test_the_cli_takes_a_draw_only_where_it_belongs(replica: Path, capsys: pytest.CaptureFixture) -> None:
    from diag.cli import main

    assert main(["train", "--data", str(replica), "--scenario", "zero-shot", "--real-positives", "2"]) == 2
    assert "--real-positives: given with --scenario zero-shot" in capsys.readouterr().err
    assert main(["train", "--data", str(replica), "--scenario", "few-shot"]) == 2
    assert "--scenario few-shot: give --real-positives K" in capsys.readouterr().err
    assert main(["generate", "diag", "--data", str(replica), "--out", "unused", "--real-positives", "999"]) == 2
    assert "so k = 999 real positives cannot be drawn" in capsys.readouterr().err


def test_the_curve_says_when_a_gain_is_within_the_spread_and_when_the_curve_is_flat() -> None:
    stats = curve({
        "none": {3: (0.894, 0.014), 12: (0.922, 0.001), 49: (0.923, 0.002)},
        "diag": {3: (0.905, 0.013), 12: (0.918, 0.007), 49: (0.925, 0.003)},
        "diag-procedural": {0: (0.925, 0.004), 3: (0.926, 0.002), 12: (0.920, 0.005), 49: (0.922, 0.001)},
    })
    text = fewshot.curve_text(stats, "DEMO", 49, [])
    assert "within the seeds' spread of no augmentation with the same 3 (+0.011, spread 0.027)" in text
    assert "as much as no augmentation reaches with all 49 (within the seeds' spread)" in text
    assert "procedural masks differs from it by +0.021 AP at the same k (spread 0.015): with so few shapes" in text
    assert "nearly flat (+0.029 AP from 3 to 49 real positives)" in text and "Likely reason" in text
    steep = curve({"none": {3: (0.5, 0.01), 49: (0.9, 0.01)}, "diag": {3: (0.6, 0.01), 49: (0.9, 0.01)},
                   "memseg": {0: (0.4, 0.01), 3: (0.45, 0.01), 49: (0.85, 0.01)}})
    text = fewshot.curve_text(steep, "DEMO", 49, [])
    assert "nearly flat" not in text
    assert "MemSeg adds no AP beyond the seeds' spread at any k where both ran, and lowers it beyond that spread " \
           "at k = 3, 49" in text
