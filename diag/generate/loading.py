"""Loading a diffusers pipeline from a hub id, a local folder, or the bundled demo model.

One loader for both diffusion methods: local folders dispatch on ``model_index.json``'s
class, so SDXL-inpaint folders, SD-1.5 folders and the demo model (a Stable Diffusion
inpainting pipeline) load through the same call; safetensors only.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from diag.errors import ConfigError, DataError

DEMO_MODEL = "diag-demo-inpaint"


def bundled_model_path() -> Path:
    return Path(__file__).resolve().parent.parent / "resources" / DEMO_MODEL


def model_folder(model: str) -> Path | None:
    """The local folder of ``model`` (the bundled demo model or a path), or None for a hub id."""
    path = bundled_model_path() if model == DEMO_MODEL else Path(model)
    return path if path.is_dir() else None


# the DIAG settings a model folder's diag_defaults.json may set (how to sample and paste this model's fills)
MODEL_DEFAULT_KEYS = ("guidance", "canvas", "steps", "mask_blur")


def model_defaults(model: str) -> dict:
    """The sampling defaults a model folder carries in ``diag_defaults.json`` (empty if none)."""
    folder = model_folder(model)
    path = folder / "diag_defaults.json" if folder else None
    if path is None or not path.is_file():
        return {}
    try:
        defaults = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(defaults, dict):
        raise DataError(f"{path}: expected a JSON object of settings")
    return defaults


def model_fingerprint(model: str) -> str:
    """What a generated set records of its model: a hash of a local folder's weights and configs
    (so a retrained demo model is never mixed with sets made by its previous version), or the hub
    id itself (its weights are the hub's; the id is all a run knows before downloading).

    Hashed: ``model_index.json`` and every file in the component folders (unet, vae, text
    encoder, tokenizer, scheduler); not the card, the training log or ``diag_defaults.json``,
    whose settings each row records by value anyway.
    """
    import hashlib

    folder = model_folder(model)
    if folder is None:
        return f"hub:{model}"
    digest = hashlib.sha1()
    files = [folder / "model_index.json", *(p for p in folder.glob("*/*") if p.is_file())]
    for path in sorted(f for f in files if f.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return "sha1:" + digest.hexdigest()[:16]


def dtype_keyword(version: str) -> str:
    """diffusers 0.42 renamed ``from_pretrained``'s ``torch_dtype`` to ``dtype`` (the old name warns);
    our floor, 0.30, knows only ``torch_dtype``."""
    from packaging.version import Version

    return "dtype" if Version(version) >= Version("0.42") else "torch_dtype"


def load_diffusers_pipeline(
    model: str,
    device: torch.device,
    *,
    hub_class: str,
    dtype: torch.dtype,
    fp16_variant: bool = False,
    require_inpainting: bool = False,
):
    """``hub_class`` is used for hub ids; folders name their own class."""
    import diffusers

    import transformers

    precision = {dtype_keyword(diffusers.__version__): dtype}
    diffusers.utils.logging.disable_progress_bar()  # no loading bars in logs or on the book's pages
    transformers.utils.logging.disable_progress_bar()
    path = bundled_model_path() if model == DEMO_MODEL else Path(model)
    if path.is_dir():
        index = path / "model_index.json"
        if not index.is_file():
            raise DataError(f"{path}: not a diffusers model folder (no model_index.json)")
        class_name = json.loads(index.read_text())["_class_name"]
        if not hasattr(diffusers, class_name) or (require_inpainting and "Inpaint" not in class_name):
            raise DataError(
                f"{index}: {class_name} is not a diffusers {'inpainting ' if require_inpainting else ''}pipeline"
            )
        quiet = model == DEMO_MODEL  # its AutoencoderTiny draws two known, harmless notes from diffusers' loader
        verbosity = diffusers.utils.logging.get_verbosity()
        if quiet:
            diffusers.utils.logging.set_verbosity_error()
        try:
            pipe = getattr(diffusers, class_name).from_pretrained(path, use_safetensors=True, **precision)
        finally:
            diffusers.utils.logging.set_verbosity(verbosity)
    elif model.count("/") == 1 and not model.startswith((".", "/")):
        kwargs = {"variant": "fp16"} if fp16_variant else {}
        try:
            pipe = getattr(diffusers, hub_class).from_pretrained(model, use_safetensors=True, **precision, **kwargs)
        except OSError as error:  # offline, unknown id, or a download that broke off
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise DataError(
                f"{model}: could not load from the Hugging Face hub ({first}); connect to the internet "
                "once, or download it and pass the local folder"
            ) from None
    else:
        raise DataError(f"{model}: model folder not found (and not a hub id like org/name)")
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def check_steps(pipe, steps: int, section: str) -> None:
    """``steps`` sampling steps fit the model's scheduler (checked once it is loaded, before any work)."""
    most = int(pipe.scheduler.config.num_train_timesteps)
    if steps > most:
        raise ConfigError(f"{section}.steps: must be at most {most} (its scheduler's training steps); got {steps}")


SAMPLERS = ("model", "dpm-solver++")
"""``model``: the scheduler the model ships with (the paper profile: the release's); ``dpm-solver++``:
diffusers' second-order multistep DPM-Solver++ on the model's own noise schedule (its betas, zero
terminal SNR, timestep spacing and prediction type carried over), often as good as DDIM in fewer
steps; not for the demo model, whose whole canvases lost realism with it (its model card)."""


def with_sampler(pipe, sampler: str):
    """``pipe`` itself for ``model``; else a pipeline sharing its weights with the sampler's scheduler
    (a new pipeline object, so a caller's pipeline is never changed under it)."""
    if sampler not in SAMPLERS:
        raise ConfigError(f"sampler: must be one of {', '.join(SAMPLERS)}; got {sampler!r}")
    if sampler == "model":
        return pipe
    from diffusers import DPMSolverMultistepScheduler

    scheduler = DPMSolverMultistepScheduler.from_config(
        pipe.scheduler.config, algorithm_type="dpmsolver++", solver_order=2
    )
    import inspect

    # the constructor's flags (requires_safety_checker, force_zeros_for_empty_prompt, ...) live in its config
    names = inspect.signature(type(pipe)).parameters
    flags = {k: pipe.config[k] for k in names if k not in pipe.components and k in pipe.config}
    copy = type(pipe)(**pipe.components | {"scheduler": scheduler}, **flags)
    copy.set_progress_bar_config(disable=True)
    return copy


def native_resolution(pipe) -> int:
    """The model's training resolution (1024 for SDXL, 512 for SD-1.5): DIAG's canvas and In&Out's windows."""
    return int(pipe.unet.config.sample_size * pipe.vae_scale_factor)
