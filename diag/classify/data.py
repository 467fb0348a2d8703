"""Training and test sets for the defect classifier, held as uint8.

zero-shot  = train negatives + the generated positives
full-shot  = train negatives + all train positives + the generated positives
few-shot   = train negatives + k train positives (``draw_positives``) + the generated positives
The test set is always the untouched test split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from diag.data.ksdd2 import HEIGHT, WIDTH, load_image, read_manifest, split_by_label
from diag.errors import ConfigError, DataError

SCENARIOS = ("zero-shot", "full-shot", "few-shot")
INPUT_SIZES = {"paper": (HEIGHT, WIDTH), "release": (704, 256)}  # (height, width)


@dataclass(frozen=True)
class LabelledPaths:
    """Image paths with 0/1 labels (1 = defective)."""

    paths: list[Path]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)


def generated_images(generated: Path | str, n_aug: int, data: Path | str) -> list[Path]:
    """The first ``n_aug`` images of a generated set, checked against its ``set.json``: made from
    ``data``, and each image still the one the generator wrote."""
    from diag.generate.output import check_set

    return check_set(generated, data, n_aug)


def draw_positives(data: Path | str, k: int, seed: int) -> list[str]:
    """The ids of ``k`` training positives, drawn with ``seed`` and nested: one seeded order of every
    positive, of which each k takes the first k (so the draw at k = 10 holds the one at k = 5).
    Returned in ``train.csv`` order, so that k = all gives the full-shot training set exactly."""
    _, positives = split_by_label(read_manifest(data, "train"))
    if not 0 <= k <= len(positives):
        raise DataError(
            f"{Path(data) / 'train.csv'}: {len(positives)} positive training images, so k = {k} real positives "
            f"cannot be drawn (grid.real_positives must be between 0 and {len(positives)})"
        )
    order = np.random.default_rng([4801, seed]).permutation(len(positives))  # own stream, apart from the grid's
    chosen = set(order[:k].tolist())
    return [s.id for i, s in enumerate(positives) if i in chosen]


def count_positives(data: Path | str) -> int:
    """How many positive training images ``data`` has (full-shot's k)."""
    return len(split_by_label(read_manifest(data, "train"))[1])


def training_set(
    data: Path | str,
    scenario: str,
    generated: Path | str | None = None,
    n_aug: int = 0,
    positives: list[str] | None = None,
) -> LabelledPaths:
    """The training set of a scenario; ``generated=None`` or ``n_aug=0`` adds no generated image.

    ``positives``: the few-shot scenario's real positives (ids from ``draw_positives``)."""
    if scenario not in SCENARIOS:
        raise ConfigError(f"scenario: must be one of {SCENARIOS}; got {scenario!r}")
    if (scenario == "few-shot") != (positives is not None):
        raise ConfigError("the few-shot scenario, and only it, takes `positives` (the ids of its real positives)")
    negatives, real = split_by_label(read_manifest(data, "train"))
    paths = [s.image_path for s in negatives]
    labels = [0] * len(negatives)
    if scenario != "zero-shot":
        chosen = [s for s in real if positives is None or s.id in set(positives)]
        missing = set(positives or ()) - {s.id for s in chosen}
        if missing:
            raise DataError(f"{Path(data) / 'train.csv'}: no positive training image {sorted(missing)[0]!r}")
        paths += [s.image_path for s in chosen]
        labels += [1] * len(chosen)
    if generated is not None and n_aug > 0:
        extra = generated_images(generated, n_aug, data)
        paths += extra
        labels += [1] * len(extra)
    if sum(labels) == 0:
        raise ConfigError(f"{scenario} training without a positive: pass `generated` and `n_aug` > 0")
    return LabelledPaths(paths, np.array(labels))


def evaluation_set(data: Path | str) -> LabelledPaths:
    samples = read_manifest(data, "test")
    return LabelledPaths([s.image_path for s in samples], np.array([int(s.is_positive) for s in samples]))


def load_uint8(paths: list[Path], size: tuple[int, int] = INPUT_SIZES["paper"]) -> torch.Tensor:
    """Images as one uint8 tensor (N, H, W, 3), resized (bilinear) to ``size`` = (H, W) if needed.

    uint8 is a quarter of the float32 preload the authors' loader uses (~5 GB for KSDD2 at
    704 x 256); normalisation happens per batch inside the model.
    """
    height, width = size
    out = torch.empty((len(paths), height, width, 3), dtype=torch.uint8)
    for i, path in enumerate(paths):
        image = np.array(load_image(path))
        if image.shape[:2] != (height, width):
            image = np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))
        out[i] = torch.from_numpy(np.ascontiguousarray(image))
    return out


def validation_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train indices, validation indices), seeded."""
    rng = np.random.default_rng(seed)
    val = []
    for cls in (0, 1):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        val.extend(idx[: max(1, int(round(fraction * len(idx))))])
    val = np.sort(np.array(val))
    return np.setdiff1d(np.arange(len(labels)), val), val
