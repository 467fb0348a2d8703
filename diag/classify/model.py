"""The classifiers: the paper's ResNet-50 and the demo's head on frozen FID-Inception maps.

Both return one logit per image (the ResNet from uint8 images (B, H, W, 3), the head from
cached feature maps), so the training loop does not know which one it trains.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
import torch.nn.functional as F
from torch import nn

from diag.errors import ConfigError, DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_resnet50(weights: str | Path = "imagenet") -> nn.Module:
    """torchvision ResNet-50 with its last layer replaced by a single logit.

    ``weights``: ``"imagenet"`` (IMAGENET1K_V1, downloaded by torchvision: needs the internet),
    ``"none"`` (random), or a path to a ResNet-50 state-dict file (its ``fc`` is dropped).
    """
    if str(weights) == "imagenet":
        try:
            network = torchvision.models.resnet50(weights=torchvision.models.ResNet50_Weights.IMAGENET1K_V1)
        except (OSError, RuntimeError) as error:  # URLError is an OSError: offline
            raise DataError(
                f"ResNet-50 ImageNet weights: could not download them ({error}); connect to the internet "
                "once (torchvision caches them), or pass --weights PATH to a state dict"
            ) from None
    elif str(weights) == "none":
        network = torchvision.models.resnet50(weights=None)
    else:
        path = Path(weights)
        if not path.is_file():
            raise ConfigError(
                f"weights: must be 'imagenet', 'none' or a state-dict file; "
                f"got {str(weights)!r}, which does not exist"
            )
        network = torchvision.models.resnet50(weights=None)
        state = {k: v for k, v in read_state_dict(path).items() if not k.startswith("fc.")}
        expected = {k: v.shape for k, v in network.state_dict().items() if not k.startswith("fc.")}
        if {k: v.shape for k, v in state.items()} != expected:
            wrong = sorted(set(expected) ^ set(state)) or [k for k in expected if state[k].shape != expected[k]]
            raise ConfigError(f"{path}: not a ResNet-50 state dict (first mismatch: {wrong[0]})")
        network.load_state_dict(state, strict=False)
    network.fc = nn.Linear(network.fc.in_features, 1)
    return network


def read_state_dict(path: Path) -> dict:
    """A state dict of tensors, read without running any code from the file (``weights_only``)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a pickle with code, a truncated or foreign file: torch raises several kinds
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"{path}: not a readable state dict of tensors ({first[:160]})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path}: not a state dict of tensors (a dict of name -> tensor)")
    return state


class ResNetClassifier(nn.Module):
    """uint8 images -> ImageNet normalisation -> ResNet-50 -> one logit."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.permute(0, 3, 1, 2).float() - self.mean) / self.std
        return self.network(x).squeeze(1)


class MapHead(nn.Module):
    """The demo classifier's trainable part: score every position of a feature map, keep the top few.

    A small per-position MLP (channels -> ``hidden`` -> 1) on standardised features gives a
    defect score per 16-px cell; the image's logit is the mean of its ``top_k`` highest scores
    (multiple-instance pooling), so one small defect is enough to make an image positive,
    which a whole-image average washes out. Standardisation (the training maps' per-channel
    mean/std, stored as buffers) is folded into the first layer, so no standardised copy is made.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, hidden: int = 16, top_k: int = 16) -> None:
        super().__init__()
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float().clamp_min(1e-3))
        self.first = nn.Linear(mean.numel(), hidden)
        self.second = nn.Linear(hidden, 1)
        self.top_k = top_k

    def scores(self, maps: torch.Tensor) -> torch.Tensor:
        """(B, positions, channels) -> (B, positions): each position's defect score."""
        weight = self.first.weight / self.std
        bias = self.first.bias - weight @ self.mean
        return self.second(torch.relu(F.linear(maps.float(), weight, bias))).squeeze(-1)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        scores = self.scores(maps)
        return scores.topk(min(self.top_k, scores.shape[1]), dim=1).values.mean(dim=1)
