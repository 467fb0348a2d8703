"""Re-running a chapter in batch with papermill: one run per value of a setting, each in its own results folder.

    runs = sweep("04-zero-shot", "classifier.epochs", ["5", "15", "50"], base=Path("results/demo"),
                 out=Path("results/demo/sweeps/classifier.epochs"), profile="demo")
    compare_grids(runs, "zero-shot", "classifier.epochs", "demo")   # AP per method, one column per value

Each run executes the chapter's notebook with papermill, its ``overrides`` parameter carrying the
value (``SECTION.FIELD=VALUE``, as ``--set``), into a results folder of its own. That folder starts
as a copy of ``base`` made of hard links (no bytes copied; diag replaces files, never edits them in
place, so ``base`` is never changed), so a run recomputes only what its value changes: here the
grid, not the replica, the generated sets or the feature maps. The executed notebook of each run
is kept beside its results.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from diag import progress
from diag.errors import ConfigError, DiagError
from diag.files import write_text_atomic

NOT_COPIED = ("book-build", "sweeps", "jobs")  # the book's build, other sweeps, cluster logs


@dataclass(frozen=True)
class SweepRun:
    value: str
    results: Path
    notebook: Path  # the executed notebook
    seconds: float


def linked_copy(base: Path, folder: Path) -> None:
    """``folder`` as a copy of ``base`` made of hard links (a plain copy where links are not possible)."""
    def link_or_copy(source: str, target: str) -> None:
        try:
            os.link(source, target)
        except OSError:  # another file system, or links not allowed
            shutil.copy2(source, target)

    shutil.copytree(base, folder, copy_function=link_or_copy, ignore=shutil.ignore_patterns(*NOT_COPIED),
                    dirs_exist_ok=True)


def sweep(
    notebook: str,
    field: str,
    values: Sequence[str],
    *,
    base: Path,
    out: Path,
    profile: str,
    notebooks: Path | None = None,
    data_dir: str | None = None,
    overrides: Sequence[str] = (),
) -> list[SweepRun]:
    """Execute ``notebook`` once per value of ``field`` (``section.field``), each run in ``out/<field>=<value>/``.

    ``base``: a results folder whose steps each run reuses (it is never written to); ``overrides``:
    settings every run shares, before the swept one.
    """
    from diag.book import execute_notebook, notebook_parameters, source_tree
    from diag.config import apply_overrides, profile_config

    if "." not in field:
        raise ConfigError(f"--field: expected SECTION.FIELD (e.g. classifier.epochs); got {field!r}")
    if not values:
        raise ConfigError("--values: give at least one value")
    for value in values:  # every value checked before anything runs
        apply_overrides(profile_config(profile), [*overrides, f"{field}={value}"])
    base, out = Path(base), Path(out)
    if not (base / "manifest.json").is_file():
        raise DiagError(f"{base}: no manifest.json, so not a results folder diag made; run the chapter there first")
    notebooks = Path(notebooks) if notebooks else source_tree() / "notebooks"
    if not (notebooks / f"{notebook}.ipynb").is_file():
        raise ConfigError(f"{notebooks / (notebook + '.ipynb')}: no such notebook")
    runs = []
    for value in values:
        folder = out / f"{field}={value}"
        results = folder / "results"
        if not results.is_dir():
            linked_copy(base, results)
        start = time.perf_counter()
        with progress.step(f"sweep {notebook} {field}={value}"):
            chosen = {"data_dir": data_dir, "overrides": [*overrides, f"{field}={value}"]}
            execute_notebook(notebook, notebooks, folder, notebook_parameters(profile, results, True, chosen))
        runs.append(SweepRun(str(value), results, folder / f"{notebook}.ipynb", round(time.perf_counter() - start, 1)))
    # paths relative to ``out``: a results folder copied elsewhere (from a GPU machine, say) still renders
    recorded = [{"value": r.value, "folder": r.results.parent.name, "notebook": r.notebook.name, "seconds": r.seconds}
                for r in runs]
    write_text_atomic(out / "runs.json", json.dumps(recorded, indent=2) + "\n")
    return runs


def read_runs(out: Path) -> list[SweepRun]:
    """The runs a sweep into ``out`` recorded (none when it has not run)."""
    path = Path(out) / "runs.json"
    if not path.is_file():
        return []
    return [SweepRun(r["value"], Path(out) / r["folder"] / "results", Path(out) / r["folder"] / r["notebook"],
                     r["seconds"]) for r in json.loads(path.read_text())]


def compare_grids(runs: Sequence[SweepRun], scenario: str, field: str, profile: str,
                  overrides: Sequence[str] = ()) -> pd.DataFrame:
    """AP mean ± std over seeds per method, one column per run, from the rows each run made with its own
    settings on its data (a run without such rows is an error, never filled in with other rows)."""
    from diag.config import build_config
    from diag.experiments import KEY, METHOD_NAMES, cell_settings, grid_stats, read_rows, settings_id

    columns = {}
    for run in runs:
        config = build_config(profile, [*overrides, f"{field}={run.value}"])
        fingerprint = json.loads((run.results / "manifest.json").read_text())["data_fingerprint"]  # as the run found it
        rows = read_rows(run.results / scenario)
        mine = (rows["settings_id"] == settings_id(cell_settings(config, fingerprint))) & (
            rows["data_fingerprint"] == fingerprint
        )
        rows = rows[mine].drop_duplicates(KEY, keep="last")
        if rows.empty:
            raise DiagError(f"{run.results / scenario / 'results.csv'}: no rows made with {field}={run.value}")
        columns[f"{field}={run.value}"] = {
            f"{METHOD_NAMES[s.method]}, N_aug {s.n_aug}": f"{s.ap_mean:.3f} ± {s.ap_std:.3f}"
            for s in grid_stats(rows).itertuples(index=False)
        }
    table = pd.DataFrame(columns)
    table.index.name = "method (AP, mean ± std over seeds)"
    return table.reset_index()
