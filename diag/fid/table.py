"""Table III as the book reads it: FID of each method's generated set against the real positives.

    diag fid --table RESULTS --n-aug 100 --data DATA     # writes RESULTS/fid_100.csv

Each row records the data fingerprint, its generated set's fingerprint and the dims, and the
table is redone only when one of them changes.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Sequence

import pandas as pd

from diag.data.fingerprint import data_fingerprint
from diag.data.ksdd2 import read_manifest
from diag.errors import MissingResult
from diag.files import write_csv_atomic
from diag.layout import generated_dir, method_set, set_fingerprint
from diag.methods import GENERATORS
from diag.files import new_folder, refuse_foreign_folder
from diag.fid.settings import DEFAULTS, DIMS


def table_path(results: Path | str, n_aug: int) -> Path:
    return Path(results) / f"fid_{n_aug}.csv"


def current_table(
    path: Path, fingerprint: str, sets: dict[str, str], columns: Sequence[str] = ()
) -> pd.DataFrame | None:
    """The table at ``path`` if it was made on this data and these generated sets (and has ``columns``), else None."""
    if not path.is_file():
        return None
    table = pd.read_csv(path)
    if "data_fingerprint" not in table or set(table["data_fingerprint"]) != {fingerprint}:
        return None
    if dict(zip(table["method"], table["generated_sha1"])) != sets or not set(columns) <= set(table):
        return None
    return table


def kid_drawn_so(table: pd.DataFrame, n_aug: int, subset_size: int, subsets: int) -> bool:
    """Whether the table's KID spread was drawn from these subsets (a subset is at most the smaller set)."""
    size = min(subset_size, int(table["n_real"].min()), n_aug)
    return set(table["kid_subsets"]) == {subsets} and set(table["kid_subset_size"]) == {size}


POSITIVES_RECORD = ".diag-real-positives.json"


def real_positives(data: Path, folder: Path) -> Path:
    """The training positives of ``data``, copied into ``folder`` (FID compares folders of images only).

    The folder records the data it was copied from; made from other data, it is made anew (a folder
    without that record that holds anything was not made by diag, and is refused)."""
    fingerprint = data_fingerprint(data)
    record = folder / POSITIVES_RECORD
    if record.is_file() and json.loads(record.read_text()).get("data_fingerprint") == fingerprint:
        return folder
    refuse_foreign_folder(folder, POSITIVES_RECORD, "a folder of real positives")
    if folder.is_dir():
        shutil.rmtree(folder)  # ours (it has the record), copied from other data
    with new_folder(folder) as fresh:
        for sample in read_manifest(data, "train"):
            if sample.is_positive:
                shutil.copyfile(sample.image_path, fresh / sample.image_path.name)
        (fresh / POSITIVES_RECORD).write_text(json.dumps({"data_fingerprint": fingerprint}) + "\n")
    return folder


def fid_table(
    data: Path | str,
    results: Path | str,
    n_aug: int,
    *,
    dims: Sequence[int] = DIMS,
    methods: Sequence[str] = GENERATORS,
    compute: bool = True,
    device: str = DEFAULTS.device,
    batch_size: int = DEFAULTS.batch_size,
    progress: bool = False,
    kid_subset_size: int = DEFAULTS.kid_subset_size,
    kid_subsets: int = DEFAULTS.kid_subsets,
) -> pd.DataFrame:
    """FID and KID (``dims``, and FID-2048 where N allows) of ``results/generated/<method>/augmented_<n_aug>``;
    KID on the whole sets and its mean and std over ``kid_subsets`` random subsets of ``kid_subset_size``."""
    from diag.fid.features import folder_features, kid_scores
    from diag.fid.frechet import fid_from_features
    from diag.fid.inception import load_fid_inception

    data, results = Path(data), Path(results)
    path = table_path(results, n_aug)
    if not compute:
        if path.is_file():
            return pd.read_csv(path)
        raise MissingResult(f"{path}: FID table missing (diag fid --table {results} --n-aug {n_aug} writes it)")
    fingerprint = data_fingerprint(data)
    sets = {method: set_fingerprint(method_set(results / "generated", method, n_aug, data)) for method in methods}
    wanted = [f"fid_{d}" for d in dims] + [f"kid_{d}" for d in dims]
    table = current_table(path, fingerprint, sets, wanted)
    if table is not None and kid_drawn_so(table, n_aug, kid_subset_size, kid_subsets):
        return table  # computed on the data, sets, dims and KID subsets asked for now
    positives = real_positives(data, results / "real-positives")
    n_real = len(list(positives.glob("*.png")))
    rows = []
    # one pass also caches the pool features (2048) that the realism probe reads for whole images
    model = load_fid_inception(tuple(sorted(set(dims) | {2048})), device)
    for method in methods:
        n = min(n_real, n_aug)
        wanted = tuple(sorted(set(dims) | ({2048} if n > 2048 else set())))
        real, generated = folder_features(
            positives,
            generated_dir(results / "generated", method, n_aug) / "imgs",
            dims=wanted,
            model=model,
            cache_dir=results / "feature-cache",
            device=device,
            batch_size=batch_size,
            progress=progress,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # N < d is reported in the table instead
            scores = {d: fid_from_features(real[d], generated[d]) for d in wanted}
        kid = kid_scores({d: real[d] for d in dims}, {d: generated[d] for d in dims}, kid_subset_size, kid_subsets)
        rows.append(
            {
                "method": method,
                "n_real": n_real,
                "n_generated": n_aug,
                **{f"fid_{d}": v for d, v in scores.items()},
                **kid,
                "rank_deficient_192": n <= 192,
                "generated_sha1": sets[method],
                "data_fingerprint": fingerprint,
            }
        )
    table = pd.DataFrame(rows)
    write_csv_atomic(table, path)
    return table
