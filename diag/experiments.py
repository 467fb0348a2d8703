"""The experiment grid behind Tables I and II: one classifier per (scenario, method, N_aug, seed).

    diag experiment --scenario zero-shot --methods diag,memseg,inout --n-aug 80,100,120 \\
        --seeds 0,1,2 --profile demo --data DATA --generated GEN --out results/

Generated sets are read from ``GEN/<method>/augmented_<N>/imgs/`` (the release's naming).
Each finished cell is one row of ``results.csv``; a re-run skips finished cells whose
generated set is unchanged (each row keeps a fingerprint of its set's images). The
per-epoch test curve of every cell goes to ``curves/``. ``summarize`` gives mean +- std over
seeds with the paper's reported value beside it.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from diag.classify.data import evaluation_set, training_set, validation_split
from diag.classify.train import encode, fit, predict
from diag.devices import resolve_device
from diag.metrics import best_f1_threshold, evaluate_scores
from diag.profiles import get_profile

METHODS = ("diag", "memseg", "inout", "none")  # "none": full-shot without augmentation
METHOD_NAMES = {"diag": "DIAG", "memseg": "MemSeg", "inout": "In&Out", "none": "no augmentation"}
KEY = ["scenario", "method", "n_aug", "seed"]


def generated_dir(generated: Path, method: str, n_aug: int) -> Path:
    return Path(generated) / method / f"augmented_{n_aug}"


def set_fingerprint(folder: Path | None) -> str:
    """A short hash of a generated set's images: a grid cell or FID row is redone when it changes."""
    if folder is None:
        return "none"
    digest = hashlib.sha1()
    for path in sorted((Path(folder) / "imgs").glob("*.png")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return "sha1:" + digest.hexdigest()[:12]


def reported_results() -> pd.DataFrame:
    """Tables I and II as published (see diag/resources/SOURCE.md)."""
    with resources.files("diag.resources").joinpath("reported-results.csv").open() as handle:
        return pd.read_csv(handle)


def reported_fid() -> pd.DataFrame:
    """Table III as published."""
    with resources.files("diag.resources").joinpath("reported-fid.csv").open() as handle:
        return pd.read_csv(handle)


def write_csv_atomic(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)


def run_cell(
    scenario: str, method: str, n_aug: int, seed: int, *, profile: str, data: Path, generated: Path | None,
    out: Path, val_fraction: float | None = None, overrides: dict | None = None, feature_cache: Path | None = None,
    progress: bool = False,
) -> dict:
    """Train and score one cell; returns its results row and writes its per-epoch curve."""
    start = time.perf_counter()
    prof = get_profile(profile)
    feature_cache = Path(feature_cache) if feature_cache else out / "feature-cache"
    config = replace(prof.classifier, seed=seed, feature_cache=str(feature_cache), **(overrides or {}))
    val_fraction = prof.val_fraction if val_fraction is None else val_fraction
    gen = None if method == "none" else generated_dir(generated, method, n_aug)
    train = training_set(data, scenario, gen, 0 if method == "none" else n_aug)
    test = evaluation_set(data)
    device = resolve_device(config.device)
    x_train, x_test = encode(config, train.paths, device), encode(config, test.paths, device)
    model, curve = fit(config, x_train, train.labels, (x_test, test.labels), progress)
    metrics = evaluate_scores(test.labels, predict(model, x_test, config.batch_size, device))
    row = {"scenario": scenario, "method": method, "n_aug": n_aug, "seed": seed, **metrics}
    if val_fraction > 0:  # the honest protocol: threshold from a validation split of the training data
        tr, va = validation_split(train.labels, val_fraction, seed)
        model_v, _ = fit(replace(config), x_train[torch.as_tensor(tr)], train.labels[tr], None, progress)
        threshold = best_f1_threshold(train.labels[va], predict(model_v, x_train[torch.as_tensor(va)], config.batch_size, device))
        honest = evaluate_scores(test.labels, predict(model_v, x_test, config.batch_size, device), threshold=threshold)
        row |= {f"val_{k}": v for k, v in honest.items()}
    row |= {
        "epochs": config.epochs, "backbone": config.backbone, "profile": profile,
        "n_train": len(train), "wall_s": round(time.perf_counter() - start, 2),
    }
    (out / "curves").mkdir(parents=True, exist_ok=True)
    write_csv_atomic(pd.DataFrame(curve), out / "curves" / f"{scenario}_{method}_{n_aug}_seed{seed}.csv")
    return row


def run_grid(
    *, scenario: str, methods: Sequence[str], n_augs: Sequence[int], seeds: Sequence[int], profile: str,
    data: Path | str, generated: Path | str | None, out: Path | str, val_fraction: float | None = None,
    overrides: dict | None = None, feature_cache: Path | str | None = None, progress: bool = True,
) -> pd.DataFrame:
    """Run every missing cell of the grid; ``results.csv`` grows one row per finished cell.

    ``feature_cache`` (demo backbone only; default ``out/feature-cache``): share one folder
    between grids and FID so each image passes through Inception once.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"The `methods` parameter must be among {METHODS}. Got {list(methods)} instead.")
    if "none" in methods and scenario != "full-shot":
        raise ValueError("The `none` method (no augmentation) is a full-shot reference only.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.csv"
    results = pd.read_csv(results_path) if results_path.is_file() else pd.DataFrame(columns=[*KEY, "generated_sha1"])
    cells = [(scenario, m, 0 if m == "none" else n, s) for m in methods for n in (n_augs if m != "none" else [0]) for s in seeds]
    cells = list(dict.fromkeys(cells))
    sets = {(m, n): set_fingerprint(None if m == "none" else generated_dir(generated, m, n)) for _, m, n, _ in cells}
    if "generated_sha1" not in results:
        results["generated_sha1"] = None  # rows from before fingerprints: redone once
    stale = [(r.method, r.n_aug) in sets and r.generated_sha1 != sets[(r.method, r.n_aug)]
             for r in results.itertuples(index=False)]
    if any(stale):  # their generated set changed since: drop the old rows, redo the cells
        results = results[[not s for s in stale]].reset_index(drop=True)
    done = {tuple(r) for r in results[KEY].itertuples(index=False)}
    todo = [c for c in cells if (c[0], c[1], c[2], c[3]) not in done]
    for cell in tqdm(todo, desc=f"{scenario} cells", disable=not progress):
        row = run_cell(*cell, profile=profile, data=Path(data), generated=Path(generated) if generated else None,
                       out=out, val_fraction=val_fraction, overrides=overrides, feature_cache=feature_cache)
        row["generated_sha1"] = sets[(cell[1], cell[2])]
        results = pd.concat([results, pd.DataFrame([row])], ignore_index=True) if len(results) else pd.DataFrame([row])
        write_csv_atomic(results, results_path)
    return results


def summarize(results: pd.DataFrame, scenario: str) -> pd.DataFrame:
    """Mean +- std over seeds per (method, N_aug), the paper's value beside it, and the gap."""
    rows = results[results["scenario"] == scenario]
    metrics = ["ap", "precision", "recall"]
    grouped = rows.groupby(["method", "n_aug"])[metrics].agg(["mean", "std", "count"])
    reported = reported_results()
    reported = reported[reported["scenario"] == scenario]
    table = []
    for (method, n_aug), stats in grouped.iterrows():
        paper = reported[(reported["method"] == METHOD_NAMES[method]) & (reported["n_aug"] == n_aug)]
        entry = {"method": METHOD_NAMES[method], "n_aug": int(n_aug), "seeds": int(stats[("ap", "count")])}
        for m in metrics:
            mean, std = stats[(m, "mean")], stats[(m, "std")]
            entry[m] = f"{mean:.3f} ± {0.0 if np.isnan(std) else std:.3f}"
            entry[f"paper_{m}"] = float(paper[m].iloc[0]) if len(paper) else np.nan
        entry["ap_gap"] = round(stats[("ap", "mean")] - entry["paper_ap"], 3) if len(paper) else np.nan
        table.append(entry)
    return pd.DataFrame(table)
