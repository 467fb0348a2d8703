"""Chapter 8 (re-running the chapters in batch): the notebooks' parameters, read from their own
``parameters`` cells, and the paragraph that reads the worked sweep."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def parameters_of(notebook: Path) -> list[tuple[str, str, str]]:
    """(name, default, meaning) of each line ``name = default  # meaning`` of the notebook's ``parameters`` cell."""
    from diag.book import default_assignments

    found = []
    for name, line in default_assignments(json.loads(Path(notebook).read_text())).items():
        default, _, meaning = line.split("=", 1)[1].partition("#")
        found.append((name, default.strip(), meaning.strip()))
    return found


def parameters_table(notebooks: Path, names: list[str]) -> pd.DataFrame:
    """One row per parameter: its default and meaning as the ``parameters`` cells say, and which chapters
    take it (a parameter written differently in two chapters gets a row for each)."""
    rows: dict[tuple[str, str, str], list[str]] = {}
    for name in names:
        for parameter in parameters_of(Path(notebooks) / f"{name}.ipynb"):
            rows.setdefault(parameter, []).append(name)
    table = [
        {"parameter": p, "default": d, "meaning": m,
         "chapters": "all" if len(chapters) == len(names) else ", ".join(chapters)}
        for (p, d, m), chapters in rows.items()
    ]
    return pd.DataFrame(table)


def sweep_text(table: pd.DataFrame, runs: list, field: str) -> str:
    """What the sweep shows, per method: AP at the fewest and at the most of ``field``'s values."""
    columns = [c for c in table.columns if c.startswith(f"{field}=")]
    first, last = columns[0], columns[-1]
    seconds = ", ".join(f"{r.value}: {r.seconds:.0f} s" for r in runs)
    if len(columns) < 2:
        return f"One value only ({first}); the runs took {seconds}."
    moves = []
    for _, row in table.iterrows():
        start, end = (float(row[c].split(" ± ")[0]) for c in (first, last))
        moves.append(f"{row.iloc[0]} {start:.3f} → {end:.3f}")
    return (
        f"From {first.split('=')[1]} to {last.split('=')[1]} {field.split('.')[1]}, mean AP moved: "
        + "; ".join(moves)
        + f". Each run re-executed the chapter in its own results folder (seconds per run, {seconds}); "
        "only the grid was computed again, the generated sets and feature maps coming from the book's own results."
    )
