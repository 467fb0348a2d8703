"""Benchmark: how long the paper profile's steps take on a GPU. Prints figures; asserts nothing.

Weights cannot be downloaded everywhere, and compute does not depend on their values, so
each model is built at full size from its published architecture with random weights:
SDXL inpainting (UNet 2.6 B, two CLIP text encoders, VAE), SD-1.5 (UNet 0.86 B, CLIP-L) and
torchvision's ResNet-50. Each step is timed with the project's own code and then scaled to
the paper profile's counts (N_aug 80 + 100 + 120, 3 seeds, 50 epochs, KSDD2's split sizes).

    python benchmarks/paper_gpu.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

KSDD2 = {"train_negative": 2085, "train_positive": 246, "test": 1004}
N_AUGS = (80, 100, 120)
SEEDS = 3


def timed(fn, repeats: int) -> float:
    """Seconds per call after one warm-up call."""
    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def clip_text(hidden: int, layers: int, heads: int, projection: int | None = None):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        vocab_size=49408,
        max_position_embeddings=77,
        projection_dim=projection or hidden,
        hidden_act="gelu",
    )
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)


def sd_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
    )


def sdxl_inpaint(dtype: torch.dtype):
    """StableDiffusionXLInpaintPipeline with SDXL-inpainting-0.1's architecture, random weights."""
    from diffusers import StableDiffusionXLInpaintPipeline, UNet2DConditionModel

    from diag.demo_model.tokenizer import build_clip_tokenizer
    from diag.testing import sdxl_scheduler

    unet = UNet2DConditionModel(
        sample_size=128,
        in_channels=9,
        out_channels=4,
        block_out_channels=(320, 640, 1280),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 10),
        attention_head_dim=(5, 10, 20),
        cross_attention_dim=2048,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2816,
    )
    tokenizer = build_clip_tokenizer(["white", "marks", "copper", "metal", "scratches"])
    scheduler = sdxl_scheduler()
    pipe = StableDiffusionXLInpaintPipeline(
        vae=sd_vae(),
        text_encoder=clip_text(768, 12, 12),
        text_encoder_2=clip_text(1280, 32, 20, projection=1280),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=scheduler,
        add_watermarker=False,
    )
    print(f"SDXL-inpaint UNet: {sum(p.numel() for p in unet.parameters()) / 1e9:.2f} B parameters")
    return pipe.to("cuda", dtype)


def sd15(dtype: torch.dtype):
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    from diag.demo_model.tokenizer import build_clip_tokenizer
    from diag.testing import sd15_scheduler

    unet = UNet2DConditionModel(
        sample_size=64, cross_attention_dim=768, attention_head_dim=8, block_out_channels=(320, 640, 1280, 1280)
    )
    scheduler = sd15_scheduler()
    pipe = StableDiffusionPipeline(
        vae=sd_vae(),
        text_encoder=clip_text(768, 12, 12),
        tokenizer=build_clip_tokenizer(["a", "photo", "of", "sks", "surface", "defect"]),
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return pipe.to("cuda", dtype)


def diag_generation(quick: bool) -> float:
    """DIAG as the release runs it: 30 steps, guidance 20, 1024 x 1024 canvas, batch 1, fp16."""
    from PIL import Image

    from diag.generate.diag import DiagConfig, inpaint_batch

    pipe = sdxl_inpaint(torch.float16)
    pipe.set_progress_bar_config(disable=True)
    config = DiagConfig(steps=30)
    image = Image.fromarray(np.random.default_rng(0).integers(30, 60, (632, 224, 3), dtype=np.uint8)).resize(
        (1024, 1024)
    )
    mask = np.zeros((1024, 1024), np.uint8)
    mask[400:560, 300:520] = 255
    mask = Image.fromarray(mask)
    seconds = timed(
        lambda: inpaint_batch(
            pipe,
            [image],
            [mask],
            ["white marks on the wall"],
            [0],
            config,
            "smooth, plain, black, dark, shadow",
            (1024, 1024),
        ),
        1 if quick else 3,
    )
    print(f"DIAG (SDXL inpaint, 1024^2, 30 steps, fp16): {seconds:.2f} s per image")
    pipe = None  # free the GPU for the next model
    torch.cuda.empty_cache()
    return seconds


def inout_finetune(quick: bool) -> tuple[float, float]:
    """One In&Out LoRA step (batch 12, 512 px, float32, the official LoRA, latents cached as the official
    run caches them) and one 512 px sample."""
    from diag.generate.inout import InOutConfig, add_lora, diffusion_loss, encode_pixels, sample, tokenize

    pipe = sd15(torch.float32)
    pipe.set_progress_bar_config(disable=True)
    config = InOutConfig(device="cuda")
    params = add_lora(pipe, config)
    optimizer = torch.optim.AdamW(params, lr=config.lr)
    pixels = torch.rand(12, 3, 512, 512) * 2 - 1
    ids = tokenize(pipe, [config.instance_prompt] * 12)
    g = torch.Generator().manual_seed(0)
    latents = encode_pixels(pipe, pixels, g)  # once: the step below is the UNet's and the text encoder's

    def step() -> None:
        loss = diffusion_loss(pipe, latents, ids, g, config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    per_step = timed(step, 2 if quick else 5)
    pipe.unet.eval()
    with torch.no_grad():
        per_image = timed(lambda: sample(pipe, [config.instance_prompt], [0], config, 512), 1 if quick else 3)
    print(
        f"In&Out LoRA step (batch 12, 512 px, fp32): {per_step:.3f} s; sampling (512 px, 30 steps): {per_image:.2f} s/image"
    )
    pipe = None  # free the GPU for the next model
    torch.cuda.empty_cache()
    return per_step, per_image


def resnet_epoch(quick: bool) -> float:
    """Images/s of one ResNet-50 training step at 224 x 632, batch 32 (the project's training loop's model)."""
    from diag.classify.model import ResNetClassifier, build_resnet50

    model = ResNetClassifier(build_resnet50("none")).cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    batch = torch.randint(0, 255, (32, 632, 224, 3), dtype=torch.uint8).cuda()
    target = torch.randint(0, 2, (32,)).float().cuda()
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def step() -> None:
        loss = loss_fn(model(batch), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    train = 32 / timed(step, 5 if quick else 20)
    model.eval()
    with torch.no_grad():
        test = 32 / timed(lambda: model(batch), 5 if quick else 20)
    print(f"ResNet-50 (224 x 632, batch 32, fp32): train {train:.0f} img/s, eval {test:.0f} img/s")
    return train, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    per_image = diag_generation(args.quick)
    step, sample_s = inout_finetune(args.quick)
    train, test = resnet_epoch(args.quick)
    images = sum(N_AUGS)
    from diag.generate.inout import InOutConfig

    steps = InOutConfig().total_steps(KSDD2["train_positive"])
    cells = {
        "zero-shot": [KSDD2["train_negative"] + n for n in N_AUGS],
        "full-shot": [KSDD2["train_negative"] + KSDD2["train_positive"] + n for n in (0, *N_AUGS)],
    }
    grid = {s: SEEDS * sum(50 * (n / train + KSDD2["test"] / test) for n in sizes) for s, sizes in cells.items()}
    print("\npaper profile, scaled to KSDD2 (estimates from the timings above):")
    print(f"  DIAG: {images} images x {per_image:.2f} s = {images * per_image / 60:.1f} min")
    print(
        f"  In&Out fine-tune: {steps} steps x {step:.3f} s = {steps * step / 60:.1f} min; "
        f"sampling {images} images: {images * sample_s / 60:.1f} min"
    )
    for scenario, seconds in grid.items():
        print(
            f"  {scenario} grid: {len(cells[scenario]) * SEEDS} classifiers x 50 epochs (train + test each epoch): "
            f"{seconds / 60:.1f} min"
        )


if __name__ == "__main__":
    main()
