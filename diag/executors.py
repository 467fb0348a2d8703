"""Where the jobs of ``diag.jobs`` run: this machine's worker pool, submitit's local executor, or SLURM.

    backend = make_backend("slurm", jobs=8, folder=results / "jobs", slurm=SlurmOptions(partition="gpu"))
    records = run_jobs(plan, context, backend)

``inline`` (the default) is a pool of spawned worker processes on this machine, one torch thread each
(see ``diag.jobs``). ``local`` and ``slurm`` hand each job to submitit (https://github.com/facebookincubator/submitit),
which pickles the call, runs it in a process of its own (``local``: on this machine, one GPU each where
there are several; ``slurm``: as a task of a job array, one array per wave of jobs that became ready
together) and keeps its log under ``folder``. The scheduling is the same for all three and lives here:
a job is submitted once the jobs it needs are done, at most ``jobs`` at a time; a failed job is named
with its log, the jobs that need it are not run, and every other job still lands (each writes only its
own unit, atomically, so a re-run submits only what is missing).
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from diag import progress
from diag.errors import BuildError, ConfigError, DiagError
from diag.jobs import Job, check_jobs

EXECUTORS = ("inline", "local", "slurm")
THREADS_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class SlurmOptions:
    """What each SLURM job asks for (``diag reproduce --slurm-partition ... --gpus-per-job ...``)."""

    partition: str | None = None
    time_min: int = 240  # per job; In&Out's fine-tune is the longest unit
    gpus_per_job: int = 1
    cpus_per_job: int = 8
    array_parallelism: int | None = None  # tasks of one array at once; None: --jobs

    def __post_init__(self) -> None:
        for name in ("time_min", "cpus_per_job"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--slurm-{name.replace('_', '-')}: must be >= 1; got {getattr(self, name)}")
        if self.gpus_per_job < 0:
            raise ConfigError(f"--gpus-per-job: must be >= 0; got {self.gpus_per_job}")


def one_thread_worker() -> None:
    """Each inline worker's torch uses one thread (``diag.jobs``' docstring); set before torch is imported."""
    for name in THREADS_ENV:
        os.environ[name] = "1"


def run_unit(runner: Callable[[Job, Any], dict], job: Job, context: Any, threads: int | None = None) -> dict:
    """One job in the process that runs it: its record, or ``{"error": ...}`` for a ``DiagError``
    (one line the parent shows; anything else is a bug and keeps its traceback in the job's log)."""
    if threads:
        for name in THREADS_ENV:
            os.environ.setdefault(name, str(threads))
    print(f"diag job {job.name!r} started on {platform.node()} (pid {os.getpid()})", file=sys.stderr, flush=True)
    try:
        return runner(job, context)
    except DiagError as error:
        return {"step": job.name, "error": str(error)}


@dataclass
class Handle:
    """A submitted job: the pool's future or submitit's job, and where its log is (submitit only)."""

    job: Job
    running: Any
    log: Path | None = None
    gpu: int | None = None


class PoolBackend:
    """``inline``: spawned worker processes on this machine (a fresh interpreter: no torch threads inherited)."""

    name = "inline"

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ConfigError(f"--workers must be >= 1; got {workers}")
        self.slots = workers
        spawn = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=spawn, initializer=one_thread_worker)

    def submit(self, wave: Sequence[Job], runner: Callable, context: Any) -> list[Handle]:
        return [Handle(job, self.pool.submit(run_unit, runner, job, context)) for job in wave]

    def wait(self, handles: Sequence[Handle]) -> list[Handle]:
        finished, _ = wait([h.running for h in handles], return_when=FIRST_COMPLETED)
        return [h for h in handles if h.running in finished]

    def outcome(self, handle: Handle) -> dict:
        error = handle.running.exception()
        if error is not None:
            return {"step": handle.job.name, "error": f"{type(error).__name__}: {error}"}
        return handle.running.result()

    def close(self, handles: Sequence[Handle] = ()) -> None:
        for handle in handles:
            handle.running.cancel()
        self.pool.shutdown(wait=True, cancel_futures=True)


class SubmititBackend:
    """``local`` or ``slurm``: each job a submitit job, its log under ``folder``."""

    def __init__(self, executor: Any, kind: str, slots: int, gpus: Sequence[int] = (), poll_s: float = 1.0) -> None:
        self.executor, self.name, self.poll_s = executor, kind, poll_s
        self.free_gpus = list(gpus)  # local: one of this machine's GPUs per job
        self.slots = min(slots, len(self.free_gpus)) if self.free_gpus else slots

    def submit(self, wave: Sequence[Job], runner: Callable, context: Any) -> list[Handle]:
        if self.name == "local":
            handles = []
            for job in wave:
                gpu = self.free_gpus.pop(0) if self.free_gpus else None
                if gpu is not None:
                    self.executor.update_parameters(gpus_per_node=1, visible_gpus=[gpu])
                handles.append(Handle(job, self.executor.submit(run_unit, runner, job, context, 1), gpu=gpu))
        else:  # one SLURM job array per wave; each task's threads are the CPUs it was given
            threads = self.executor.parameters.get("cpus_per_task", 1)
            with self.executor.batch():
                running = [self.executor.submit(run_unit, runner, job, context, threads) for job in wave]
            handles = [Handle(job, r) for job, r in zip(wave, running)]
        for handle in handles:
            handle.log = Path(handle.running.paths.stderr)
            progress.say(f"  submitted {handle.job.name}: job {handle.running.job_id}, log {handle.log}")
        return handles

    def wait(self, handles: Sequence[Handle]) -> list[Handle]:
        while True:
            finished = [h for h in handles if h.running.done()]
            if finished:
                return finished
            time.sleep(self.poll_s)

    def outcome(self, handle: Handle) -> dict:
        if handle.gpu is not None:
            self.free_gpus.append(handle.gpu)
        try:
            return handle.running.result()
        except Exception as error:  # submitit's FailedJobError / UncompletedJobError: the traceback is in the log
            first = str(error).strip().splitlines()
            return {"step": handle.job.name, "error": f"{type(error).__name__}: {first[0] if first else ''}"}

    def close(self, handles: Sequence[Handle] = ()) -> None:
        for handle in handles:
            handle.running.cancel(check=False)


def local_gpus() -> list[int]:
    """This machine's GPUs (``CUDA_VISIBLE_DEVICES`` respected): the local executor gives one to each job."""
    import torch

    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def make_backend(
    kind: str,
    jobs: int,
    folder: Path | str | None = None,
    slurm: SlurmOptions | None = None,
    gpus: Sequence[int] | None = None,
    poll_s: float = 1.0,
):
    """The backend named ``kind`` (one of ``EXECUTORS``) that runs at most ``jobs`` jobs at once.

    ``folder``: submitit's logs and pickles (``local``, ``slurm``); ``gpus``: the GPUs the local executor
    hands out, one per job (default: this machine's).
    """
    if kind not in EXECUTORS:
        raise ConfigError(f"--executor: must be one of {', '.join(EXECUTORS)}; got {kind!r}")
    if jobs < 1:
        raise ConfigError(f"--jobs: must be >= 1; got {jobs}")
    if kind == "inline":
        return PoolBackend(jobs)
    import submitit  # imported here: only the cluster executors need it

    if folder is None:
        raise ConfigError(f"--executor {kind}: needs a folder for its jobs' logs")
    logs = Path(folder) / "%j"
    if kind == "local":
        executor = submitit.LocalExecutor(folder=logs)
        executor.update_parameters(timeout_min=(slurm or SlurmOptions()).time_min, gpus_per_node=0)
        return SubmititBackend(executor, kind, jobs, local_gpus() if gpus is None else gpus, poll_s)
    slurm = slurm or SlurmOptions()
    missing = [tool for tool in ("sbatch", "srun") if shutil.which(tool) is None]
    if missing:
        raise ConfigError(
            f"--executor slurm: no {' or '.join(missing)} on PATH; run it where SLURM's commands are (a login node)"
        )
    executor = submitit.SlurmExecutor(folder=logs)
    executor.update_parameters(
        job_name="diag",
        partition=slurm.partition,
        time=slurm.time_min,
        gpus_per_node=slurm.gpus_per_job or None,
        cpus_per_task=slurm.cpus_per_job,
        ntasks_per_node=1,
        array_parallelism=slurm.array_parallelism or jobs,
    )
    return SubmititBackend(executor, kind, jobs, (), max(poll_s, 10.0))  # sacct is not to be hammered


def run_jobs(jobs: Sequence[Job], context: Any, backend, runner: Callable[[Job, Any], dict] | None = None) -> list[dict]:
    """Run ``jobs`` on ``backend``, each once its ``after`` jobs are done, at most ``backend.slots`` at once.

    ``runner`` (a module-level function, so that another process can import it) computes one job;
    default ``diag.jobs.run_job``. A failed job does not stop the others: the jobs that need it are
    left out, the rest land, and then one ``BuildError`` names each failure with its log. Returns the
    step records of the jobs that ran.
    """
    from diag.jobs import run_job

    check_jobs(jobs)
    runner = runner or run_job
    pending, running = list(jobs), []
    done: set[str] = set()
    failed: dict[str, str] = {}
    records: list[dict] = []
    try:
        while pending or running:
            blocked = [j for j in pending if set(j.after) & set(failed)]
            for job in blocked:  # needs a failed job (or one left out): never started, and so on down the line
                pending.remove(job)
                failed.setdefault(job.name, "(left out)")
            ready = [j for j in pending if set(j.after) <= done]
            wave = ready[: max(backend.slots - len(running), 0)]
            if wave:
                running += backend.submit(wave, runner, context)
                pending = [j for j in pending if j not in wave]
            if not running:
                continue
            for handle in backend.wait(running):
                running.remove(handle)
                record = backend.outcome(handle)
                if "error" in record:
                    log = f" (log: {handle.log})" if handle.log else ""
                    failed[handle.job.name] = record["error"] + log
                    progress.say(f"  FAILED {handle.job.name}: {record['error']}{log}")
                else:
                    done.add(handle.job.name)
                    records.append(record)
                    if handle.log is not None:  # a cluster job: its steps are in its log; here, how far the plan is
                        progress.say(f"  [{len(done)}/{len(jobs)}] {handle.job.name} finished")
    finally:
        backend.close(running)
    if failed:
        raise BuildError(failure_report(failed))
    return records


def failure_report(failed: dict[str, str]) -> str:
    """One line per failed job (its error and log), then how many were left out because of them."""
    errors = {name: why for name, why in failed.items() if why != "(left out)"}
    left = len(failed) - len(errors)
    lines = [f"{name}: {why}" for name, why in errors.items()]
    tail = f"; {left} job(s) that need them were not run" if left else ""
    more = "; every other job finished, so a re-run redoes only these" + tail
    return ("; ".join(lines) if len(lines) == 1 else f"{len(lines)} jobs failed: " + "; ".join(lines)) + more
