"""Benchmark: where `make book`'s time goes. Builds the demo book twice, cold then warm, and prints
each step's time (generated sets, the In&Out fine-tune, feature maps, grids, FID, the realism
probe, each chapter's execution including its kernel's start, the Jupyter Book build).

    python benchmarks/book.py                       # a fresh results folder in a temporary folder
    python benchmarks/book.py --results R --keep    # ... or in R, kept (e.g. to render it again)
    python benchmarks/book.py --set data.replica_seed=7 --workers 1

Cold: from an empty results folder (the replica is made too). Warm: the same command again, with
nothing changed (every result is cached; the chapters execute and the site is built again).
Steps run in worker processes at once (``diag.jobs``), so the steps' times add up to more than
the wall-clock total; the total is the one to compare with another commit's ``make book``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def build(results: Path, site: Path, workers: int | None, overrides: list[str]) -> tuple[float, pd.DataFrame]:
    """One `diag reproduce` into ``results``; its wall-clock seconds and its step log."""
    command = [sys.executable, "-m", "diag", "reproduce", "--results", str(results), "--out", str(site)]
    command += [f"--set={o}" for o in overrides] + (["--workers", str(workers)] if workers else [])
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True)
    seconds = time.perf_counter() - start
    lines = (results / "book-build" / "steps.jsonl").read_text().splitlines()
    return seconds, pd.DataFrame([json.loads(line) for line in lines])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, help="results folder (must be empty or missing); default: temporary")
    parser.add_argument("--keep", action="store_true", help="keep --results afterwards")
    parser.add_argument("--workers", type=int, help="as diag reproduce --workers (default: one per core)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="diag-book-bench-"))
    results = args.results or tmp / "results"
    if results.exists() and any(results.iterdir()):
        parser.error(f"--results {results}: must be empty or missing (the cold build starts from nothing)")
    try:
        cold, cold_steps = build(results, tmp / "site", args.workers, args.set)
        warm, warm_steps = build(results, tmp / "site", args.workers, args.set)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    table = (
        cold_steps.groupby("step", sort=False)["seconds"].sum().rename("cold s").to_frame()
        .join(warm_steps.groupby("step", sort=False)["seconds"].sum().rename("warm s"), how="outer")
    )
    print(table.round(1).fillna("-").to_string())
    print(f"\nwall clock: cold {cold:.0f} s ({cold / 60:.1f} min), warm {warm:.0f} s; overrides: {args.set or 'none'}")


if __name__ == "__main__":
    main()
