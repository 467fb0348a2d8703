"""The demo model's components, at laptop scale, in diffusers' own classes.

Measured choices (see the model card): a norm-free ``AutoencoderTiny`` (TAESD's design, scale
factor 2; a 4x autoencoder blurred KSDD2's fine speckle into a flat, "pasted" look, and
scale 1 made the UNet 3x slower) whose RGB channels start as an exact pass-through (see
``colour_preserving_init``), a 3-level UNet (32/64/128 channels, 3.9 M parameters) with the usual inpainting
input (4 noisy + 1 mask + 4 masked-image latent channels) and cross-attention at the
coarsest level only, and a 2-layer CLIP text encoder over a vocabulary of the corpus's
words (one token per word). Native resolution 64 x 64 (latents 32 x 32): the generator
inpaints a crop around the mask at that size.
"""

from __future__ import annotations

import torch
from torch import nn
from diffusers import (
    AutoencoderTiny,
    DDIMScheduler,
    DDPMScheduler,
    StableDiffusionInpaintPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel

from diag.demo_model.corpus import vocabulary
from diag.demo_model.tokenizer import build_clip_tokenizer

RESOLUTION = 64
MAX_TOKENS = 32  # the demo's prompts are short; a shorter context makes the encoder cheaper
# Stable Diffusion's betas rescaled to a zero terminal SNR, with v-prediction (Lin et al. 2024, "Common Diffusion
# Noise Schedules and Sample Steps Are Flawed"; diffusers' ``rescale_betas_zero_snr``). Why: with SD's own schedule
# the last timestep still leaks the latents' mean to the UNet, so it never learns to set a whole image's brightness;
# sampled from pure noise with a full mask (In&Out), every prompt came out mid-grey (mean grey 134 for "plain dark
# metal" after 1000 steps; 115 with offset noise 0.1 after 600). At zero SNR the noise prediction is undefined at
# the last step, hence v-prediction, and sampling starts at the last timestep ("trailing" spacing).
BETAS = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    num_train_timesteps=1000,
    rescale_betas_zero_snr=True,
    prediction_type="v_prediction",
)


def build_tokenizer():
    return build_clip_tokenizer(vocabulary(), model_max_length=MAX_TOKENS)


def build_text_encoder(vocab_size: int, tokenizer) -> CLIPTextModel:
    config = CLIPTextConfig(
        hidden_size=64,
        intermediate_size=128,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=vocab_size,
        max_position_embeddings=MAX_TOKENS,
        projection_dim=64,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(config)


def build_vae() -> AutoencoderTiny:
    vae = AutoencoderTiny(
        encoder_block_out_channels=(48, 48),
        decoder_block_out_channels=(48, 48),
        num_encoder_blocks=(1, 2),
        num_decoder_blocks=(2, 1),
        latent_channels=4,
    )
    colour_preserving_init(vae)
    return vae


def colour_preserving_init(vae: AutoencoderTiny) -> None:
    """Start the autoencoder as 2x2-average-down / nearest-up of RGB in latent channels 0-2.

    Why by hand: trained from a random start for the few hundred steps a CPU allows, an
    AutoencoderKL (measured: 200 steps) and this AutoencoderTiny (150 steps) both decoded
    every colour as beige-grey (per-image colour error no better than a grey output), so
    no prompt could ask for copper. No library offers this initialisation. The network has
    no normalisation layers and its inputs are in [0, 1], so an RGB path of identity
    kernels survives every ReLU: each convolution copies channels 0-2 (the stride-2 one
    averages a 2x2 block), each residual block's last convolution adds nothing to them,
    and the latents hold RGB - 0.5 (zero-centred for diffusion). Channel 3 and all other
    features keep their random start and learn the texture the average misses.
    """
    block_outputs = {id(m.conv[-1]) for m in vae.modules() if hasattr(m, "fuse")}
    encoder_out, decoder_in = vae.encoder.layers[-1], vae.decoder.layers[0]
    with torch.no_grad():
        for module in vae.modules():
            if not isinstance(module, nn.Conv2d):
                continue
            module.weight[:3] = 0
            if module.bias is not None:
                module.bias[:3] = 0
            if id(module) in block_outputs:
                continue  # the residual branch adds nothing to the RGB channels
            for k in range(3):
                if module.stride == (2, 2):
                    module.weight[k, k, 1:, 1:] = 0.25  # with padding 1: the 2x2 block's average
                else:
                    module.weight[k, k, 1, 1] = 1.0
        encoder_out.bias[:3] = -0.5
        decoder_in.bias[:3] = 0.5


def build_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=RESOLUTION // 2,
        in_channels=9,
        out_channels=4,
        block_out_channels=(32, 64, 128),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        cross_attention_dim=64,
        attention_head_dim=8,
        norm_num_groups=16,
    )


def training_scheduler() -> DDPMScheduler:
    return DDPMScheduler(**BETAS)


def sampling_scheduler() -> DDIMScheduler:
    # steps_offset 1: what the pipelines expect (they warn otherwise); "trailing" spacing does not use it
    return DDIMScheduler(
        **BETAS, clip_sample=False, set_alpha_to_one=False, steps_offset=1, timestep_spacing="trailing"
    )


def assemble_pipeline(vae, text_encoder, tokenizer, unet) -> StableDiffusionInpaintPipeline:
    """The components as a standard diffusers inpainting pipeline (loads with from_pretrained)."""
    return StableDiffusionInpaintPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=sampling_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
