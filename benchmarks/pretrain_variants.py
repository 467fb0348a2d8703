"""Pretrain several demo-model recipes side by side on one GPU, within a time limit.

The demo model is small enough that one training run leaves a GPU mostly idle (kernel
launches, not arithmetic, set its pace), so a few recipes train at once in separate
processes. Each variant is an ordinary ``diag pretrain-demo-model`` run; variants that share
a corpus recipe render it once. A variant still running at the deadline is stopped and its
last checkpoint exported as a pipeline, with ``stop_at`` set to the step it reached in its
training.json (the recipe that reproduces it).

    python benchmarks/pretrain_variants.py --out /tmp/variants --deadline 480 \\
        --variant 'a={"steps": 12000, "batch_size": 64}' --variant 'b={"speckled_share": 0.8}'

Each variant ends as ``OUT/NAME/`` (a diffusers folder) and, with ``--pack DIR``, as
``DIR/NAME-unet.safetensors`` plus ``DIR/NAME.tar`` holding the rest and the run's log
(files small enough to copy back from a device machine).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import replace
from pathlib import Path


from diag.demo_model.pretrain import PretrainConfig, claim_folder, corpus_for, corpus_recipe, load_checkpoint, pretrain

FLAGS = {"steps", "vae_steps", "corpus_size", "speckled_share", "batch_size", "seed"}


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, spec = text.partition("=")
    settings = json.loads(spec or "{}")
    unknown = set(settings) - FLAGS
    if unknown:
        raise SystemExit(f"--variant {name}: unknown settings {sorted(unknown)}; expected some of {sorted(FLAGS)}")
    return name, settings


def render_corpora(out: Path, configs: dict[str, PretrainConfig], workers: int) -> None:
    """Render each distinct corpus once (all cores) and copy it to every variant that uses it."""
    done: dict[tuple, Path] = {}
    for name, config in configs.items():
        key = tuple(corpus_recipe(config))
        folder = claim_folder(out / name)  # marked as a run of ours, so pretrain resumes into it
        if key in done:
            shutil.copy(done[key], folder / "corpus.npz")
        else:
            start = time.perf_counter()
            corpus_for(folder, replace(config, workers=workers), progress=False)
            print(f"corpus {name}: {config.corpus_size} samples in {time.perf_counter() - start:.0f} s", flush=True)
            done[key] = folder / "corpus.npz"


def last_step(log: Path) -> str:
    """The UNet step a run's progress bar last showed ("1200/12000"), or its phase."""
    tail = log.read_bytes()[-4000:].decode(errors="replace")
    found = re.findall(r"UNet:.*?\| (\d+/\d+)", tail)
    return found[-1] if found else "VAE"


def export_checkpoint(folder: Path, config: PretrainConfig) -> int:
    """Save a stopped run's last checkpoint as a pipeline; returns the step it had reached (0: nothing to save).

    The run is resumed with ``stop_at`` at that step, so ``pretrain`` itself has nothing left to
    train and saves the model and its training.json as a finished run would (whose ``seconds``
    then count only this export; the driver prints the run's own time).
    """
    checkpoint = folder / "checkpoint.pt"
    reached = int(load_checkpoint(checkpoint, "cpu")["step"]) if checkpoint.is_file() else 0
    if reached:
        pretrain(folder, replace(config, stop_at=reached), progress=False)
    return reached


def pack(folder: Path, name: str, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    unet_weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    shutil.copy(unet_weights, into / f"{name}-unet.safetensors")
    with tarfile.open(into / f"{name}.tar", "w") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix not in (".pt", ".npz") and path != unet_weights:
                tar.add(path, arcname=str(path.relative_to(folder)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variant", action="append", required=True, metavar='NAME={"steps": N, ...}')
    parser.add_argument("--deadline", type=float, required=True, help="seconds from start; later runs are stopped")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--pack", type=Path, help="copy each result here as files small enough to fetch")
    args = parser.parse_args()
    start = time.perf_counter()
    variants = dict(parse_variant(v) for v in args.variant)
    configs = {name: replace(PretrainConfig(), **settings) for name, settings in variants.items()}
    render_corpora(args.out, configs, args.workers)

    runs = {}
    for name, settings in variants.items():
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in settings.items()]
        log = open(args.out / name / "log.txt", "w")
        command = [sys.executable, "-m", "diag", "pretrain-demo-model", "--out", str(args.out / name), "--threads=1"]
        runs[name] = subprocess.Popen(command + flags + ["--device", args.device], stdout=log, stderr=log)
    while any(r.poll() is None for r in runs.values()) and time.perf_counter() - start < args.deadline:
        time.sleep(10)
        steps = {name: last_step(args.out / name / "log.txt") for name in runs}
        print(f"{time.perf_counter() - start:5.0f} s {steps}", flush=True)

    for name, run in runs.items():
        folder = args.out / name
        if run.poll() is None:
            run.kill()
            run.wait()
            reached = export_checkpoint(folder, configs[name])
            print(f"{name}: stopped at step {reached} (training.json: stop_at {reached})", flush=True)
        else:
            print(f"{name}: exit {run.returncode}", flush=True)
        if args.pack and (folder / "unet").is_dir():
            pack(folder, name, args.pack)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
