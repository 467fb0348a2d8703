"""The experiment grid behind Tables I and II, and the few-shot curve: one classifier per
(scenario, method, N_aug, seed, k real positives).

    diag experiment --scenario zero-shot --methods diag,memseg,inout --n-aug 80,100,120 \\
        --seeds 0,1,2 --profile paper --data DATA --generated RESULTS/generated --out RESULTS/zero-shot

k is 0 in the zero-shot grid and every training positive in the full-shot one; the few-shot grid
takes ``grid.real_positives`` (``classify.data.draw_positives``: one nested draw per k, the same for
every method and classifier seed) at one N_aug (``table_n_aug``), and DIAG's and In&Out's sets there are
made from the k drawn positives only (``layout.few_shot_draw``).

Generated sets are read from ``GEN/<method>/augmented_<N>/imgs/`` (the release's naming).
Each finished cell is one row of ``results.csv`` recording every classifier setting, the
profile, the data's fingerprint and its generated set's fingerprint. A re-run skips a cell
only when a row with the same settings and set exists; rows made otherwise stay in the file
but are never averaged with these (``current_rows``). The per-epoch test curve of every cell
goes to ``curves/``. ``summarize`` gives mean +- std over seeds with the paper's value beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from diag.classify.data import count_positives, draw_positives, evaluation_set, training_set, validation_split
from diag.classify.train import encode, fit, predict
from diag.config import Config, build_config
from diag.data.fingerprint import data_fingerprint
from diag.devices import resolve_device
from diag.errors import ConfigError, DataError
from diag.files import write_csv_atomic
from diag.layout import few_shot_draw, generated_dir, method_set, set_fingerprint
from diag.methods import (  # noqa: F401 - the registry, read by the grid and by callers through this module
    GENERATORS,
    METHOD_NAMES,
    METHODS,
    PROCEDURAL,
    SET_MAKERS,
    ZERO_SHOT_METHODS,
    grid_methods,
    runs_at,
    table_n_aug,
)
from diag.progress import bar as progress_bar

KEY = ["scenario", "method", "n_aug", "seed", "real_positives"]


def cell_settings(config: Config, data_fp: str) -> dict:
    """What a grid row depends on besides its key and generated set."""
    classifier = {k: v for k, v in config.classifier.recorded().items() if k != "seed"}
    return {
        "profile": config.profile,
        **classifier,
        "val_fraction": config.grid.val_fraction,
        "data_fingerprint": data_fp,
    }


def settings_id(settings: dict) -> str:
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


def reported_results() -> pd.DataFrame:
    """Tables I and II as published (see diag/resources/SOURCE.md)."""
    with resources.files("diag.resources").joinpath("reported-results.csv").open() as handle:
        return pd.read_csv(handle)


def reported_fid() -> pd.DataFrame:
    """Table III as published."""
    with resources.files("diag.resources").joinpath("reported-fid.csv").open() as handle:
        return pd.read_csv(handle)


def feature_cache_dir(out: Path | str, feature_cache: Path | str | None = None) -> Path:
    """Where a grid caches its feature maps: ``feature_cache`` when given, else ``out/feature-cache``."""
    return Path(feature_cache) if feature_cache else Path(out) / "feature-cache"


def run_cell(
    scenario: str,
    method: str,
    n_aug: int,
    seed: int,
    real_positives: int,
    *,
    config: Config,
    data: Path,
    generated: Path | None,
    out: Path,
    feature_cache: Path | None = None,
    progress: bool = False,
    memo: dict | None = None,
) -> dict:
    """Train and score one cell; returns its results row and writes its per-epoch curve.

    ``memo``: feature maps kept in memory between the cells of one grid (see ``encode``)."""
    from diag.metrics import best_f1_threshold, evaluate_scores  # scikit-learn: seconds to import, needed here only

    start = time.perf_counter()
    feature_cache = feature_cache_dir(out, feature_cache)
    classifier = replace(config.classifier, seed=seed, feature_cache=str(feature_cache))
    drawn = cell_positives(config, scenario, real_positives, data)
    draw = cell_draw(config, scenario, method, real_positives, count_positives(data))
    gen = None if method == "none" else generated_dir(generated, method, n_aug, draw)
    train = training_set(data, scenario, gen, 0 if method == "none" else n_aug, drawn)
    test = evaluation_set(data)
    device = resolve_device(classifier.device)
    x_train, x_test = encode(classifier, train.paths, device, memo=memo), encode(
        classifier, test.paths, device, memo=memo
    )
    model, curve = fit(classifier, x_train, train.labels, (x_test, test.labels), progress)
    precision = classifier.mixed_precision
    metrics = evaluate_scores(test.labels, predict(model, x_test, classifier.batch_size, device, precision))
    row = {"scenario": scenario, "method": method, "n_aug": n_aug, "seed": seed, "real_positives": real_positives}
    row |= {"positive_ids": positive_ids(real_positives, drawn), **metrics}
    if config.grid.val_fraction > 0:  # the honest protocol: threshold from a validation split of the training data
        tr, va = validation_split(train.labels, config.grid.val_fraction, seed)
        model_v, _ = fit(classifier, x_train[torch.as_tensor(tr)], train.labels[tr], None, progress)
        scores_v = predict(model_v, x_train[torch.as_tensor(va)], classifier.batch_size, device, precision)
        threshold = best_f1_threshold(train.labels[va], scores_v)
        honest = evaluate_scores(
            test.labels, predict(model_v, x_test, classifier.batch_size, device, precision), threshold=threshold
        )
        row |= {f"val_{k}": v for k, v in honest.items()}
    row |= {"n_train": len(train), "wall_s": round(time.perf_counter() - start, 2)}
    write_csv_atomic(pd.DataFrame(curve), out / "curves" / f"{cell_name((scenario, method, n_aug, seed, real_positives))}.csv")
    return row


def cell_name(cell: tuple) -> str:
    """A cell's file name (its curve, its row file): the release's ``<scenario>_<method>_<N>_seed<S>``,
    with ``_k<k>`` in the few-shot grid."""
    scenario, method, n_aug, seed, k = cell
    return f"{scenario}_{method}_{n_aug}_seed{seed}" + (f"_k{k}" if scenario == "few-shot" else "")


def positive_ids(k: int, drawn: list[str] | None) -> str:
    """What a row records of its real positives: "none", "all" (full-shot), or the drawn ids."""
    return "none" if k == 0 else "all" if drawn is None else " ".join(drawn)


def cell_draw(config: Config, scenario: str, method: str, k: int, n_positives: int) -> str | None:
    """The draw whose folder holds a cell's generated set (few-shot DIAG and In&Out below k = all), else None."""
    return few_shot_draw(method, k, n_positives, config.grid.positives_seed) if scenario == "few-shot" else None


def cell_positives(config: Config, scenario: str, k: int, data: Path | str) -> list[str] | None:
    """The few-shot cell's drawn real positives (ids); None in the other scenarios (none, or all)."""
    return draw_positives(data, k, config.grid.positives_seed) if scenario == "few-shot" else None


def scenario_positives(config: Config, scenario: str, n_positives: int) -> list[int]:
    """The k values of a scenario's grid: 0 (zero-shot), every positive (full-shot), ``grid.real_positives``."""
    if scenario == "few-shot":
        too_many = [k for k in config.grid.real_positives if k > n_positives]
        if too_many:
            raise DataError(
                f"grid.real_positives: {too_many[0]} real positives asked for, but the training split has "
                f"{n_positives}; got {config.grid.real_positives!r}"
            )
        return sorted(config.grid.real_positives)
    return [0] if scenario == "zero-shot" else [n_positives]


def scenario_n_augs(config: Config, scenario: str) -> list[int]:
    """The N_aug values of a scenario's grid: ``grid.n_augs``; the few-shot curve's one (``table_n_aug``)."""
    return [table_n_aug(config.grid.n_augs)] if scenario == "few-shot" else list(config.grid.n_augs)


ROW_COLUMNS = (*KEY[:4], "settings_id", "generated_sha1", "data_fingerprint")  # real_positives: see with_real_positives


def read_rows(out: Path | str) -> pd.DataFrame:
    """Every row of ``out/results.csv`` (empty when there is none); a damaged file is one DataError."""
    path = Path(out) / "results.csv"
    if not path.is_file():
        return pd.DataFrame(columns=list(dict.fromkeys([*KEY, *ROW_COLUMNS])))
    try:
        rows = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a results table diag wrote ({str(error).splitlines()[0]}); move it away") from None
    missing = [c for c in ROW_COLUMNS if c not in rows]
    if missing:
        raise DataError(f"{path}: not a results table diag wrote (no column {', '.join(missing)}); move it away")
    return with_real_positives(rows, path)


def with_real_positives(rows: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``rows`` with whole-number keys. A table written before the few-shot grid has no ``real_positives``:
    its zero-shot rows had none (0); its full-shot rows get -1 (unknown), match no cell and are redone."""
    if "real_positives" not in rows:
        rows = rows.assign(real_positives=np.where(rows["scenario"] == "zero-shot", 0, -1))
    if "positive_ids" in rows:  # a single id reads as a number
        rows = rows.astype({"positive_ids": str})
    try:
        return rows.astype({"n_aug": int, "seed": int, "real_positives": int})
    except (ValueError, TypeError):
        raise DataError(f"{path}: n_aug, seed and real_positives must be whole numbers in every row; move it away") from None


def current_rows(rows: pd.DataFrame, data_fingerprint: str, settings: str | None = None) -> pd.DataFrame:
    """The rows of one run on this data: ``settings`` when any row has them, else the newest row's
    settings among this data's rows; the newest row per cell. Rows of other data are never taken."""
    rows = rows[rows["data_fingerprint"] == data_fingerprint] if "data_fingerprint" in rows else rows.iloc[0:0]
    if rows.empty or "settings_id" not in rows:
        return rows.iloc[0:0]
    if settings is None or settings not in set(rows["settings_id"]):
        settings = rows["settings_id"].iloc[-1]
    rows = rows[rows["settings_id"] == settings]
    return rows.drop_duplicates(KEY, keep="last").reset_index(drop=True)


def left_out(rows: pd.DataFrame, kept: pd.DataFrame, data_fingerprint: str) -> dict[str, int]:
    """How many rows of ``rows`` a render leaves out, by why: made on other data, or with other settings."""
    other_data = int((rows["data_fingerprint"] != data_fingerprint).sum()) if len(rows) else 0
    return {"other data": other_data, "other settings": len(rows) - other_data - len(kept)}


def scenario_cells(config: Config, scenario: str, methods: Sequence[str], n_positives: int) -> list[tuple]:
    """The cells of ``scenario``'s grid with ``config``'s N_aug values, seeds and k values."""
    ks = scenario_positives(config, scenario, n_positives)
    return grid_cells(scenario, methods, scenario_n_augs(config, scenario), config.grid.seeds, ks)


def grid_cells(
    scenario: str,
    methods: Sequence[str],
    n_augs: Sequence[int],
    seeds: Sequence[int],
    real_positives: Sequence[int] = (0,),
) -> list[tuple]:
    """(scenario, method, n_aug, seed, k) of a grid; the "none" reference has n_aug 0; in the few-shot grid a
    method that needs a real positive has no cell at k = 0 (``methods.runs_at``)."""
    if not methods:
        raise ConfigError(f"--methods: no method given; choose among {', '.join(METHODS)}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"methods: must be among {METHODS}; got {list(methods)}")
    if "none" in methods and scenario == "zero-shot":
        raise ConfigError("The `none` method (no augmentation) needs real positives: full-shot or few-shot only.")
    cells = [
        (scenario, m, 0 if m == "none" else n, s, k)
        for k in real_positives
        for m in methods
        if scenario != "few-shot" or runs_at(m, k)  # Table I's DIAG uses the positives' masks: the paper's choice
        for n in (n_augs if m != "none" else [0])
        for s in seeds
    ]
    return list(dict.fromkeys(cells))


def run_grid(
    config: Config,
    *,
    scenario: str,
    methods: Sequence[str],
    data: Path | str,
    generated: Path | str | None,
    out: Path | str,
    feature_cache: Path | str | None = None,
    progress: bool = True,
    only: tuple | None = None,
    reuse: dict[str, Path] | None = None,
) -> pd.DataFrame:
    """Run every missing cell of the grid (``config.grid``'s N_aug values, seeds and, few-shot, k values);
    returns its rows.

    ``feature_cache`` (demo backbone only; default ``out/feature-cache``): share one folder
    between grids and FID so each image passes through Inception once.

    ``only``: compute just this cell (scenario, method, n_aug, seed), as a cluster job does, into its
    own row file (``row_file``), so that jobs running at once never write the same file; the next
    whole-grid call merges the row files into ``results.csv``.

    ``reuse`` (few-shot): the zero-shot and full-shot grids' folders, by scenario. A few-shot cell at
    k = 0 trains on exactly what a zero-shot cell does, and at k = all on what a full-shot one does;
    such a row, made there with these settings on the same set, is copied (``copied_from``) instead
    of trained again.
    """
    out, data = Path(out), Path(data)
    n_positives = count_positives(data)
    ks = scenario_positives(config, scenario, n_positives)
    cells = scenario_cells(config, scenario, methods, n_positives)
    if only is not None and tuple(only) not in cells:
        raise ConfigError(f"cell {tuple(only)}: not a cell of this grid ({len(cells)} cells)")
    settings = cell_settings(config, data_fingerprint(data))
    sid = settings_id(settings)
    checked = [tuple(only)] if only is not None else cells  # a cell's job checks its own set, not the grid's
    needed = list(dict.fromkeys((m, n, k) for _, m, n, _, k in checked if m != "none"))
    if needed and generated is None:
        raise ConfigError(f"generated sets are needed for {', '.join(sorted({m for m, _, _ in needed}))}")
    drawn = {k: cell_positives(config, scenario, k, data) for k in ks}  # each k's draw, read once

    def fingerprint(method: str, n_aug: int, k: int) -> str:
        draw = cell_draw(config, scenario, method, k, n_positives)
        return set_fingerprint(method_set(generated, method, n_aug, data, draw, drawn[k] if draw else None))

    sets = {(m, n, k): fingerprint(m, n, k) for m, n, k in needed}
    sets |= {("none", 0, k): "none" for k in ks}

    def this_grid(rows: pd.DataFrame) -> pd.DataFrame:
        """Rows made with these settings, for these cells, on the generated sets that are here now."""
        if "settings_id" not in rows:
            return rows.iloc[0:0]
        mine = rows[rows["settings_id"] == sid]
        keep = [
            (r.scenario, r.method, int(r.n_aug), int(r.seed), int(r.real_positives)) in cells
            and sets.get((r.method, int(r.n_aug), int(r.real_positives))) == r.generated_sha1
            for r in mine.itertuples(index=False)
        ]
        return mine[np.array(keep, dtype=bool)]

    memo: dict = {}  # the cells share most images: read each one's feature maps once

    copies = copyable_rows(reuse or {}, scenario, n_positives, sid) if scenario == "few-shot" else {}

    def compute(cell: tuple) -> dict:
        copied = copies.get((cell[1], cell[2], cell[3], cell[4]))
        if copied is not None and copied["generated_sha1"] == sets[(cell[1], cell[2], cell[4])]:
            return copied | {"scenario": scenario, "positive_ids": positive_ids(cell[4], drawn[cell[4]])}
        row = run_cell(
            *cell,
            config=config,
            data=data,
            generated=Path(generated) if generated else None,
            out=out,
            feature_cache=Path(feature_cache) if feature_cache else None,
            memo=memo,
        )
        return row | {**settings, "generated_sha1": sets[(cell[1], cell[2], cell[4])], "settings_id": sid}

    if only is not None:
        return this_grid(one_cell(tuple(only), out, this_grid, compute)).reset_index(drop=True)
    rows = merge_row_files(out)
    done = set(this_grid(rows)[KEY].itertuples(index=False, name=None))
    todo = [c for c in cells if c not in done]
    for cell in progress_bar(todo, desc=f"{scenario} cells", disable=not progress or not todo):
        row = compute(cell)
        rows = pd.concat([rows, pd.DataFrame([row])], ignore_index=True) if len(rows) else pd.DataFrame([row])
        write_csv_atomic(rows, out / "results.csv")
    return this_grid(rows).drop_duplicates(KEY, keep="last").reset_index(drop=True)


def copyable_rows(reuse: dict[str, Path], scenario: str, n_positives: int, sid: str) -> dict[tuple, dict]:
    """The zero-shot (k = 0) and full-shot (k = all) rows made with settings ``sid`` that a few-shot cell
    may copy, by (method, n_aug, seed, k); each marked with where it was made."""
    found = {}
    for other, folder in reuse.items():
        rows = read_rows(folder)
        if "settings_id" not in rows:
            continue
        rows = rows[(rows["settings_id"] == sid) & (rows["scenario"] == other)].drop_duplicates(KEY, keep="last")
        for row in rows.to_dict("records"):
            if int(row["real_positives"]) in (0, n_positives):
                key = (row["method"], int(row["n_aug"]), int(row["seed"]), int(row["real_positives"]))
                found[key] = row | {"copied_from": f"{other}/results.csv"}
    return found


@dataclass(frozen=True)
class GridContext:
    """What a cluster job needs to compute one cell of ``diag experiment``'s grid (``run_grid_job``)."""

    profile: str
    overrides: tuple[str, ...]
    scenario: str
    methods: tuple[str, ...]
    data: str
    generated: str | None
    out: str
    feature_cache: str | None = None


def grid_jobs(config: Config, scenario: str, methods: Sequence[str], data: Path | str) -> list:
    """One job per cell of the grid (``diag.jobs.Job``), for ``diag.executors.run_jobs``."""
    from diag.jobs import Job

    cells = scenario_cells(config, scenario, methods, count_positives(data))
    return [Job(f"cell {' '.join(map(str, cell))}", "cell", cell) for cell in cells]


def run_grid_job(job, context: GridContext) -> dict:
    """Compute one cell in this process (a worker's or a cluster job's), into its row file."""
    start = time.perf_counter()
    run_grid(
        build_config(context.profile, list(context.overrides)),
        scenario=context.scenario,
        methods=context.methods,
        data=context.data,
        generated=context.generated,
        out=context.out,
        feature_cache=context.feature_cache,
        progress=False,
        only=tuple(job.args),
    )
    return {"step": job.name, "seconds": round(time.perf_counter() - start, 2), "pid": os.getpid()}


def one_cell(cell: tuple, out: Path, this_grid, compute) -> pd.DataFrame:
    """``run_grid(only=cell)``: the cell's row, found in ``results.csv`` or its row file when made with
    these settings on this set (``this_grid``), else computed and written to its row file, atomically:
    a job killed mid-cell leaves no row, and the next run redoes just that cell."""
    path = row_file(out, cell)
    for found in (read_rows(out), read_row_file(path) if path.is_file() else None):
        if found is not None:
            mine = this_grid(found)
            mine = mine[[tuple(k) == cell for k in mine[KEY].itertuples(index=False, name=None)]]
            if len(mine):
                return mine.tail(1)
    row = pd.DataFrame([compute(cell)])
    write_csv_atomic(row, path)
    return row


def row_file(out: Path | str, cell: tuple) -> Path:
    """Where a cell computed on its own (``run_grid(only=...)``) leaves its row until the grid merges it."""
    return Path(out) / "rows" / f"{cell_name(tuple(cell))}.csv"


def read_row_file(path: Path) -> pd.DataFrame:
    """One cell's row file; a damaged one is a DataError naming it (the cell is then redone once it is moved)."""
    try:
        row = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError):
        raise DataError(f"{path}: not a row file diag wrote; move it away and the cell is redone") from None
    missing = [c for c in ROW_COLUMNS if c not in row]
    if len(row) != 1 or missing:
        raise DataError(f"{path}: not a row file diag wrote (one row with {', '.join(ROW_COLUMNS)}); move it away")
    return with_real_positives(row, path)


def merge_row_files(out: Path | str) -> pd.DataFrame:
    """``results.csv`` with the row files of cells computed on their own appended (written atomically),
    then those files removed; a row already in the table is not added twice. Returns every row."""
    out = Path(out)
    rows = read_rows(out)
    files = sorted((out / "rows").glob("*.csv")) if (out / "rows").is_dir() else []
    if not files:
        return rows
    identity = [*KEY, "settings_id", "generated_sha1"]
    have = set(rows[identity].astype(str).itertuples(index=False, name=None)) if len(rows) else set()
    new = []
    for path in files:
        row = read_row_file(path)
        if tuple(row[identity].astype(str).iloc[0]) not in have:
            new.append(row)
    if new:
        rows = pd.concat([rows, *new], ignore_index=True) if len(rows) else pd.concat(new, ignore_index=True)
        rows = with_real_positives(rows, out / "results.csv")
        write_csv_atomic(rows, out / "results.csv")
    for path in files:
        path.unlink()
    return rows


METRICS = ("ap", "precision", "recall")  # Tables I and II's columns


def grid_stats(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (0 for one seed) and seed count of each metric per (method, N_aug, k real positives)."""
    by = [c for c in ("method", "n_aug", "real_positives") if c in rows]  # a hand-made table may lack k
    grouped = rows.groupby(by)[list(METRICS)]
    stats = grouped.mean().add_suffix("_mean").join(grouped.std().fillna(0.0).add_suffix("_std"))
    stats["seeds"] = rows.groupby(by).size()
    return stats.reset_index()


def summarize(results: pd.DataFrame, scenario: str) -> pd.DataFrame:
    """Mean +- std over seeds per (method, N_aug; k in the few-shot grid), the paper's value beside it, and the gap."""
    reported = reported_results()
    reported = reported[reported["scenario"] == scenario]
    table = []
    for r in grid_stats(results[results["scenario"] == scenario]).itertuples(index=False):
        paper = reported[(reported["method"] == METHOD_NAMES[r.method]) & (reported["n_aug"] == r.n_aug)]
        entry = {"method": METHOD_NAMES[r.method], "n_aug": int(r.n_aug), "seeds": int(r.seeds)}
        if scenario == "few-shot":
            entry["real_positives"] = int(r.real_positives)
        for m in METRICS:
            entry[m] = f"{getattr(r, m + '_mean'):.3f} ± {getattr(r, m + '_std'):.3f}"
            entry[f"paper_{m}"] = float(paper[m].iloc[0]) if len(paper) else np.nan
        entry["ap_gap"] = round(r.ap_mean - entry["paper_ap"], 3) if len(paper) else np.nan
        table.append(entry)
    return pd.DataFrame(table)
