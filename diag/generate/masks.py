"""Where the defect may go: mask sources for the DIAG generator.

* ``gt``: the training positives' ground-truth masks, in ``train.csv`` order (the paper);
* a folder of expert-drawn masks (``*.png``, any non-zero pixel is inside);
* ``procedural``: random smooth blobs and strokes, so zero-shot is truly zero-shot (no real
  positive is touched).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from diag.data.ksdd2 import load_mask, read_manifest, split_by_label
from diag.errors import DataError
from diag.data.ksdd2 import HEIGHT, WIDTH


def gt_masks(data: Path | str) -> dict[str, Path]:
    """Mask id -> path, for the training positives in ``train.csv`` order."""
    _, positives = split_by_label(read_manifest(data, "train"))
    if not positives:
        raise DataError(
            f"{Path(data) / 'train.csv'}: no positive training images, so no `gt` masks; use --masks procedural"
        )
    return {s.id: s.mask_path for s in positives}


def folder_masks(folder: Path | str) -> dict[str, Path]:
    """Mask name -> path for every PNG in a folder; each must have some foreground."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: mask folder not found")
    masks = {p.stem: p for p in sorted(folder.glob("*.png"))}
    if not masks:
        raise DataError(f"{folder}: no *.png masks in this folder")
    for path in masks.values():
        mask = load_mask(path)
        if mask.shape != (HEIGHT, WIDTH):
            raise DataError(
                f"{path}: mask is {mask.shape[1]}x{mask.shape[0]}; masks must be {WIDTH}x{HEIGHT} "
                "like the prepared images (they are never stretched)"
            )
        if not mask.any():
            raise DataError(f"{path}: mask has no foreground (all pixels are 0)")
    return masks


def procedural_mask(seed: int, index: int, size: tuple[int, int] = (WIDTH, HEIGHT)) -> np.ndarray:
    """A random smooth blob or stroke, sized like KSDD2's defect masks (median ~1.5 % of the image)."""
    rng = np.random.default_rng([7919, seed, index])  # own stream: disjoint from the replica's
    width, height = size
    canvas = Image.new("L", size, 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.15, 0.85) * height
    if rng.random() < 0.5:  # blob
        rx, ry = np.exp(rng.normal(np.log(18), 0.5, size=2))
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)
    else:  # stroke
        angle, length = rng.uniform(0, np.pi), np.exp(rng.normal(np.log(70), 0.5))
        dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
        draw.line([cx - dx, cy - dy, cx + dx, cy + dy], fill=255, width=int(rng.integers(10, 24)))
    mask = np.asarray(canvas) > 0
    return ndimage.gaussian_filter(mask.astype(float), 4.0) > 0.5
