"""Inception features of image folders, cached per image content, and FID between folders.

Preprocessing is pytorch-fid's: RGB, to [0, 1], bilinear resize to 299 x 299, 2x - 1 (the
last two inside ``FIDInception``, on the whole batch). A batch of mixed sizes is resized
image by image first; bilinear resizing is per image, so both give pytorch-fid's values.
"""

from __future__ import annotations

import hashlib
import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from diag.data.ksdd2 import eight_bit, list_images
from diag.errors import ConfigError, DataError
from diag.files import write_atomic
from diag.fid.frechet import fid_from_features
from diag.fid.inception import BLOCK_INDEX_BY_DIM, FIDInception, load_fid_inception
from diag.progress import bar as progress_bar
from diag.fid.settings import DEFAULTS, DIMS

CACHE_VERSION = "fid-inception-2015-12-05"


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "diag" / "fid-features"


def decode(path: Path, data: bytes | None = None) -> torch.Tensor:
    """One image as pytorch-fid reads it: RGB in [0, 1], (3, H, W), at its own size."""
    try:
        with Image.open(io.BytesIO(data) if data is not None else path) as image:
            array = np.asarray(eight_bit(image, path).convert("RGB"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(f"{path}: unreadable image ({error})") from None
    return torch.from_numpy(array).permute(2, 0, 1)


def as_batch(images: list[torch.Tensor]) -> torch.Tensor:
    """One tensor; images of one size go as they are (the network resizes the whole batch to 299 at
    once), mixed sizes are resized one by one first (bilinear is per image, so both are equal)."""
    if len({tuple(im.shape) for im in images}) == 1:
        return torch.stack(images)
    return torch.cat([F.interpolate(im[None], size=(299, 299), mode="bilinear", align_corners=False) for im in images])


def extract_features(
    paths: Sequence[Path],
    model: FIDInception,
    *,
    batch_size: int = DEFAULTS.batch_size,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> dict[int, np.ndarray]:
    """Features (N x d, float64) for each of the model's dims; cached per image content.

    Each file is read once (its bytes give both the cache key and the image), and the next
    batch is decoded in a second thread while the network runs on this one.
    """
    device = next(model.parameters()).device
    out = {d: np.zeros((len(paths), d)) for d in model.dims}

    def cache_file(dim: int, key: str) -> Path:
        return cache_dir / CACHE_VERSION / str(dim) / f"{key}.npy"

    todo, keys, raw = [], {}, {}
    for i, path in enumerate(paths):
        if cache_dir is None:
            todo.append(i)
            continue
        raw[i] = Path(path).read_bytes()
        keys[i] = hashlib.sha1(raw[i]).hexdigest()
        cached = [load_cached(cache_file(d, keys[i])) for d in model.dims]
        if all(c is not None for c in cached):
            for d, values in zip(model.dims, cached):
                out[d][i] = values
            del raw[i]
        else:
            todo.append(i)
    batches = [todo[start : start + batch_size] for start in range(0, len(todo), batch_size)]
    load = lambda batch: as_batch([decode(paths[i], raw.pop(i, None)) for i in batch])  # noqa: E731
    with ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = pool.submit(load, batches[0]) if batches else None
        for number, batch_idx in enumerate(progress_bar(batches, desc="inception", disable=not progress or not todo)):
            images = upcoming.result()
            if number + 1 < len(batches):
                upcoming = pool.submit(load, batches[number + 1])
            with torch.no_grad():
                feats = model(images.to(device))
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
    dims: Sequence[int] = DIMS,
    batch_size: int = DEFAULTS.batch_size,
    device: str | torch.device = DEFAULTS.device,
    cache_dir: Path | None = None,
    model: FIDInception | None = None,
    progress: bool = True,
) -> dict[int, float]:
    """FID between two image folders at each requested Inception dimension."""
    options = dict(dims=dims, batch_size=batch_size, device=device, cache_dir=cache_dir, model=model, progress=progress)
    feats_real, feats_gen = folder_features(real, generated, **options)
    return {d: fid_from_features(feats_real[d], feats_gen[d]) for d in dims}


def folder_features(
    real: Path | str,
    generated: Path | str,
    *,
    dims: Sequence[int] = DIMS,
    batch_size: int = DEFAULTS.batch_size,
    device: str | torch.device = DEFAULTS.device,
    cache_dir: Path | None = None,
    model: FIDInception | None = None,
    progress: bool = True,
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """The Inception features of two image folders at each dimension (FID and KID read the same ones)."""
    bad = [d for d in dims if d not in BLOCK_INDEX_BY_DIM]
    if bad or not dims:
        raise ConfigError(f"dims: must be among {sorted(BLOCK_INDEX_BY_DIM)}; got {list(dims)}")
    real_paths, gen_paths = list_images(real), list_images(generated)
    model = model or load_fid_inception(tuple(dims), device)
    kwargs = dict(batch_size=batch_size, cache_dir=cache_dir, progress=progress)
    return extract_features(real_paths, model, **kwargs), extract_features(gen_paths, model, **kwargs)


def kid_scores(
    feats_real: dict[int, np.ndarray], feats_gen: dict[int, np.ndarray], subset_size: int, subsets: int
) -> dict[str, float]:
    """Per dimension: KID on the whole sets (``kid_<d>``) and its mean and std over random subsets."""
    from diag.fid.kid import kid, kid_subsets

    out: dict[str, float] = {}
    for d in feats_real:
        mean, std, size = kid_subsets(feats_real[d], feats_gen[d], subset_size, subsets)
        out |= {f"kid_{d}": kid(feats_real[d], feats_gen[d]), f"kid_{d}_mean": mean, f"kid_{d}_std": std}
        out["kid_subset_size"] = size
    out["kid_subsets"] = subsets
    return out
