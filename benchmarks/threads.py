"""Benchmark: why the book's workers use one torch thread each. Prints a table.

One fixed piece of the demo book's work (``--work``: a few In&Out fine-tune steps on 224-px windows,
or a few DIAG inpaintings) is timed in a fresh process with 1 and with 2 torch threads, alone and
beside ``--busy`` CPU-bound processes (each in its own session, as another user's job would be),
and as two 1-thread processes at once (what two workers do). On a 2-core machine a 2-thread
process beside one busy process should take about 1.5x its time alone if it slowed by the share of
the CPU it lost; torch's threads waiting for each other on a shared core make it far slower.

    python benchmarks/threads.py [--work finetune|diag] [--busy 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORK = {
    "finetune": """
import torch
from diag.config import build_config
from diag.data.ksdd2 import load_image, read_manifest
from diag.generate.inout import finetune_lora, load_base
from dataclasses import replace
config = replace(build_config("demo", []).inout, train_steps=6)
images = [load_image(s.image_path) for s in read_manifest(DATA, "train") if s.is_positive]
pipe = load_base(config.model, torch.device("cpu"))
START()
finetune_lora(pipe, images, config, progress=False)
""",
    "diag": """
import torch
from dataclasses import replace
from diag.config import build_config
from diag.generate.diag import generate_diag, load_pipeline
config = replace(build_config("demo", []).diag, n_aug=8)
pipe = load_pipeline(config.model, torch.device("cpu"))
START()
generate_diag(DATA, OUT, config, pipe=pipe, progress=False)
""",
}


def script(work: str, data: Path, out: Path) -> str:
    """The work as a program that prints its own seconds (model loading and imports excluded)."""
    body = WORK[work].replace("DATA", repr(str(data))).replace("OUT", repr(str(out)))
    return "import time\nSTART = lambda: globals().__setitem__('t0', time.perf_counter())\n" + body + (
        "\nprint(time.perf_counter() - t0)\n"
    )


def timed(work: str, data: Path, folder: Path, threads: int, copies: int = 1) -> float:
    """Seconds of the slowest of ``copies`` processes running the work at once with ``threads`` threads."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    runs = []
    for copy in range(copies):
        out = folder / f"out-{threads}-{copy}-{time.monotonic_ns()}"
        runs.append(
            subprocess.Popen(
                [sys.executable, "-c", script(work, data, out)], env=env, stdout=subprocess.PIPE, text=True
            )
        )
    return max(float(run.communicate()[0].strip().splitlines()[-1]) for run in runs)


def main() -> None:
    from diag.data.synthetic import synthesize

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", choices=sorted(WORK), default="finetune")
    parser.add_argument("--busy", type=int, default=1, help="CPU-bound processes beside the work in the 'busy' rows")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = folder / "replica"
        synthesize(data, scale="demo", seed=11, progress=False)
        rows = [("1 thread, alone", timed(args.work, data, folder, 1)), ("2 threads, alone", timed(args.work, data, folder, 2))]
        rows.append(("two 1-thread processes at once (slowest)", timed(args.work, data, folder, 1, copies=2)))
        busy = [
            subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
            for _ in range(args.busy)
        ]
        try:
            time.sleep(1)
            rows.append((f"1 thread, beside {args.busy} busy", timed(args.work, data, folder, 1)))
            rows.append((f"2 threads, beside {args.busy} busy", timed(args.work, data, folder, 2)))
        finally:
            for process in busy:
                process.kill()
        print(f"{args.work}: seconds of work (imports and model loading excluded), {os.cpu_count()} CPUs")
        for name, seconds in rows:
            print(f"  {name:45s} {seconds:7.1f} s")


if __name__ == "__main__":
    main()
