"""Benchmark: which DIAG fills the realism probe tells from real defects, by prompt and mask kind. Prints a table.

DIAG pairs a random prompt with a random training-positive mask (the release's plan), so
on the replica "white marks" often lands in the mask of a copper smear, a defect the
replica does not have. This splits the probe of ``diag.fid.realism`` (a logistic regression
on FID-Inception features of the box around each defect) by (prompt, the mask's real
kind): each group's out-of-fold scores against all real boxes, and against the real boxes
of the same kind. The replica's kinds are re-rendered from its seed (``replica.json``), so
this runs on a replica only, never on KSDD2, whose defects carry no kind.

    python benchmarks/realism_by_pairing.py --data REPLICA --set RESULTS/generated/diag/augmented_100
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def main() -> None:
    from sklearn.metrics import roc_auc_score

    from diag.data import synthetic
    from diag.data.ksdd2 import read_manifest
    from diag.fid.inception import load_fid_inception
    from diag.fid.realism import DIM, crop_features, out_of_fold_scores

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a replica made by `diag data synth`")
    parser.add_argument("--set", type=Path, required=True, help="a DIAG set made on that replica with gt masks")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    info = args.data / "replica.json"
    if not info.is_file():
        raise SystemExit(f"{info}: not found; the mask kinds come from a replica's seed, so --data must be a replica")
    seed = json.loads(info.read_text())["seed"]

    def kind(sample_id: str) -> str:  # the first defect's kind, re-rendered from the replica's own stream
        index = int(sample_id) - synthetic.FIRST_ID["train"]
        return synthetic.render_sample(seed, "train", index, True)[2][0]

    model = load_fid_inception((DIM,), "cpu")
    positives = [s for s in read_manifest(args.data, "train") if s.is_positive]
    real = crop_features([(s.image_path, s.mask_path) for s in positives], model)
    real_kinds = np.array([kind(s.id) for s in positives])
    rows = pd.read_csv(args.set / "manifest.csv", dtype={"mask": str})
    images = [args.set / "imgs" / f"{i:05d}.png" for i in rows["index"]]
    generated = crop_features([(p, args.set / "masks" / p.name) for p in images], model)
    rows["kind"] = [kind(m) for m in rows["mask"]]

    score = out_of_fold_scores(real, generated)
    y = np.r_[np.zeros(len(real)), np.ones(len(generated))]
    real_score, rows["score"] = score[: len(real)], score[len(real) :]

    def auroc(reals: np.ndarray, fakes: np.ndarray) -> float:
        if not len(reals):
            return float("nan")
        return roc_auc_score(np.r_[np.zeros(len(reals)), np.ones(len(fakes))], np.r_[reals, fakes])

    table = []
    for (prompt, mask_kind), group in rows.groupby(["prompt", "kind"]):
        table.append(
            {
                "prompt": prompt,
                "mask kind": mask_kind,
                "images": len(group),
                "AUROC vs all real": auroc(real_score, group["score"].to_numpy()),
                "AUROC vs real of that kind": auroc(real_score[real_kinds == mask_kind], group["score"].to_numpy()),
            }
        )
    print(f"replica seed {seed}; {len(real)} real boxes; overall out-of-fold AUROC {roc_auc_score(y, score):.3f}")
    print(pd.DataFrame(table).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
