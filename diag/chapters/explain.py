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

from diag.chapters.style import readable
from diag.data.ksdd2 import read_manifest, split_by_label
from diag.generate.diag import load_pipeline
from diag.generate.loading import DEMO_MODEL

SIZE = 64


def load_demo_pipeline():
    return load_pipeline(DEMO_MODEL, torch.device("cpu"))


def example_crop(data: Path | str, index: int = 0) -> Image.Image:
    """A 64 x 64 crop from the middle of a training negative, at its own resolution."""
    negatives, _ = split_by_label(read_manifest(data, "train"))
    image = Image.open(negatives[index].image_path).convert("RGB")
    left, top = (image.width - SIZE) // 2, (image.height - SIZE) // 2
    return image.crop((left, top, left + SIZE, top + SIZE))


def defect_crop(data: Path | str) -> Image.Image:
    """A 64 x 64 crop centred on the first training positive's defect: something for the noise to drown."""
    from diag.data.ksdd2 import load_mask

    positive = next(s for s in read_manifest(data, "train") if s.is_positive)
    image = Image.open(positive.image_path).convert("RGB")
    rows, cols = np.nonzero(load_mask(positive.mask_path))
    left = int(np.clip(cols.mean() - SIZE / 2, 0, image.width - SIZE))
    top = int(np.clip(rows.mean() - SIZE / 2, 0, image.height - SIZE))
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


def inpaint(
    pipe,
    crop: Image.Image,
    mask: Image.Image,
    prompt: str,
    *,
    guidance: float,
    negative_prompt: str = "",
    strength: float = 0.99,
    steps: int = 30,
    seed: int = 0,
    callback=None,
) -> Image.Image:
    """One inpainting at the model's native size."""
    kwargs = {"callback_on_step_end": callback, "callback_on_step_end_tensor_inputs": ["latents"]} if callback else {}
    return pipe(
        prompt=prompt,
        negative_prompt=negative_prompt,
        image=crop,
        mask_image=mask,
        height=crop.height,
        width=crop.width,
        num_inference_steps=steps,
        guidance_scale=guidance,
        strength=strength,
        generator=torch.Generator().manual_seed(seed),
        **kwargs,
    ).images[0]


def denoising_trajectory(
    pipe,
    crop: Image.Image,
    mask: Image.Image,
    prompt: str,
    *,
    guidance: float,
    n_show: int = 6,
    steps: int = 30,
    seed: int = 0,
) -> list[tuple[int, np.ndarray]]:
    """The latents at ``n_show`` evenly spaced steps of one inpainting, decoded; the final result last."""
    keep = set(np.linspace(0, steps - 1, n_show - 1).round().astype(int).tolist())
    frames = []

    def capture(_pipe, step, _t, tensors):
        if step in keep:
            frames.append((step, _decode(pipe, tensors["latents"])))
        return tensors

    result = inpaint(pipe, crop, mask, prompt, guidance=guidance, steps=steps, seed=seed, callback=capture)
    return frames + [(steps, np.asarray(result))]


# --- chapter 2's figures: each returns a matplotlib figure (stored by ``Run.figure``) -------------
def _row(images: list, titles: list[str], width: float = 1.6, height: float = 2.2):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=(width * len(images), height), squeeze=False)
    for ax, image, title in zip(axes[0], images, titles):
        ax.imshow(image)
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    return readable(fig)


def signal_timesteps(scheduler, signal: tuple[float, ...] = (1.0, 0.99, 0.97, 0.93, 0.85, 0.0)) -> list[int]:
    """The timesteps at which x_t keeps each share of the image, sqrt(alpha_bar_t) (signal 0: pure noise).

    Evenly spaced t show nothing gradual: the latents are drowned long before the end (at t = 250 of
    1000 the decoded frame already looked like pure noise), so the frames are spaced by how much signal
    is left, most of them where the image is still visible."""
    kept = scheduler.alphas_cumprod.sqrt()
    return [int((kept - share).abs().argmin()) for share in signal]


def forward_figure(pipe, crop: Image.Image, timesteps: tuple[int, ...] | None = None):
    steps = list(timesteps) if timesteps else signal_timesteps(pipe.scheduler)
    kept = pipe.scheduler.alphas_cumprod.sqrt()
    frames = forward_process(pipe, crop, steps)
    return _row([image for _, image in frames], [f"t = {t}\nsignal {float(kept[t]):.0%}" for t, _ in frames])


def trajectory_figure(pipe, crop: Image.Image, mask: Image.Image, prompt: str, guidance: float):
    frames = denoising_trajectory(pipe, crop, mask, prompt, n_show=6, guidance=guidance)
    return _row([image for _, image in frames], [f"step {step}" for step, _ in frames])


def guidance_figure(pipe, crop: Image.Image, mask: Image.Image, prompts: tuple[str, ...], scales: tuple[float, ...]):
    """One row per prompt (named on the left), one column per guidance scale."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(prompts), len(scales), figsize=(1.6 * len(scales) + 1.6, 1.8 * len(prompts)), squeeze=False
    )
    for row, prompt in enumerate(prompts):
        for ax, w in zip(axes[row], scales):
            ax.imshow(inpaint(pipe, crop, mask, prompt, guidance=w, seed=0))
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(f"w = {w:g}")
        axes[row][0].set_ylabel(prompt.replace(" ", "\n", 2), rotation=0, ha="right", va="center")
    fig.tight_layout()
    return readable(fig)


def negative_prompt_figure(
    pipe, crop: Image.Image, mask: Image.Image, prompt: str, negatives: tuple[str, ...], guidance: float
):
    images = [inpaint(pipe, crop, mask, prompt, negative_prompt=n, guidance=guidance, seed=1) for n in negatives]
    return _row(images, [f"negative prompt:\n{n or '(none)'}" for n in negatives], width=2.6, height=2.6)


def strength_figure(
    pipe, crop: Image.Image, mask: Image.Image, prompt: str, strengths: tuple[float, ...], guidance: float
) -> tuple[object, list[float]]:
    """The inpaintings, and how far each moved from the input inside the mask (mean |change|, grey levels)."""
    images = [inpaint(pipe, crop, mask, prompt, strength=s, guidance=guidance, seed=2) for s in strengths]
    inside = np.asarray(mask) > 0
    before = np.asarray(crop, float)
    changes = [float(np.abs(np.asarray(im, float) - before)[inside].mean()) for im in images]
    titles = [f"strength {s}\nchange {c:.0f}" for s, c in zip(strengths, changes)]
    return _row([np.asarray(crop)] + images, ["input"] + titles), changes


def crop_box_figure(pipe, data: Path | str):
    """The ``padding_mask_crop`` box (red) around a training positive's mask (yellow), and the crop itself:
    what the model is given to inpaint."""
    import matplotlib.pyplot as plt

    from diag.data.ksdd2 import load_image, load_mask

    positive = next(s for s in read_manifest(data, "train") if s.is_positive)
    box = pipe.mask_processor.get_crop_region(Image.open(positive.mask_path), SIZE, SIZE, pad=2)
    image, mask = load_image(positive.image_path), load_mask(positive.mask_path)
    fig, (whole, crop) = plt.subplots(1, 2, figsize=(5.2, 5), gridspec_kw={"width_ratios": [1, 1.4]})
    whole.imshow(image)
    whole.contour(mask, colors="yellow", linewidths=0.8)
    whole.add_patch(plt.Rectangle((box[0], box[1]), box[2] - box[0], box[3] - box[1], fill=False, color="red"))
    whole.set_title("image, mask (yellow),\ncrop box (red)")
    crop.imshow(image[box[1] : box[3], box[0] : box[2]], interpolation="nearest")
    crop.contour(mask[box[1] : box[3], box[0] : box[2]], colors="yellow", linewidths=1)
    crop.set_title(f"the crop, {box[2] - box[0]} x {box[3] - box[1]} px")
    for ax in (whole, crop):
        ax.axis("off")
    fig.tight_layout()
    return readable(fig)


def demo_guidance() -> float:
    """The demo model's own guidance (its ``diag_defaults.json``), used for the trajectory."""
    from diag.generate.loading import model_defaults

    return float(model_defaults(DEMO_MODEL)["guidance"])


def strength_text(strengths: tuple[float, ...], changes: list[float] | None) -> str:
    """What the strength figure shows, from its measured changes (or that it is missing)."""
    if not changes:
        return "(The strength figure's measurements are not in this results folder.)"
    low, high = changes[0], changes[-1]
    text = (
        f"Inside the mask the fill moved {low:.0f} grey levels from the input at strength {strengths[0]} and "
        f"{high:.0f} at strength {strengths[-1]}. "
    )
    if low < 0.5 * high:
        return (
            text + "At low strength the model only retouches the region and keeps its texture; near 1 it repaints it."
        )
    return text + (
        "This small model does not stay close to the input at low strength: even a short stretch of "
        "denoising repaints the region almost as much as strength 1 does, so the figure shows strength "
        "mattering less than it does for SDXL."
    )
