"""MemSeg-style per-region synthetic anomalies (Yang et al. 2023), the paper's first baseline.

MemSeg's authors did not release their synthesis code; this follows the recipe that the
community implementation and anomalib's DRAEM/Perlin generator agree on:

1. ROI mask M: Perlin noise at scale 2^kx x 2^ky (k uniform in 0..5 per axis), rotated
   uniformly in [-90, 90] degrees, thresholded at 0.5 (redrawn while empty), times the
   foreground of the normal image (grey >= threshold; by default all ones, since KSDD2's
   surface fills the frame).
2. Anomaly source A, each with probability 1/2:
   - a texture: an image from ``--textures`` (MemSeg uses DTD), or by default another
     training negative, strongly colour-jittered, or procedural colour noise;
   - a structure: the normal image itself, colour-jittered, cut into an 8 x 8 grid of
     cells and shuffled.
3. Blend: out = (1 - M) I + delta M A + (1 - delta) M I, delta ~ U(0.15, 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from diag.data.ksdd2 import HEIGHT, WIDTH, list_images, load_image, read_manifest, split_by_label
from diag.errors import ConfigError, DataError
from diag.generate.output import MAX_IMAGES, OutputWriter, recorded_settings
from diag.generate.perlin import perlin_2d
from diag.progress import bar as progress_bar

NOISE_SHAPE = (640, 256)  # divisible by 2^5 on both axes; cropped to 632 x 224


@dataclass
class MemSegConfig:
    n_aug: int = 100
    seed: int = 0
    textures: str | None = None  # folder of texture images (e.g. DTD); None: made from negatives / noise
    foreground_threshold: int | None = None  # grey level; None: the whole image is foreground
    threshold: float = 0.5  # Perlin threshold
    delta_min: float = 0.15

    def validate(self) -> None:
        if not 1 <= self.n_aug <= MAX_IMAGES:
            raise ConfigError(f"memseg.n_aug: must be in 1..{MAX_IMAGES:,}; got {self.n_aug!r}")
        if self.seed < 0:
            raise ConfigError(f"memseg.seed: must be >= 0; got {self.seed!r}")
        if self.foreground_threshold is not None and not 0 <= self.foreground_threshold <= 255:
            raise ConfigError(
                f"memseg.foreground_threshold: must be a grey level in 0..255 (or None); "
                f"got {self.foreground_threshold!r}"
            )
        if not 0 < self.threshold < 1 or not 0 <= self.delta_min <= 1:
            raise ConfigError(
                f"memseg.threshold: must be in (0, 1) and memseg.delta_min in [0, 1]; "
                f"got {self.threshold!r} and {self.delta_min!r}"
            )


def perlin_roi(rng: np.random.Generator, threshold: float = 0.5) -> np.ndarray:
    """A boolean (632, 224) region from thresholded, rotated Perlin noise; never empty."""
    while True:
        res = (2 ** int(rng.integers(0, 6)), 2 ** int(rng.integers(0, 6)))
        noise = perlin_2d(NOISE_SHAPE, res, rng)
        noise = ndimage.rotate(noise, rng.uniform(-90, 90), reshape=False, order=1, mode="reflect")
        roi = noise[:HEIGHT, :WIDTH] > threshold
        if roi.any():
            return roi


def colour_jitter(image: np.ndarray, rng: np.random.Generator, strength: float = 0.5) -> np.ndarray:
    """Random brightness, contrast and per-channel gain (float, 0..255)."""
    x = image.astype(float)
    x = (x - x.mean()) * rng.uniform(1 - strength, 1 + strength) + x.mean()  # contrast
    x = x * rng.uniform(1 - strength, 1 + strength, size=3)  # per-channel gain (colour)
    return np.clip(x + rng.uniform(-40, 40) * strength, 0, 255)


def structure_source(image: np.ndarray, rng: np.random.Generator, grid: int = 8) -> np.ndarray:
    """The normal image, colour-jittered, cut into grid x grid cells, shuffled."""
    x = colour_jitter(image, rng)
    ch, cw = HEIGHT // grid, WIDTH // grid
    cells = [x[r * ch : (r + 1) * ch, c * cw : (c + 1) * cw] for r in range(grid) for c in range(grid)]
    order = rng.permutation(len(cells))
    out = x.copy()
    for k, src in enumerate(order):
        r, c = divmod(k, grid)
        out[r * ch : (r + 1) * ch, c * cw : (c + 1) * cw] = cells[src]
    return out


def texture_source(rng: np.random.Generator, negatives: list[Path], textures: list[Path] | None) -> np.ndarray:
    """A texture image at 632 x 224: from the folder, or a jittered negative, or colour noise."""
    if textures:
        path = textures[int(rng.integers(len(textures)))]
        texture = Image.fromarray(load_image(path))  # a one-line error naming an unreadable file
        return np.asarray(texture.resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR), float)
    if rng.random() < 0.5:
        return colour_jitter(load_image(negatives[int(rng.integers(len(negatives)))]), rng, strength=0.9)
    res = (2 ** int(rng.integers(2, 6)), 2 ** int(rng.integers(2, 6)))
    channels = [perlin_2d(NOISE_SHAPE, res, rng)[:HEIGHT, :WIDTH] for _ in range(3)]
    return np.clip(np.stack(channels, -1) * rng.uniform(60, 127) + rng.uniform(40, 200, size=3), 0, 255)


def synthesize_one(
    image: np.ndarray,
    rng: np.random.Generator,
    negatives: list[Path],
    textures: list[Path] | None,
    config: MemSegConfig,
) -> tuple[np.ndarray, np.ndarray, str, float]:
    """(anomalous image uint8, ROI mask, source kind, delta) for one normal image."""
    roi = perlin_roi(rng, config.threshold)
    if config.foreground_threshold is not None:
        roi &= image.mean(axis=2) >= config.foreground_threshold
        if not roi.any():
            roi = perlin_roi(rng, config.threshold)
    if rng.random() < 0.5:
        source, kind = texture_source(rng, negatives, textures), "texture"
    else:
        source, kind = structure_source(image, rng), "structure"
    delta = float(rng.uniform(config.delta_min, 1.0))
    m = roi[..., None].astype(float)
    out = (1 - m) * image + delta * m * source + (1 - delta) * m * image
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), roi, kind, delta


def generate_memseg(data: Path | str, out: Path | str, config: MemSegConfig, progress: bool = True) -> Path:
    """Write ``config.n_aug`` MemSeg images into ``out`` (resumable, deterministic for the seed)."""
    config.validate()
    negatives, _ = split_by_label(read_manifest(data, "train"))
    if not negatives:
        raise DataError(f"{Path(data) / 'train.csv'}: no negative training images")
    textures = list_images(config.textures) if config.textures else None
    paths = [s.image_path for s in negatives]
    writer = OutputWriter(out)
    settings = writer.prepare("memseg", data, recorded_settings(config))
    done = writer.done()
    with writer.interruptible():
        finished = len(done) >= config.n_aug
        for index in progress_bar(range(config.n_aug), desc="MemSeg", unit="img", disable=not progress or finished):
            if index in done:
                continue
            rng = np.random.default_rng([config.seed, index])  # one stream per image: resumable
            choice = int(rng.integers(len(paths)))
            image, roi, kind, delta = synthesize_one(load_image(paths[choice]), rng, paths, textures, config)
            row = {
                "negative": negatives[choice].id,
                "mask": "perlin",
                "source": kind,
                "delta": round(delta, 4),
                **settings,
            }
            writer.write(index, Image.fromarray(image), roi, row)
    return writer.finish()  # its time is the step's line (diag.progress); library code prints nothing
