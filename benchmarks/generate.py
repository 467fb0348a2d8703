"""Benchmark: DIAG generation cost per image. Prints figures; asserts nothing.

On this CPU, with the tiny random SDXL-inpaint pipeline (the real diffusers code at toy
size) and with the bundled demo model: seconds per image and peak memory for the release
settings (canvas ``release``, batch 1) vs ``--canvas aspect`` and ``--batch-size 4``, at 30
steps. On a GPU (when one is lent), the same with a randomly initialised full-size
SDXL-inpaint UNet: compute does not depend on weight values.

    python benchmarks/generate.py [--images 8] [--threads 2] [--full-size-sdxl]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch


def run(pipe, data: Path, config, images: int) -> tuple[float, float]:
    from diag.generate.diag import generate_diag

    with tempfile.TemporaryDirectory() as out:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        generate_diag(data, out, replace(config, n_aug=images), pipe=pipe, progress=False)
        seconds = (time.perf_counter() - start) / images
    if torch.cuda.is_available():
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return seconds, peak


def full_size_sdxl(device: str):
    """SDXL-inpaint's architecture with random weights (configs written out; no download)."""
    from diffusers import UNet2DConditionModel

    from diag.testing import tiny_sdxl_inpaint_pipeline

    pipe = tiny_sdxl_inpaint_pipeline()
    pipe.unet = UNet2DConditionModel(
        sample_size=128,
        in_channels=9,
        out_channels=4,
        layers_per_block=2,
        block_out_channels=(320, 640, 1280),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 10),
        attention_head_dim=(5, 10, 20),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2816 - 1280 + 32,
        cross_attention_dim=64,
    )
    return pipe.to(device, torch.float16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full-size-sdxl", action="store_true", help="GPU only: a random full-size SDXL UNet")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from diag.data.synthetic import synthesize
    from diag.generate.diag import DiagConfig, load_pipeline
    from diag.generate.loading import DEMO_MODEL
    from diag.testing import tiny_sdxl_inpaint_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "replica"
        synthesize(data, scale="small", progress=False)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        pipes = {
            "tiny SDXL-inpaint (random)": (tiny_sdxl_inpaint_pipeline().to(device), DiagConfig(steps=30, device=device))
        }
        demo = load_pipeline(DEMO_MODEL, torch.device(device))
        from diag.workflow import settings

        pipes["diag-demo-inpaint"] = (demo, replace(settings("demo").diag, device=device))
        if args.full_size_sdxl:
            pipes = {
                "full-size SDXL UNet (random, fp16)": (full_size_sdxl(device), DiagConfig(steps=30, device=device))
            }
        print(f"{'pipeline':<36} {'setting':<22} {'s/image':>8} {'images/s':>9} {'peak MiB':>9}")
        for name, (pipe, config) in pipes.items():
            settings_to_try = {
                "release, batch 1": config,
                "aspect, batch 1": replace(config, canvas="aspect"),
                "release, batch 4": replace(config, batch_size=4),
            }
            if config.canvas == "crop":
                settings_to_try = {
                    "crop (demo), batch 1": config,
                    "crop (demo), batch 4": replace(config, batch_size=4),
                }
            base = None
            for label, cfg in settings_to_try.items():
                seconds, peak = run(pipe, data, cfg, args.images)
                base = base or seconds
                print(
                    f"{name:<36} {label:<22} {seconds:>8.2f} {1 / seconds:>9.2f} {peak:>9.0f}   ({base / seconds:.2f}x)"
                )


if __name__ == "__main__":
    main()
