"""Benchmark: classifier memory and speed on this machine. Prints figures; asserts nothing.

1. Peak memory of holding the training set as uint8 (ours) vs a float32 preload of the same
   images (the authors' loader), each measured in a fresh process (peak RSS growth).
2. Images/s of one ResNet-50 training step (forward + backward + Adam) at 224 x 632.
3. Wall time of one demo grid cell (frozen Inception feature maps + head, both protocols: the
   final model and the validation-split model for the threshold), with a cold and a warm
   feature-map cache, the cache's size, and the demo grid's total.

    python benchmarks/train.py [--data PREPARED_DIR] [--threads 1]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

MEMORY_PROBE = """
import resource, sys, numpy as np, torch
from diag.data.ksdd2 import read_manifest, load_image
from diag.classify.data import load_uint8
paths = [s.image_path for s in read_manifest(sys.argv[1], 'train')]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if sys.argv[2] == 'uint8':
    data = load_uint8(paths)
else:  # the authors' way: every image preloaded as float32
    data = np.stack([load_image(p).astype(np.float32) / 255 for p in paths])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) / 1024, data.nbytes / 2**20 if hasattr(data, 'nbytes') else data.numel() / 2**20)
"""


def memory(data: Path) -> None:
    print("1. Holding the training set")
    figures = {}
    for kind in ("uint8", "float32"):
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, str(data), kind], capture_output=True, text=True, check=True
        )
        figures[kind] = [float(x) for x in out.stdout.split()]
        print(f"   {kind:>7}: peak RSS growth {figures[kind][0]:8.1f} MiB, array {figures[kind][1]:8.1f} MiB")
    print(f"   ratio uint8/float32 (peak): {figures['uint8'][0] / figures['float32'][0]:.3f}  (goal <= 0.25)")


def resnet_step(threads: int, batch: int = 8, steps: int = 3) -> None:
    from diag.classify.model import ResNetClassifier, build_resnet50

    torch.set_num_threads(threads)
    model = ResNetClassifier(build_resnet50("none"))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    images = torch.randint(0, 255, (batch, 632, 224, 3), dtype=torch.uint8)
    labels = torch.randint(0, 2, (batch,)).float()
    loss_fn = torch.nn.BCEWithLogitsLoss()
    timings = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        loss = loss_fn(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        timings.append(time.perf_counter() - start)
    per_step = min(timings[1:])
    print(f"2. ResNet-50 training step, 224x632, batch {batch}, {threads} thread(s): {batch / per_step:.2f} images/s")
    print(
        f"   -> one paper epoch (2085 negatives + 100 generated) would take {2185 / (batch / per_step) / 60:.1f} min on this CPU"
    )


def demo_cell(data: Path) -> None:
    from diag.config import profile_config
    from diag.data.ksdd2 import read_manifest
    from diag.experiments import grid_cells, grid_methods, run_cell

    config = profile_config("demo")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        gen = tmp / "gen" / "diag" / "augmented_100" / "imgs"
        gen.mkdir(parents=True)
        positives = [s for s in read_manifest(data, "train") if s.is_positive]
        for i in range(100):  # a stand-in set for timing only: cost does not depend on content
            shutil.copy(positives[i % len(positives)].image_path, gen / f"{i:05d}.png")
        timings = []
        for label in ("cold feature cache", "warm feature cache"):
            start = time.perf_counter()
            run_cell("zero-shot", "diag", 100, 0, 0, config=config, data=data, generated=tmp / "gen", out=tmp / "out")
            timings.append(time.perf_counter() - start)
            print(f"3. one demo cell ({label}): {timings[-1]:.1f} s")
        files = list((tmp / "out" / "feature-cache").rglob("*.npy"))
        size = sum(f.stat().st_size for f in files)
        print(
            f"   feature-map cache: {len(files)} images, {size / 2**20:.1f} MiB ({size / len(files) / 1024:.0f} KiB each)"
        )
        grid = config.grid
        cells = sum(
            len(grid_cells(scenario, grid_methods(scenario), grid.n_augs, grid.seeds))
            for scenario in ("zero-shot", "full-shot")
        )
        print(
            f"   demo grid, {cells} cells, maps cached after the first: ~{(timings[0] + (cells - 1) * timings[1]) / 60:.1f} min"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="prepared folder (default: a fresh demo replica)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            from diag.data.synthetic import synthesize

            data = Path(tmp) / "replica"
            synthesize(data, scale="demo", progress=False)
        memory(data)
        resnet_step(args.threads)
        demo_cell(data)


if __name__ == "__main__":
    main()
