"""The GPU benchmark's code paths, on tiny stand-ins on the CPU (its figures are measured on a GPU)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # `pytest -m "not slow"`: the fast subset (README)

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_benchmark_runs_every_precision_and_batch_on_tiny_stand_ins() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "paper_gpu.py"), "--tiny", "--quick"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for line in ("batch 1:", "batch 4:", "batch 8:", "LoRA step (batch 2, 64 px, no)", "LoRA step (batch 2, 64 px, bf16)",
                 "ResNet-50 (64 x 96, batch 4, no)", "ResNet-50 (64 x 96, batch 4, bf16)", "3 seeds, 50 epochs",
                 "one GPU, paper defaults"):
        assert line in out, line
