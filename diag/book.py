"""``diag reproduce``: execute the notebooks with papermill, check them, build the Jupyter Book.

    diag reproduce                                          # demo profile: what `make book` runs
    diag reproduce --profile paper --data data/ksdd2        # the whole paper pipeline, on a GPU
    diag reproduce --profile paper --from-results results/paper   # render a finished folder, compute nothing

The book's sources (``notebooks/``, ``book/``, ``_config.yml``, ``_toc.yml``) are read from the
project's source tree and never written to: they are copied into a build folder
(``RESULTS/book-build``, or a temporary folder with ``--from-results``), the notebooks are
executed into a fresh folder there and swapped in only when all of them succeeded, and the
site goes to ``--out`` the same way. papermill still writes a failed notebook and Jupyter
Book would render its traceback without complaint, so every executed notebook is checked
for error outputs and papermill's exception flag before the strict build
(``-W -n --keep-going``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Sequence

from diag import progress
from diag.errors import BuildError, DiagError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = (
    "01-data", "02-inpainting", "03-generation", "04-zero-shot", "05-full-shot", "06-fid", "07-prompt-lab", "08-batch",
    "09-few-shot",
)
SOURCES = ("_config.yml", "_toc.yml", "book", "notebooks")
HIDDEN = "remove-cell"  # the parameter cells: setup() prints what ran instead of a machine's paths


def source_tree(source: Path | None = None) -> Path:
    """The folder holding the book's sources; a one-line error when they are not there."""
    source = Path(source) if source else ROOT
    missing = [name for name in SOURCES if not (source / name).exists()]
    if missing:
        raise DiagError(
            f"{source}: the book's sources ({', '.join(missing)}) are not here; `diag reproduce` needs the "
            "project's source tree: run it from a clone (pip install -e .) or pass --source CLONE"
        )
    return source


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


def publishable(path: Path, source: Path) -> None:
    """Make an executed notebook fit to publish, as a page and as the page's downloadable ``.ipynb``:
    the parameters cells hidden on the page (``setup()`` prints what ran instead); injected values that
    are this machine's paths put back to the notebook's own defaults (a reader's copy must not carry the
    builder's folders); no widget state (the page would load jupyter-widgets from a CDN for widgets a
    static page cannot run)."""
    notebook = json.loads(path.read_text())
    defaults = default_assignments(json.loads(source.read_text()))
    for cell in notebook.get("cells", []):
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if ("injected-parameters" in tags or "parameters" in tags) and HIDDEN not in tags:
            tags.append(HIDDEN)
        if "injected-parameters" in tags:
            lines = "".join(cell["source"]).splitlines()
            cell["source"] = "\n".join(without_machine_paths(line, defaults) for line in lines)
    metadata = notebook.setdefault("metadata", {})
    metadata.pop("widgets", None)
    record = metadata.get("papermill", {})
    for key in ("input_path", "output_path"):  # this machine's folders
        record.pop(key, None)
    for name, value in list(record.get("parameters", {}).items()):
        if isinstance(value, str) and Path(value).is_absolute():
            record["parameters"][name] = None
    path.write_text(json.dumps(notebook, indent=1) + "\n")


def default_assignments(notebook: dict) -> dict[str, str]:
    """``name -> "name = value  # comment"`` for each line of the notebook's ``parameters`` cell."""
    for cell in notebook.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            lines = "".join(cell["source"]).splitlines()
            return {line.split("=", 1)[0].strip(): line for line in lines if "=" in line}
    return {}


def without_machine_paths(line: str, defaults: dict[str, str]) -> str:
    """An injected ``name = value`` line, or the notebook's default for ``name`` when the value holds an
    absolute path (``results_dir``, ``data_dir``)."""
    import ast

    name, sep, value = line.partition("=")
    try:
        parsed = ast.literal_eval(value.strip()) if sep else None
    except (ValueError, SyntaxError):
        return line
    if isinstance(parsed, str) and Path(parsed).is_absolute() and name.strip() in defaults:
        return defaults[name.strip()]
    return line


@contextlib.contextmanager
def swapped_in(target: Path) -> Iterator[Path]:
    """A fresh folder beside ``target`` that replaces it only when the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{target.name}.new.", dir=target.parent))
    try:
        yield fresh
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        fresh.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)


# --- a chapter executed again only when what it shows may have changed ---------------------------------
NOT_SHOWN = ("book-build", "jobs")  # the build's own folder and the cluster's logs, inside the results folder


def folder_state(folder: Path, skip: Sequence[str] = NOT_SHOWN) -> str:
    """Every file under ``folder`` (but those in folders named in ``skip``) as path, size and modification
    time, hashed: what a chapter may read, without having to know which files it reads."""
    digest = hashlib.sha1()
    for root, dirs, files in os.walk(folder):
        relative = Path(root).relative_to(folder)
        dirs[:] = sorted(d for d in dirs if d not in skip)
        for name in sorted(files):
            stat = os.stat(os.path.join(root, name))
            digest.update(f"{relative / name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def code_state() -> str:
    """The package's own files (code, the bundled model) and the versions of the libraries a page's
    output comes from: a change to any executes every chapter again."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha1(folder_state(ROOT / "diag", skip=("__pycache__",)).encode())  # not the bytecode Python writes
    for package in ("numpy", "pandas", "matplotlib", "torch", "diffusers", "scikit-learn", "papermill", "ipykernel"):
        try:
            digest.update(f"{package} {version(package)}\n".encode())
        except PackageNotFoundError:
            digest.update(f"{package} -\n".encode())
    return digest.hexdigest()


def inputs_state(results: Path, parameters: dict) -> str:
    """The results folder's state, and the data folder's where it lies outside it (the paper's KSDD2)."""
    state = folder_state(results)
    data = parameters.get("data_dir")
    if data and not Path(data).resolve().is_relative_to(results.resolve()):
        state += folder_state(Path(data))
    return state


def chapter_key(name: str, notebooks: Path, parameters: dict, state: str) -> str:
    """What an executed chapter was made from: its notebook, papermill's parameters, the package and the
    libraries (``code_state``) and the results' state (``inputs_state``). Equal keys: the same page."""
    made = [(notebooks / f"{name}.ipynb").read_bytes().hex(), json.dumps(parameters, sort_keys=True), code_state(), state]
    return hashlib.sha1("\n".join(made).encode()).hexdigest()


def key_path(folder: Path, name: str) -> Path:
    return folder / f"{name}.key.json"


def reused_chapter(name: str, notebooks: Path, target: Path, parameters: dict, results: Path) -> float | None:
    """When the chapter executed by the last build (in ``target``'s final folder) was made from what it
    would be made from now, copy it into ``target`` and return its execution time; else None.

    Why by hand: papermill and Jupyter Book's own cache (jupyter-cache) key a notebook by its code cells
    only, and these pages show results computed outside the notebook."""
    previous = target.parent / "chapters"
    recorded = key_path(previous, name)
    if target == previous or not recorded.is_file() or not (previous / f"{name}.ipynb").is_file():
        return None
    record = json.loads(recorded.read_text())
    if record.get("key") != chapter_key(name, notebooks, parameters, inputs_state(results, parameters)):
        return None
    shutil.copyfile(previous / f"{name}.ipynb", target / f"{name}.ipynb")
    shutil.copyfile(recorded, key_path(target, name))
    return float(record.get("seconds", 0.0))


def record_chapter_keys(chapters: dict[str, float], notebooks: Path, target: Path, parameters: dict, results: Path) -> None:
    """After every job of the build: each chapter's key with the results as the build leaves them, which
    is what the next build will find when nothing changed (``reused_chapter``)."""
    state = inputs_state(results, parameters)
    for name, seconds in chapters.items():
        key = chapter_key(name, notebooks, parameters, state)
        key_path(target, name).write_text(json.dumps({"key": key, "seconds": seconds}) + "\n")


def execute_notebook(name: str, notebooks: Path, target: Path, parameters: dict) -> None:
    """Run one notebook (papermill) into ``target``; a failed or error-carrying notebook is a BuildError.

    The kernel's log (its "running over TCP" warning and the like) goes to its stderr, which
    ``reproduce`` points at ``kernels.log`` in the build folder; progress reaches the terminal
    through ``diag.progress``.
    """
    import papermill

    output = target / f"{name}.ipynb"
    try:
        papermill.execute_notebook(
            notebooks / f"{name}.ipynb",
            output,
            parameters=parameters,
            cwd=str(target),
            progress_bar=False,
            kernel_name="python3",
        )
    except papermill.PapermillExecutionError as error:
        raise BuildError(f"notebook {name} failed: {error.ename}: {error.evalue}") from None
    problems = notebook_problems(output)
    if problems:
        raise BuildError("; ".join(problems))
    publishable(output, notebooks / f"{name}.ipynb")


def notebook_parameters(profile: str, results_dir: Path, compute: bool, parameters: dict | None) -> dict:
    """What papermill injects into every chapter's ``parameters`` cell."""
    results = str(Path(results_dir).resolve())
    return {"profile": profile, "results_dir": results, "compute": compute, **(parameters or {})}


def copy_sources(source: Path, build: Path) -> None:
    """The book's pages and configuration into ``build`` (executed chapters are kept)."""
    build.mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copyfile(source / name, build / name)
    shutil.copytree(source / "book", build / "book", dirs_exist_ok=True, ignore=shutil.ignore_patterns("chapters"))
    write_generated_pages(build / "book")


def write_generated_pages(book: Path) -> None:
    """Pages made at build time: the intro's headline (computed from the paper's tables, as the chapters
    show them), the demo model's card, and CITATION.cff to download."""
    from diag.chapters.report import headline
    from diag.generate.loading import bundled_model_path

    (book / "headline.md").write_text(headline() + "\n")
    shutil.copyfile(bundled_model_path() / "README.md", book / "model-card.md")
    shutil.copyfile(ROOT / "CITATION.cff", book / "CITATION.cff")


def write_computation_page(
    build: Path,
    results: Path,
    source: Path,
    chapters: dict[str, float],
    workers: int,
    rendered: bool,
    reused: Sequence[str] = (),
) -> None:
    """``book/computed.md`` ("How this book was computed") from this run's records (``diag.provenance``)."""
    from diag import provenance

    manifest = json.loads((results / "manifest.json").read_text())
    steps = provenance.read_steps(build / "steps.jsonl")
    page = provenance.computation_page(
        manifest, chapters, steps, provenance.machine_facts(source), workers, rendered, reused
    )
    (build / "book" / "computed.md").write_text(page)


def build_book(root: Path, out: Path | None = None) -> Path:
    """The strict Jupyter Book build of ``root``; the site replaces ``out`` (default ``root/_build/html``)."""
    root = Path(root).resolve()  # jupyter-book runs in root: a relative path would point elsewhere
    chapters = root / "book" / "chapters"
    problems = [p for nb in sorted(chapters.glob("*.ipynb")) for p in notebook_problems(nb)]
    if problems:
        raise BuildError("; ".join(problems))
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(root), "-W", "-n", "--keep-going"]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"jupyter-book build failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    site = root / "_build" / "html"
    if out is None or Path(out).resolve() == site.resolve():
        return site / "index.html"
    with swapped_in(Path(out)) as fresh:
        shutil.copytree(site, fresh, dirs_exist_ok=True)
    return Path(out) / "index.html"


def reproduce(
    profile: str = "demo",
    results_dir: Path | str | None = None,
    *,
    out: Path | str = "_build/html",
    from_results: bool = False,
    data: Path | str | None = None,
    overrides: Sequence[str] = (),
    source: Path | None = None,
    workers: int | None = None,
    cluster=None,
) -> Path:
    """Compute every result, execute every chapter, then build the site into ``out``; returns its index page.

    The work runs as jobs (``diag.jobs``) on ``workers`` processes (default: one per core on a CPU,
    one on a GPU); the terminal shows one line per step and a bar for long ones, and the kernels'
    own log goes to ``kernels.log`` in the build folder. Each step's time is in ``steps.jsonl`` there.
    ``cluster``: a ``diag.executors`` backend (submitit's local executor or SLURM) that computes the
    results instead, one job per unit (each grid cell too); the chapters then execute here.
    """
    from diag import executors, jobs, workflow

    source = source_tree(source)
    results = Path(results_dir or Path("results") / profile)
    if from_results and not results.is_dir():
        raise DiagError(f"{results}: results folder not found")
    if from_results and not (results / "manifest.json").is_file():
        raise DiagError(
            f"{results}: no manifest.json, so no results diag made; render a folder `diag reproduce` computed"
        )
    # the settings and the data, checked before anything is written
    config = None if from_results else workflow.checked_inputs(profile, data, overrides)[0]
    if config is not None:  # In&Out's precision fits its device: said now, not after an hour of other steps
        from diag.devices import resolve_device
        from diag.generate.inout import check_precision

        check_precision(config.inout, resolve_device(config.inout.device))
    workers = workers or default_workers(config)
    print(f"building the {profile} book with {workers} worker(s); results in {results}", flush=True)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        build = (
            Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="diag-book-")))
            if from_results
            else results / "book-build"
        )
        build.mkdir(parents=True, exist_ok=True)
        for log in ("console.log", "steps.jsonl", "kernels.log"):
            (build / log).unlink(missing_ok=True)
        terminal = stack.enter_context(stderr_to(build / "kernels.log"))
        stack.enter_context(progress.follow_console(build / "console.log", terminal))
        # absolute: the kernels that write them run in the chapters' folder, not here
        logs = {progress.CONSOLE_ENV: str((build / "console.log").resolve()),
                progress.STEP_LOG_ENV: str((build / "steps.jsonl").resolve())}
        stack.enter_context(environment(logs))
        from diag.classify.data import count_positives

        run = None if from_results else workflow.setup(profile, results, data, compute=True, overrides=overrides)
        copy_sources(source, build)
        data_dir = None if data is None else str(Path(data).resolve())
        parameters = {"data_dir": data_dir, "overrides": list(overrides)}
        with swapped_in(build / "book" / "chapters") as fresh:
            context = jobs.Context(
                profile,
                str(results.resolve()),
                data_dir,
                tuple(overrides),
                notebooks=str(source / "notebooks"),
                executed=str(fresh),
                parameters=notebook_parameters(profile, results, not from_results, parameters),
            )
            positives = count_positives(run.data) if run else 0
            if run and cluster is not None:  # the results as cluster jobs, then the chapters here
                units = jobs.book_jobs(run.config, [], positives, parts=cluster.slots, cells=True)
                records = executors.run_jobs(units, context, cluster)
                records += executors.run_jobs(jobs.chapter_jobs(NOTEBOOKS), context, executors.make_backend("inline", workers))
            else:
                plan = jobs.book_jobs(run.config, NOTEBOOKS, positives, parts=workers) if run else jobs.chapter_jobs(NOTEBOOKS)
                records = executors.run_jobs(plan, context, executors.make_backend("inline", workers))
            executed = [r for r in records if r["step"].startswith("chapter ")]
            chapters = {r["step"].removeprefix("chapter "): r["seconds"] for r in executed}
            reused = [r["step"].removeprefix("chapter ") for r in executed if r.get("reused")]
            (fresh / "timings.json").write_text(json.dumps(chapters, indent=2) + "\n")  # the chapters' times
            if not from_results:
                record_chapter_keys(chapters, source / "notebooks", fresh, context.parameters, results)
        write_computation_page(build, results, source, chapters, workers, from_results, reused)
        with progress.step("Jupyter Book build"):
            index = build_book(build, Path(out))
    print(f"book built in {time.perf_counter() - start:.0f} s: {index}")
    return index


def default_workers(config) -> int:
    """One worker per core on a CPU; one on a GPU (its jobs share one device). ``config``: None for a render."""
    from diag.devices import resolve_device
    from diag.jobs import available_cores

    if config is not None and resolve_device(config.diag.device).type == "cuda":
        return 1
    return available_cores()


@contextlib.contextmanager
def stderr_to(log: Path) -> Iterator:
    """Point this process's stderr (fd 2, which workers and kernels inherit) at ``log``; yields the terminal.

    Why: each kernel prints its own log lines ("Kernel is running over TCP without encryption")
    straight to the stderr it inherited; they belong in a log, not between the step lines.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with open(log, "a") as target:
        os.dup2(target.fileno(), 2)
    terminal = os.fdopen(os.dup(saved), "w", buffering=1)
    try:
        yield terminal
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        terminal.close()


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block (workers and kernels inherit them), then restore them."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
