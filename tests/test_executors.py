"""Cluster executors (submitit): the grid's cells as jobs, their row files, failures, and SLURM submission."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pandas as pd
import pytest

from diag.cli import main
from diag.errors import BuildError, DiagError
from diag.executors import SlurmOptions, make_backend, run_jobs
from diag.experiments import GridContext, grid_jobs, merge_row_files, row_file, run_grid_job
from diag.jobs import Context, Job, book_jobs
from diag.config import build_config
from tests.test_classify import make_generated
from tests.test_jobs import ran  # what the stand-in runners logged

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]


def log_job(job: Job, context: Context) -> dict:
    """A stand-in runner (imported by submitit's job process): records that it ran; fails where asked."""
    if job.action == "fail":
        raise DiagError("this unit was told to fail")
    if job.action == "crash":
        raise RuntimeError("a bug")
    entry = {"step": job.name, "pid": os.getpid(), "cuda": os.environ.get("CUDA_VISIBLE_DEVICES")}
    with open(Path(context.results) / "ran.jsonl", "a") as log:
        log.write(json.dumps(entry) + "\n")
    return entry


def test_local_executor_runs_each_job_in_its_own_process_after_its_dependencies(tmp_path: Path) -> None:
    jobs = [Job("a", "x"), Job("b", "x", after=("a",)), Job("c", "x")]
    backend = make_backend("local", 2, tmp_path / "jobs", gpus=[], poll_s=0.2)
    records = run_jobs(jobs, Context("demo", str(tmp_path)), backend, runner=log_job)
    assert sorted(r["step"] for r in records) == ["a", "b", "c"]
    pids = {e["pid"] for e in ran(tmp_path).values()}
    assert len(pids) == 3 and os.getpid() not in pids
    assert ran(tmp_path)["a"]["cuda"] == ""  # no GPU handed out: none visible to the job


def test_a_failing_unit_is_named_with_its_log_and_the_others_land(tmp_path: Path) -> None:
    jobs = [Job("ok", "x"), Job("broken", "fail"), Job("buggy", "crash"), Job("needs broken", "x", after=("broken",))]
    backend = make_backend("local", 3, tmp_path / "jobs", gpus=[], poll_s=0.2)
    with pytest.raises(BuildError) as raised:
        run_jobs(jobs, Context("demo", str(tmp_path)), backend, runner=log_job)
    message = str(raised.value)  # the two failures in the order they ended, which load may swap
    assert message.startswith("2 jobs failed: ") and "broken: this unit was told to fail (log: " in message
    assert "buggy: FailedJobError" in message and "1 job(s) that need them were not run" in message
    logs = [Path(part.split(")")[0]) for part in message.split("(log: ")[1:]]
    assert len(logs) == 2 and all(log.is_file() and log.is_relative_to(tmp_path / "jobs") for log in logs)
    assert any("RuntimeError: a bug" in log.read_text() for log in logs)  # the traceback is in the job's log
    assert set(ran(tmp_path)) == {"ok"}


def test_the_local_executor_gives_each_job_its_own_gpu(tmp_path: Path) -> None:
    jobs = [Job(name, "x") for name in "abcd"]
    backend = make_backend("local", 8, tmp_path / "jobs", gpus=[0, 1], poll_s=0.2)
    assert backend.slots == 2  # no more jobs at once than GPUs
    run_jobs(jobs, Context("demo", str(tmp_path)), backend, runner=log_job)
    assert sorted(e["cuda"] for e in ran(tmp_path).values()) == ["0", "0", "1", "1"]


@pytest.fixture(scope="module")
def generated(replica: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("generated")
    make_generated(replica, root / "diag" / "augmented_4", 4)
    return root


def experiment(replica: Path, generated: Path, out: Path, *extra: str) -> int:
    return main(["experiment", "--scenario", "zero-shot", "--methods", "diag", "--data", str(replica),
                 "--generated", str(generated), "--out", str(out), "--n-aug", "4", "--seeds", "0,1",
                 "--set", "classifier.epochs=2", "--set", "classifier.device=cpu",
                 "--feature-cache", str(out.parent / "features"), *extra])


def test_cells_as_local_jobs_give_the_rows_of_the_in_process_grid(replica: Path, generated: Path, tmp_path: Path) -> None:
    assert experiment(replica, generated, tmp_path / "inline") == 0
    assert experiment(replica, generated, tmp_path / "local", "--executor", "local", "--jobs", "2") == 0
    inline, local = (pd.read_csv(tmp_path / name / "results.csv") for name in ("inline", "local"))
    assert len(local) == 2 and not list((tmp_path / "local" / "rows").glob("*.csv"))  # merged, then removed
    skip = ["wall_s"]
    pd.testing.assert_frame_equal(
        inline.drop(columns=skip).sort_values("seed").reset_index(drop=True),
        local.drop(columns=skip).sort_values("seed").reset_index(drop=True),
    )
    assert len(list((tmp_path / "local" / "jobs").glob("*/*_log.err"))) == 2  # one log per cell


def test_a_cell_killed_midway_leaves_no_row_and_only_it_is_redone(replica: Path, generated: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    overrides = ("grid.n_augs=4", "grid.seeds=0,1", "classifier.device=cpu")
    config = build_config("demo", overrides)
    context = GridContext("demo", (*overrides, "classifier.epochs=2"), "zero-shot", ("diag",), str(replica),
                          str(generated), str(out), str(tmp_path / "features"))
    first, second = grid_jobs(config, "zero-shot", ["diag"], replica)
    run_jobs([first], context, make_backend("local", 1, tmp_path / "jobs", gpus=[], poll_s=0.2), runner=run_grid_job)
    assert row_file(out, first.args).is_file()
    made = row_file(out, first.args).stat().st_mtime_ns

    slow = GridContext(**{**context.__dict__, "overrides": (*overrides, "classifier.epochs=100000")})
    backend = make_backend("local", 1, tmp_path / "jobs", gpus=[], poll_s=0.2)
    (handle,) = backend.submit([second], run_grid_job, slow)
    curves = out / "curves"
    assert handle.log.is_relative_to(tmp_path / "jobs")
    deadline = time.time() + 120
    while not (handle.log.is_file() and "'cell zero-shot diag 4 1 0' started" in handle.log.read_text()):
        assert time.time() < deadline, "the job did not start"
        time.sleep(0.2)
    time.sleep(5)  # inside the cell: its 100,000 epochs take minutes
    handle.running.cancel(check=False)
    while not handle.running.done():
        time.sleep(0.2)
    assert not row_file(out, second.args).exists() and not (curves / "zero-shot_diag_4_seed1.csv").exists()

    records = run_jobs([first, second], context, make_backend("local", 2, tmp_path / "jobs", gpus=[], poll_s=0.2),
                       runner=run_grid_job)
    assert row_file(out, first.args).stat().st_mtime_ns == made  # the finished cell was not redone
    assert row_file(out, second.args).is_file() and len(records) == 2
    rows = merge_row_files(out)
    assert sorted(rows["seed"]) == [0, 1] and not list((out / "rows").glob("*.csv"))


def test_slurm_submits_one_job_array_per_wave_with_the_options_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir, submitted = tmp_path / "bin", tmp_path / "submitted.sh"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"  # a stand-in: keeps the script it is given and answers as SLURM does
    sbatch.write_text(f"#!/bin/sh\ncp \"$1\" {submitted}\necho 'Submitted batch job 4242'\n")
    sbatch.chmod(sbatch.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    with pytest.raises(DiagError, match="--executor slurm: no srun on PATH"):
        make_backend("slurm", 4, tmp_path / "jobs")
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "srun").chmod(sbatch.stat().st_mode)
    options = SlurmOptions(partition="gpu", time_min=90, gpus_per_job=1, cpus_per_job=6, array_parallelism=2)
    backend = make_backend("slurm", 4, tmp_path / "jobs", options)
    handles = backend.submit([Job("cell a", "x"), Job("cell b", "x"), Job("cell c", "x")], log_job,
                             Context("demo", str(tmp_path)))
    script = submitted.read_text()
    for line in ("#SBATCH --partition=gpu", "#SBATCH --time=90", "#SBATCH --gpus-per-node=1",
                 "#SBATCH --cpus-per-task=6", "#SBATCH --array=0-2%2", "#SBATCH --job-name=diag"):
        assert line in script
    assert [h.running.job_id for h in handles] == ["4242_0", "4242_1", "4242_2"]
    assert all(str(h.log).startswith(str(tmp_path / "jobs" / "4242_")) for h in handles)


def test_book_jobs_as_cluster_units_one_per_cell() -> None:
    config = build_config("demo", ["grid.n_augs=80,100", "grid.seeds=0,1"])
    jobs = {j.name: j for j in book_jobs(config, [], 49, parts=4, cells=True)}
    cell = jobs["cell zero-shot inout 100 1 0"]
    assert cell.args == ("zero-shot", "inout", 100, 1, 0)
    assert set(cell.after) == {"feature maps of the real images", "generate inout augmented_100"}
    assert jobs["cell full-shot none 0 0 49"].after == ("feature maps of the real images",)
    few = jobs["cell few-shot diag 100 1 3"]
    assert set(few.after) == {"feature maps of the real images", "zero-shot grid", "full-shot grid",
                              "generate diag k3-draw0/augmented_100"}
    assert jobs["cell few-shot diag 100 1 49"].after[-1] == "generate diag augmented_100"
    assert "cell few-shot diag 100 1 0" not in jobs and "cell few-shot none 0 0 0" not in jobs
    grid = jobs["zero-shot grid"]
    assert len([n for n in grid.after if n.startswith("cell zero-shot ")]) == 4 * 2 * 2  # 4 methods x 2 N_aug x 2 seeds
    assert "generate diag augmented_80 (part 4/4)" in jobs


def test_inline_takes_no_jobs_option(capsys: pytest.CaptureFixture) -> None:
    assert main(["experiment", "--scenario", "zero-shot", "--data", "x", "--jobs", "2"]) == 2
    assert "--jobs: applies to --executor local or slurm" in capsys.readouterr().err
