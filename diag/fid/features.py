"""Inception features of image folders, cached per image content, and FID between folders.

Preprocessing is pytorch-fid's: RGB, to [0, 1], bilinear resize to 299 x 299, 2x - 1 (the
last two inside ``FIDInception``). Each image is resized on its own before batching, so a
folder may mix sizes; bilinear resizing is per-image, so this equals pytorch-fid's batched
resize exactly.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from diag.data.ksdd2 import list_images
from diag.errors import ConfigError, DataError
from diag.files import write_atomic
from diag.fid.frechet import fid_from_features
from diag.fid.inception import BLOCK_INDEX_BY_DIM, FIDInception, load_fid_inception

CACHE_VERSION = "fid-inception-2015-12-05"


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "diag" / "fid-features"


def load_299(path: Path) -> torch.Tensor:
    """One image as pytorch-fid feeds it: RGB in [0, 1], bilinear-resized to 299 x 299."""
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise DataError(f"{path}: unreadable image ({error})") from None
    tensor = torch.from_numpy(array).permute(2, 0, 1)[None]
    return F.interpolate(tensor, size=(299, 299), mode="bilinear", align_corners=False)[0]


def content_hash(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def extract_features(
    paths: Sequence[Path],
    model: FIDInception,
    *,
    batch_size: int = 50,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> dict[int, np.ndarray]:
    """Features (N x d, float64) for each of the model's dims; cached per image content."""
    device = next(model.parameters()).device
    keys = [content_hash(p) for p in paths]
    out = {d: np.zeros((len(paths), d)) for d in model.dims}

    def cache_file(dim: int, key: str) -> Path:
        return cache_dir / CACHE_VERSION / str(dim) / f"{key}.npy"

    todo = []
    for i, key in enumerate(keys):
        cached = [load_cached(cache_file(d, key)) for d in model.dims] if cache_dir is not None else [None]
        if all(c is not None for c in cached):
            for d, values in zip(model.dims, cached):
                out[d][i] = values
        else:
            todo.append(i)
    for start in tqdm(range(0, len(todo), batch_size), desc="inception", disable=not progress or not todo):
        batch_idx = todo[start : start + batch_size]
        batch = torch.stack([load_299(paths[i]) for i in batch_idx]).to(device)
        with torch.no_grad():
            feats = model(batch)
        for d in model.dims:
            values = feats[d].double().cpu().numpy()
            out[d][batch_idx] = values
            if cache_dir is not None:
                for i, row in zip(batch_idx, values):
                    save_atomic(cache_file(d, keys[i]), row)
    return out


def load_cached(path: Path) -> np.ndarray | None:
    """A cached feature row, or None when missing or unreadable (a damaged file is recomputed, then replaced)."""
    if not path.is_file():
        return None
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return None


def save_atomic(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("wb") as handle:  # a handle: np.save would append ".npy" to the temporary name
            np.save(handle, array, allow_pickle=False)

    write_atomic(path, write)


def compute_fid(
    real: Path | str,
    generated: Path | str,
    *,
    dims: Sequence[int] = (64, 192),
    batch_size: int = 50,
    device: str | torch.device = "cpu",
    cache_dir: Path | None = None,
    model: FIDInception | None = None,
    progress: bool = True,
) -> dict[int, float]:
    """FID between two image folders at each requested Inception dimension."""
    bad = [d for d in dims if d not in BLOCK_INDEX_BY_DIM]
    if bad or not dims:
        raise ConfigError(f"The `dims` parameter must be among {sorted(BLOCK_INDEX_BY_DIM)}. Got {list(dims)} instead.")
    real_paths, gen_paths = list_images(real), list_images(generated)
    model = model or load_fid_inception(tuple(dims), device)
    kwargs = dict(batch_size=batch_size, cache_dir=cache_dir, progress=progress)
    feats_real = extract_features(real_paths, model, **kwargs)
    feats_gen = extract_features(gen_paths, model, **kwargs)
    return {d: fid_from_features(feats_real[d], feats_gen[d]) for d in dims}
