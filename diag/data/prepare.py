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
    read_official_split,
    scan_split,
    split_by_label,
    write_manifest,
)
from diag.errors import DataError
from diag.files import PNG_OPTIONS, new_folder


@dataclass(frozen=True)
class PrepareReport:
    """What ``prepare`` wrote: counts per split and label, and the names it skipped."""

    counts: dict[str, dict[str, int]]
    skipped: list[Path]

    def summary(self) -> str:
        parts = [f"{split}: {c['positive']} positive + {c['negative']} negative" for split, c in self.counts.items()]
        return "; ".join(parts)


def resize_pair(image: Image.Image, mask: Image.Image) -> tuple[Image.Image, Image.Image]:
    """Resize an image (bilinear) and its mask (nearest, binarised to {0, 255}).

    Nearest neighbour drops whole columns when shrinking (232 -> 224), so a thin scratch can
    vanish: a mask that had foreground and lost it all is resized again keeping every output
    pixel that any foreground pixel falls into, so a positive stays positive.
    """
    image = image.convert("RGB").resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR)
    mask = mask.convert("L")
    resized = np.asarray(mask.resize((WIDTH, HEIGHT), Image.Resampling.NEAREST)) > 0
    if not resized.any() and np.asarray(mask).any():
        resized = np.asarray(mask.point(lambda v: 255 if v else 0).resize((WIDTH, HEIGHT), Image.Resampling.BOX)) > 0
    return image, Image.fromarray(resized.astype(np.uint8) * 255)


def prepare_split(src: Path, dst: Path, split: str) -> list[Sample]:
    """Check, resize and write one split; labels come from the full-resolution masks."""
    (dst / split).mkdir(parents=True)
    samples = []
    for sample in read_official_split(src, split):
        image, mask = open_png(sample.image_path), open_png(sample.mask_path)
        if image.size != mask.size:
            raise DataError(
                f"{sample.mask_path}: mask is {mask.size[0]}x{mask.size[1]} but its image is "
                f"{image.size[0]}x{image.size[1]}"
            )
        image, mask = resize_pair(image, mask)
        out_image = dst / split / sample.image_path.name
        image.save(out_image, **PNG_OPTIONS)
        mask.save(mask_path_for(out_image), **PNG_OPTIONS)
        samples.append(Sample(sample.id, out_image, mask_path_for(out_image), sample.label))
    if not samples:
        raise DataError(f"{src / split}: no NNNNN.png images found")
    return samples


def prepare(src: Path | str, out: Path | str) -> PrepareReport:
    """Prepare KSDD2 (official layout at ``src``) into ``out``; see the module docstring."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise DataError(f"{src}: folder not found")
    counts, skipped, orphans = {}, [], []
    with new_folder(out) as tmp:
        for split in SPLITS:
            _, split_skipped, split_orphans = scan_split(src / split)
            skipped, orphans = skipped + split_skipped, orphans + split_orphans
            samples = prepare_split(src, tmp, split)
            write_manifest(tmp / f"{split}.csv", samples, tmp)
            negatives, positives = split_by_label(samples)
            counts[split] = {"positive": len(positives), "negative": len(negatives)}
    if skipped:
        names = ", ".join(str(p.relative_to(src)) for p in skipped)
        warnings.warn(f"ignored {len(skipped)} file(s) not named NNNNN.png / NNNNN_GT.png: {names}", stacklevel=2)
    if orphans:
        names = ", ".join(str(p.relative_to(src)) for p in orphans)
        warnings.warn(f"ignored {len(orphans)} mask(s) without an image: {names}", stacklevel=2)
    return PrepareReport(counts, skipped)
