"""Reading KSDD2 in its official layout and in our prepared layout.

Official layout (as unpacked from ``KolektorSDD2.zip``)::

    ROOT/train/10000.png   ROOT/train/10000_GT.png   ...
    ROOT/test/20000.png    ROOT/test/20000_GT.png    ...

A sample is *positive* when its mask has any non-zero pixel.

Prepared layout (written by ``diag data prepare`` and ``diag data synth``) is the same
folders, every image resized to 224 wide x 632 high, plus ``train.csv`` / ``test.csv``
with columns ``path,label`` (path relative to ROOT, label in {negative, positive}).

Images are kept as ``uint8`` everywhere: the authors' loader holds the whole training
set as float32 (about 5 GB at 704x256); uint8 is a quarter of that and loses nothing.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from diag.errors import ConfigError, DataError

SPLITS = ("train", "test")
LABELS = ("negative", "positive")
IMAGE_NAME = re.compile(r"^(\d+)\.png$")
MASK_SUFFIX = "_GT"
WIDTH, HEIGHT = 224, 632  # the paper's input size: every prepared image is 224 wide x 632 high
# KSDD2's published counts (positive, negative) per split; the replica's full scale keeps them
KSDD2_COUNTS = {"train": {"positive": 246, "negative": 2085}, "test": {"positive": 110, "negative": 894}}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class Sample:
    """One KSDD2 image with its mask and image-level label."""

    id: str
    image_path: Path
    mask_path: Path
    label: str  # "negative" or "positive"

    @property
    def is_positive(self) -> bool:
        return self.label == "positive"


def mask_path_for(image_path: Path) -> Path:
    """``…/10000.png`` -> ``…/10000_GT.png`` (the official naming)."""
    return image_path.with_name(image_path.stem + MASK_SUFFIX + image_path.suffix)


WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # 16-bit greyscale (PNG opens it as one of these)


def eight_bit(image: Image.Image, path: Path | str) -> Image.Image:
    """``image`` with 8 bits per channel. PIL's ``convert("RGB")`` clips a 16-bit greyscale image at
    255, so every pixel above 255 of 65535 became white; we keep the top 8 bits instead."""
    if image.mode in WIDE_MODES:
        array = np.asarray(image).astype(np.int64) >> 8
        return Image.fromarray(array.clip(0, 255).astype(np.uint8), "L")
    if image.mode == "F":
        raise DataError(f"{path}: a floating-point image (mode F); save it as an 8- or 16-bit PNG")
    return image


def open_png(path: Path) -> Image.Image:
    """Open and fully decode an image at 8 bits per channel, turning every failure into a one-line DataError."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(f"{path}: unreadable image ({error})") from None
    return eight_bit(image, path)


def load_image(path: Path | str) -> np.ndarray:
    """Load an image as ``uint8`` array of shape (H, W, 3)."""
    return np.asarray(open_png(Path(path)).convert("RGB"), dtype=np.uint8)


def load_mask(path: Path | str) -> np.ndarray:
    """Load a mask as a boolean array of shape (H, W): True where the defect is."""
    return np.asarray(open_png(Path(path)).convert("L")) > 0


def list_images(folder: Path | str) -> list[Path]:
    """Image files directly in ``folder``, sorted; hidden files (a crash's leftovers) are skipped.

    A clear error when the folder is missing or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    images = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )
    if not images:
        raise DataError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
    return images


def label_from_mask(mask_path: Path) -> str:
    """KSDD2's rule: positive when the mask has any non-zero pixel."""
    return "positive" if load_mask(mask_path).any() else "negative"


def scan_split(split_dir: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """Image files of a split folder sorted by id, the names that are not ``NNNNN.png``, and orphan masks.

    Masks (``*_GT.png``) are not listed as images; any other file, such as the known
    duplicate ``10301 (copy).png``, lands in the second list; a mask whose image is missing
    in the third.
    """
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: folder not found (expected KSDD2's train/ and test/)")
    images, skipped, masks = [], [], []
    for path in sorted(split_dir.iterdir()):
        if not path.is_file():
            continue
        if IMAGE_NAME.match(path.name):
            images.append(path)
        elif re.match(r"^\d+_GT\.png$", path.name):
            masks.append(path)
        else:
            skipped.append(path)
    images.sort(key=lambda p: int(p.stem))
    names = {p.stem for p in images}
    orphans = [m for m in masks if m.stem.removesuffix(MASK_SUFFIX) not in names]
    return images, skipped, orphans


def read_official_split(root: Path | str, split: str) -> list[Sample]:
    """Samples of one split of the official layout, labels read from the masks."""
    if split not in SPLITS:
        raise ConfigError(f"split: must be one of {SPLITS}; got {split!r}")
    images, _, _ = scan_split(Path(root) / split)
    samples = []
    for image_path in images:
        mask_path = mask_path_for(image_path)
        if not mask_path.is_file():
            raise DataError(f"{image_path}: no mask {mask_path.name} beside it")
        samples.append(Sample(image_path.stem, image_path, mask_path, label_from_mask(mask_path)))
    return samples


def read_manifest(root: Path | str, split: str) -> list[Sample]:
    """Samples listed in a prepared folder's ``<split>.csv``, in row order.

    Row order matters: the DIAG release draws its random negatives and masks from these
    lists in this order.
    """
    root = Path(root)
    manifest = root / f"{split}.csv"
    if not manifest.is_file():
        raise DataError(
            f"{manifest}: manifest not found; is {root} a prepared folder "
            "(made by `diag data prepare` or `diag data synth`)?"
        )
    samples = []
    with manifest.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != ["path", "label"]:
            raise DataError(f"{manifest}: columns must be path,label; got {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            if row["label"] not in LABELS:
                raise DataError(f"{manifest}:{line}: label must be one of {LABELS}, got {row['label']!r}")
            image_path = root / row["path"]
            samples.append(Sample(image_path.stem, image_path, mask_path_for(image_path), row["label"]))
    return samples


def write_manifest(path: Path, samples: Iterable[Sample], root: Path) -> None:
    """Write ``path,label`` rows (paths relative to ``root``); atomically."""
    from diag.files import write_atomic

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "label"])
            for sample in samples:
                writer.writerow([sample.image_path.relative_to(root).as_posix(), sample.label])

    write_atomic(path, write)


def split_by_label(samples: Sequence[Sample]) -> tuple[list[Sample], list[Sample]]:
    """(negatives, positives), each in the given order."""
    negatives = [s for s in samples if not s.is_positive]
    positives = [s for s in samples if s.is_positive]
    return negatives, positives
