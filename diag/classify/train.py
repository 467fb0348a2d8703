"""Training the defect classifier: one short loop for the paper's ResNet-50 and the demo head.

    diag train --data DIR --scenario zero-shot --generated GEN --n-aug 100 --profile demo

The paper: ResNet-50 (ImageNet), BCE-with-logits, Adam lr 1e-4, batch 32, 50 epochs,
evaluated on the test split after every epoch. We report the **final** epoch and keep the
per-epoch curve for transparency; we never pick the best test epoch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from diag.classify.data import INPUT_SIZES, LabelledPaths, load_uint8
from diag.devices import resolve_device
from diag.errors import ConfigError
from diag.progress import bar as progress_bar

BACKBONES = ("resnet50", "fid-inception-maps")
PRECISIONS = ("no", "bf16")


@dataclass
class TrainConfig:
    # model
    backbone: str = "resnet50"  # "resnet50" (paper) or "fid-inception-maps" (demo: frozen maps + MapHead)
    weights: str = "imagenet"  # resnet50 only: imagenet | none | path to a state dict
    input_size: str = "paper"  # "paper" = 224 x 632; "release" = the authors' loader, 256 x 704
    # fid-inception-maps only: the head's hidden width and how many top positions it averages
    head_hidden: int = 16
    head_top_k: int = 16
    # optimisation (the paper's values)
    epochs: int = 50
    batch_size: int = 32
    lr: float = 1e-4
    # the release evaluates after every epoch and never calls train() again: from epoch 2 on the
    # network trains in eval mode (BatchNorm statistics frozen). True: train mode every epoch.
    bn_train_every_epoch: bool = False
    # "bf16": forward passes under bf16 autocast (weights and optimiser float32); "no": float32, as the release
    mixed_precision: str = "no"
    # reproducibility and hardware
    seed: int = 0
    device: str = "auto"
    feature_cache: str | None = None  # fid-inception-maps only: per-image feature-map cache folder

    def validate(self) -> None:
        if self.backbone not in BACKBONES:
            raise ConfigError(f"classifier.backbone: must be one of {BACKBONES}; got {self.backbone!r}")
        if self.input_size not in INPUT_SIZES:
            raise ConfigError(
                f"classifier.input_size: must be one of {tuple(INPUT_SIZES)}; got {self.input_size!r}"
            )
        for name in ("epochs", "batch_size", "head_hidden", "head_top_k"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"classifier.{name}: must be >= 1; got {getattr(self, name)!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"classifier.lr: must be a finite number > 0; got {self.lr!r}")
        if self.mixed_precision not in PRECISIONS:
            raise ConfigError(
                f"classifier.mixed_precision: must be one of {PRECISIONS}; got {self.mixed_precision!r}"
            )
        if self.seed < 0:
            raise ConfigError(f"classifier.seed: must be >= 0; got {self.seed!r}")
        if str(self.weights) not in ("imagenet", "none") and not Path(self.weights).is_file():
            raise ConfigError(
                f"classifier.weights: must be 'imagenet', 'none' or a ResNet-50 state-dict file; "
                f"got {str(self.weights)!r}, which is not a file"
            )

    def recorded(self) -> dict:
        """The settings a result depends on (not where it ran, nor where features are cached).

        The demo backbone adds its feature maps' version (layer, input gain, pooling): constants of
        ``classify.features``, so rows made with other maps are never averaged with these.
        """
        settings = {k: v for k, v in asdict(self).items() if k not in ("device", "feature_cache")}
        if self.mixed_precision == "no":  # float32, as every row made before the setting existed: those stay valid
            del settings["mixed_precision"]
        if self.backbone == "fid-inception-maps":
            from diag.classify.features import map_version  # imported here: torchvision is slow to import

            settings["feature_maps"] = map_version()
        return settings


@dataclass
class TrainResult:
    config: dict
    metrics: dict  # the final epoch's test metrics
    curve: list[dict] = field(default_factory=list)  # per-epoch loss and test metrics
    test_scores: np.ndarray | None = None


def encode(
    config: TrainConfig, paths: list[Path], device: torch.device, progress: bool = False, memo: dict | None = None
) -> torch.Tensor:
    """What the model consumes: uint8 images (ResNet) or frozen Inception feature maps (demo, float16;
    ``memo``: see ``classify.features.feature_maps``)."""
    from diag.classify.features import feature_maps

    if config.backbone == "resnet50":
        return load_uint8(paths, INPUT_SIZES[config.input_size])
    cache = Path(config.feature_cache) if config.feature_cache else None
    return feature_maps(paths, cache_dir=cache, progress=progress, memo=memo, device=device)


def build_model(config: TrainConfig, train_inputs: torch.Tensor) -> nn.Module:
    # imported here, as the metrics below: `diag.config` imports this module for TrainConfig, and every
    # command (`diag fid` too) starts faster without torchvision, pytorch-fid and scikit-learn
    from diag.classify.model import MapHead, ResNetClassifier, build_resnet50

    if config.backbone == "resnet50":
        return ResNetClassifier(build_resnet50(config.weights))
    positions = train_inputs.flatten(0, 1).float()
    return MapHead(positions.mean(dim=0), positions.std(dim=0), config.head_hidden, config.head_top_k)


def autocast(precision: str, device: torch.device | str):
    """The classifier's forward passes in ``precision`` ("no": float32, "bf16": bf16 autocast)."""
    device = torch.device(device)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


@torch.no_grad()
def predict(
    model: nn.Module, inputs: torch.Tensor, batch_size: int, device: torch.device | str, precision: str = "no"
) -> np.ndarray:
    model.eval()
    with autocast(precision, device):
        scores = [model(inputs[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(inputs), batch_size)]
    return torch.cat(scores).numpy()


def fit(
    config: TrainConfig,
    x_train: torch.Tensor,
    y_train: np.ndarray,
    evaluate: tuple[torch.Tensor, np.ndarray] | None = None,
    progress: bool = True,
) -> tuple[nn.Module, list[dict]]:
    """The training loop; evaluates on ``evaluate`` (inputs, labels) after every epoch."""
    from diag.metrics import evaluate_scores

    config.validate()
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    order = torch.Generator().manual_seed(config.seed)  # the data order is seeded too
    model = build_model(config, x_train).to(device)
    if config.backbone == "resnet50":  # the uint8 NHWC batches are channels-last already: keep the convolutions so
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    loss_fn = nn.BCEWithLogitsLoss()
    targets = torch.as_tensor(y_train, dtype=torch.float32)
    curve = []
    for epoch in progress_bar(range(1, config.epochs + 1), desc="epochs", disable=not progress):
        model.train(epoch == 1 or config.bn_train_every_epoch)  # see TrainConfig.bn_train_every_epoch
        total, seen = 0.0, 0
        for batch in torch.randperm(len(x_train), generator=order).split(config.batch_size):
            with autocast(config.mixed_precision, device):
                logits = model(x_train[batch].to(device))
            loss = loss_fn(logits.float(), targets[batch].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, seen = total + loss.item() * len(batch), seen + len(batch)
        row = {"epoch": epoch, "loss": total / seen}
        if evaluate is not None:
            scores = predict(model, evaluate[0], config.batch_size, device, config.mixed_precision)
            row |= evaluate_scores(evaluate[1], scores)
        curve.append(row)
    return model, curve


def train_classifier(
    config: TrainConfig, train: LabelledPaths, test: LabelledPaths, progress: bool = True
) -> TrainResult:
    """Encode, fit, and score the final epoch on the test split."""
    from diag.metrics import evaluate_scores

    device = resolve_device(config.device)
    x_train, x_test = encode(config, train.paths, device, progress), encode(config, test.paths, device, progress)
    model, curve = fit(config, x_train, train.labels, (x_test, test.labels), progress)
    scores = predict(model, x_test, config.batch_size, device, config.mixed_precision)
    return TrainResult(asdict(config), evaluate_scores(test.labels, scores), curve, scores)
