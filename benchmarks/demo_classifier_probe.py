"""Choose the demo classifier's settings on the training split only; then measure the choice. Asserts nothing.

The demo classifier is a small head on frozen FID-Inception feature maps (diag/classify/).
This script compares the input contrast gain and the head's width and top-k by 4-fold
stratified cross-validation on the *training* split (AP averaged over folds, 50 epochs each),
prints the table, and then, for the configuration the package ships, reports test AP:
full-shot without augmentation, the "oracle" zero-shot set (the real training positives used
as if they were generated), and zero-shot with a generated set (e.g. MemSeg) if one is given.
The test numbers are printed after the choice and never feed back into it.

    diag data synth --out /tmp/rep --seed 7
    diag generate memseg --data /tmp/rep --out /tmp/memseg --n-aug 100
    python benchmarks/demo_classifier_probe.py /tmp/rep --generated /tmp/memseg
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import average_precision_score
from sklearn.model_selection import StratifiedKFold

from diag.classify.features import CONTRAST_GAIN, MAP_POOL, MapBackbone, feature_maps, load_map_backbone
from diag.classify.train import fit, predict
from diag.config import profile_config
from diag.data.ksdd2 import list_images, read_manifest
from diag.fid.inception import load_state_dict

HEADS = [(8, 2), (8, 4), (8, 16), (16, 4), (16, 16), (32, 16)]  # (hidden, top-k)


def cross_validated_ap(config, x: torch.Tensor, y: np.ndarray, folds: int = 4) -> float:
    scores = []
    for fit_idx, val_idx in StratifiedKFold(folds, shuffle=True, random_state=0).split(np.zeros(len(y)), y):
        model, _ = fit(config, x[torch.as_tensor(fit_idx)], y[fit_idx], None, progress=False)
        scores.append(average_precision_score(y[val_idx], predict(model, x[torch.as_tensor(val_idx)], 64, "cpu")))
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--generated", type=Path, help="a generated set made on the same data (its imgs/ is used)")
    parser.add_argument("--gains", default="1,3")
    parser.add_argument("--pools", default="2")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/diag-probe-cache"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    base = replace(profile_config("demo").classifier, device="cpu")
    train, test = read_manifest(args.data, "train"), read_manifest(args.data, "test")
    y_train = np.array([s.is_positive for s in train], int)
    y_test = np.array([s.is_positive for s in test], int)
    print(f"{'gain':>5} {'pool':>4} {'hidden':>6} {'top-k':>5} {'CV AP (train)':>13} {'s':>5}")
    for gain in [float(g) for g in args.gains.split(",") if g]:
        for pool in [int(p) for p in args.pools.split(",") if p]:
            backbone = MapBackbone(load_state_dict(), gain, pool)
            x_train = feature_maps([s.image_path for s in train], backbone, cache_dir=args.cache)
            for hidden, top_k in HEADS:
                start = time.perf_counter()
                ap = cross_validated_ap(replace(base, head_hidden=hidden, head_top_k=top_k), x_train, y_train)
                print(
                    f"{gain:5g} {pool:4d} {hidden:6d} {top_k:5d} {ap:13.3f} {time.perf_counter() - start:5.0f}",
                    flush=True,
                )
    print(
        f"\nshipped: gain {CONTRAST_GAIN:g}, pool {MAP_POOL}, hidden {base.head_hidden}, top-k {base.head_top_k}; "
        "test AP (measured, not used):"
    )
    backbone = load_map_backbone()
    x_train = feature_maps([s.image_path for s in train], backbone, cache_dir=args.cache)
    x_test = feature_maps([s.image_path for s in test], backbone, cache_dir=args.cache)
    negatives = torch.as_tensor(np.flatnonzero(y_train == 0))
    sets = {"full-shot, no augmentation": (x_train, y_train)}
    oracle = torch.as_tensor(np.flatnonzero(y_train == 1))
    sets["zero-shot oracle (real positives as generated)"] = (
        torch.cat([x_train[negatives], x_train[oracle]]),
        np.r_[np.zeros(len(negatives)), np.ones(len(oracle))],
    )
    if args.generated:
        images = list_images(args.generated / "imgs")
        x_gen = feature_maps(images, backbone, cache_dir=args.cache)
        sets[f"zero-shot {args.generated.name}"] = (
            torch.cat([x_train[negatives], x_gen]),
            np.r_[np.zeros(len(negatives)), np.ones(len(images))],
        )
    for name, (x, y) in sets.items():
        start = time.perf_counter()
        model, _ = fit(base, x, y, None, progress=False)
        ap = average_precision_score(y_test, predict(model, x_test, 64, "cpu"))
        print(f"  {name:50s} AP {ap:.3f}  (fit {time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
