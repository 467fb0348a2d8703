"""``diag data prepare``: official KSDD2 folders -> the prepared layout.

What it does, in order:
1. list ``train/`` and ``test/``; keep ``NNNNN.png`` with its ``NNNNN_GT.png``; report every
   other name (the archive's known duplicate ``10301 (copy).png`` among them) in one warning;
2. check each image decodes, has its mask, and that both have the same size;
3. resize images (bilinear) and masks (nearest neighbour, then {0, 255}) to 224 x 632;
4. write ``train.csv`` / ``test.csv`` (``path,label``, sorted by id).

Everything is written into a temporary folder beside ``out`` and renamed at the end, so a
failure leaves no half-prepared data set behind.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from diag.data.ksdd2 import (
    HEIGHT,
    SPLITS,
    WIDTH,
    Sample,
    mask_path_for,
    open_png,
    scan_split,
    split_by_label,
    write_manifest,
)
from diag.errors import DataError




@dataclass(frozen=True)
class PrepareReport:
    """What ``prepare`` wrote: counts per split and label, and the names it skipped."""

    counts: dict[str, dict[str, int]]
    skipped: list[Path]

    def summary(self) -> str:
        parts = [
            f"{split}: {c['positive']} positive + {c['negative']} negative"
            for split, c in self.counts.items()
        ]
        return "; ".join(parts)


def resize_pair(image: Image.Image, mask: Image.Image) -> tuple[Image.Image, Image.Image]:
    """Resize an image (bilinear) and its mask (nearest, binarised to {0, 255})."""
    image = image.convert("RGB").resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR)
    mask = mask.convert("L").resize((WIDTH, HEIGHT), Image.Resampling.NEAREST)
    mask = Image.fromarray(np.where(np.asarray(mask) > 0, 255, 0).astype(np.uint8))
    return image, mask


def prepare_split(src: Path, dst: Path, split: str) -> tuple[list[Sample], list[Path]]:
    """Check, resize and write one split; returns its samples and skipped names."""
    images, skipped = scan_split(src / split)
    (dst / split).mkdir(parents=True)
    samples = []
    for image_path in images:
        mask_path = mask_path_for(image_path)
        if not mask_path.is_file():
            raise DataError(f"{image_path}: no mask {mask_path.name} beside it")
        image, mask = open_png(image_path), open_png(mask_path)
        if image.size != mask.size:
            raise DataError(
                f"{mask_path}: mask is {mask.size[0]}x{mask.size[1]} but its image is "
                f"{image.size[0]}x{image.size[1]}"
            )
        image, mask = resize_pair(image, mask)
        out_image = dst / split / image_path.name
        image.save(out_image)
        mask.save(mask_path_for(out_image))
        label = "positive" if np.asarray(mask).any() else "negative"
        samples.append(Sample(image_path.stem, out_image, mask_path_for(out_image), label))
    if not samples:
        raise DataError(f"{src / split}: no NNNNN.png images found")
    return samples, skipped


def prepare(src: Path | str, out: Path | str) -> PrepareReport:
    """Prepare KSDD2 (official layout at ``src``) into ``out``; see the module docstring."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise DataError(f"{src}: folder not found")
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out}: already exists and is not empty; choose another --out or remove it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        counts, skipped = {}, []
        for split in SPLITS:
            samples, split_skipped = prepare_split(src, tmp, split)
            skipped += split_skipped
            write_manifest(tmp / f"{split}.csv", samples, tmp)
            negatives, positives = split_by_label(samples)
            counts[split] = {"positive": len(positives), "negative": len(negatives)}
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if skipped:
        names = ", ".join(str(p.relative_to(src)) for p in skipped)
        warnings.warn(f"ignored {len(skipped)} file(s) not named NNNNN.png / NNNNN_GT.png: {names}", stacklevel=2)
    return PrepareReport(counts, skipped)
