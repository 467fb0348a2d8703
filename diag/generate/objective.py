"""The diffusion training objective both of our trainers share: the demo model's pretraining
(``diag.demo_model.pretrain``) and In&Out's LoRA fine-tune (``diag.generate.inout``).

diffusers' schedulers add the noise and compute the velocity; what each trainer must still
choose is the noise it draws and the target its UNet learns, and both are here so the two
trainers cannot drift apart.
"""

from __future__ import annotations

import torch


def offset_noise(shape: tuple[int, ...], offset: float, g: torch.Generator) -> torch.Tensor:
    """Gaussian noise plus ``offset`` x a per-sample, per-channel constant (Guttenberg's "offset noise").

    A common workaround for the problem the demo model now solves with a zero-terminal-SNR
    schedule and v-prediction (``diag.demo_model.build.BETAS``): offset 0.1 moved full-mask
    samples only from grey 134 to 115 in 600 steps, for every prompt alike. Kept as an option
    (kohya's ``--noise_offset``; default 0, which draws plain Gaussian noise).
    """
    noise = torch.randn(shape, generator=g)
    return noise + offset * torch.randn((*shape[:2], 1, 1), generator=g) if offset else noise


def training_target(scheduler, latents: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """What the UNet learns to predict: the noise, or the velocity for a v-prediction scheduler."""
    if scheduler.config.prediction_type == "v_prediction":
        return scheduler.get_velocity(latents, noise, t)
    return noise
