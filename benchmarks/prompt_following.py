"""Benchmark: does the demo model follow its prompts? Prints a table; asserts nothing.

On a held-out replica (default seed 11, never used for training or evaluation), inpaint
``--images`` negatives with ``gt`` masks per prompt, for each guidance scale, with and
without the paper's negative prompt, and print the mean change inside the mask relative to
the surround: brightness for "white marks", warmth (R - B) for "copper scratches". It measures
prompt-following only; the guidance in ``diag_defaults.json`` was chosen by
``benchmarks/guidance_choice.py``, which weighs the same measures against realism.

    python benchmarks/prompt_following.py [--model DIR] [--guidance 2,4,7] [--images 16] [--sheet PNG]

``--sheet`` also writes a contact sheet for the demo's own guidance and negative prompt:
per column a negative's crop around the mask, the mask's outline, the "white marks" result
and the "copper scratches" result.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def contact_sheet(data: Path, folders: list[Path], path: Path, columns: int = 8) -> None:
    """Rows: negative, mask outline (green), then one row per prompt folder; 160-px crops."""
    import pandas as pd

    from diag.data.ksdd2 import load_image, load_mask, read_manifest
    from diag.data.synthetic import outline as mask_outline

    negatives = {s.id: s.image_path for s in read_manifest(data, "train")}
    manifest = pd.read_csv(folders[0] / "manifest.csv", dtype={"negative": str})
    rows: list[list[np.ndarray]] = [[] for _ in range(2 + len(folders))]
    for index, negative in zip(manifest["index"][:columns], manifest["negative"][:columns]):
        mask = load_mask(folders[0] / "masks" / f"{index:05d}.png")
        ys, xs = np.where(mask.any(axis=1))[0], np.where(mask.any(axis=0))[0]
        top = int(np.clip((ys.min() + ys.max()) // 2 - 80, 0, mask.shape[0] - 160))
        left = int(np.clip((xs.min() + xs.max()) // 2 - 80, 0, mask.shape[1] - 160))
        window = (slice(top, top + 160), slice(left, left + 160))
        image = load_image(negatives[negative])
        outline = image.copy()
        outline[mask_outline(mask)] = (0, 255, 0)
        rows[0].append(image[window])
        rows[1].append(outline[window])
        for r, folder in enumerate(folders, start=2):  # each prompt's image at this index has the same mask
            rows[r].append(load_image(folder / "imgs" / f"{index:05d}.png")[window])
    sheet = np.concatenate([np.concatenate(row, axis=1) for row in rows], axis=0)
    Image.fromarray(sheet).resize((sheet.shape[1] * 2, sheet.shape[0] * 2), Image.Resampling.NEAREST).save(path)


def main() -> None:
    from diag.data.synthetic import synthesize
    from diag.demo_model.check import COPPER, PAPER_NEGATIVE, WHITE, prompt_response
    from diag.generate.diag import load_pipeline
    from diag.generate.loading import DEMO_MODEL
    from diag.config import build_config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEMO_MODEL, help="diffusers folder (default: the bundled demo model)")
    parser.add_argument("--guidance", default="2,4,7")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--replica-seed", type=int, default=11)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sheet", type=Path, help="also write a contact sheet (PNG) at the demo's settings")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pipe = load_pipeline(args.model, torch.device("cpu"))
    # the --model's own diag_defaults.json applies, as `diag generate --model` would apply it
    config = build_config("demo", [f"diag.model={args.model}", f"diag.n_aug={args.images}", "diag.device=cpu"]).diag
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "replica"
        synthesize(data, scale="small", seed=args.replica_seed, progress=False)
        print(
            f"model {args.model}; replica seed {args.replica_seed}; {args.images} images per prompt; change vs surround"
        )
        print(
            f"{'guidance':>8} {'negative':>9} {'white: bright':>14} {'white: R-B':>11} {'copper: bright':>15} {'copper: R-B':>12}"
        )
        for guidance in [float(g) for g in args.guidance.split(",")]:
            for negative in ("", PAPER_NEGATIVE):
                out = Path(tmp) / f"g{guidance}-{bool(negative)}"
                stats = prompt_response(
                    data, out, replace(config, guidance=guidance), negative_prompt=negative, pipe=pipe
                )
                mean = stats.groupby("prompt")[["brightness", "warmth"]].mean()
                print(
                    f"{guidance:>8g} {'paper' if negative else 'none':>9} {mean.loc[WHITE, 'brightness']:>+14.1f} "
                    f"{mean.loc[WHITE, 'warmth']:>+11.1f} {mean.loc[COPPER, 'brightness']:>+15.1f} {mean.loc[COPPER, 'warmth']:>+12.1f}"
                )
                if args.sheet and negative and guidance == config.guidance:
                    contact_sheet(data, [out / "0", out / "1"], args.sheet)
                    print(f"contact sheet: {args.sheet}")


if __name__ == "__main__":
    main()
