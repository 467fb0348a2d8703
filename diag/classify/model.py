"""The classifiers: the paper's ResNet-50 and the demo's frozen FID-Inception + linear head.

Both take uint8 images (B, H, W, 3) and return one logit per image, so the training loop
does not know which one it trains.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

from diag.errors import ConfigError, DataError
from diag.fid.inception import FIDInception, load_state_dict

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
                f"The `weights` parameter must be 'imagenet', 'none' or a state-dict file. "
                f"Got {str(weights)!r}, which does not exist."
            )
        network = torchvision.models.resnet50(weights=None)
        state = {
            k: v for k, v in torch.load(path, map_location="cpu", weights_only=True).items() if not k.startswith("fc.")
        }
        expected = {k: v.shape for k, v in network.state_dict().items() if not k.startswith("fc.")}
        if {k: v.shape for k, v in state.items()} != expected:
            wrong = sorted(set(expected) ^ set(state)) or [k for k in expected if state[k].shape != expected[k]]
            raise ConfigError(f"{path}: not a ResNet-50 state dict (first mismatch: {wrong[0]})")
        network.load_state_dict(state, strict=False)
    network.fc = nn.Linear(network.fc.in_features, 1)
    return network


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


class FeatureHead(nn.Module):
    """The demo classifier's trainable part: a linear layer on frozen Inception features.

    Features are standardised with the training set's mean/std (stored as buffers) so one
    learning rate suits every feature dimension.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float().clamp_min(1e-6))
        self.linear = nn.Linear(mean.numel(), 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear((features.float() - self.mean) / self.std).squeeze(1)


DEMO_DIMS = (768, 2048)  # Mixed_6e and final pool features, mean-pooled, concatenated
FEATURE_DIMS = (64, 192, 768, 2048)  # computed together and cached: FID (64/192) reuses the same pass


def load_demo_backbone(device: str | torch.device = "cpu") -> FIDInception:
    """The frozen FID Inception (offline weights) that turns images into demo features."""
    state = load_state_dict()
    return FIDInception(state, FEATURE_DIMS).to(device)
