"""Shared fixtures. Torch runs on one thread: on a 2-core machine two threads slowed tiny
models 2-20x whenever anything else ran."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a hard dependency
    pass


def write_pair(folder: Path, stem: str, size: tuple[int, int], defect: bool, seed: int = 0) -> None:
    """One official-layout image ``stem.png`` and its mask ``stem_GT.png`` (size = (w, h))."""
    rng = np.random.default_rng(seed)
    w, h = size
    image = rng.integers(30, 60, size=(h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), dtype=np.uint8)
    if defect:
        mask[h // 3 : h // 3 + 40, w // 4 : w // 4 + 30] = 255
        image[mask > 0] = 200
    Image.fromarray(image).save(folder / f"{stem}.png")
    Image.fromarray(mask).save(folder / f"{stem}_GT.png")


@pytest.fixture
def official_ksdd2(tmp_path: Path) -> Path:
    """A tiny KSDD2 in the official layout: odd sizes, and the archive's ``(copy)`` pair."""
    root = tmp_path / "KolektorSDD2"
    for split, first in (("train", 10000), ("test", 20000)):
        (root / split).mkdir(parents=True)
        for i, (w, h) in enumerate([(230, 630), (226, 645), (241, 597), (184, 665), (232, 628)]):
            write_pair(root / split, str(first + i), (w, h), defect=i in (1, 3), seed=i)
    write_pair(root / "train", "10301 (copy)", (230, 630), defect=False)
    (root / "train" / "10301 (copy)_GT.png").rename(root / "train" / "10301_GT (copy).png")
    return root


@pytest.fixture(scope="session")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small offline replica, made once per test session."""
    from diag.data.synthetic import synthesize

    out = tmp_path_factory.mktemp("replica") / "small"
    synthesize(out, scale="small", seed=0, progress=False)
    return out
