"""Benchmark: the demo's sampler and step count, chosen for time *and* realism. Prints a table.

On a held-out replica (default seed 11 at demo scale: never the book's, never a test split),
each setting ``SAMPLER:STEPS`` generates DIAG's set (``--diag-images`` inpaintings with the
demo profile's settings) and In&Out's (``--inout-images`` whole canvases from one LoRA
fine-tuned with the demo profile's recipe). For each it reports seconds per image (one
process, ``--threads`` torch threads, nothing else running), FID-64 against that replica's
training positives, and the realism probe's AUROC (``diag.fid.realism``: 0.5 = cannot be told
apart; crops around the defect for DIAG, whole images for both).

    python benchmarks/sampler_choice.py [--settings model:30,dpm-solver++:10,dpm-solver++:15] [--out DIR]

This is how the demo profile's ``sampler`` and ``steps`` were chosen (book/differences.md shows the table).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch


def main() -> None:
    from diag.config import build_config
    from diag.data.synthetic import synthesize
    from diag.experiments import generated_dir
    from diag.fid.realism import realism_table
    from diag.fid.table import fid_table
    from diag.generate.diag import generate_diag, load_pipeline
    from diag.generate.inout import generate_inout, load_base

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", default="model:30,dpm-solver++:10,dpm-solver++:15")
    parser.add_argument("--methods", default="diag,inout")
    parser.add_argument("--diag-images", type=int, default=100)
    parser.add_argument("--inout-images", type=int, default=30)
    parser.add_argument("--replica-seed", type=int, default=11)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="keep the replica and the images here (default: a temporary folder)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="another setting")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = [(s.split(":")[0], int(s.split(":")[1])) for s in args.settings.split(",")]
    methods = args.methods.split(",")
    config = build_config("demo", ["diag.device=cpu", "inout.device=cpu", *args.set])

    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        data = root / "replica"
        if not (data / "train.csv").is_file():
            synthesize(data, scale="demo", seed=args.replica_seed, progress=False)
        rows = []
        finetune = None
        if "inout" in methods:  # the LoRA first (in root/lora), so each setting's time is its sampling only
            start = time.perf_counter()
            generate_inout(
                data,
                root / "warm-up" / "generated" / "inout" / "augmented_1",
                replace(config.inout, n_aug=1),
                pipe=load_base(config.inout.model, torch.device("cpu")),
                progress=False,
                lora_dir=root / "lora",
            )
            finetune = time.perf_counter() - start
        for method in methods:
            n = args.diag_images if method == "diag" else args.inout_images
            for sampler, steps in settings:
                # each setting in its own results folder: a set is named by its method, and FID and the
                # realism probe read a results folder's generated/<method>/augmented_<N>
                where = root / f"{method}-{sampler}-{steps}"
                folder = generated_dir(where / "generated", method, n)
                start = time.perf_counter()
                if method == "diag":
                    generate_diag(
                        data,
                        folder,
                        replace(config.diag, n_aug=n, sampler=sampler, steps=steps),
                        pipe=load_pipeline(config.diag.model, torch.device("cpu")),
                        progress=False,
                    )
                else:  # the one fine-tune (root/lora) serves every setting: only the sampling differs
                    generate_inout(
                        data,
                        folder,
                        replace(config.inout, n_aug=n, sampler=sampler, steps=steps),
                        pipe=load_base(config.inout.model, torch.device("cpu")),
                        progress=False,
                        lora_dir=root / "lora",
                    )
                seconds = time.perf_counter() - start
                fid = fid_table(data, where, n, dims=(64,), methods=[method]).iloc[0]
                realism = realism_table(data, where, n, [method]).iloc[0]
                rows.append(
                    {
                        "method": method,
                        "sampler": sampler,
                        "steps": steps,
                        "s/image": seconds / n,
                        "FID-64": fid["fid_64"],
                        "AUROC crops": realism["auroc_crops"],
                        "AUROC images": realism["auroc_images"],
                    }
                )
        table = pd.DataFrame(rows)
        print(
            f"replica seed {args.replica_seed} (demo scale); {args.diag_images} DIAG images, {args.inout_images} In&Out "
            f"canvases per setting; {args.threads} torch thread(s); In&Out's fine-tune (and one canvas): "
            f"{finetune or 0:.0f} s; overrides: {args.set or 'none'}"
        )
        print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
