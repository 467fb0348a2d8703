"""The demo classifier's frozen part: FID-Inception feature *maps*, cached per image.

A whole-image average of Inception features barely moves when a scratch covers 1 % of the
image, so the demo keeps where things are: the network runs on the image at its own size
(224 x 632, no resize to 299), stops at ``Mixed_5d`` (288 channels, stride 8) and max-pools
3 x 3, which leaves a 25 x 8 grid of positions, each 24 px apart; a max keeps a small
defect's peak response. The head (``classify.model.MapHead``) scores every position.

Before the network, each image is moved to mid-grey (its mean subtracted, times
``CONTRAST_GAIN``, plus 0.5): KSDD2 is dark (~45/255). A gain of 3 (stretching the
contrast) was tried and did no better. The gain, the pooling and the head's width and top-k
were chosen by cross-validation on the training split of the book's replica
(``benchmarks/demo_classifier_probe.py``, numbers in ``book/differences.md``).

Maps are cached as float16 ``.npy`` files keyed by the image file's SHA-1, in a folder named
for the backbone's ``version``, so every grid cell and every seed reuses one pass per image.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from diag.classify.data import INPUT_SIZES, load_uint8
from diag.fid.features import load_cached, save_atomic
from diag.fid.inception import BLOCKS, frozen_layers, load_state_dict
from diag.progress import bar as progress_bar

MAP_LAYER = "Mixed_5d"
CONTRAST_GAIN = 1.0
MAP_POOL = 3


def map_version(gain: float = CONTRAST_GAIN, pool: int = MAP_POOL) -> str:
    """What a map depends on besides the image: the cache folder's name."""
    return f"maps-{MAP_LAYER}-gain{gain:g}-pool{pool}-v1"


class MapBackbone(nn.Module):
    """uint8 images (B, H, W, 3) -> float16 maps (B, positions, channels), frozen.

    ``version`` names what the maps depend on (layer, gain, pooling); cache entries carry it.
    """

    def __init__(self, state_dict: dict[str, torch.Tensor], gain: float = CONTRAST_GAIN, pool: int = MAP_POOL) -> None:
        super().__init__()
        order = [name for block in BLOCKS for name in block]
        self.steps = order[: order.index(MAP_LAYER) + 1]
        self.layers = frozen_layers(state_dict, self.steps)
        self.gain, self.pool = gain, pool
        self.version = map_version(gain, pool)
        self.eval().requires_grad_(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float() / 255
        x = ((x - x.mean(dim=(1, 2, 3), keepdim=True)) * self.gain + 0.5).clamp(0, 1)
        x = 2 * x - 1  # the FID Inception's input range
        for name in self.steps:
            x = F.max_pool2d(x, kernel_size=3, stride=2) if name == "maxpool" else self.layers[name](x)
        x = F.max_pool2d(x, self.pool)
        return x.flatten(2).transpose(1, 2).half()  # channels last: the head is a per-position MLP


def load_map_backbone(device: str | torch.device = "cpu") -> MapBackbone:
    """The frozen backbone with the offline FID-Inception weights and the shipped gain and pooling."""
    return MapBackbone(load_state_dict()).to(device)


def feature_maps(
    paths: Sequence[Path],
    backbone: MapBackbone | None = None,
    *,
    cache_dir: Path | None = None,
    batch_size: int = 16,
    progress: bool = False,
    memo: dict | None = None,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Maps (N, positions, channels) in float16 for ``paths``, computed once per image content.

    ``backbone``: default the shipped one, built (on ``device``) only when some map must be computed.
    ``memo``: a dict the caller keeps across calls (a grid keeps one for all its cells), holding
    maps by (path, size, mtime), so files already seen in this process are neither hashed nor read.
    """
    version = backbone.version if backbone is not None else map_version()
    memo = {} if memo is None else memo
    seen = [(version, str(p), stat.st_size, stat.st_mtime_ns) for p in paths for stat in [Path(p).stat()]]
    maps: list[torch.Tensor | None] = [memo.get(key) for key in seen]
    keys = {}
    if cache_dir:
        for i in [i for i, m in enumerate(maps) if m is None]:
            keys[i] = hashlib.sha1(Path(paths[i]).read_bytes()).hexdigest()
            cached = load_cached(Path(cache_dir) / version / f"{keys[i]}.npy")
            maps[i] = None if cached is None else torch.from_numpy(cached)
    todo = [i for i, m in enumerate(maps) if m is None]
    if todo and backbone is None:
        backbone = load_map_backbone(device)
    batches = [todo[s : s + batch_size] for s in range(0, len(todo), batch_size)]
    for batch in progress_bar(batches, desc="inception maps", disable=not progress or not todo):
        with torch.no_grad():
            images = load_uint8([paths[i] for i in batch], INPUT_SIZES["paper"])
            out = backbone(images.to(next(backbone.parameters()).device)).cpu()
        for i, values in zip(batch, out):
            maps[i] = values
            if cache_dir:
                save_atomic(Path(cache_dir) / version / f"{keys[i]}.npy", values.numpy())
    for key, values in zip(seen, maps):
        memo[key] = values
    return torch.stack(maps) if maps else torch.empty(0)
