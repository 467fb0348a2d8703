"""In&Out (Capogrosso et al. 2024), the paper's second baseline: DreamBooth + LoRA, then sampling.

    diag generate inout --profile paper --data PREPARED --out OUT --n-aug 100   # SD-1.5, needs the internet
    diag generate inout --data PREPARED --out OUT                               # the offline demo model

The paper profile follows the official In&Out configuration (intelligolabs/in_and_out, a
kohya sd-scripts LoRA run; see book/differences.md for what still differs), on diffusers + peft:

1. Fine-tune: LoRA rank 32 / alpha 16 on the UNet's attention and feed-forward linears, conv
   LoRA 4 / 1 on its 3x3 convolutions, LoRA on the CLIP text encoder too; hidden states from
   the penultimate CLIP layer (clip skip 2); noise-prediction MSE weighted by min-SNR (gamma 5);
   batch 12, 50 epochs x 10 repeats over the training positives; AdamW (8-bit where
   bitsandbytes and a GPU exist) at 1e-5, cosine with 3 restarts, no warm-up; the instance
   prompt "a photo of sks surface defect"; optional prior preservation. One fine-tune per
   seed serves every N_aug (``lora_dir``), so the 80/100/120 sets are draws of one model.
2. Merge the LoRA into the weights at ratio 0.65 and sample N_aug images text-to-image at
   the model's native size (512 px for SD-1.5), one seeded generator per image, stretched to
   224 x 632.

``canvas`` says how whole images are made. ``"square"`` (the paper's): fine-tune on positives
resized to the model's native square, sample that square, stretch it to 224 x 632.
``"full"`` (the demo's): fine-tune on ``resolution``-px square windows cut from the positives at
their own pixel scale (native size when None; the demo: 224, the images' full width), and sample
the whole 224 x 632 canvas at once: a convolutional UNet draws a wider canvas as it drew its
windows. The demo model's native scale is the image's own (it inpaints 64-px crops of unresized
images); squashing 224 x 632 into its 64 x 64 square, or sampling at a smaller canvas and
upscaling, loses KSDD2's pixel-scale speckle (measured on the replica, FID-64 of real images
downscaled to 64 x 184 / 112 x 320 and back: 19.4 / 6.1, against 0.014 for other real images).
Windows as wide as the image teach the LoRA the whole canvas: the base model, pretrained on
64-px patches, draws a 224 x 632 canvas darker and more purple than its own 64-px windows, and a
LoRA fine-tuned on 64-px windows does not correct it (model card, "In&Out").

In&Out images carry no mask; the output layout still has ``masks/`` (empty placeholders,
so every generator writes the same layout) and the manifest says so. The classifier uses
image-level labels only.

Inpainting models (the demo model) are fine-tuned and sampled text-to-image by giving the
UNet a full mask and a blank masked image: the same objective, with their input layout.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from diag.data.ksdd2 import HEIGHT, WIDTH, load_image, read_manifest, split_by_label
from diag.errors import ConfigError, DataError
from diag.files import MARKER, refuse_foreign_folder, write_text_atomic
from diag.generate.loading import (
    SAMPLERS,
    check_steps,
    load_diffusers_pipeline,
    model_fingerprint,
    native_resolution,
    with_sampler,
)
from diag.generate.output import MAX_IMAGES, OutputWriter, recorded_settings, refuse_mixed_settings
from diag.generate.plan import noise_seed
from diag.progress import bar as progress_bar, step

SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"
LORA_FILE = "pytorch_lora_weights.safetensors"
TEXT_LORA_FILE = "text_encoder_lora.safetensors"
OPTIMIZERS = ("adamw", "adamw8bit")
UNET_LINEAR = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"]
UNET_CONV = ["conv1", "conv2", "downsamplers.0.conv", "upsamplers.0.conv"]
TEXT_LINEAR = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]
# what the sampled set depends on but its fine-tune does not
SAMPLING_FIELDS = ("n_aug", "steps", "sampler", "guidance", "merge_ratio", "batch_size", "device")
CANVASES = ("square", "full")
PRECISIONS = ("no", "bf16", "fp16")


@dataclass
class InOutConfig:
    model: str = SD15
    n_aug: int = 100
    seed: int = 0
    instance_prompt: str = "a photo of sks surface defect"
    class_prompt: str = "a photo of surface defect"
    prior_preservation: bool = False  # the official config sets a prior loss weight but lists no class images
    num_class_images: int = 200
    prior_loss_weight: float = 1.0
    # the fine-tune (official: configs/training_config.toml, dataset_config.toml)
    rank: int = 32
    alpha: int = 16
    conv_rank: int = 4  # 0: no LoRA on the 3x3 convolutions
    conv_alpha: int = 1
    text_encoder_lora: bool = True
    clip_skip: int = 2  # kohya's count: 2 = the penultimate CLIP layer
    min_snr_gamma: float | None = 5.0
    noise_offset: float = 0.0  # kohya's --noise_offset; the official run sets none
    train_batch_size: int = 12
    epochs: int = 50
    repeats: int = 10  # passes over each positive per epoch
    train_steps: int | None = None  # None: epochs x repeats x positives / train_batch_size
    lr: float = 1e-5
    lr_cycles: int = 3  # cosine with restarts
    cache_latents: bool = True  # encode each image once (the official run's cache_latents), not every step
    # autocast for the fine-tune and the sampling: "fp16" (CUDA only, with a gradient scaler; the official
    # run's mixed_precision), "bf16" (CPUs and GPUs with bf16 units), "no" (float32; a CPU without bf16)
    mixed_precision: str = "fp16"
    gradient_checkpointing: bool = False  # recompute activations in the backward pass: less memory, ~30 % slower
    optimizer: str = "adamw8bit"  # AdamW where bitsandbytes or a GPU is missing (recorded)
    resolution: int | None = None  # None: the model's native size (512 for SD-1.5)
    canvas: str = "square"  # "square": native square, stretched; "full": 224 x 632 at 1:1 (see the module doc)
    # sampling (official: 2_launch_merge_lora.sh, 3_launch_generate_imgs.sh)
    merge_ratio: float = 0.65
    steps: int = 30
    sampler: str = "model"  # "model": the base model's own scheduler; "dpm-solver++" (see loading.SAMPLERS)
    guidance: float = 7.5
    batch_size: int = 1  # images per sampling call
    device: str = "auto"

    def validate(self) -> None:
        positive = [
            "n_aug",
            "rank",
            "train_batch_size",
            "epochs",
            "repeats",
            "steps",
            "batch_size",
            "num_class_images",
            "clip_skip",
            "lr_cycles",
        ]
        for name in positive:
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(
                    f"inout.{name}: must be an integer >= 1; got {getattr(self, name)!r}"
                )
        for name in ("seed", "conv_rank"):
            if getattr(self, name) < 0:
                raise ConfigError(f"inout.{name}: must be >= 0; got {getattr(self, name)!r}")
        if self.n_aug > MAX_IMAGES:
            raise ConfigError(f"inout.n_aug: must be at most {MAX_IMAGES:,}; got {self.n_aug!r}")
        if self.train_steps is not None and self.train_steps < 1:
            raise ConfigError(f"inout.train_steps: must be >= 1 or None; got {self.train_steps!r}")
        if self.resolution is not None and (self.resolution < 8 or self.resolution % 8):
            raise ConfigError(
                f"inout.resolution: must be a multiple of 8 (or None); got {self.resolution!r}"
            )
        for name in ("lr", "alpha", "merge_ratio", "prior_loss_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"inout.{name}: must be a finite number > 0; got {value!r}")
        if not (math.isfinite(self.guidance) and self.guidance >= 1):
            raise ConfigError(f"inout.guidance: must be a finite number >= 1; got {self.guidance!r}")
        if not (math.isfinite(self.noise_offset) and self.noise_offset >= 0):
            raise ConfigError(f"inout.noise_offset: must be >= 0; got {self.noise_offset!r}")
        if self.min_snr_gamma is not None and not self.min_snr_gamma > 0:
            raise ConfigError(f"inout.min_snr_gamma: must be > 0 or None; got {self.min_snr_gamma!r}")
        if self.canvas not in CANVASES:
            raise ConfigError(f"inout.canvas: must be one of {CANVASES}; got {self.canvas!r}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"inout.sampler: must be one of {SAMPLERS}; got {self.sampler!r}")
        if self.mixed_precision not in PRECISIONS:
            raise ConfigError(
                f"inout.mixed_precision: must be one of {PRECISIONS}; got {self.mixed_precision!r}"
            )
        if self.resolution is not None:
            check_window(self.resolution, self.canvas)
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"inout.optimizer: must be one of {OPTIMIZERS}; got {self.optimizer!r}")

    def total_steps(self, n_positives: int) -> int:
        """Optimiser steps: ``train_steps``, or epochs x repeats over the positives (KSDD2: 10,250)."""
        return self.train_steps or math.ceil(self.epochs * self.repeats * n_positives / self.train_batch_size)


def check_window(resolution: int, canvas: str) -> None:
    """The ``"full"`` canvas cuts square windows from the images: they must fit in 224 x 632."""
    if canvas == "full" and resolution > min(HEIGHT, WIDTH):
        raise ConfigError(
            f"inout.resolution: must be at most {min(HEIGHT, WIDTH)} with canvas 'full' (square windows cut "
            f"from {WIDTH} x {HEIGHT} images; or use canvas 'square'); got {resolution!r}"
        )


def finetune_settings(config: InOutConfig) -> dict:
    """What the fine-tune depends on: everything but the sampling settings and gradient checkpointing
    (which recomputes the same activations: a memory switch, not a different LoRA)."""
    return {k: v for k, v in asdict(config).items() if k not in (*SAMPLING_FIELDS, "gradient_checkpointing")}


def load_base(model: str, device: torch.device):
    """SD-1.5 (hub id) or a local diffusers folder (the demo model is an inpainting pipeline).

    float32 everywhere: the LoRA is trained on this pipeline and fp16 weights without a
    gradient scaler would underflow.
    """
    return load_diffusers_pipeline(model, device, hub_class="StableDiffusionPipeline", dtype=torch.float32)


def autocast(config: InOutConfig, device: torch.device):
    """The fine-tune's and the sampling's autocast (``mixed_precision``); weights and LoRA stay float32.

    On a CPU with bf16 units (AMX), bf16 sampled the demo's whole canvases 2.3x faster at the same
    realism (held-out replica: FID-64 2.01 against 2.14 in float32; model card)."""
    import contextlib

    if config.mixed_precision == "no":
        return contextlib.nullcontext()
    check_precision(config, device)
    if config.mixed_precision == "bf16" and device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        warnings.warn(
            "this CPU has no bf16 units: In&Out in bf16 runs slower than in float32 here; "
            "--set inout.mixed_precision=no is faster (and is recorded, so its sets are kept apart)",
            stacklevel=2,
        )
    return torch.autocast(device.type, dtype=torch.bfloat16 if config.mixed_precision == "bf16" else torch.float16)


def check_precision(config: InOutConfig, device: torch.device) -> None:
    """fp16 autocast (the paper profile's, as the official run) exists on CUDA only: refused elsewhere."""
    if config.mixed_precision == "fp16" and device.type != "cuda":
        raise ConfigError(
            f"inout.mixed_precision: fp16 (the paper profile's, as the official run) needs a CUDA GPU, and In&Out "
            f"runs on {device.type}; use --set inout.mixed_precision=no (or bf16 on a CPU with bf16 units)"
        )


def prepare_for_precision(pipe, config: InOutConfig) -> None:
    """On a CPU, bf16 convolutions run fastest with the UNet's tensors channels-last (oneDNN's layout)."""
    if config.mixed_precision == "bf16" and pipe.unet.device.type == "cpu":
        pipe.unet.to(memory_format=torch.channels_last)


def is_inpainting(pipe) -> bool:
    return pipe.unet.config.in_channels == 9


def sample(pipe, prompts: list[str], seeds: list[int], config: InOutConfig, resolution: int) -> list[Image.Image]:
    """Text-to-image on the config's canvas; inpainting models get a blank image and a full mask."""
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    height, width = (HEIGHT, WIDTH) if config.canvas == "full" else (resolution, resolution)
    kwargs = dict(
        height=height,
        width=width,
        num_inference_steps=config.steps,
        guidance_scale=config.guidance,
        generator=generators,
    )
    if config.clip_skip > 1:  # encoded here: kohya's sampler skips layers for both branches, diffusers' for one
        kwargs |= dict(
            prompt_embeds=embed_prompts(pipe, prompts, config.clip_skip),
            negative_prompt_embeds=embed_prompts(pipe, [""] * len(prompts), config.clip_skip),
        )
    else:
        kwargs["prompt"] = prompts
    if is_inpainting(pipe):
        blank = Image.new("RGB", (width, height), (0, 0, 0))
        full = Image.new("L", (width, height), 255)
        kwargs |= dict(image=[blank] * len(prompts), mask_image=[full] * len(prompts), strength=1.0)
    with autocast(config, pipe.unet.device):
        return pipe(**kwargs).images


def tokenize(pipe, prompts: list[str]) -> torch.Tensor:
    return pipe.tokenizer(
        prompts, padding="max_length", max_length=pipe.tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids


@torch.no_grad()
def embed_prompts(pipe, prompts: list[str], clip_skip: int) -> torch.Tensor:
    return encode_text(pipe.text_encoder, tokenize(pipe, prompts).to(pipe.text_encoder.device), clip_skip)


def to_model_input(images: list[np.ndarray], resolution: int) -> torch.Tensor:
    """The ``"square"`` canvas: each image resized to the model's square, in [-1, 1]."""
    x = np.stack(
        [np.asarray(Image.fromarray(im).resize((resolution, resolution), Image.Resampling.BICUBIC)) for im in images]
    )
    return torch.from_numpy(x).permute(0, 3, 1, 2).float() / 127.5 - 1


def random_windows(images: list[np.ndarray], resolution: int, g: torch.Generator) -> torch.Tensor:
    """The ``"full"`` canvas: one seeded ``resolution``-px window of each image at its own scale, in [-1, 1]."""
    windows = []
    for im in images:
        top = int(torch.randint(0, im.shape[0] - resolution + 1, (1,), generator=g))
        left = int(torch.randint(0, im.shape[1] - resolution + 1, (1,), generator=g))
        windows.append(im[top : top + resolution, left : left + resolution])
    return torch.from_numpy(np.stack(windows)).permute(0, 3, 1, 2).float() / 127.5 - 1


def training_input(images: list[np.ndarray], resolution: int, g: torch.Generator, config: InOutConfig) -> torch.Tensor:
    return random_windows(images, resolution, g) if config.canvas == "full" else to_model_input(images, resolution)


@torch.no_grad()
def encode_pixels(pipe, pixels: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Scaled latents of ``pixels``, a draw from the autoencoder's posterior (its mean for one without)."""
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import retrieve_latents

    latents = retrieve_latents(pipe.vae.encode(pixels.to(pipe.unet.device)), generator=g)
    return latents * pipe.vae.config.scaling_factor


@dataclass
class LatentCache:
    """Each training image's scaled posterior (mean, std), encoded once; ``batch`` draws from it.

    ``"square"``: the image resized to the model's square. ``"full"``: the whole unresized image,
    whose latents ``batch`` cuts windows from, at offsets in whole latent pixels (the
    autoencoder's stride), so a window's latents see the image around it instead of a border.
    Why by hand: diffusers' training scripts cache no latents; kohya's cache_latents (the
    official In&Out run's) keeps one draw per image, we keep the distribution and draw per step.
    """

    means: list[torch.Tensor]
    stds: list[torch.Tensor]
    window: int | None  # latent pixels per window side ("full"), None for "square"

    @classmethod
    @torch.no_grad()
    def encode(cls, pipe, images: list[np.ndarray], resolution: int, config: InOutConfig) -> "LatentCache":
        scale = pipe.vae.config.scaling_factor
        means, stds = [], []
        for image in images:
            whole = torch.from_numpy(np.array(image[None])).permute(0, 3, 1, 2).float() / 127.5 - 1
            pixels = whole if config.canvas == "full" else to_model_input([image], resolution)
            encoded = pipe.vae.encode(pixels.to(pipe.unet.device))
            if hasattr(encoded, "latent_dist"):  # a KL autoencoder (SD-1.5's): a posterior per pixel
                mean, std = encoded.latent_dist.mean, encoded.latent_dist.std
            else:  # a deterministic one (the demo model's AutoencoderTiny)
                mean, std = encoded.latents, torch.zeros_like(encoded.latents)
            means.append(mean[0].cpu() * scale)
            stds.append(std[0].cpu() * scale)
        window = resolution // pipe.vae_scale_factor if config.canvas == "full" else None
        return cls(means, stds, window)

    def batch(self, indices: list[int], g: torch.Generator) -> torch.Tensor:
        """One latent draw per index: a seeded window (``"full"``) of a seeded posterior sample."""
        draws = []
        for i in indices:
            mean, std = self.means[i], self.stds[i]
            if self.window is not None:
                top = int(torch.randint(0, mean.shape[1] - self.window + 1, (1,), generator=g))
                left = int(torch.randint(0, mean.shape[2] - self.window + 1, (1,), generator=g))
                cut = (slice(None), slice(top, top + self.window), slice(left, left + self.window))
                mean, std = mean[cut], std[cut]
            draws.append(mean + std * torch.randn(mean.shape, generator=g))
        return torch.stack(draws)


def add_lora(pipe, config: InOutConfig) -> list[torch.nn.Parameter]:
    """LoRA adapters (peft) where kohya's ``networks.lora`` puts them; every other weight frozen.

    UNet: attention and feed-forward linears at ``rank``/``alpha``, 3x3 convolutions at
    ``conv_rank``/``conv_alpha``; the text encoder's attention and MLP linears when
    ``text_encoder_lora`` (injected with peft directly: transformers' own adapter API asks
    for a newer peft than the registry has). Returns the trainable parameters.
    """
    from peft import LoraConfig, inject_adapter_in_model

    pipe.unet.requires_grad_(False)
    pipe.text_encoder.requires_grad_(False)
    conv = UNET_CONV if config.conv_rank > 0 else []
    pattern = {name: config.conv_rank for name in conv}
    alphas = {name: config.conv_alpha for name in conv}
    # peft draws the initial (gaussian) LoRA weights from torch's global generator: seed it here, in a
    # forked state, so the fine-tune does not depend on what ran before it in the process
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        pipe.unet.add_adapter(
            LoraConfig(
                r=config.rank,
                lora_alpha=config.alpha,
                init_lora_weights="gaussian",
                target_modules=UNET_LINEAR + conv,
                rank_pattern=pattern,
                alpha_pattern=alphas,
            )
        )
        if config.text_encoder_lora:
            inject_adapter_in_model(
                LoraConfig(
                    r=config.rank, lora_alpha=config.alpha, init_lora_weights="gaussian", target_modules=TEXT_LINEAR
                ),
                pipe.text_encoder,
            )
    return [p for module in (pipe.unet, pipe.text_encoder) for p in module.parameters() if p.requires_grad]


def encode_text(text_encoder, ids: torch.Tensor, clip_skip: int) -> torch.Tensor:
    """CLIP hidden states ``clip_skip`` layers from the top (kohya's count), final layer norm applied."""
    if clip_skip <= 1:
        return text_encoder(ids)[0]
    hidden = text_encoder(ids, output_hidden_states=True).hidden_states[-clip_skip]
    model = getattr(text_encoder, "text_model", text_encoder)  # transformers 5 dropped the text_model level
    return model.final_layer_norm(hidden)


@torch.no_grad()
def blank_latents(pipe, resolution: int) -> torch.Tensor:
    """An inpainting UNet's masked-image input for a full mask: the latents of a blank square image.

    The same for every step of a fine-tune: ``finetune_lora`` encodes it once."""
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import retrieve_latents

    blank = torch.zeros(1, 3, resolution, resolution, device=pipe.unet.device)
    return retrieve_latents(pipe.vae.encode(blank), sample_mode="argmax") * pipe.vae.config.scaling_factor


def diffusion_loss(
    pipe,
    latents: torch.Tensor,
    ids: torch.Tensor,
    g: torch.Generator,
    config: InOutConfig,
    blank: torch.Tensor | None = None,
) -> torch.Tensor:
    """Noise-prediction MSE (min-SNR weighted) on scaled ``latents``, with the inpainting UNet's
    full-mask input where needed (``blank``: ``blank_latents`` of the latents' size)."""
    from diffusers.training_utils import compute_snr

    from diag.generate.objective import offset_noise, training_target

    device = pipe.unet.device
    latents = latents.to(device)
    text = encode_text(pipe.text_encoder, ids.to(device), config.clip_skip)
    noise = offset_noise(latents.shape, config.noise_offset, g).to(device)
    t = torch.randint(0, pipe.scheduler.config.num_train_timesteps, (len(latents),), generator=g).to(device)
    model_input = pipe.scheduler.add_noise(latents, noise, t)
    if is_inpainting(pipe):
        blank = blank.expand(len(latents), -1, -1, -1)
        model_input = torch.cat([model_input, torch.ones_like(latents[:, :1]), blank], 1)
    target = training_target(pipe.scheduler, latents, noise, t).float()
    per_sample = (pipe.unet(model_input, t, text).sample.float() - target).pow(2).mean(dim=(1, 2, 3))
    if config.min_snr_gamma is not None:  # as diffusers' training scripts weight each prediction type
        snr = compute_snr(pipe.scheduler, t)
        v_prediction = pipe.scheduler.config.prediction_type == "v_prediction"
        per_sample = per_sample * torch.clamp(snr, max=config.min_snr_gamma) / (snr + 1 if v_prediction else snr)
    return per_sample.mean()


def make_optimizer(params: list[torch.nn.Parameter], config: InOutConfig, device: torch.device):
    """AdamW, 8-bit (bitsandbytes) as the official run where asked for and possible; returns (optimiser, name)."""
    if config.optimizer == "adamw8bit" and device.type == "cuda":
        try:
            import bitsandbytes

            return bitsandbytes.optim.AdamW8bit(params, lr=config.lr), "adamw8bit"
        except ImportError:
            pass
    return torch.optim.AdamW(params, lr=config.lr), "adamw"


def finetune_lora(
    pipe,
    instance: list[np.ndarray],
    config: InOutConfig,
    class_images: list[np.ndarray] | None = None,
    progress: bool = True,
) -> dict:
    """DreamBooth + LoRA on ``instance`` images; returns a log (losses, optimiser, steps)."""
    from diffusers.optimization import get_scheduler

    resolution = config.resolution or native_resolution(pipe)
    check_window(resolution, config.canvas)  # a model's native size may not fit the full canvas's windows
    params = add_lora(pipe, config)
    optimizer, optimizer_name = make_optimizer(params, config, pipe.unet.device)
    steps = config.total_steps(len(instance))
    schedule = get_scheduler(
        "cosine_with_restarts", optimizer, num_warmup_steps=0, num_training_steps=steps, num_cycles=config.lr_cycles
    )
    g = torch.Generator().manual_seed(config.seed)
    sets = {"instance": instance, **({"class": class_images} if class_images else {})}
    pipe.unet.train()
    pipe.text_encoder.train(config.text_encoder_lora)
    # each epoch visits every positive `repeats` times, in a seeded order (kohya's dataset repeats)
    order = torch.cat(
        [
            torch.randperm(len(instance), generator=g)
            for _ in range(math.ceil(steps * config.train_batch_size / len(instance)) + 1)
        ]
    )
    # every batch is resolution x resolution: an inpainting UNet's blank input is encoded once, not per step
    blank = blank_latents(pipe, resolution) if is_inpainting(pipe) else None
    if config.cache_latents:
        caches = {name: LatentCache.encode(pipe, images, resolution, config) for name, images in sets.items()}
    else:
        caches = {}

    def latents_of(name: str, indices: list[int]) -> torch.Tensor:
        if config.cache_latents:
            return caches[name].batch(indices, g)
        return encode_pixels(pipe, training_input([sets[name][i] for i in indices], resolution, g, config), g)

    device = pipe.unet.device
    prepare_for_precision(pipe, config)
    if config.gradient_checkpointing:
        pipe.unet.enable_gradient_checkpointing()
        if config.text_encoder_lora:  # transformers 5 renamed it; our floor knows the old name only
            text = pipe.text_encoder
            (getattr(text, "activation_checkpointing_enable", None) or text.gradient_checkpointing_enable)()
    scaler = torch.amp.GradScaler(device.type, enabled=config.mixed_precision == "fp16")  # fp16 gradients underflow
    losses = []
    for number in progress_bar(range(steps), desc="In&Out LoRA", disable=not progress):
        idx = order[number * config.train_batch_size : (number + 1) * config.train_batch_size].tolist()
        instance_latents = latents_of("instance", idx)
        with autocast(config, device):
            loss = diffusion_loss(
                pipe, instance_latents, tokenize(pipe, [config.instance_prompt] * len(idx)), g, config, blank
            )
        if class_images:
            cdx = torch.randint(0, len(class_images), (len(idx),), generator=g).tolist()
            class_latents = latents_of("class", cdx)
            with autocast(config, device):
                prior = diffusion_loss(
                    pipe, class_latents, tokenize(pipe, [config.class_prompt] * len(cdx)), g, config, blank
                )
            loss = loss + config.prior_loss_weight * prior
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        schedule.step()
        losses.append(loss.item())
    pipe.unet.eval()
    pipe.text_encoder.eval()
    return {
        "steps": steps,
        "optimizer": optimizer_name,
        "losses_last_20": losses[-20:],
        # how it ran (not settings: the same LoRA either way up to rounding): recorded for the reader
        "device": str(device),
        "attention": sorted({type(p).__name__ for p in pipe.unet.attn_processors.values()}),
        "gradient_scaler": scaler.is_enabled(),
        "torch": torch.__version__,
    }


def save_lora(pipe, folder: Path) -> Path:
    """The UNet's adapters as diffusers' LoRA file (``pipe.load_lora_weights`` reads it); the text
    encoder's beside it."""
    from diffusers import StableDiffusionPipeline
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    # contiguous: a channels-last UNet (bf16 on a CPU) holds its conv adapters in that layout
    unet = {k: v.contiguous() for k, v in get_peft_model_state_dict(pipe.unet).items()}
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=unet, safe_serialization=True)
    if getattr(pipe.text_encoder, "peft_config", None):
        text = {k: v.contiguous() for k, v in get_peft_model_state_dict(pipe.text_encoder).items()}
        save_file(text, folder / TEXT_LORA_FILE)
    return folder / LORA_FILE


def load_lora(pipe, folder: Path, config: InOutConfig) -> None:
    """Adapters shaped by ``config``, filled from ``save_lora``'s files."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    add_lora(pipe, config)
    unet = {k.removeprefix("unet."): v for k, v in load_file(folder / LORA_FILE).items()}
    set_peft_model_state_dict(pipe.unet, unet)
    if config.text_encoder_lora:
        set_peft_model_state_dict(pipe.text_encoder, load_file(folder / TEXT_LORA_FILE))
    pipe.unet.requires_grad_(False)
    pipe.text_encoder.requires_grad_(False)


def merge_lora(pipe, ratio: float) -> None:
    """Fold every LoRA into its base weight at ``ratio`` (kohya's ``merge_lora.py --ratios``)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for module in (pipe.unet, pipe.text_encoder):
        for layer in module.modules():
            if isinstance(layer, BaseTunerLayer) and not layer.merged:
                layer.scale_layer(ratio)
                layer.merge()


def finished_lora(lora_dir: Path, config: InOutConfig, fingerprints: dict[str, str]) -> bool:
    """Whether ``lora_dir`` holds a finished fine-tune made this way; one made otherwise is refused."""
    log = lora_dir / "training.json"
    if not log.is_file():
        return False
    wanted = {**finetune_settings(config), **fingerprints}
    refuse_mixed_settings(lora_dir, json.loads(log.read_text()).get("settings", {}), wanted, "its fine-tune was")
    return (lora_dir / LORA_FILE).is_file()


def ensure_lora(
    pipe, fingerprints: dict[str, str], lora_dir: Path, config: InOutConfig, positives: list, progress: bool
) -> None:
    """Give ``pipe`` the LoRA in ``lora_dir``: fine-tuned there now, or the one made there the same way
    on the same data and model (``fingerprints`` holds the data's and the model's) loaded."""
    if finished_lora(lora_dir, config, fingerprints):  # one fine-tune serves every N_aug
        load_lora(pipe, lora_dir, config)
        return
    wanted = {**finetune_settings(config), **fingerprints}
    log = lora_dir / "training.json"
    start = time.perf_counter()
    class_images = None
    resolution = config.resolution or native_resolution(pipe)
    if config.prior_preservation:
        seeds = [noise_seed(config.seed + 10_000, i) for i in range(config.num_class_images)]
        class_images = [
            np.asarray(im) for s in seeds for im in sample(pipe, [config.class_prompt], [s], config, resolution)
        ]
    with step(f"In&Out LoRA fine-tune ({config.total_steps(len(positives))} steps)"):
        report = finetune_lora(pipe, [load_image(s.image_path) for s in positives], config, class_images, progress)
    lora_dir.mkdir(parents=True, exist_ok=True)
    (lora_dir / MARKER).write_text("a fine-tune diag is writing; training.json marks it finished\n")
    save_lora(pipe, lora_dir)
    record = {
        "settings": wanted,
        **report,
        "n_class_images": len(class_images or []),
        "seconds": round(time.perf_counter() - start, 1),
    }
    write_text_atomic(log, json.dumps(record, indent=2) + "\n")  # last: marks the LoRA as finished
    (lora_dir / MARKER).unlink()


def training_positives(data: Path, ids: Sequence[str] | None) -> list:
    """The positives In&Out fine-tunes on: every training positive, or those of ``ids`` (a few-shot draw)."""
    _, positives = split_by_label(read_manifest(data, "train"))
    if ids is not None:
        positives = [s for s in positives if s.id in set(ids)]
    if not positives:
        raise DataError(f"{data / 'train.csv'}: no positive training images to fine-tune on")
    return positives


def positives_record(ids: Sequence[str] | None) -> dict:
    """What a fine-tune and a set record of a few-shot draw: its positives' ids (nothing for all of them)."""
    return {"positives": list(ids)} if ids is not None else {}


def finetune_inout(
    data: Path | str,
    config: InOutConfig,
    lora_dir: Path | str,
    pipe=None,
    progress: bool = True,
    positives: Sequence[str] | None = None,
) -> Path:
    """Only the fine-tune (or nothing, when ``lora_dir`` holds it already); returns ``lora_dir``.

    Why apart from ``generate_inout``: the parts of a set sampled in several processes at once
    (``part``) all load one LoRA, made before them. ``positives``: fine-tune on these training
    positives only (a few-shot draw's ids); None: on all of them."""
    from diag.data.fingerprint import data_fingerprint
    from diag.devices import resolve_device

    config.validate()
    data, lora_dir = Path(data), Path(lora_dir)
    chosen = training_positives(data, positives)
    refuse_foreign_folder(lora_dir, "training.json", "a fine-tune")
    fingerprints = {
        "data_fingerprint": data_fingerprint(data),
        "model_fingerprint": model_fingerprint(config.model),
        **positives_record(positives),
    }
    if finished_lora(lora_dir, config, fingerprints):  # made already: nothing to load
        return lora_dir
    pipe = pipe or load_base(config.model, resolve_device(config.device))
    pipe.set_progress_bar_config(disable=True)
    ensure_lora(pipe, fingerprints, lora_dir, config, chosen, progress)
    return lora_dir


def generate_inout(
    data: Path | str,
    out: Path | str,
    config: InOutConfig,
    pipe=None,
    progress: bool = True,
    lora_dir: Path | str | None = None,
    part: tuple[int, int] | None = None,
    positives: Sequence[str] | None = None,
) -> Path:
    """Fine-tune (or reuse ``lora_dir``, default ``out/lora``), then sample the missing images; returns the manifest.

    ``part=(k, K)``: only the missing images whose index is k modulo K (K processes share the set;
    the LoRA must be made first, by ``finetune_inout``); the manifest is then left to a last call
    without ``part``, which finds every image made and only writes it. ``positives``: as
    ``finetune_inout``'s (recorded in the set's ``set.json`` too)."""
    from diag.devices import resolve_device

    config.validate()
    data, out = Path(data), Path(out)
    chosen = training_positives(data, positives)
    lora_dir = Path(lora_dir) if lora_dir else out / "lora"
    refuse_foreign_folder(lora_dir, "training.json", "a fine-tune")  # never overwrite a user's own LoRA
    writer = OutputWriter(out)
    settings = writer.prepare(
        "inout",
        data,
        {**recorded_settings(config), "model_fingerprint": model_fingerprint(config.model), **positives_record(positives)},
    )
    done = writer.done()
    todo = [i for i in range(config.n_aug) if i not in done and (part is None or i % part[1] == part[0])]
    if not todo:  # a finished set (or part): no need to load the model
        return writer.manifest if part else writer.finish()
    device = resolve_device(config.device)
    pipe = pipe or load_base(config.model, device)
    pipe.set_progress_bar_config(disable=True)
    check_steps(pipe, config.steps, "inout")  # before the fine-tune, not after it
    resolution = config.resolution or native_resolution(pipe)
    fingerprints = {key: settings[key] for key in ("data_fingerprint", "model_fingerprint")} | positives_record(positives)
    if part is not None and not (lora_dir / "training.json").is_file():
        raise DataError(f"{lora_dir}: no finished fine-tune; a part of a set samples from one made before it")
    ensure_lora(pipe, fingerprints, lora_dir, config, chosen, progress)
    merge_lora(pipe, config.merge_ratio)
    pipe = with_sampler(pipe, config.sampler)  # after the fine-tune, which trains on the model's own schedule
    prepare_for_precision(pipe, config)
    empty = np.zeros((HEIGHT, WIDTH), bool)
    bar = progress_bar(total=len(todo), desc="In&Out", unit="img", disable=not progress)
    with writer.interruptible():
        for first in range(0, len(todo), config.batch_size):
            indices = todo[first : first + config.batch_size]
            seeds = [noise_seed(config.seed, index) for index in indices]
            images = sample(pipe, [config.instance_prompt] * len(indices), seeds, config, resolution)
            for index, seed, image in zip(indices, seeds, images):
                row = {
                    "prompt": config.instance_prompt,
                    "noise_seed": seed,
                    "mask": "none (text-to-image; empty placeholder)",
                    "lora": str(lora_dir),
                    **settings,
                }
                writer.write(index, image.resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC), empty, row)
            bar.update(len(indices))
    bar.close()
    return writer.manifest if part else writer.finish()
