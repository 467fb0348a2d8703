"""Which (negative image, mask, prompt) each generated image gets: the release's sampling.

The authors' script seeds Python's ``random`` once, then, prompt by prompt (in order) and
image by image, draws a mask from the training positives' masks and then an image from the
training negatives, each with ``random.sample(list, 1)[0]`` (with replacement across
draws), lists in ``train.csv`` order. We draw the whole plan up front the same way, so the
same ``train.csv`` and seed give the authors' sequence.

Diffusion noise differs on purpose: the release passes one shared ``torch.Generator`` to
every call, so each image depends on all images before it; here every image gets its own
generator seeded from (seed, index), so resuming, batching and multi-GPU runs give the
same images.
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from diag.errors import ConfigError


@dataclass(frozen=True)
class PlanItem:
    index: int
    negative: str  # id (file stem) of the defect-free image
    mask: str  # id or name of the mask
    prompt: str
    noise_seed: int  # seeds this image's own torch.Generator


def per_prompt_counts(n_aug: int, weights: Sequence[float]) -> list[int]:
    """Split N_aug between prompts by weight (equal weights: the release's ``imgs_per_prompt``)."""
    shares = np.asarray(weights, dtype=float) / np.sum(weights)
    counts = np.floor(shares * n_aug).astype(int)
    remainder = n_aug - counts.sum()
    if remainder:
        warnings.warn(
            f"N_aug = {n_aug} does not split evenly between {len(weights)} prompts; "
            f"the first {remainder} prompt(s) get one image more",
            stacklevel=2,
        )
        counts[np.argsort(-(shares * n_aug - counts), kind="stable")[:remainder]] += 1
    return counts.tolist()


def noise_seed(seed: int, index: int) -> int:
    """A well-mixed 63-bit seed for image ``index``, independent of every other image."""
    return int(
        np.random.SeedSequence([seed, index]).generate_state(2, dtype=np.uint32).astype(np.uint64)
        @ np.array([1 << 31, 1], dtype=np.uint64)
    )


def release_plan(
    negatives: Sequence[str],
    masks: Sequence[str],
    prompts: Sequence[str],
    n_aug: int,
    seed: int = 0,
    weights: Sequence[float] | None = None,
) -> list[PlanItem]:
    """The full plan, drawn up front in the release's order (mask first, then image)."""
    if not negatives:
        raise ConfigError("no defect-free (negative) training images to inpaint into")
    if not masks:
        raise ConfigError("the mask set is empty")
    if n_aug < 1:
        raise ConfigError(f"n_aug: must be >= 1; got {n_aug!r}")
    rng = random.Random(seed)  # the same Mersenne Twister stream as the release's random.seed(seed)
    negatives, masks = list(negatives), list(masks)
    plan = []
    for prompt, count in zip(prompts, per_prompt_counts(n_aug, weights or [1.0] * len(prompts))):
        for _ in range(count):
            mask = rng.sample(masks, 1)[0]
            negative = rng.sample(negatives, 1)[0]
            plan.append(PlanItem(len(plan), negative, mask, prompt, noise_seed(seed, len(plan))))
    return plan
