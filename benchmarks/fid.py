"""Benchmark: our FID against pytorch-fid's, on this machine. Prints figures; asserts nothing.

1. Fréchet distance alone, at d = 64/192/2048 and N = 100/1000: pytorch-fid's
   ``calculate_frechet_distance`` (scipy ``sqrtm``) vs ours (``fid_from_features``: Gram form
   when N < d, eigen form otherwise); same value, time ratio. One BLAS thread each.
2. End to end on the same two folders: ``diag fid --dims 64`` vs ``python -m pytorch_fid
   --dims 64``, with our mapped weights placed where pytorch-fid looks (a temporary
   TORCH_HOME), so both run offline on identical weights.

    python benchmarks/fid.py [--n-images 200] [--skip-2048]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from threadpoolctl import threadpool_limits


def time_call(fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def frechet_table(skip_2048: bool) -> None:
    from pytorch_fid.fid_score import calculate_frechet_distance

    from diag.fid import fid_from_features

    print("Fréchet distance only (1 thread)")
    print(f"{'d':>5} {'N':>5} {'pytorch-fid s':>14} {'diag s':>8} {'speed-up':>9} {'rel. diff':>10}")
    rng = np.random.default_rng(0)
    for d in (64, 192, 2048):
        if d == 2048 and skip_2048:
            continue
        for n in (100, 1000):
            a = rng.standard_normal((n, d)) @ (0.1 * rng.standard_normal((d, d))) + 0.1
            b = 1.1 * rng.standard_normal((n, d)) + 0.2
            with warnings.catch_warnings(), threadpool_limits(1):
                warnings.simplefilter("ignore")
                ref, t_ref = time_call(
                    lambda: calculate_frechet_distance(
                        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
                    )
                )
                ours, t_ours = time_call(fid_from_features, a, b)
            print(
                f"{d:>5} {n:>5} {t_ref:>14.3f} {t_ours:>8.3f} {t_ref / t_ours:>8.1f}x {abs(ours - ref) / abs(ref):>10.2e}"
            )


def make_folders(root: Path, n: int) -> tuple[Path, Path]:
    from diag.data.synthetic import render_sample

    folders = []
    for name, positive in (("real", True), ("gen", False)):
        folder = root / name
        folder.mkdir()
        for i in range(n):
            Image.fromarray(render_sample(5, "train", i, positive)[0]).save(folder / f"{i:05d}.png")
        folders.append(folder)
    return folders[0], folders[1]


def run(cmd: list[str], env: dict) -> tuple[str, float]:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return done.stdout, time.perf_counter() - start


def end_to_end(n_images: int) -> None:
    from diag.fid.inception import PYTORCH_FID_FILE, load_fid_helper_state_dict, pytorch_fid_state_dict

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        real, gen = make_folders(tmp, n_images)
        torch_home = tmp / "torch"
        (torch_home / "hub" / "checkpoints").mkdir(parents=True)
        torch.save(
            pytorch_fid_state_dict(load_fid_helper_state_dict()), torch_home / "hub" / "checkpoints" / PYTORCH_FID_FILE
        )
        env = {
            **os.environ,
            "TORCH_HOME": str(torch_home),
            "OMP_NUM_THREADS": "1",
            "XDG_CACHE_HOME": str(tmp / "cache"),
        }
        theirs, t_theirs = run(
            [
                sys.executable,
                "-m",
                "pytorch_fid",
                str(real),
                str(gen),
                "--dims",
                "64",
                "--device",
                "cpu",
                "--num-workers",
                "0",
            ],
            env,
        )
        ours, t_ours = run(
            [sys.executable, "-m", "diag", "fid", str(real), str(gen), "--dims", "64", "--device", "cpu", "--no-cache"],
            env,
        )
        cached_first, _ = run(
            [sys.executable, "-m", "diag", "fid", str(real), str(gen), "--dims", "64", "--device", "cpu"], env
        )
        _, t_cached = run(
            [sys.executable, "-m", "diag", "fid", str(real), str(gen), "--dims", "64", "--device", "cpu"], env
        )
    fid_theirs = float(theirs.strip().split()[-1])
    fid_ours = float(ours.strip().splitlines()[-1].split()[-1])  # the CLI prints 6 decimals
    print(f"\nEnd to end, {n_images} + {n_images} images of 224x632, dims 64, CPU, 1 thread")
    print(f"  python -m pytorch_fid : FID {fid_theirs:.6f}  {t_theirs:6.1f} s")
    print(f"  diag fid (no cache)   : FID {fid_ours:.6f}  {t_ours:6.1f} s  ({t_theirs / t_ours:.2f}x)")
    print(f"  diag fid (cached)     :                 {t_cached:6.1f} s  ({t_theirs / t_cached:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-images", type=int, default=200)
    parser.add_argument("--skip-2048", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    frechet_table(args.skip_2048)
    end_to_end(args.n_images)


if __name__ == "__main__":
    main()
