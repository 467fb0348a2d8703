import json
from pathlib import Path

import numpy as np
import pytest

from diag.cli import main
from diag.data.ksdd2 import load_image, load_mask, read_manifest, split_by_label
from diag.data.prepare import prepare
from diag.data.synthetic import SCALES, render_sample


def test_small_counts_and_layout(replica: Path) -> None:
    n_train_pos, n_train_neg, n_test_pos, n_test_neg = SCALES["small"]
    for split, n_pos, n_neg in (("train", n_train_pos, n_train_neg), ("test", n_test_pos, n_test_neg)):
        negatives, positives = split_by_label(read_manifest(replica, split))
        assert (len(positives), len(negatives)) == (n_pos, n_neg)
        for sample in negatives:
            assert not load_mask(sample.mask_path).any()
        for sample in positives:
            mask = load_mask(sample.mask_path)
            assert 0 < mask.mean() < 0.35  # KSDD2: 0.017 % .. 30 % of the image
    info = json.loads((replica / "replica.json").read_text())
    assert info["scale"] == "small" and info["seed"] == 0
    assert (replica / "contact_sheet.png").stat().st_size > 10_000


def test_full_scale_is_ksdd2_and_demo_keeps_its_ratios() -> None:
    assert SCALES["full"] == (246, 2085, 110, 894)
    full, demo = np.array(SCALES["full"]), np.array(SCALES["demo"])
    assert np.allclose(demo / full, 0.2, atol=0.005)


def test_deterministic_for_a_seed() -> None:
    a_image, a_mask, a_kinds = render_sample(0, "train", 3, positive=True)
    b_image, b_mask, b_kinds = render_sample(0, "train", 3, positive=True)
    assert np.array_equal(a_image, b_image) and np.array_equal(a_mask, b_mask) and a_kinds == b_kinds
    c_image, _, _ = render_sample(1, "train", 3, positive=True)
    assert not np.array_equal(a_image, c_image)


def test_surface_looks_like_ksdd2() -> None:
    """Dark (~45/255), nearly neutral, std ~10, column means vary more than row means."""
    images = np.stack([render_sample(0, "train", i, positive=False)[0] for i in range(8)]).astype(float)
    means = images.mean(axis=(0, 1, 2))
    assert np.all(np.abs(means - 45) < 6) and np.ptp(means) < 3
    assert 6 < images.std(axis=(1, 2)).mean() < 14
    column_spread = images.mean(axis=(1, 3)).std(axis=1).mean()
    row_spread = images.mean(axis=(2, 3)).std(axis=1).mean()
    assert column_spread > row_spread


def test_defects_are_brighter_inside_the_mask() -> None:
    lifts = []
    for i in range(12):
        image, mask, _ = render_sample(0, "train", i, positive=True)
        grey = image.astype(float).mean(axis=2)
        lifts.append(grey[mask].mean() - grey[~mask].mean())
    assert min(lifts) > 0 and np.median(lifts) > 3


def test_round_trip_through_prepare(replica: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    report = prepare(replica, out)
    assert report.counts["train"] == {"positive": SCALES["small"][0], "negative": SCALES["small"][1]}
    before, after = read_manifest(replica, "test"), read_manifest(out, "test")
    assert [(s.id, s.label) for s in before] == [(s.id, s.label) for s in after]
    for a, b in zip(before, after):
        assert np.array_equal(load_image(a.image_path), load_image(b.image_path))
        assert np.array_equal(load_mask(a.mask_path), load_mask(b.mask_path))


@pytest.mark.slow
def test_cli_synth(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", "synth", "--out", str(tmp_path / "r"), "--scale", "small", "--seed", "3"]) == 0
    assert "contact sheet:" in capsys.readouterr().out
    assert main(["data", "synth", "--out", str(tmp_path / "r"), "--scale", "small"]) == 2  # not empty
