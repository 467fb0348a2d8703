"""The steps the notebooks run, each cached on disk, so a re-run only redoes what changed.

Notebooks only call these functions (and plot); the logic lives here. Everything is
written under ``results_dir``: ``data/`` (the replica, demo profile), ``generated/<method>/
augmented_<N>/``, ``feature-cache/``, ``zero-shot/`` and ``full-shot/`` grids, ``fid_<N>.csv``.
A results folder made elsewhere (a GPU run of the paper profile) renders without
recomputing: pass it as ``results_dir`` with ``compute=False``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from diag.data.ksdd2 import read_manifest, split_by_label
from diag import experiments
from diag.generate.diag import DEMO_MODEL, DiagConfig, bundled_model_path
from diag.generate.inout import InOutConfig
from diag.generate.memseg import MemSegConfig

METHODS = ("memseg", "inout", "diag")


class MissingResult(RuntimeError):
    """A result is not in the results folder and computing was switched off."""


@dataclass
class Settings:
    """What a profile runs; notebooks' parameter cells override fields."""

    profile: str
    n_augs: list[int]
    seeds: list[int]
    diag: DiagConfig
    memseg: MemSegConfig = field(default_factory=MemSegConfig)
    inout: InOutConfig = field(default_factory=InOutConfig)
    replica_scale: str = "demo"


def demo_model_defaults() -> dict:
    """Sampling defaults tuned for the bundled demo model (see its model card)."""
    path = bundled_model_path() / "diag_defaults.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def settings(profile: str) -> Settings:
    if profile == "paper":
        return Settings("paper", n_augs=[80, 100, 120], seeds=[0, 1, 2], diag=DiagConfig())
    if profile != "demo":
        raise ValueError(f"The `profile` parameter must be 'demo' or 'paper'. Got {profile!r} instead.")
    tuned = demo_model_defaults()
    # batch 4: 1.3 s instead of 1.9 s per image on 2 CPU cores (benchmarks/generate.py)
    diag = DiagConfig(model=DEMO_MODEL, canvas="crop", guidance=tuned.get("guidance", 4.0), batch_size=4)
    # In&Out's recipe at demo scale: the same instance prompt, a smaller LoRA and a larger step (minutes, not hours)
    inout = InOutConfig(model=DEMO_MODEL, train_steps=tuned.get("inout_train_steps", 100), rank=8, alpha=8, lr=1e-3,
                        guidance=tuned.get("guidance", 4.0), train_batch_size=8, batch_size=4)
    return Settings("demo", n_augs=[100], seeds=[0, 1, 2], diag=diag, inout=inout)


def data_dir(results_dir: Path | str, profile: str, data: Path | str | None = None, compute: bool = True) -> Path:
    """The prepared data: ``data`` if given, else the replica under ``results_dir/data`` (made once)."""
    if data is not None:
        return Path(data)
    path = Path(results_dir) / "data"
    if not (path / "train.csv").is_file():
        if not compute:
            raise MissingResult(f"{path}: no data; run with compute=True or pass data_dir")
        from diag.data.synthetic import synthesize

        synthesize(path, scale=settings(profile).replica_scale, progress=False)
    return path


def counts(data: Path) -> pd.DataFrame:
    rows = []
    for split in ("train", "test"):
        negatives, positives = split_by_label(read_manifest(data, split))
        rows.append({"split": split, "negative": len(negatives), "positive": len(positives)})
    return pd.DataFrame(rows)


def generated_dir(results_dir: Path | str, method: str, n_aug: int) -> Path:
    return experiments.generated_dir(Path(results_dir) / "generated", method, n_aug)


def generate(method: str, n_aug: int, data: Path, results_dir: Path | str, conf: Settings, compute: bool = True,
             progress: bool = False) -> Path:
    """One generated set (cached: finished images are never redone).

    The generators refuse a folder made with other settings (say, after a change of the demo
    model's guidance) with a message naming them, and return at once when the set is finished.
    """
    out = generated_dir(results_dir, method, n_aug)
    if not compute:
        if (out / "manifest.csv").is_file() and len(pd.read_csv(out / "manifest.csv")) >= n_aug:
            return out
        raise MissingResult(f"{out}: generated set missing")
    if method == "diag":
        from diag.generate.diag import generate_diag

        generate_diag(data, out, replace(conf.diag, n_aug=n_aug), progress=progress)
    elif method == "memseg":
        from diag.generate.memseg import generate_memseg

        generate_memseg(data, out, replace(conf.memseg, n_aug=n_aug), progress=progress)
    else:
        from diag.generate.inout import generate_inout

        generate_inout(data, out, replace(conf.inout, n_aug=n_aug), progress=progress)
    return out


def fid_table(data: Path, results_dir: Path | str, n_aug: int, compute: bool = True) -> pd.DataFrame:
    """FID (64, 192, and 2048 where N allows) of each method's set against the real positives."""
    import warnings

    from diag.fid.features import compute_fid

    path = Path(results_dir) / f"fid_{n_aug}.csv"
    if not compute:
        if path.is_file():
            return pd.read_csv(path)
        raise MissingResult(f"{path}: FID table missing")
    sets = {method: experiments.set_fingerprint(generated_dir(results_dir, method, n_aug)) for method in METHODS}
    if path.is_file():
        table = pd.read_csv(path)
        if "generated_sha1" in table and dict(zip(table["method"], table["generated_sha1"])) == sets:
            return table  # computed on the sets that are here now
    real = [s.image_path for s in read_manifest(data, "train") if s.is_positive]
    real_dir = Path(results_dir) / "real-positives"
    real_dir.mkdir(parents=True, exist_ok=True)
    for p in real:
        target = real_dir / p.name
        if not target.exists():
            target.write_bytes(p.read_bytes())
    rows = []
    for method in METHODS:
        gen = generated_dir(results_dir, method, n_aug) / "imgs"
        n = min(len(real), n_aug)
        dims = (64, 192, 2048) if n > 2048 else (64, 192)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # N < d is reported in the table instead
            scores = compute_fid(real_dir, gen, dims=dims, cache_dir=Path(results_dir) / "feature-cache", progress=False)
        rows.append({"method": method, "generated_sha1": sets[method], "n_real": len(real), "n_generated": n_aug,
                     **{f"fid_{d}": v for d, v in scores.items()}, "rank_deficient_192": n <= 192})
    table = pd.DataFrame(rows)
    table.to_csv(path, index=False)
    return table


def examples(data: Path, results_dir: Path | str, n_aug: int, per_row: int = 6, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Figure 2's rows: negatives, real positives, MemSeg, In&Out, DIAG (as uint8 arrays)."""
    from diag.data.ksdd2 import load_image

    rng = np.random.default_rng(seed)
    negatives, positives = split_by_label(read_manifest(data, "train"))
    pick = lambda items, n: [items[i] for i in sorted(rng.choice(len(items), size=min(n, len(items)), replace=False))]
    rows = {"negatives": [load_image(s.image_path) for s in pick(negatives, per_row)],
            "real positives": [load_image(s.image_path) for s in pick(positives, per_row)]}
    for method, name in (("memseg", "MemSeg"), ("inout", "In&Out"), ("diag", "DIAG")):
        images = sorted((generated_dir(results_dir, method, n_aug) / "imgs").glob("*.png"))
        rows[name] = [load_image(p) for p in pick(images, per_row)]
    return rows
