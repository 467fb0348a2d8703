"""How the book was computed: the page ``diag reproduce`` writes at build time from what the run recorded.

Nothing on it is typed by hand: the machine and the packages are read here, the steps from the
run's ``steps.jsonl`` (each step's time, and whether it came from the cache), the chapters' times
from the jobs that executed them, the data and settings from ``results/manifest.json``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Sequence

PACKAGES = ("torch", "torchvision", "diffusers", "transformers", "peft", "accelerate", "papermill", "jupyter-book",
            "submitit", "numpy", "scikit-learn")


def cpu_model() -> str:
    """The CPU's name as the kernel reports it (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name() -> str:
    import torch

    if not torch.cuda.is_available():
        return "none"
    return ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))


def package_versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def source_commit(source: Path) -> str:
    """The source tree's commit, with "+ changes" when it has uncommitted ones; "not a git checkout" else."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=source, capture_output=True, text=True)
        if head.returncode != 0:
            return "not a git checkout"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=source,
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        return "not a git checkout"
    return head.stdout.strip() + (" + uncommitted changes" if dirty else "")


def read_steps(path: Path) -> list[dict]:
    """The run's step log (``diag.progress``), one dict per finished step; none when there is no log."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def computation_page(
    manifest: dict,
    chapters: dict[str, float],
    steps: list[dict],
    facts: dict,
    workers: int,
    rendered: bool,
    reused: Sequence[str] = (),
) -> str:
    """The page's MyST markdown: when, where, with what, from which data and settings, and each step's time."""
    from diag.experiments import settings_id

    settings = settings_id(manifest.get("config", {}))
    lines = [
        "# How this book was computed",
        "",
        "Written by `diag reproduce` when it built this site, from what the run recorded; nothing here is typed "
        "by hand. Every results page links here.",
        "",
        "| | |",
        "|---|---|",
        f"| built | {facts['date']} |",
        f"| commit | `{facts['commit']}` |",
        f"| profile | {manifest.get('profile', '?')}"
        + (" (rendered from a finished results folder: nothing computed)" if rendered else "") + " |",
        f"| data | {'the offline replica' if manifest.get('replica') else 'prepared data'}, fingerprint "
        f"`{manifest.get('data_fingerprint', '?')}` |",
        f"| settings | id `{settings}` (every setting: `results/manifest.json`); overrides: "
        f"{', '.join(f'`{o}`' for o in manifest.get('overrides', [])) or 'none'} |",
        f"| machine | {facts['cpu']}, {facts['cores']} cores; GPU: {facts['gpu']} |",
        f"| workers | {workers} process(es), one torch thread each |",
        f"| Python | {facts['python']} |",
        f"| packages | {', '.join(f'{k} {v}' for k, v in facts['packages'].items())} |",
        "",
        "## The chapters",
        "",
        "Each chapter was executed by papermill once its results existed (its time includes the kernel's start); "
        "a chapter that fails stops the build, so every one listed here succeeded. A chapter whose notebook, "
        "parameters, package and results folder are as the last build left them is not executed again: that "
        "build's page is reused (its time is that build's).",
        "",
        "| chapter | status | seconds |",
        "|---|---|---|",
        *[f"| {name} | {'reused (unchanged)' if name in reused else 'executed'} | {seconds:.1f} |"
          for name, seconds in chapters.items()],
        "",
        "## Each step",
        "",
    ]
    work = [s for s in steps if not s.get("step", "").startswith("chapter ")]
    if not work:
        lines.append("No step ran in this build (a render computes nothing).")
    else:
        computed = [s for s in work if not s.get("cached")]
        lines += [
            f"{len(computed)} step(s) computed, {len(work) - len(computed)} found in the results folder's cache.",
            "",
            "| step | | seconds |",
            "|---|---|---|",
            *[f"| {s['step']} | {'cached' if s.get('cached') else 'computed'} | {s.get('seconds', 0):.1f} |"
              for s in work],
        ]
    return "\n".join(lines) + "\n"


def machine_facts(source: Path) -> dict:
    """What this page says about where and with what the book was built."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": source_commit(source),
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "gpu": gpu_name(),
        "python": platform.python_version(),
        "packages": package_versions(),
    }
