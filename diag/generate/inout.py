"""In&Out (Capogrosso et al. 2024), the paper's second baseline: DreamBooth + LoRA, then sampling.

    diag generate inout --data PREPARED --out OUT --n-aug 100       # SD-1.5, needs the internet
    diag generate inout --data PREPARED --out OUT --model diag-demo-inpaint   # offline demo

1. Fine-tune: LoRA adapters (peft) on the UNet's attention projections (to_q/k/v/out), rank
   and alpha configurable (In&Out: 32 / 16, lr 1e-5, 512 x 512), on the training positives
   with an instance prompt holding a rare token ("a photo of sks surface defect"); loss =
   noise-prediction MSE; optional prior preservation with class images that the base
   model generates from the class prompt. The LoRA is saved as safetensors.
2. Sample N_aug images text-to-image from the instance prompt (one seeded generator per
   image) and resize them to 224 x 632.

In&Out images carry no mask; the output layout still has ``masks/`` (empty placeholders,
so every generator writes the same layout) and the manifest says so. The classifier uses
image-level labels only.

Inpainting models (the demo model) are fine-tuned and sampled text-to-image by giving the
UNet a full mask and a blank masked image: the same objective, with their input layout.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import retrieve_latents

from diag.data.ksdd2 import DataError, load_image, read_manifest, split_by_label
from diag.data.prepare import HEIGHT, WIDTH
from diag.generate.diag import native_resolution
from diag.generate.loading import load_diffusers_pipeline
from diag.generate.output import OutputWriter, recorded_settings, refuse_mixed_settings
from diag.generate.plan import noise_seed

SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"
LORA_FILE = "pytorch_lora_weights.safetensors"


@dataclass
class InOutConfig:
    model: str = SD15
    n_aug: int = 100
    seed: int = 0
    instance_prompt: str = "a photo of sks surface defect"
    class_prompt: str = "a photo of surface defect"
    prior_preservation: bool = False
    num_class_images: int = 200
    prior_loss_weight: float = 1.0
    train_steps: int = 400
    rank: int = 32
    alpha: int = 16
    lr: float = 1e-5
    resolution: int | None = None  # None: the model's native size (512 for SD-1.5)
    train_batch_size: int = 1
    steps: int = 30  # sampling
    guidance: float = 7.5
    batch_size: int = 1  # sampling batch (images per pipeline call)
    device: str = "auto"


def load_base(model: str, device: torch.device):
    """SD-1.5 (hub id) or a local diffusers folder (the demo model is an inpainting pipeline).

    float32 everywhere: the LoRA is trained on this pipeline and fp16 weights without a
    gradient scaler would underflow.
    """
    return load_diffusers_pipeline(model, device, hub_class="StableDiffusionPipeline", dtype=torch.float32)


def is_inpainting(pipe) -> bool:
    return pipe.unet.config.in_channels == 9


def sample(pipe, prompts: list[str], seeds: list[int], config: InOutConfig, resolution: int) -> list[Image.Image]:
    """Text-to-image; inpainting models get a blank image and a full mask."""
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    kwargs = dict(prompt=prompts, height=resolution, width=resolution, num_inference_steps=config.steps,
                  guidance_scale=config.guidance, generator=generators)
    if is_inpainting(pipe):
        blank = Image.new("RGB", (resolution, resolution), (0, 0, 0))
        full = Image.new("L", (resolution, resolution), 255)
        kwargs |= dict(image=[blank] * len(prompts), mask_image=[full] * len(prompts), strength=1.0)
    return pipe(**kwargs).images


def to_model_input(images: list[np.ndarray], resolution: int) -> torch.Tensor:
    x = np.stack([np.asarray(Image.fromarray(im).resize((resolution, resolution), Image.Resampling.BICUBIC)) for im in images])
    return torch.from_numpy(x).permute(0, 3, 1, 2).float() / 127.5 - 1


def add_lora(unet, rank: int, alpha: int) -> list[torch.nn.Parameter]:
    """LoRA on the attention projections; every other weight frozen. Returns the trainable ones."""
    from peft import LoraConfig

    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian",
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    return [p for p in unet.parameters() if p.requires_grad]


def diffusion_loss(pipe, pixels: torch.Tensor, ids: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Noise-prediction MSE, with the inpainting UNet's full-mask input where needed."""
    device = pipe.unet.device
    scale = pipe.vae.config.scaling_factor
    with torch.no_grad():
        latents = retrieve_latents(pipe.vae.encode(pixels.to(device)), generator=g) * scale
        text = pipe.text_encoder(ids.to(device))[0]
    noise = torch.randn(latents.shape, generator=g).to(device)
    t = torch.randint(0, pipe.scheduler.config.num_train_timesteps, (len(latents),), generator=g).to(device)
    model_input = pipe.scheduler.add_noise(latents, noise, t)
    if is_inpainting(pipe):
        with torch.no_grad():
            blank = retrieve_latents(pipe.vae.encode(torch.zeros_like(pixels).to(device)), sample_mode="argmax") * scale
        model_input = torch.cat([model_input, torch.ones_like(latents[:, :1]), blank], 1)
    return F.mse_loss(pipe.unet(model_input, t, text).sample.float(), noise.float())


def finetune_lora(pipe, instance: list[np.ndarray], config: InOutConfig, class_images: list[np.ndarray] | None = None,
                  progress: bool = True) -> list[float]:
    """DreamBooth + LoRA on ``instance`` images; returns the loss per step."""
    resolution = config.resolution or native_resolution(pipe)
    params = add_lora(pipe.unet, config.rank, config.alpha)
    optimizer = torch.optim.AdamW(params, lr=config.lr)
    g = torch.Generator().manual_seed(config.seed)
    tokenize = lambda text, n: pipe.tokenizer([text] * n, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                                              truncation=True, return_tensors="pt").input_ids
    pipe.unet.train()
    losses = []
    for _ in tqdm(range(config.train_steps), desc="In&Out LoRA", disable=not progress):
        idx = torch.randint(0, len(instance), (config.train_batch_size,), generator=g).tolist()
        loss = diffusion_loss(pipe, to_model_input([instance[i] for i in idx], resolution), tokenize(config.instance_prompt, len(idx)), g)
        if class_images:
            cdx = torch.randint(0, len(class_images), (config.train_batch_size,), generator=g).tolist()
            prior = diffusion_loss(pipe, to_model_input([class_images[i] for i in cdx], resolution), tokenize(config.class_prompt, len(cdx)), g)
            loss = loss + config.prior_loss_weight * prior
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    pipe.unet.eval()
    return losses


def save_lora(pipe, folder: Path) -> Path:
    from diffusers import StableDiffusionPipeline
    from peft import get_peft_model_state_dict

    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=get_peft_model_state_dict(pipe.unet), safe_serialization=True)
    return folder / LORA_FILE


def generate_inout(data: Path | str, out: Path | str, config: InOutConfig, pipe=None, progress: bool = True) -> Path:
    """Fine-tune (or reuse ``out/lora``), then sample the missing images; returns the manifest."""
    from diag.devices import resolve_device

    _, positives = split_by_label(read_manifest(data, "train"))
    if not positives:
        raise DataError(f"{Path(data) / 'train.csv'}: no positive training images to fine-tune on")
    out = Path(out)
    lora_dir = out / "lora"
    settings = recorded_settings(config)
    writer = OutputWriter(out)
    writer.check_settings(settings)
    if (lora_dir / "training.json").is_file():
        trained = json.loads((lora_dir / "training.json").read_text())
        refuse_mixed_settings(lora_dir, trained, settings, "its fine-tune was")
    done = writer.done()
    todo = [index for index in range(config.n_aug) if index not in done]
    if not todo:  # a finished set: no need to load the model
        return writer.finish()
    device = resolve_device(config.device)
    pipe = pipe or load_base(config.model, device)
    pipe.set_progress_bar_config(disable=True)
    resolution = config.resolution or native_resolution(pipe)
    start = time.perf_counter()
    if (lora_dir / LORA_FILE).is_file():  # resume: the fine-tune is done
        pipe.load_lora_weights(lora_dir, weight_name=LORA_FILE)
    else:
        class_images = None
        if config.prior_preservation:
            seeds = [noise_seed(config.seed + 10_000, i) for i in range(config.num_class_images)]
            class_images = [np.asarray(im) for s in seeds for im in sample(pipe, [config.class_prompt], [s], config, resolution)]
        losses = finetune_lora(pipe, [load_image(s.image_path) for s in positives], config, class_images, progress)
        save_lora(pipe, lora_dir)
        (lora_dir / "training.json").write_text(json.dumps({**asdict(config), "losses": losses[-20:],
                                                            "seconds": round(time.perf_counter() - start, 1)}, indent=2))
    empty = np.zeros((HEIGHT, WIDTH), bool)
    bar = tqdm(total=len(todo), desc="In&Out", unit="img", disable=not progress)
    for first in range(0, len(todo), config.batch_size):
        indices = todo[first : first + config.batch_size]
        seeds = [noise_seed(config.seed, index) for index in indices]
        images = sample(pipe, [config.instance_prompt] * len(indices), seeds, config, resolution)
        for index, seed, image in zip(indices, seeds, images):
            row = {"prompt": config.instance_prompt, "noise_seed": seed, "mask": "none (text-to-image; empty placeholder)",
                   **settings}
            writer.write(index, image.resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC), empty, row)
        bar.update(len(indices))
    bar.close()
    return writer.finish()
