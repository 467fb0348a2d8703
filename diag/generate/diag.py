"""DIAG: inpaint an expert-described defect into defect-free images (Sec. III-B of the paper).

    diag generate diag --profile paper --data PREPARED --out OUT --n-aug 100   # SDXL, the paper's settings
    diag generate diag --data PREPARED --out OUT --n-aug 100                   # the offline demo model

For each planned image (see ``plan.py``): take the defect-free image and the region mask,
resize both to the canvas (``release``: the model's native square, 1024 x 1024 for SDXL, as
the authors' script does; ``aspect``: the same pixel budget at KSDD2's 224:632 aspect;
``crop``: no resize at all, for small models such as the demo's), crop around the mask with
``padding_mask_crop`` pixels of padding (expanded to the canvas aspect), inpaint that crop
at canvas size, paste it back inside the mask only, and resize the result and the mask back
to 224 x 632.

diffusers' ``padding_mask_crop`` accepts one PIL image per call, so to batch different
images we do its crop -> resize -> paste-back ourselves, with the pipeline's own
``get_crop_region`` and ``apply_overlay``; at batch size 1 this matches the pipeline's own
``padding_mask_crop`` (tested).
"""

from __future__ import annotations

import inspect
import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from diag.data.ksdd2 import HEIGHT, WIDTH, load_mask, read_manifest, split_by_label
from diag.errors import ConfigError, DataError
from diag.generate.loading import (
    SAMPLERS,
    check_steps,
    load_diffusers_pipeline,
    model_fingerprint,
    native_resolution,
    with_sampler,
)
from diag.generate.masks import folder_masks, gt_masks, procedural_mask
from diag.generate.output import MAX_IMAGES, OutputWriter, recorded_settings
from diag.generate.plan import PlanItem, release_plan
from diag.generate.prompts import load_prompts
from diag.progress import bar as progress_bar

SDXL_INPAINT = "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"
CANVASES = ("release", "aspect", "crop")


@dataclass
class DiagConfig:
    model: str = SDXL_INPAINT  # hub id, local diffusers folder, or "diag-demo-inpaint"
    prompts: str | None = None  # prompt file (YAML/JSON); None: the paper's two prompts
    masks: str = "gt"  # "gt" (training positives' masks), "procedural", or a folder of masks
    n_aug: int = 100
    seed: int = 0
    # the paper's call arguments
    steps: int = 30
    sampler: str = "model"  # "model": the release's own scheduler; "dpm-solver++" (see loading.SAMPLERS)
    guidance: float = 20.0
    strength: float = 0.99
    padding_mask_crop: int = 2
    canvas: str = "release"
    # paste-back: 0 pastes the fill inside the mask as it is (the release); r > 0 feathers it over r pixels
    # inside the mask's edge (see ``feathered``)
    mask_blur: float = 0.0
    # hardware
    batch_size: int = 1
    device: str = "auto"

    def validate(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"diag.sampler: must be one of {SAMPLERS}; got {self.sampler!r}")
        if self.canvas not in CANVASES:
            raise ConfigError(f"diag.canvas: must be one of {CANVASES}; got {self.canvas!r}")
        if not 0 < self.strength <= 1:
            raise ConfigError(f"diag.strength: must be in (0, 1]; got {self.strength!r}")
        if not (math.isfinite(self.guidance) and self.guidance >= 1):
            raise ConfigError(
                f"diag.guidance: must be a finite number >= 1 (1 = no guidance); "
                f"got {self.guidance!r}"
            )
        for name in ("n_aug", "steps", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"diag.{name}: must be >= 1; got {getattr(self, name)!r}")
        if self.n_aug > MAX_IMAGES:
            raise ConfigError(f"diag.n_aug: must be at most {MAX_IMAGES:,}; got {self.n_aug!r}")
        if not (math.isfinite(self.mask_blur) and self.mask_blur >= 0):
            raise ConfigError(f"diag.mask_blur: must be a number >= 0; got {self.mask_blur!r}")
        for name in ("seed", "padding_mask_crop"):
            if int(getattr(self, name)) < 0:
                raise ConfigError(f"diag.{name}: must be >= 0; got {getattr(self, name)!r}")
        if int(self.steps * self.strength) < 1:  # diffusers runs int(steps x strength) steps
            raise ConfigError(
                f"diag.steps: times diag.strength must give at least one step; got steps {self.steps} "
                f"x strength {self.strength} = {self.steps * self.strength:g}"
            )


def load_pipeline(model: str, device: torch.device):
    """An inpainting pipeline (SDXL-inpaint for hub ids), fp16 weights on CUDA, float32 on CPU."""
    fp16 = device.type == "cuda"
    return load_diffusers_pipeline(
        model,
        device,
        hub_class="StableDiffusionXLInpaintPipeline",
        dtype=torch.float16 if fp16 else torch.float32,
        fp16_variant=fp16,
        require_inpainting=True,
    )


def canvas_size(pipe, canvas: str) -> tuple[int, int]:
    """(height, width) of the canvas the model inpaints on."""
    side = native_resolution(pipe)
    if canvas in ("release", "crop"):
        return side, side  # the release stretches 224 x 632 to a square
    # aspect: KSDD2's 632:224 shape at about the native pixel budget, multiples of 8
    scale = (side * side / (WIDTH * HEIGHT)) ** 0.5
    return int(round(HEIGHT * scale / 8)) * 8, int(round(WIDTH * scale / 8)) * 8


def warn_long_prompts(tokenizer, prompts: Sequence[str]) -> None:
    """CLIP reads 77 tokens; say what a longer prompt loses."""
    limit = tokenizer.model_max_length
    for prompt in prompts:
        ids = tokenizer(prompt, truncation=False).input_ids
        if len(ids) > limit:
            cut = tokenizer.decode(ids[limit - 1 : -1])
            warnings.warn(f"prompt is {len(ids)} tokens, CLIP reads {limit}: this part is cut: {cut!r}", stacklevel=2)


def mask_for(item: PlanItem, mask_paths: dict[str, Path] | None, seed: int) -> np.ndarray:
    if mask_paths is None:
        return procedural_mask(seed, item.index)
    mask = load_mask(mask_paths[item.mask])
    if not mask.any():
        raise DataError(f"{mask_paths[item.mask]}: mask has no foreground")
    return mask


def feathered(mask: Image.Image, radius: float) -> Image.Image:
    """The paste-back mask as a ramp: 0 at the mask's edge, full strength ``radius`` pixels inside it.

    Why: a small model's fill, pasted with a hard edge, leaves a seam in the mask's shape that real
    defects (which fade inside their coarse masks) do not have; the realism probe found it (the demo
    model's card). Nothing outside the mask changes. A part of the mask thinner than ``2 * radius``
    ramps up to its own centre line, so no defect is ever feathered away. Written here because
    diffusers offers only a Gaussian blur (``mask_processor.blur``), which would also paste the
    fill's surround outside the mask.
    """
    if radius <= 0:
        return mask
    from scipy import ndimage

    inside = np.asarray(mask.convert("L")) > 127
    depth = ndimage.distance_transform_edt(inside)
    parts, count = ndimage.label(inside)
    deepest = np.asarray(ndimage.maximum(depth, parts, index=np.arange(1, count + 1)), float).reshape(-1)
    reach = np.minimum(radius, np.r_[radius, deepest])[parts]  # per part: a thin one ramps up to its centre line
    alpha = np.clip(depth / reach, 0, 1)
    return Image.fromarray(np.rint(alpha * 255).astype(np.uint8), mode="L")


def inpaint_batch(
    pipe,
    images: list[Image.Image],
    masks: list[Image.Image],
    prompts: list[str],
    seeds: list[int],
    config: DiagConfig,
    negative_prompt: str,
    canvas: tuple[int, int],
) -> list[Image.Image]:
    """padding_mask_crop for a batch: crop each around its mask, inpaint all at once, paste back."""
    height, width = canvas
    crops = [pipe.mask_processor.get_crop_region(m, width, height, pad=config.padding_mask_crop) for m in masks]
    extra = {}
    if (
        "original_size" in inspect.signature(pipe.__call__).parameters
    ):  # SDXL micro-conditioning, as the release sets it
        extra = {"original_size": (height, width), "target_size": (height, width)}
    result = pipe(
        prompt=prompts,
        negative_prompt=[negative_prompt] * len(prompts),
        image=[im.crop(c) for im, c in zip(images, crops)],
        mask_image=[m.crop(c) for m, c in zip(masks, crops)],
        height=height,
        width=width,
        num_inference_steps=config.steps,
        guidance_scale=config.guidance,
        strength=config.strength,
        generator=[torch.Generator().manual_seed(s) for s in seeds],
        **extra,
    ).images
    return [
        pipe.image_processor.apply_overlay(feathered(m, config.mask_blur), im, out, c)
        for m, im, out, c in zip(masks, images, result, crops)
    ]


def inpaint_into(
    pipe,
    images: list[Image.Image],
    masks: list[np.ndarray],
    prompts: list[str],
    seeds: list[int],
    config: DiagConfig,
    negative_prompt: str,
) -> list[tuple[Image.Image, np.ndarray]]:
    """DIAG's whole step for KSDD2-sized images and boolean masks: resized to the working canvas
    (``config.canvas``), inpainted (``inpaint_batch``), resized back; each result with its mask at
    KSDD2's size. ``generate_diag`` and the prompt lab both call this, so the lab previews what
    ``diag generate`` makes, on every canvas."""
    canvas = canvas_size(pipe, config.canvas)
    work = (HEIGHT, WIDTH) if config.canvas == "crop" else canvas  # the size the image is inpainted at
    resized = [im.convert("RGB").resize(work[::-1], Image.Resampling.BICUBIC) for im in images]
    mask_images = [Image.fromarray(m.astype(np.uint8) * 255).resize(work[::-1], Image.Resampling.NEAREST) for m in masks]
    results = inpaint_batch(pipe, resized, mask_images, prompts, seeds, config, negative_prompt, canvas)
    return [
        (
            result.resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC),
            np.asarray(mask_image.resize((WIDTH, HEIGHT), Image.Resampling.NEAREST)) > 0,
        )
        for result, mask_image in zip(results, mask_images)
    ]


def diffusers_version() -> str:
    import diffusers

    return diffusers.__version__


def generate_diag(
    data: Path | str,
    out: Path | str,
    config: DiagConfig,
    pipe=None,
    progress: bool = True,
    part: tuple[int, int] | None = None,
    positives: Sequence[str] | None = None,
) -> Path:
    """Generate ``config.n_aug`` images into ``out`` (resumable); returns the manifest path.

    ``positives``: the ids of the only training positives whose masks may be drawn (the few-shot
    scenario's k, recorded in ``set.json``); None: every positive's (the paper).

    Runs under ``accelerate launch`` too: each process takes every k-th missing index. ``part=(k, K)``
    shares the set by hand (``diag.jobs`` runs a set's parts in K worker processes): the missing
    indices that are k modulo K, and the manifest is left to a last call without ``part``.
    """
    from accelerate import PartialState

    # 1. check inputs and draw the whole plan
    config.validate()
    prompt_set = load_prompts(config.prompts)
    negatives, _ = split_by_label(read_manifest(data, "train"))
    if not negatives:
        raise DataError(f"{Path(data) / 'train.csv'}: no negative training images to inpaint into")
    if positives is not None and config.masks != "gt":
        raise ConfigError(f"diag.masks: a set from drawn real positives takes their masks (gt); got {config.masks!r}")
    if config.masks == "procedural":
        mask_paths, mask_names = None, ["procedural"]
    else:
        mask_paths = gt_masks(data) if config.masks == "gt" else folder_masks(config.masks)
        if positives is not None:
            mask_paths = {i: p for i, p in mask_paths.items() if i in set(positives)}
            if len(mask_paths) != len(set(positives)) or not mask_paths:
                raise DataError(
                    f"{Path(data) / 'train.csv'}: the drawn positives {sorted(positives)[:3]}... must be training "
                    "positives, at least one"
                )
        mask_names = list(mask_paths)
    plan = release_plan(
        [s.id for s in negatives], mask_names, prompt_set.prompts, config.n_aug, config.seed, prompt_set.weights
    )
    negative_paths = {s.id: s.image_path for s in negatives}
    writer = OutputWriter(out)
    settings = writer.prepare(
        "diag",
        data,
        {
            **recorded_settings(config),
            "prompt_set": asdict(prompt_set),
            "model_fingerprint": model_fingerprint(config.model),
            **({"positives": list(positives)} if positives is not None else {}),
        },
    )

    # 2. this process's share of the missing indices, the pipeline, the canvas
    state = PartialState(cpu=config.device == "cpu")
    done = writer.done()
    todo = [item for item in plan if item.index not in done and (part is None or item.index % part[1] == part[0])]
    todo = todo[state.process_index :: state.num_processes]
    finishes = state.is_main_process and part is None
    if not todo:  # a finished set: no need to load the model
        state.wait_for_everyone()
        return writer.finish() if finishes else writer.manifest
    if pipe is None:
        from diag.devices import resolve_device

        pipe = load_pipeline(config.model, resolve_device(config.device) if state.num_processes == 1 else state.device)
    pipe.set_progress_bar_config(disable=True)  # our own bar counts images
    check_steps(pipe, config.steps, "diag")
    pipe = with_sampler(pipe, config.sampler)
    warn_long_prompts(pipe.tokenizer, [*prompt_set.prompts, prompt_set.negative_prompt])
    canvas = canvas_size(pipe, config.canvas)

    # 3. inpaint batch by batch; every finished image is written at once
    bar = progress_bar(total=len(todo), desc=f"DIAG [{state.process_index}]", unit="img", disable=not progress)
    start = time.perf_counter()
    with writer.interruptible():
        for first in range(0, len(todo), config.batch_size):
            items = todo[first : first + config.batch_size]
            results = inpaint_into(
                pipe,
                [Image.open(negative_paths[i.negative]) for i in items],
                [mask_for(item, mask_paths, config.seed) for item in items],
                [i.prompt for i in items],
                [i.noise_seed for i in items],
                config,
                prompt_set.negative_prompt,
            )
            for item, (result, final_mask) in zip(items, results):
                row = {
                    "negative": item.negative,
                    "mask": item.mask,
                    "prompt": item.prompt,
                    "negative_prompt": prompt_set.negative_prompt,
                    "noise_seed": item.noise_seed,
                    "canvas_px": f"{canvas[0]}x{canvas[1]}",
                    **settings,
                    "model_source": str(pipe.config.get("_name_or_path", "")),
                    "diffusers": diffusers_version(),
                }
                writer.write(item.index, result, final_mask, row)
            bar.update(len(items))
            bar.set_postfix(img_per_s=f"{(first + len(items)) / (time.perf_counter() - start):.2f}")
    bar.close()
    state.wait_for_everyone()
    return writer.finish() if finishes else writer.manifest
