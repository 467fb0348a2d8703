"""The two profiles, side by side: what the paper ran, and what runs offline on a laptop CPU.

One code path serves both; a profile only fills in defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from diag.classify.train import TrainConfig


@dataclass(frozen=True)
class Profile:
    name: str
    classifier: TrainConfig
    val_fraction: float  # >0: also train on (1 - f) of the data and pick the threshold on f
    label: str  # shown beside every number the profile produces


PROFILES = {
    "paper": Profile(
        name="paper",
        # ResNet-50, ImageNet weights, Adam 1e-4, batch 32, 50 epochs, 224 x 632 (Sec. III-C, IV-B)
        classifier=TrainConfig(backbone="resnet50", weights="imagenet", epochs=50, batch_size=32, lr=1e-4),
        val_fraction=0.0,  # a second ResNet-50 per cell doubles a GPU day; opt in with --val-fraction
        label="paper profile",
    ),
    "demo": Profile(
        name="demo",
        # No ImageNet ResNet offline: frozen FID-Inception features + a linear head.
        # The head is tiny, so a larger step than the paper's 1e-4 is used.
        classifier=TrainConfig(backbone="fid-inception", epochs=50, batch_size=32, lr=1e-3),
        val_fraction=0.1,
        label="demo (offline replica, Inception features + linear head)",
    ),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"The `profile` parameter must be one of {sorted(PROFILES)}. Got {name!r} instead.")
    return PROFILES[name]
