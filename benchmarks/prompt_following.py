"""Benchmark: does the demo model follow its prompts? Prints a table; asserts nothing.

On a held-out replica (default seed 11, never used for training or evaluation), inpaint
``--images`` negatives with ``gt`` masks per prompt, for each guidance scale, with and
without the paper's negative prompt, and print the mean change inside the mask relative to
the surround: brightness for "white marks", warmth (R - B) for "copper scratches". This is
how ``diag_defaults.json``'s guidance was chosen (see the model card).

    python benchmarks/prompt_following.py [--model DIR] [--guidance 2,4,7] [--images 16]
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import torch


def main() -> None:
    from diag.data.synthetic import synthesize
    from diag.demo_model.check import COPPER, PAPER_NEGATIVE, WHITE, prompt_response
    from diag.generate.diag import DEMO_MODEL, load_pipeline
    from diag.workflow import settings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEMO_MODEL, help="diffusers folder (default: the bundled demo model)")
    parser.add_argument("--guidance", default="2,4,7")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--replica-seed", type=int, default=11)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pipe = load_pipeline(args.model, torch.device("cpu"))
    config = replace(settings("demo").diag, model=args.model, n_aug=args.images, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "replica"
        synthesize(data, scale="small", seed=args.replica_seed, progress=False)
        print(f"model {args.model}; replica seed {args.replica_seed}; {args.images} images per prompt; change vs surround")
        print(f"{'guidance':>8} {'negative':>9} {'white: bright':>14} {'white: R-B':>11} {'copper: bright':>15} {'copper: R-B':>12}")
        for guidance in [float(g) for g in args.guidance.split(",")]:
            for negative in ("", PAPER_NEGATIVE):
                out = Path(tmp) / f"g{guidance}-{bool(negative)}"
                stats = prompt_response(data, out, replace(config, guidance=guidance), negative_prompt=negative, pipe=pipe)
                mean = stats.groupby("prompt")[["brightness", "warmth"]].mean()
                print(f"{guidance:>8g} {'paper' if negative else 'none':>9} {mean.loc[WHITE, 'brightness']:>+14.1f} "
                      f"{mean.loc[WHITE, 'warmth']:>+11.1f} {mean.loc[COPPER, 'brightness']:>+15.1f} {mean.loc[COPPER, 'warmth']:>+12.1f}")


if __name__ == "__main__":
    main()
