"""The book's jobs: their dependencies, the worker pool that runs them, and what the terminal shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diag import progress
from diag.book import NOTEBOOKS, environment, stderr_to
from diag.cli import main
from diag.config import build_config
from diag.errors import BuildError, DiagError
from diag.executors import make_backend, run_jobs
from diag.jobs import Context, Job, book_jobs, check_jobs


def log_job(job: Job, context: Context) -> dict:
    """A stand-in runner: records when each job ran, in which process; fails where asked."""
    start = time.time()
    if job.action == "fail":
        raise DiagError("this job was told to fail")
    time.sleep(0.2)
    entry = {"step": job.name, "start": start, "end": time.time(), "pid": os.getpid()}
    with open(Path(context.results) / "ran.jsonl", "a") as log:
        log.write(json.dumps(entry) + "\n")
    return entry


def ran(folder: Path) -> dict[str, dict]:
    lines = (folder / "ran.jsonl").read_text().splitlines() if (folder / "ran.jsonl").is_file() else []
    return {e["step"]: e for e in map(json.loads, lines)}


def test_book_jobs_wait_for_what_each_chapter_shows():
    config = build_config("demo", ["grid.n_augs=80,100"])
    jobs = book_jobs(config, NOTEBOOKS, 49, parts=2)
    check_jobs(jobs)
    by_name = {j.name: j for j in jobs}
    # one In&Out fine-tune serves every N_aug; a set's parts run at once, then the whole set (its manifest)
    assert by_name["generate inout augmented_100 (part 2/2)"].after == ("In&Out fine-tune",)
    assert by_name["generate inout augmented_100 (part 2/2)"].args == ("inout", 100, 1, 2)
    assert set(by_name["generate inout augmented_100"].after) == {
        "In&Out fine-tune",
        "generate inout augmented_100 (part 1/2)",
        "generate inout augmented_100 (part 2/2)",
    }
    assert by_name["generate diag augmented_80 (part 1/2)"].after == ()
    assert "generate memseg augmented_80 (part 1/2)" not in by_name  # MemSeg is quick: never split
    # the generation chapter waits for every whole set; the grids' chapters for their grid; FID's for both tables
    sets = {n for n in by_name if n.startswith("generate ") and "part" not in n and "draw" not in n}
    assert len(sets) == 8 and set(by_name["chapter 03-generation"].after) == sets
    # the few-shot curve: DIAG's sets from each draw below k = all, at Table III's N_aug; its grid after
    # the other two (whose k = 0 and k = all rows it copies); the demo runs In&Out at k = all only
    assert by_name["generate diag k3-draw0/augmented_100"].args == ("diag", 100, 3)
    assert by_name["generate diag k12-draw0/augmented_100 (part 2/2)"].args == ("diag", 100, 12, 1, 2)
    assert not [n for n in by_name if "inout k" in n or "fine-tune k" in n]
    few = set(by_name["few-shot grid"].after)
    assert {"zero-shot grid", "full-shot grid", "generate diag k3-draw0/augmented_100",
            "generate diag augmented_100", "generate diag-procedural augmented_100"} <= few
    assert "generate diag augmented_80" not in few
    assert by_name["chapter 09-few-shot"].after == ("few-shot grid",)
    assert by_name["chapter 04-zero-shot"].after == ("zero-shot grid",)
    assert set(by_name["zero-shot grid"].after) >= {"generate diag augmented_80", "feature maps of the real images"}
    assert "generate none augmented_80" not in by_name
    assert set(by_name["chapter 06-fid"].after) == {"FID table at N_aug 100", "realism probe at N_aug 100"}
    assert by_name["chapter 02-inpainting"].after == ()
    # one worker: no parts
    assert not [j for j in book_jobs(config, NOTEBOOKS, 49, parts=1) if "part" in j.name]
    # the paper's few-shot methods include In&Out: one fine-tune per draw, its sets sampled after it
    paper = {j.name: j for j in book_jobs(build_config("paper", ["grid.real_positives=0,10,246"]), [], 246, parts=1)}
    assert paper["In&Out fine-tune k10-draw0"].args == (10,)
    assert paper["generate inout k10-draw0/augmented_100"].after == ("In&Out fine-tune k10-draw0",)
    assert "generate inout k246-draw0/augmented_100" not in paper  # k = all: the standard set


def test_a_plan_that_cannot_finish_is_refused():
    with pytest.raises(DiagError, match="'b' waits for c"):
        check_jobs([Job("a", "x"), Job("b", "x", after=("c",))])
    with pytest.raises(DiagError, match="listed twice"):
        check_jobs([Job("a", "x"), Job("a", "x")])


@pytest.mark.slow
def test_workers_run_each_job_after_its_dependencies(tmp_path):
    jobs = [
        Job("a", "x"),
        Job("b", "x"),
        Job("c", "x", after=("a", "b")),
        Job("d", "x", after=("c",)),
        Job("e", "x"),
    ]
    records = run_jobs(jobs, Context("demo", str(tmp_path)), make_backend("inline", 2), runner=log_job)
    assert sorted(r["step"] for r in records) == ["a", "b", "c", "d", "e"]
    times = ran(tmp_path)
    assert times["c"]["start"] >= max(times["a"]["end"], times["b"]["end"])
    assert times["d"]["start"] >= times["c"]["end"]
    assert all(e["pid"] != os.getpid() for e in times.values())  # in worker processes, not this one


def test_a_failed_job_is_named_and_the_others_still_land(tmp_path):
    jobs = [
        Job("a", "x"),
        Job("broken", "fail", after=("a",)),
        Job("after broken", "x", after=("broken",)),
        Job("after that", "x", after=("after broken",)),
        Job("independent", "x", after=("a",)),
    ]
    with pytest.raises(BuildError) as raised:
        run_jobs(jobs, Context("demo", str(tmp_path)), make_backend("inline", 1), runner=log_job)
    assert str(raised.value).startswith("broken: this job was told to fail; every other job finished")
    assert "2 job(s) that need them were not run" in str(raised.value)
    assert set(ran(tmp_path)) == {"a", "independent"}


def test_steps_reach_the_followed_console_and_the_step_log(tmp_path):
    console, steps = tmp_path / "console.log", tmp_path / "steps.jsonl"
    terminal = tmp_path / "terminal.txt"
    with open(terminal, "w") as out:
        with progress.follow_console(console, out, every=0.05):
            with environment({progress.CONSOLE_ENV: str(console), progress.STEP_LOG_ENV: str(steps)}):
                with progress.step("generate diag augmented_4"):
                    for _ in progress.bar(range(3), desc="DIAG"):
                        pass
                with progress.step("generate memseg augmented_4", cached=True):
                    pass
    shown = terminal.read_text()
    assert "  generate diag augmented_4: 0.0 s" in shown and "DIAG: 100%" in shown
    assert "memseg" not in shown  # found made: logged, not shown
    first, second = map(json.loads, steps.read_text().splitlines())
    assert first["step"] == "generate diag augmented_4" and "seconds" in first
    assert second["step"] == "generate memseg augmented_4" and second["cached"] is True
    assert progress.CONSOLE_ENV not in os.environ  # the block put the environment back


def test_what_children_print_goes_to_the_log_not_the_terminal(tmp_path, capfd):
    log = tmp_path / "kernels.log"
    with stderr_to(log) as terminal:
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('Kernel is running over TCP\\n')"])
        terminal.write("a step line\n")
    assert "Kernel is running over TCP" in log.read_text()
    captured = capfd.readouterr()
    assert "a step line" in captured.err and "Kernel is running" not in captured.err


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake KSDD2 in the official layout, prepared: a dry run reads only its counts."""
    from tests.test_paper_path import fake_ksdd2

    root = tmp_path_factory.mktemp("ksdd2")
    assert main(["data", "prepare", "--src", str(fake_ksdd2(root / "raw")), "--out", str(root / "ksdd2")]) == 0
    return root / "ksdd2"


def test_dry_run_lists_every_step_with_counts(prepared: Path, capsys: pytest.CaptureFixture) -> None:
    from tests.test_paper_path import TRAIN

    data = prepared
    # the paper's k values need KSDD2's 246 positives: said in one line before anything runs
    assert main(["reproduce", "--profile", "paper", "--data", str(data), "--dry-run"]) == 2
    assert "grid.real_positives: 10 real positives asked for, but the training split has 3" in capsys.readouterr().err
    few = ["--set", "grid.real_positives=0,1,3"]
    assert main(["reproduce", "--profile", "paper", "--data", str(data), "--dry-run", *few]) == 0
    out = capsys.readouterr().out
    assert "generate diag augmented_120: 120 images" in out
    assert f"In&Out fine-tune (seed 0, once for every N_aug): stable-diffusion-v1-5/stable-diffusion-v1-5, " \
           f"{-(-50 * 10 * TRAIN['positive'] // 12)} steps" in out
    assert "zero-shot grid: 36 classifiers (resnet50, 50 epochs" in out and "full-shot grid: 30 classifiers" in out
    # the dry run lists the jobs reproduce runs: each chapter after what it shows, the realism probe included
    assert "realism probe at N_aug 100" in out and "chapter 06-fid: execute the notebook (after FID table" in out
    assert "generate diag k1-draw0/augmented_100: 100 images, masks of only 1 drawn real positives (seed 0)" in out
    assert "In&Out fine-tune k1-draw0 (seed 0, once for every N_aug): stable-diffusion-v1-5/stable-diffusion-v1-5, " \
           f"{-(-50 * 10 * 1 // 12)} steps" in out
    assert "few-shot grid: 36 classifiers at k = 0, 1, 3 real positives" in out  # 2 x 3 at k = 0, 5 x 3 at k = 1 and 3
    for workers, parts in (("1", False), ("3", True)):  # a set is split among several workers, never for one
        assert main(["reproduce", "--profile", "paper", "--data", str(data), "--dry-run", "--workers", workers, *few]) == 0
        assert ("generate diag augmented_80 (part 3/3): 26 of its images" in capsys.readouterr().out) == parts

    assert main(["reproduce", "--profile", "paper", "--data", str(data), "--dry-run", "--executor", "slurm", "--jobs", "4",
                 *few]) == 0
    out = capsys.readouterr().out
    assert "on the slurm executor, at most 4 job(s) at once:" in out
    assert "cell zero-shot diag 120 2 0: one classifier (resnet50, 50 epochs, seed 2) on 127 training images" in out
    assert "cell few-shot none 0 1 1: one classifier (resnet50, 50 epochs, seed 1) on 8 training images" in out
