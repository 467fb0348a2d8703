"""Probe: can a linear head on frozen FID-Inception features see the replica's defects? Prints AP; asserts nothing.

The demo classifier pools a whole 224 x 632 image into one vector. This probe keeps the feature
maps of Mixed_5d (stride 8) and Mixed_6e (stride 16) at the image's own size and pools them
per channel in ways that keep small defects (mean, max, top-4 mean, and top-k deviation from
the image's own median), then fits a logistic regression (C chosen on a validation split of
the training data) and reports the validation AP, the full-shot test AP, and the zero-shot test
AP when trained on MemSeg images instead of the real positives.

    diag data synth --out /tmp/rep --seed 7
    diag generate memseg --data /tmp/rep --out /tmp/memseg --n-aug 100
    python benchmarks/demo_classifier_probe.py /tmp/rep /tmp/memseg
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from diag.data.ksdd2 import list_images, load_image, read_manifest
from diag.fid.inception import BLOCKS, build_body, load_state_dict

LAYERS = ("Mixed_5d", "Mixed_6e")


def pooled_maps(paths: list[Path]) -> dict[str, np.ndarray]:
    """Per layer and pooling: (N, C) features of the maps at the images' own size."""
    body = build_body()
    body.load_state_dict(load_state_dict())
    body.eval()
    steps = [n for block in BLOCKS for n in block][: [n for b in BLOCKS for n in b].index(LAYERS[-1]) + 1]
    out: dict[str, list] = {}
    for start in range(0, len(paths), 16):
        x = torch.from_numpy(np.stack([load_image(p) for p in paths[start : start + 16]]))
        x = x.permute(0, 3, 1, 2).float() / 127.5 - 1
        with torch.no_grad():
            for name in steps:
                x = F.max_pool2d(x, 3, 2) if name == "maxpool" else body[name](x)
                if name in LAYERS:
                    f = x.flatten(2)
                    deviation = f - f.median(2, keepdim=True).values
                    for pool, values in (("mean", f.mean(2)), ("max", f.amax(2)), ("top4", f.topk(4, 2).values.mean(2)),
                                         ("deviation-top4", deviation.topk(4, 2).values.mean(2))):
                        out.setdefault(f"{name} {pool}", []).append(values.numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("memseg", type=Path, help="a MemSeg set made on the same data")
    args = parser.parse_args()
    torch.set_num_threads(2)
    train, test = read_manifest(args.data, "train"), read_manifest(args.data, "test")
    y_train = np.array([s.is_positive for s in train], int)
    y_test = np.array([s.is_positive for s in test], int)
    feats = {k: pooled_maps(p) for k, p in (("train", [s.image_path for s in train]),
                                            ("test", [s.image_path for s in test]),
                                            ("memseg", list_images(args.memseg / "imgs")))}
    rng = np.random.default_rng(1)
    val = np.concatenate([rng.permutation(np.flatnonzero(y_train == c))[: max(1, int(0.25 * np.sum(y_train == c)))]
                          for c in (0, 1)])
    fit_idx = np.setdiff1d(np.arange(len(y_train)), val)
    negatives = y_train == 0
    print(f"{'features':28s} {'C':>6} {'val AP':>7} {'full-shot':>9} {'MemSeg zero-shot':>16}")
    for name in feats["train"]:
        a, b, m = feats["train"][name], feats["test"][name], feats["memseg"][name]
        scores = {}
        for c in (0.0003, 0.001, 0.01):
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000)).fit(a[fit_idx], y_train[fit_idx])
            scores[c] = average_precision_score(y_train[val], clf.decision_function(a[val]))
        c = max(scores, key=scores.get)  # chosen on the training data's validation split only
        full = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000)).fit(a, y_train)
        zero = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000)).fit(
            np.r_[a[negatives], m], np.r_[np.zeros(negatives.sum()), np.ones(len(m))])
        print(f"{name:28s} {c:>6} {scores[c]:>7.3f} {average_precision_score(y_test, full.decision_function(b)):>9.3f} "
              f"{average_precision_score(y_test, zero.decision_function(b)):>16.3f}")


if __name__ == "__main__":
    main()
