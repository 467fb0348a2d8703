"""MemSeg per-region anomalies and the Perlin noise under them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from diag.cli import main
from diag.data.ksdd2 import load_image, read_manifest
from diag.errors import DataError
from diag.generate.memseg import MemSegConfig, generate_memseg, perlin_roi, structure_source, synthesize_one
from diag.generate.perlin import perlin_2d


def test_perlin_range_zeros_and_determinism() -> None:
    noise = perlin_2d((64, 64), (4, 4), np.random.default_rng(0))
    assert noise.shape == (64, 64) and np.abs(noise).max() <= np.sqrt(2) * 0.75 and noise.std() > 0.1
    assert np.allclose(noise[::16, ::16], 0)  # gradient noise is zero on the lattice
    assert np.array_equal(noise, perlin_2d((64, 64), (4, 4), np.random.default_rng(0)))
    with pytest.raises(ValueError, match="divisible"):
        perlin_2d((63, 64), (4, 4), np.random.default_rng(0))


def test_perlin_scale_sets_the_frequency() -> None:
    def roughness(res: int) -> float:
        values = [np.abs(np.diff(perlin_2d((128, 128), (res, res), np.random.default_rng(s)), axis=1)).mean() for s in range(5)]
        return float(np.mean(values))

    coarse, fine = roughness(2), roughness(16)
    assert fine > 4 * coarse


def test_roi_is_never_empty_and_varies() -> None:
    rois = [perlin_roi(np.random.default_rng(s)) for s in range(10)]
    assert all(r.shape == (632, 224) and r.any() for r in rois)
    assert len({r.sum() for r in rois}) > 5


def test_blend_stays_outside_the_roi(replica: Path) -> None:
    negatives = [s.image_path for s in read_manifest(replica, "train") if not s.is_positive]
    image = load_image(negatives[0])
    for seed in range(6):
        out, roi, kind, delta = synthesize_one(image, np.random.default_rng(seed), negatives, None, MemSegConfig())
        assert np.array_equal(out[~roi], image[~roi])
        assert 0.15 <= delta <= 1 and kind in {"texture", "structure"}
        assert not np.array_equal(out[roi], image[roi])


def test_structure_source_shuffles_cells() -> None:
    image = np.arange(632 * 224 * 3, dtype=float).reshape(632, 224, 3) % 255
    shuffled = structure_source(image.astype(np.uint8), np.random.default_rng(0))
    assert shuffled.shape == image.shape and not np.allclose(shuffled, image)


def test_generate_is_deterministic_and_resumable(replica: Path, tmp_path: Path) -> None:
    config = MemSegConfig(n_aug=6, seed=3)
    generate_memseg(replica, tmp_path / "a", config, progress=False)
    rows = pd.read_csv(tmp_path / "a" / "manifest.csv")
    assert rows["index"].tolist() == list(range(6)) and set(rows["source"]) <= {"texture", "structure"}

    def digest(folder: Path) -> list[str]:
        return [hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.png"))]

    generate_memseg(replica, tmp_path / "b", config, progress=False)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    (tmp_path / "b" / "imgs" / "00004.png").unlink()
    generate_memseg(replica, tmp_path / "b", config, progress=False)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    for i in range(6):
        mask = np.asarray(Image.open(tmp_path / "a" / "masks" / f"{i:05d}.png")) > 0
        assert mask.any()


def test_a_set_is_not_resumed_with_other_settings(replica: Path, tmp_path: Path) -> None:
    generate_memseg(replica, tmp_path, MemSegConfig(n_aug=3, seed=0, delta_min=0.15), progress=False)
    before = sorted(p.read_bytes() for p in (tmp_path / "imgs").glob("*.png"))
    with pytest.raises(DataError, match=r"this set \(3 images\) was made with delta_min=0.15 \(this run: 0.5\)"):
        generate_memseg(replica, tmp_path, MemSegConfig(n_aug=3, seed=0, delta_min=0.5), progress=False)
    assert sorted(p.read_bytes() for p in (tmp_path / "imgs").glob("*.png")) == before  # nothing lost
    generate_memseg(replica, tmp_path, MemSegConfig(n_aug=3, seed=0, delta_min=0.15), progress=False)  # same: resumes


def test_cli_and_texture_folder(replica: Path, tmp_path: Path) -> None:
    textures = tmp_path / "dtd"
    textures.mkdir()
    Image.fromarray(np.full((50, 50, 3), (250, 20, 20), np.uint8)).save(textures / "red.png")
    assert main(["generate", "memseg", "--data", str(replica), "--out", str(tmp_path / "m"), "--n-aug", "4",
                 "--seed", "1", "--textures", str(textures)]) == 0
    rows = pd.read_csv(tmp_path / "m" / "manifest.csv")
    red = [i for i, kind in zip(rows["index"], rows["source"]) if kind == "texture"]
    for i in red:
        image = np.asarray(Image.open(tmp_path / "m" / "imgs" / f"{i:05d}.png"), float)
        mask = np.asarray(Image.open(tmp_path / "m" / "masks" / f"{i:05d}.png")) > 0
        assert image[mask][:, 0].mean() > image[~mask][:, 0].mean()  # the red texture shows inside the ROI
