"""Benchmark: how long the paper profile's steps take on a GPU, in each precision and batch size.
Prints figures; asserts nothing.

Weights cannot be downloaded everywhere, and compute does not depend on their values, so
each model is built at full size from its published architecture with random weights:
SDXL inpainting (UNet 2.6 B, two CLIP text encoders, VAE), SD-1.5 (UNet 0.86 B, CLIP-L) and
torchvision's ResNet-50. Each step is timed with the project's own code (``inpaint_batch``,
In&Out's ``diffusion_loss`` under its ``autocast`` and gradient scaler, the classifier's
``autocast`` with the ResNet channels-last) and then scaled to the paper profile's counts
(read from ``diag.config``: N_aug, seeds, epochs; KSDD2's split sizes from ``diag.data.ksdd2``).

    python benchmarks/paper_gpu.py [--quick]     # on a CUDA GPU: the book/reproduce.md table
    python benchmarks/paper_gpu.py --tiny        # tiny stand-ins on the CPU: checks the script runs
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from diag.config import profile_config
from diag.data.ksdd2 import KSDD2_COUNTS

PAPER = profile_config("paper")
N_AUGS, SEEDS, EPOCHS = tuple(PAPER.grid.n_augs), len(PAPER.grid.seeds), PAPER.classifier.epochs
TRAIN_NEGATIVE, TRAIN_POSITIVE = KSDD2_COUNTS["train"]["negative"], KSDD2_COUNTS["train"]["positive"]
TEST = sum(KSDD2_COUNTS["test"].values())


def timed(fn, repeats: int, device: str) -> float:
    """Seconds per call after one warm-up call."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    fn()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats


def free_memory(device: str) -> None:
    if device == "cuda":
        torch.cuda.empty_cache()


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


def diag_generation(args) -> dict[int, float]:
    """DIAG as the release runs it (30 steps, guidance 20, 1024 x 1024 canvas, fp16) at batch 1, 4 and 8:
    seconds per image for each. Each image of a batch keeps its own generator, so the set is the same."""
    from PIL import Image

    from diag.generate.diag import DiagConfig, inpaint_batch
    from diag.generate.prompts import load_prompts

    if args.tiny:
        from diag.testing import tiny_sdxl_inpaint_pipeline

        pipe, canvas, dtype = tiny_sdxl_inpaint_pipeline(), 256, "float32"
    else:
        pipe, canvas, dtype = sdxl_inpaint(torch.float16), 1024, "fp16"
    pipe.set_progress_bar_config(disable=True)
    config = DiagConfig(steps=2 if args.tiny else PAPER.diag.steps)
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(30, 60, (632, 224, 3), dtype=np.uint8)).resize((canvas, canvas))
    mask = np.zeros((canvas, canvas), np.uint8)
    mask[canvas * 2 // 5 : canvas * 11 // 20, canvas * 3 // 10 : canvas // 2] = 255
    mask = Image.fromarray(mask)
    paper = load_prompts()
    negative = paper.negative_prompt
    per_image = {}
    for batch in (1, 4, 8):
        call = lambda: inpaint_batch(  # noqa: E731
            pipe, [image] * batch, [mask] * batch, [paper.prompts[0]] * batch, list(range(batch)), config,
            negative, (canvas, canvas),
        )
        per_image[batch] = timed(call, 1 if args.quick else 3, args.device) / batch
        print(f"DIAG ({canvas}^2, {config.steps} steps, {dtype}) batch {batch}: {per_image[batch]:.2f} s per image, "
              f"{1 / per_image[batch]:.2f} images/s")
    pipe = None  # free the GPU for the next model
    free_memory(args.device)
    return per_image


def inout_finetune(args) -> tuple[dict[str, float], float]:
    """One In&Out LoRA step (batch 12, 512 px, the official LoRA, latents cached as the official run
    caches them) in each precision, and one sample in the paper profile's precision."""
    from dataclasses import replace

    from diag.generate.inout import (
        InOutConfig,
        add_lora,
        autocast,
        diffusion_loss,
        encode_pixels,
        prepare_for_precision,
        sample,
        tokenize,
    )

    size, batch = (64, 2) if args.tiny else (512, PAPER.inout.train_batch_size)
    precisions = ["no", "bf16"] + (["fp16", "fp16 + checkpointing"] if args.device == "cuda" else [])
    per_step: dict[str, float] = {}
    for precision in precisions:
        if args.tiny:
            from diag.testing import tiny_sd15_pipeline

            pipe = tiny_sd15_pipeline()
        else:
            pipe = sd15(torch.float32)  # weights float32: autocast computes in half precision
        pipe.set_progress_bar_config(disable=True)
        config = InOutConfig(
            device=args.device,
            mixed_precision=precision.split(" ")[0],
            gradient_checkpointing="checkpointing" in precision,
        )
        params = add_lora(pipe, config)
        optimizer = torch.optim.AdamW(params, lr=config.lr)
        prepare_for_precision(pipe, config)
        if config.gradient_checkpointing:
            pipe.unet.enable_gradient_checkpointing()
        scaler = torch.amp.GradScaler(args.device, enabled=config.mixed_precision == "fp16")
        pixels = torch.rand(batch, 3, size, size) * 2 - 1
        ids = tokenize(pipe, [config.instance_prompt] * batch)
        g = torch.Generator().manual_seed(0)
        latents = encode_pixels(pipe, pixels, g)  # once: the step below is the UNet's and the text encoder's

        def step() -> None:
            with autocast(config, pipe.unet.device):
                loss = diffusion_loss(pipe, latents, ids, g, config)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

        per_step[precision] = timed(step, 2 if args.quick else 5, args.device)
        print(f"In&Out LoRA step (batch {batch}, {size} px, {precision}): {per_step[precision]:.3f} s")
        if precision == PAPER.inout.mixed_precision or (args.tiny and precision == "no"):
            pipe.unet.eval()
            with torch.no_grad():
                steps = 2 if args.tiny else PAPER.inout.steps
                config = replace(config, steps=steps)
                per_image = timed(lambda: sample(pipe, [config.instance_prompt], [0], config, size),
                                  1 if args.quick else 3, args.device)
            print(f"In&Out sampling ({size} px, {steps} steps, {precision}): {per_image:.2f} s per image")
        pipe = None
        free_memory(args.device)
    return per_step, per_image


def resnet_throughput(args) -> dict[str, tuple[float, float]]:
    """Images/s of the classifier's training step and scoring at 224 x 632, batch 32, in float32 and bf16
    (channels-last, normalised on the device, as ``classify.train.fit`` runs it)."""
    from diag.classify.model import ResNetClassifier, build_resnet50
    from diag.classify.train import autocast

    batch, (height, width) = (4, (96, 64)) if args.tiny else (PAPER.classifier.batch_size, (632, 224))
    images = torch.randint(0, 255, (batch, height, width, 3), dtype=torch.uint8).to(args.device)
    target = torch.randint(0, 2, (batch,)).float().to(args.device)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    rates = {}
    for precision in ("no", "bf16"):
        model = ResNetClassifier(build_resnet50("none")).to(args.device).to(memory_format=torch.channels_last)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step() -> None:
            with autocast(precision, args.device):
                logits = model(images)
            loss = loss_fn(logits.float(), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        train = batch / timed(step, 2 if args.tiny else (5 if args.quick else 20), args.device)
        model.eval()
        with torch.no_grad(), autocast(precision, args.device):
            test = batch / timed(lambda: model(images), 2 if args.tiny else (5 if args.quick else 20), args.device)
        rates[precision] = (train, test)
        print(f"ResNet-50 ({width} x {height}, batch {batch}, {precision}): train {train:.0f} img/s, "
              f"score {test:.0f} img/s")
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--tiny", action="store_true", help="tiny stand-in models on the CPU: checks the script, "
                        "its figures mean nothing")
    args = parser.parse_args()
    args.device = "cpu" if args.tiny else "cuda"
    if args.device == "cuda":
        print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    diag_s = diag_generation(args)
    steps_s, sample_s = inout_finetune(args)
    resnet = resnet_throughput(args)
    best_batch = min(diag_s, key=diag_s.get)
    images = sum(N_AUGS)
    inout_precision = PAPER.inout.mixed_precision if PAPER.inout.mixed_precision in steps_s else "no"
    steps = PAPER.inout.total_steps(TRAIN_POSITIVE)
    cells = {
        "zero-shot": [TRAIN_NEGATIVE + n for n in N_AUGS],
        "full-shot": [TRAIN_NEGATIVE + TRAIN_POSITIVE + n for n in (0, *N_AUGS)],
    }
    print(f"\npaper profile, scaled to KSDD2 (estimates from the timings above; {SEEDS} seeds, {EPOCHS} epochs):")
    minutes = {
        f"DIAG, batch {best_batch}": images * diag_s[best_batch] / 60,
        f"In&Out fine-tune ({inout_precision})": steps * steps_s[inout_precision] / 60,
        "In&Out sampling": images * sample_s / 60,
    }
    for precision, (train, test) in resnet.items():
        for scenario, sizes in cells.items():
            seconds = SEEDS * sum(EPOCHS * (n / train + TEST / test) for n in sizes)
            minutes[f"{scenario} grid ({precision})"] = seconds / 60
    for name, value in minutes.items():
        print(f"  {name}: {value:.1f} min")
    classifier = PAPER.classifier.mixed_precision
    total = sum(v for k, v in minutes.items() if "grid" not in k or f"({classifier})" in k)
    print(f"  one GPU, paper defaults (In&Out {inout_precision}, classifier {classifier}): {total:.0f} min")


if __name__ == "__main__":
    main()
