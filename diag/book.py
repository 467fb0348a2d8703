"""``diag reproduce``: execute the notebooks with papermill, check them, build the Jupyter Book.

    diag reproduce --profile demo                 # what `make book` runs
    diag reproduce --profile paper --from-results results/paper   # render a GPU run made elsewhere

Notebooks run in order into ``book/chapters/``; the first one that fails stops the run
with its error. papermill still writes a failed notebook and Jupyter Book would render its
traceback without complaint, so every executed notebook is checked for error outputs and
papermill's exception flag before the strict build (``-W -n --keep-going``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ("01-data", "02-inpainting", "03-generation", "04-zero-shot", "05-full-shot", "06-fid", "07-prompt-lab")


class BuildError(RuntimeError):
    """A notebook failed or carries an error; the message names it."""


def notebook_problems(path: Path) -> list[str]:
    """Error outputs and papermill's exception flag in an executed notebook."""
    notebook = json.loads(path.read_text())
    problems = []
    if notebook.get("metadata", {}).get("papermill", {}).get("exception"):
        problems.append(f"{path.name}: papermill recorded an exception")
    for index, cell in enumerate(notebook.get("cells", [])):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                problems.append(f"{path.name}, cell {index}: {output.get('ename')}: {output.get('evalue')}")
    return problems


def results_parameter(results_dir: Path | str, source: Path) -> str:
    """``results_dir`` as the notebooks see it: relative to their folder when it lies in the project.

    The injected parameters are printed on every page, so a results folder inside the project
    shows as ``../results/demo`` rather than this machine's path. A folder elsewhere stays as
    given: a relative path out of the project (``../../../../tmp/…``) would still spell it out.
    """
    results, notebooks = Path(results_dir).resolve(), source.resolve()
    if results.is_relative_to(notebooks.parent):
        return os.path.relpath(results, notebooks)
    return str(results)


def execute_notebooks(profile: str, results_dir: Path, *, parameters: dict | None = None, compute: bool = True,
                      source: Path = ROOT / "notebooks", target: Path = ROOT / "book" / "chapters",
                      names: tuple[str, ...] = NOTEBOOKS) -> dict[str, float]:
    """Run each notebook (papermill) into ``target``; returns seconds per notebook."""
    import papermill

    target.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile, "results_dir": results_parameter(results_dir, source), "compute": compute,
              **(parameters or {})}
    timings = {}
    for name in names:
        start = time.perf_counter()
        output = target / f"{name}.ipynb"
        try:
            papermill.execute_notebook(source / f"{name}.ipynb", output, parameters=params, cwd=str(source),
                                       progress_bar=False, kernel_name="python3")
        except papermill.PapermillExecutionError as error:
            raise BuildError(f"notebook {name} failed: {error.ename}: {error.evalue}") from None
        problems = notebook_problems(output)
        if problems:
            raise BuildError("; ".join(problems))
        timings[name] = round(time.perf_counter() - start, 1)
        print(f"  {name}: {timings[name]:.1f} s", flush=True)
    (target / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    return timings


def build_book(root: Path = ROOT) -> Path:
    """The strict Jupyter Book build; fails on any warning or broken reference."""
    chapters = root / "book" / "chapters"
    problems = [p for nb in sorted(chapters.glob("*.ipynb")) for p in notebook_problems(nb)]
    if problems:
        raise BuildError("; ".join(problems))
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(root), "-W", "-n", "--keep-going"]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"jupyter-book build failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return root / "_build" / "html" / "index.html"


def reproduce(profile: str = "demo", results_dir: Path | str | None = None, from_results: bool = False,
              parameters: dict | None = None) -> Path:
    """Execute every chapter, then build the site; returns the site's index page."""
    results_dir = Path(results_dir or ROOT / "results" / profile)
    start = time.perf_counter()
    print(f"executing notebooks ({profile} profile, results in {results_dir})", flush=True)
    execute_notebooks(profile, results_dir, parameters=parameters, compute=not from_results)
    index = build_book()
    print(f"book built in {time.perf_counter() - start:.0f} s: {index}")
    return index
