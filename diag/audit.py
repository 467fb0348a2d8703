"""What a results folder holds, against its profile: the lines of the book's warning banner.

``diag reproduce --from-results`` renders whatever a folder holds; this says, from what the
results themselves record (grid rows, each generated set's ``set.json``, the FID tables),
which cells are missing and which settings differ from the profile's, so a book made from
n_aug = 4, one seed, one epoch and random weights can never pass for the paper's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from diag.config import Config, profile_config
from diag.data.fingerprint import data_fingerprint, is_replica
from diag.classify.data import count_positives
from diag.experiments import (
    KEY,
    SET_MAKERS,
    cell_settings,
    current_rows,
    grid_methods,
    left_out,
    read_rows,
    scenario_cells,
    settings_id,
    table_n_aug,
)
from diag.fid.table import table_path
from diag.generate.loading import model_fingerprint
from diag.errors import DataError
from diag.generate.output import OutputWriter, set_problems

CLASSIFIER_KEYS = ("backbone", "weights", "input_size", "epochs", "batch_size", "lr")
SET_KEYS = {
    "diag": ("model", "steps", "guidance", "strength", "canvas", "padding_mask_crop", "masks", "prompts"),
    "memseg": ("textures", "foreground_threshold"),
    "inout": (
        "model",
        "train_steps",
        "epochs",
        "repeats",
        "train_batch_size",
        "rank",
        "alpha",
        "conv_rank",
        "text_encoder_lora",
        "clip_skip",
        "min_snr_gamma",
        "noise_offset",
        "lr",
        "steps",
        "guidance",
        "merge_ratio",
        "resolution",
        "canvas",
    ),
}


SCOPES = ("data", "sets", "zero-shot", "full-shot", "few-shot", "fid")


def audit(
    profile: str,
    results: Path | str,
    data: Path | str,
    scopes: tuple[str, ...] = SCOPES,
    config: Config | None = None,
) -> list[str]:
    """Human-readable differences between ``results`` and ``profile``'s settings; empty when none.

    ``scopes`` picks what a page shows: a results page speaks of its own table only. ``config``:
    the settings the run asked for (default: the profile's), whose grid rows are the ones shown.
    """
    reference = profile_config(profile)
    results = Path(results)
    lines = []
    if "data" in scopes and profile == "paper" and is_replica(data):
        lines.append("the data is the offline replica, not KSDD2")
    for scenario in ("zero-shot", "full-shot", "few-shot"):
        if scenario in scopes:
            lines += grid_lines(reference, results, scenario, data, config or reference)
    if "sets" in scopes:
        lines += set_lines(reference, results, data)
    fid_n = table_n_aug(reference.grid.n_augs)
    if "fid" in scopes and not table_path(results, fid_n).is_file():
        lines.append(f"FID: no table at N_aug = {fid_n} ({table_path(results, fid_n).name})")
    return lines


def shown_rows(results: Path, scenario: str, data: Path | str, config: Config) -> tuple:
    """The grid rows a page shows (this data's, the run's settings where present) and what it left out."""
    fingerprint = data_fingerprint(data)
    rows = read_rows(results / scenario)
    kept = current_rows(rows, fingerprint, settings_id(cell_settings(config, fingerprint)))
    return kept, left_out(rows, kept, fingerprint)


def plain(value):
    """numpy scalars (from a CSV) as Python values, so 50 and int64(50) compare equal."""
    return value.item() if hasattr(value, "item") else value


def differing(key: str, recorded: list, expected) -> str | None:
    """One line when any recorded value differs from ``expected``."""
    values = {json.dumps(plain(v), default=str) for v in recorded} - {json.dumps(expected, default=str)}
    if not values:
        return None
    return f"{key}: {', '.join(sorted(values))} recorded (profile: {json.dumps(expected, default=str)})"


def grid_lines(reference: Config, results: Path, scenario: str, data: Path | str, config: Config) -> list[str]:
    lines = []
    methods = grid_methods(scenario, reference.grid.few_shot_methods)
    try:
        expected = scenario_cells(reference, scenario, methods, count_positives(data))
    except DataError as error:  # the profile's k values need more positives than this data has
        return [f"{scenario}: {error}"]
    rows, left = shown_rows(results, scenario, data, config)
    if left["other data"]:
        lines.append(f"{scenario}: {left['other data']} row(s) of results.csv made on other data left out")
    present = set(rows[KEY].itertuples(index=False, name=None)) if len(rows) else set()
    missing = [c for c in expected if c not in present]
    if missing:
        example = ", ".join(f"{m} N_aug {n} seed {s}" + (f" k {k}" if scenario == "few-shot" else "")
                            for _, m, n, s, k in missing[:2])
        lines.append(f"{scenario}: {len(missing)} of {len(expected)} cells missing (e.g. {example})")
    extra = sorted({int(n) for n in rows.get("n_aug", pd.Series(dtype=int))} - {0, *reference.grid.n_augs})
    if extra:
        lines.append(f"{scenario}: rows at N_aug {extra}, not among the profile's {reference.grid.n_augs}")
    for key in CLASSIFIER_KEYS:
        if key in rows:
            line = differing(
                f"{scenario} classifier.{key}", list(rows[key].dropna()), getattr(reference.classifier, key)
            )
            lines += [line] if line else []
    return lines


def set_lines(reference: Config, results: Path, data: Path | str) -> list[str]:
    lines = []
    for method, (generator, procedural) in SET_MAKERS.items():
        for folder in sorted((results / "generated" / method).glob("augmented_*")):
            n_aug = folder.name.removeprefix("augmented_")
            if n_aug.isdigit():
                problems = set_problems(folder, data, int(n_aug), generator, procedural)
                lines += [p.replace(f"{results}/", "") for p in problems]
    for method, keys in SET_KEYS.items():
        records = []
        for folder in sorted((results / "generated" / method).glob("augmented_*")):
            try:
                record = OutputWriter(folder).recorded()
            except DataError:
                record = None  # set_problems names the damaged file
            records += [record] if record else []
        expected = getattr(reference, method)
        for key in keys:
            line = differing(f"{method}.{key}", [r[key] for r in records if key in r], getattr(expected, key))
            lines += [line] if line else []
        if hasattr(expected, "model"):  # the same model name with other weights (e.g. an earlier demo model)
            line = differing(
                f"{method}.model_fingerprint",
                [r["model_fingerprint"] for r in records if "model_fingerprint" in r],
                model_fingerprint(expected.model),
            )
            lines += [line] if line else []
    return lines
