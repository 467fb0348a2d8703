"""2-D Perlin (gradient) noise, as MemSeg/DRAEM use for anomaly regions.

Written by hand (about 20 lines) because the packages that ship it for anomaly synthesis
(anomalib, imgaug) pull in lightning, timm, kornia or OpenCV for this one function.
"""

from __future__ import annotations

import numpy as np

from diag.errors import ConfigError


def fade(t: np.ndarray) -> np.ndarray:
    """Perlin's quintic 6t^5 - 15t^4 + 10t^3: smooth (C2) blending between lattice points."""
    return t * t * t * (t * (t * 6 - 15) + 10)


def perlin_2d(shape: tuple[int, int], res: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Perlin noise of ``shape`` with ``res`` lattice cells per axis (``shape`` divisible by ``res``).

    Values lie in about [-1, 1] (scaled by sqrt(2) as DRAEM does) and are 0 at lattice points.
    """
    if shape[0] % res[0] or shape[1] % res[1]:
        raise ConfigError(f"shape: must be divisible by res {res}; got {shape}")
    angles = 2 * np.pi * rng.random((res[0] + 1, res[1] + 1))
    gradients = np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    cell = (shape[0] // res[0], shape[1] // res[1])
    # position of every pixel inside its lattice cell, in [0, 1)
    local = np.stack(
        np.meshgrid(np.arange(shape[0]) % cell[0] / cell[0], np.arange(shape[1]) % cell[1] / cell[1], indexing="ij"), -1
    )
    corner = lambda dy, dx: np.repeat(np.repeat(gradients[dy : dy + res[0], dx : dx + res[1]], cell[0], 0), cell[1], 1)
    dot = lambda dy, dx: ((local - np.array([dy, dx])) * corner(dy, dx)).sum(-1)
    t = fade(local)
    top = dot(0, 0) * (1 - t[..., 1]) + dot(0, 1) * t[..., 1]
    bottom = dot(1, 0) * (1 - t[..., 1]) + dot(1, 1) * t[..., 1]
    return np.sqrt(2) * (top * (1 - t[..., 0]) + bottom * t[..., 0])
