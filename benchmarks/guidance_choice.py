"""Benchmark: the demo model's guidance, chosen for prompt-following *and* realism. Prints a table.

On a held-out replica (default seed 11 at demo scale: never the book's, never a test split),
DIAG inpaints ``--images`` negatives per guidance scale with the paper's two prompts, the
paper's negative prompt and the training positives' masks. From the same images it reports:

- prompt-following: inside the mask minus the surround, brightness and R - B for "white marks"
  and R - B for "copper metal scratches" (``diag.demo_model.check.prompt_means``);
- realism: FID-64 against that replica's training positives, and the cross-validated AUROC of
  a linear probe telling the box around each real defect from the box around each generated
  one (``diag.fid.realism``: 0.5 = cannot be told apart).

    python benchmarks/guidance_choice.py [--model DIR] [--guidance 1,1.5,2,3] [--mask-blur R] [--images 100] [--out DIR]

This is how ``diag_defaults.json``'s guidance and mask blur were chosen (the model card shows the table).
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch


def main() -> None:
    from diag.data.synthetic import synthesize
    from diag.demo_model.check import prompt_means
    from diag.experiments import generated_dir
    from diag.fid.realism import realism_table
    from diag.fid.table import fid_table
    from diag.generate.diag import generate_diag, load_pipeline
    from diag.generate.loading import DEMO_MODEL
    from diag.config import build_config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEMO_MODEL, help="diffusers folder (default: the bundled demo model)")
    parser.add_argument("--guidance", default="1,1.5,2,3")
    parser.add_argument("--mask-blur", type=float, help="feather of the paste-back in pixels (default: the model's)")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--replica-seed", type=int, default=11)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="keep the replica and the images here (default: a temporary folder)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pipe = load_pipeline(args.model, torch.device("cpu"))
    # the --model's own diag_defaults.json applies, as `diag generate --model` would apply it
    config = build_config("demo", [f"diag.model={args.model}", f"diag.n_aug={args.images}", "diag.device=cpu"]).diag
    if args.mask_blur is not None:
        config = replace(config, mask_blur=args.mask_blur)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        data = root / "replica"
        if not (data / "train.csv").is_file():
            synthesize(data, scale="demo", seed=args.replica_seed, progress=False)
        rows = {}
        for guidance in [float(g) for g in args.guidance.split(",")]:
            # each guidance in its own results folder: FID and the probe read generated/diag/augmented_<N>
            where = root / f"guidance-{guidance:g}"
            folder = generated_dir(where / "generated", "diag", args.images)
            generate_diag(data, folder, replace(config, guidance=guidance), pipe=pipe, progress=False)
            fid = fid_table(data, where, args.images, dims=(64,), methods=["diag"]).iloc[0]
            realism = realism_table(data, where, args.images, ["diag"]).iloc[0]
            rows[f"guidance {guidance:g}"] = {
                **prompt_means(folder),
                "FID-64": fid["fid_64"],
                "AUROC crops": realism["auroc_crops"],
                "AUROC images": realism["auroc_images"],
            }
        table = pd.DataFrame(rows).T
        print(
            f"model {args.model}; mask blur {config.mask_blur:g} px; replica seed {args.replica_seed} (demo scale); "
            f"{args.images} images per guidance"
        )
        print(table.round(3).to_string())


if __name__ == "__main__":
    main()
