"""One way to make a method's set, for every caller: ``diag generate`` and the book's ``Run.generate``.

Both used to dispatch to the generators on their own, and put In&Out's fine-tune in different default
folders. Here a method name (one of ``methods.ZERO_SHOT_METHODS``) picks the generator and its section of
the config; the LoRA's default folder is the results layout's (``lora_folder``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

from diag.errors import ConfigError
from diag.methods import PROCEDURAL, ZERO_SHOT_METHODS


def lora_folder(set_folder: Path | str, seed: int) -> Path:
    """Where an In&Out set's fine-tune lives by default: beside its sets, one per seed (and per few-shot
    draw, as the draw's sets sit in their own folder), shared by every N_aug: ``<set>/../lora-seed<S>``."""
    return Path(set_folder).parent / f"lora-seed{seed}"


def make_set(
    config,
    method: str,
    data: Path | str,
    out: Path | str,
    n_aug: int | None = None,
    *,
    positives: Sequence[str] | None = None,
    lora_dir: Path | str | None = None,
    part: tuple[int, int] | None = None,
    progress: bool = True,
) -> Path:
    """Make (or finish) ``method``'s set in ``out`` with ``config`` (a ``diag.config.Config``); returns its
    manifest. ``n_aug``: the set's size (default: the section's own); ``positives``: a few-shot draw's ids,
    the only real positives DIAG's masks and In&Out's fine-tune see."""
    if method not in ZERO_SHOT_METHODS:
        raise ConfigError(f"method: must be one of {ZERO_SHOT_METHODS}; got {method!r}")
    generator = "diag" if method == PROCEDURAL else method
    section = getattr(config, generator)
    section = replace(section, n_aug=n_aug or section.n_aug)
    if method == PROCEDURAL:
        section = replace(section, masks="procedural")
    if generator == "diag":
        from diag.generate.diag import generate_diag

        return generate_diag(data, out, section, progress=progress, part=part, positives=positives)
    if generator == "memseg":
        from diag.generate.memseg import generate_memseg

        return generate_memseg(data, out, section, progress=progress)
    from diag.generate.inout import generate_inout

    lora_dir = lora_dir or lora_folder(out, section.seed)
    return generate_inout(data, out, section, progress=progress, lora_dir=lora_dir, part=part, positives=positives)
