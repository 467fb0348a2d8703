"""The book's work as jobs with dependencies, run by a pool of worker processes.

    jobs = book_jobs(config, NOTEBOOKS, 49, parts=2)     # generated sets, feature maps, grids, FID, chapters
    run_jobs(jobs, Context(...), make_backend("inline", 2))   # diag.executors: one torch thread each

``diag reproduce`` used to execute the chapters one after another, each computing what it showed,
with torch's threads on every core. On a 2-core CPU that left a core idle whenever a step did not
scale (the small models' convolutions scale badly past one thread) and collapsed under load
(threads spinning on a shared core). Here every step that the chapters read is a job; a job
starts when the jobs it needs are done, in a worker process with ONE torch thread, and as many
workers run at once as there are cores. The chapters are jobs too: each executes when its
results exist, so it only renders (and draws its figures).

A job is a name, an action and its arguments, plain data, so that a worker (or a cluster job,
``diag.executors``) can run it from its description alone: ``run_job`` rebuilds the ``workflow.Run`` from the
context and calls the one method that computes the job's result; everything it writes goes
through the results folder's caches, so a job whose result is there returns at once.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from diag.errors import DiagError


@dataclass(frozen=True)
class Job:
    name: str  # what the terminal shows, e.g. "generate diag augmented_100"
    action: str  # one of ACTIONS
    args: tuple = ()
    after: tuple[str, ...] = ()  # names of the jobs whose results this one reads


@dataclass(frozen=True)
class Context:
    """What a worker needs to rebuild the run: the same arguments ``workflow.setup`` takes, and for
    the chapters the notebooks' folder, the folder they execute into and papermill's parameters."""

    profile: str
    results: str
    data: str | None = None
    overrides: tuple[str, ...] = ()
    notebooks: str | None = None
    executed: str | None = None
    parameters: dict = field(default_factory=dict)


def available_cores() -> int:
    """The cores this process may run on (a container's or ``taskset``'s limit, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def book_jobs(
    config, notebooks: Sequence[str], n_positives: int, parts: int = 1, cells: bool = False
) -> list[Job]:
    """Every job of the book with ``config`` (a ``diag.config.Config``), the longest started first.

    ``n_positives``: the data's training positives (the few-shot grid's k = all).

    ``parts``: DIAG's and In&Out's sets are made in that many parts at once (one per worker), then
    each set as a whole (which finds its images made, writes its manifest and its feature maps).
    ``cells``: each grid cell (scenario x method x N_aug x seed) is a job of its own, writing its own
    row file, and the grid's job merges them (a cluster's unit; on one machine a grid shares its
    feature maps in memory instead).
    """
    from diag import experiments, layout

    n_augs = config.grid.n_augs
    fid_n = experiments.table_n_aug(n_augs)
    finetune = "In&Out fine-tune"
    jobs = [Job(finetune, "finetune")]
    sets = []
    for method in ("inout", "diag", experiments.PROCEDURAL, "memseg"):  # In&Out first: its sampling is the longest
        for n_aug in n_augs:
            name = f"generate {method} augmented_{n_aug}"
            first = (finetune,) if method == "inout" else ()
            split = parts if method != "memseg" else 1
            shares = [
                Job(f"{name} (part {k + 1}/{split})", "generate", (method, n_aug, k, split), first)
                for k in range(split)
                if split > 1
            ]
            jobs += shares
            sets.append(Job(name, "generate", (method, n_aug), first + tuple(j.name for j in shares)))
    # the few-shot curve's own sets: DIAG's (and In&Out's) made from each draw of 0 < k < all positives
    few_methods = config.grid.few_shot_methods
    for k in experiments.scenario_positives(config, "few-shot", n_positives):
        for method in (m for m in layout.DRAWN if m in few_methods):
            draw = layout.few_shot_draw(method, k, n_positives, config.grid.positives_seed)
            if k == 0 or draw is None:
                continue
            first = ()
            if method == "inout":
                jobs.append(Job(f"In&Out fine-tune {draw}", "finetune", (k,)))
                first = (jobs[-1].name,)
            name = f"generate {method} {draw}/augmented_{fid_n}"
            shares = [
                Job(f"{name} (part {i + 1}/{parts})", "few-shot set", (method, fid_n, k, i, parts), first)
                for i in range(parts)
                if parts > 1
            ]
            jobs += shares
            sets.append(Job(name, "few-shot set", (method, fid_n, k), first + tuple(j.name for j in shares)))
    names = lambda found: tuple(j.name for j in found)  # noqa: E731
    standard = [j for j in sets if j.action == "generate"]
    table_sets = names(j for j in standard if j.args[1] == fid_n and j.args[0] in experiments.GENERATORS)
    real_maps = "feature maps of the real images"
    grids = []
    for scenario in ("zero-shot", "full-shot", "few-shot"):
        methods = experiments.grid_methods(scenario, few_methods)
        grid_cells = experiments.scenario_cells(config, scenario, methods, n_positives)
        # few-shot copies its k = 0 and k = all rows from the other two grids: after them
        first = (real_maps, "zero-shot grid", "full-shot grid") if scenario == "few-shot" else (real_maps,)
        needs = (*first, *dict.fromkeys(n for cell in grid_cells for n in set_of(sets, cell, n_positives)))
        if cells:
            units = [
                Job(f"cell {' '.join(map(str, cell))}", "cell", cell, (*first, *set_of(sets, cell, n_positives)))
                for cell in grid_cells
            ]
            grids += units
            needs = (*first, *names(units))
        grids.append(Job(f"{scenario} grid", "grid", (scenario,), needs))
    results = [
        *sets,
        Job(real_maps, "real maps"),
        *grids,
        Job(f"FID table at N_aug {fid_n}", "fid", (fid_n,), table_sets),
        Job(f"realism probe at N_aug {fid_n}", "realism", (fid_n,), (f"FID table at N_aug {fid_n}",)),
        Job("papermill sweep", "sweep", (), ("zero-shot grid",)),  # chapter 8's: chapter 4 re-run per value
    ]
    needs = {
        "03-generation": names(standard),
        "04-zero-shot": ("zero-shot grid",),
        "05-full-shot": ("full-shot grid",),
        "06-fid": (f"FID table at N_aug {fid_n}", f"realism probe at N_aug {fid_n}"),
        "08-batch": ("papermill sweep",),
        "09-few-shot": ("few-shot grid",),
    }
    chapters = chapter_jobs(notebooks, needs)
    # the chapters that need nothing run while the fine-tune does; the rest when their results exist
    return [*jobs[:1], *[c for c in chapters if not c.after], *jobs[1:], *results, *[c for c in chapters if c.after]]


def set_of(sets: Sequence[Job], cell: tuple, n_positives: int) -> tuple[str, ...]:
    """The name of the generated set a grid cell trains on (none for the "none" reference): a few-shot
    draw's own set where there is one, else the standard set."""
    from diag import layout

    scenario, method, n_aug, _, k = cell
    drawn = scenario == "few-shot" and layout.is_drawn(method, k, n_positives)
    wanted = ("few-shot set", (method, n_aug, k)) if drawn else ("generate", (method, n_aug))
    return tuple(j.name for j in sets if (j.action, j.args) == wanted)


def chapter_jobs(notebooks: Sequence[str], needs: dict[str, tuple[str, ...]] | None = None) -> list[Job]:
    """One job per chapter, each after the jobs whose results it shows (``needs``; none: a render)."""
    return [Job(f"chapter {name}", "notebook", (name,), (needs or {}).get(name, ())) for name in notebooks]


def run_job(job: Job, context: Context) -> dict:
    """Compute one job's result in this process; returns its step record (name, seconds, process).

    A chapter is one step on the terminal; the other jobs' steps say themselves (``Run.generate``,
    ``Run.grid``, ...), with what they found cached.
    """
    from diag import progress, workflow

    start = time.perf_counter()
    if job.action == "notebook":
        from diag.book import execute_notebook, reused_chapter

        name, notebooks, target = job.args[0], Path(context.notebooks), Path(context.executed)
        seconds = reused_chapter(name, notebooks, target, context.parameters, Path(context.results))
        if seconds is not None:  # nothing it shows has changed since the last build executed it
            progress.say(f"  {job.name}: unchanged since the last build, its page reused")
            return {"step": job.name, "seconds": seconds, "reused": True, "pid": os.getpid()}
        with progress.step(job.name):
            execute_notebook(name, notebooks, target, context.parameters)
    else:
        action = ACTIONS.get(job.action)
        if action is None:
            raise DiagError(f"job {job.name!r}: unknown action {job.action!r}; known: {', '.join(ACTIONS)}")
        run = workflow.setup(context.profile, context.results, context.data, True, list(context.overrides))
        action(run, *job.args)
    return {"step": job.name, "seconds": round(time.perf_counter() - start, 2), "pid": os.getpid()}


ACTIONS: dict[str, Callable] = {
    "finetune": lambda run, k=None: run.inout_lora(k),
    "generate": lambda run, method, n_aug, *part: (
        run.generate(method, n_aug, tuple(part)) if part else run.generate_with_maps(method, n_aug)
    ),
    "few-shot set": lambda run, method, n_aug, k, *part: (
        run.generate(method, n_aug, tuple(part), k=k) if part else run.generate_with_maps(method, n_aug, k)
    ),
    "real maps": lambda run: run.real_maps(),
    "grid": lambda run, scenario: run.grid(scenario),
    "cell": lambda run, *cell: run.grid(cell[0], only=tuple(cell)),
    "fid": lambda run, n_aug: run.fid(n_aug),
    "realism": lambda run, n_aug: run.realism(n_aug),
    "sweep": lambda run: run.epochs_sweep(),
}


def check_jobs(jobs: Sequence[Job]) -> None:
    """Every dependency names a job listed before it, and no name twice: so the plan has no cycle and
    ``run_jobs`` always finishes."""
    seen: set[str] = set()
    for job in jobs:
        if job.name in seen:
            raise DiagError(f"job {job.name!r} is listed twice")
        unknown = [name for name in job.after if name not in seen]
        if unknown:
            raise DiagError(f"job {job.name!r} waits for {', '.join(unknown)}, which is not a job listed before it")
        seen.add(job.name)
