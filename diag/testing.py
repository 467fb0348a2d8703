"""Tiny, randomly initialised diffusion pipelines built offline, for tests and benchmarks, and
generated sets written from existing images (``copied_set``).

They run the real diffusers pipeline code with the real latent geometry (a VAE with four
blocks: scale factor 8) at a fraction of the cost, so the generators' logic can be tested
without any download. Nothing in the package's own code paths uses them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from diag.demo_model.tokenizer import build_clip_tokenizer


def copied_set(
    data: Path | str,
    out: Path | str,
    sources: Sequence[Path],
    generator: str = "diag",
    masks: str = "gt",
    mask_sources: Sequence[Path] | None = None,
    **settings,
) -> Path:
    """A generated set in diag's layout (``set.json``, hashed rows) whose images are copies of ``sources``
    (masks of ``mask_sources``, else empty): a stand-in for a generator's output that every consumer
    accepts as made from ``data`` by ``generator``."""
    import numpy as np
    from PIL import Image

    from diag.generate.output import OutputWriter

    writer = OutputWriter(out)
    recorded = writer.prepare(generator, data, {"masks": masks, **settings} if generator == "diag" else settings)
    for index, source in enumerate(sources):
        image = Image.open(source).convert("RGB")
        mask = (
            np.asarray(Image.open(mask_sources[index]).convert("L")) > 0
            if mask_sources
            else np.zeros((image.height, image.width), bool)
        )
        writer.write(index, image, mask, {"source": Path(source).name, **recorded})
    writer.finish()
    return Path(out)


def tiny_vae(sample_size: int):
    """A 4-block AutoencoderKL (scale factor 8, like SD's) with 16 channels per block."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(16, 16, 16, 16),
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        norm_num_groups=8,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        sample_size=sample_size,
        force_upcast=False,  # float32 already; avoids a per-call dtype round trip (and its warning)
    )


def sdxl_scheduler():
    """SDXL's own scheduler (its scheduler_config.json), for stand-ins of any size."""
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1, timestep_spacing="leading"
    )


def sd15_scheduler():
    """SD-1.5's own scheduler (its scheduler_config.json), for stand-ins of any size."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


def tiny_sdxl_inpaint_pipeline(seed: int = 0):
    """A random StableDiffusionXLInpaintPipeline with SDXL's structure at toy size (native 256 px)."""
    from diffusers import StableDiffusionXLInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=9,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=6 * 8 + 32,  # 6 time ids x 8 + pooled text (32)
        cross_attention_dim=64,
        norm_num_groups=16,
    )
    vae = tiny_vae(256)
    tokenizer = build_clip_tokenizer(["white", "marks", "on", "the", "wall", "copper", "metal", "scratches"])
    config = tiny_text_config(tokenizer, projection_dim=32, hidden_act="gelu")
    scheduler = sdxl_scheduler()
    return StableDiffusionXLInpaintPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(config),
        text_encoder_2=CLIPTextModelWithProjection(config),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=scheduler,
        add_watermarker=False,
    )


def tiny_text_config(tokenizer, **extra):
    """A 2-layer, 32-wide CLIP text encoder config whose vocabulary and special tokens are ``tokenizer``'s."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )


def tiny_sd15_pipeline(seed: int = 0):
    """A random StableDiffusionPipeline with SD-1.5's structure at toy size (native 64 px)."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    tokenizer = build_clip_tokenizer(["a", "photo", "of", "sks", "surface", "defect"])
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=16,
    )
    vae = tiny_vae(64)
    config = tiny_text_config(tokenizer)
    scheduler = sd15_scheduler()
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(config),
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
