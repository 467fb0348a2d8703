"""Small, explicit views into a diffusion inpainting pipeline, for the teaching chapter.

Each function runs the real pipeline (or its parts) on one 64 x 64 crop: the forward
noising process, a denoising trajectory, and single inpaintings with chosen guidance,
negative prompt and strength.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import retrieve_latents
from PIL import Image, ImageDraw

from diag.data.ksdd2 import read_manifest, split_by_label
from diag.generate.diag import DEMO_MODEL, load_pipeline

SIZE = 64


def load_demo_pipeline():
    return load_pipeline(DEMO_MODEL, torch.device("cpu"))


def example_crop(data: Path | str, index: int = 0) -> Image.Image:
    """A 64 x 64 crop from the middle of a training negative, at its own resolution."""
    negatives, _ = split_by_label(read_manifest(data, "train"))
    image = Image.open(negatives[index].image_path).convert("RGB")
    left, top = (image.width - SIZE) // 2, (image.height - SIZE) // 2
    return image.crop((left, top, left + SIZE, top + SIZE))


def example_mask(size: tuple[int, int] = (SIZE, SIZE)) -> Image.Image:
    """An elongated blob in the middle: where the defect should go."""
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse([size[0] * 0.25, size[1] * 0.35, size[0] * 0.75, size[1] * 0.65], fill=255)
    return mask


def _to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, np.float32) / 127.5 - 1).permute(2, 0, 1)[None]


@torch.no_grad()
def _decode(pipe, latents: torch.Tensor) -> np.ndarray:
    pixels = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample
    return ((pixels[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()


@torch.no_grad()
def forward_process(pipe, crop: Image.Image, timesteps: list[int], seed: int = 0) -> list[tuple[int, np.ndarray]]:
    """x_t for each t, decoded back to pixels: how the training noise destroys an image."""
    latents = retrieve_latents(pipe.vae.encode(_to_tensor(crop)), sample_mode="argmax") * pipe.vae.config.scaling_factor
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(seed))
    return [(t, _decode(pipe, pipe.scheduler.add_noise(latents, noise, torch.tensor([t])))) for t in timesteps]


def inpaint(pipe, crop: Image.Image, mask: Image.Image, prompt: str, *, negative_prompt: str = "", guidance: float = 3.0,
            strength: float = 0.99, steps: int = 30, seed: int = 0, callback=None) -> Image.Image:
    """One inpainting at the model's native size."""
    kwargs = {"callback_on_step_end": callback, "callback_on_step_end_tensor_inputs": ["latents"]} if callback else {}
    return pipe(prompt=prompt, negative_prompt=negative_prompt, image=crop, mask_image=mask, height=crop.height, width=crop.width,
                num_inference_steps=steps, guidance_scale=guidance, strength=strength,
                generator=torch.Generator().manual_seed(seed), **kwargs).images[0]


def denoising_trajectory(pipe, crop: Image.Image, mask: Image.Image, prompt: str, *, n_show: int = 6,
                         steps: int = 30, guidance: float = 3.0, seed: int = 0) -> list[tuple[int, np.ndarray]]:
    """The latents at ``n_show`` evenly spaced steps of one inpainting, decoded; the final result last."""
    keep = set(np.linspace(0, steps - 1, n_show - 1).round().astype(int).tolist())
    frames = []

    def capture(_pipe, step, _t, tensors):
        if step in keep:
            frames.append((step, _decode(pipe, tensors["latents"])))
        return tensors

    result = inpaint(pipe, crop, mask, prompt, guidance=guidance, steps=steps, seed=seed, callback=capture)
    return frames + [(steps, np.asarray(result))]
