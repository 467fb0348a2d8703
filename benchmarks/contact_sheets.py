"""Contact sheets to look at the generators side by side with the real positives. Writes PNGs.

    python benchmarks/contact_sheets.py --data DATA --results RESULTS --out DIR [--n 8] [--n-aug 100]

Per source, two rows of ``--n`` columns: whole images (224 x 632) and, where there is a mask,
the box around it at 2x (the box the realism probe sees, ``diag.fid.realism.defect_box``).
Sources: the real training positives, DIAG per prompt (from the set's manifest), In&Out and
MemSeg, each read from ``RESULTS/generated/<method>/augmented_<n-aug>``. Prints each sheet's path.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

ZOOM_SIDE = 160  # px of a zoomed box on the sheet


def zoom(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    from diag.data.synthetic import outline
    from diag.fid.realism import defect_box

    top, bottom, left, right = defect_box(mask)
    crop = image[top:bottom, left:right].copy()
    edge = outline(mask[top:bottom, left:right])
    crop[edge] = (0.6 * crop[edge] + 0.4 * np.array([255, 255, 0])).astype(np.uint8)  # a faint yellow outline
    return np.asarray(Image.fromarray(crop).resize((ZOOM_SIDE, ZOOM_SIDE), Image.Resampling.NEAREST))


def sheet(pairs: list[tuple[np.ndarray, np.ndarray | None]]) -> Image.Image:
    """Whole images on top, zoomed mask boxes below (blank where an image has no mask)."""
    gap = 6
    whole = [np.pad(im, ((gap, gap), (gap // 2, gap // 2), (0, 0)), constant_values=255) for im, _ in pairs]
    zooms = [
        zoom(im, m) if m is not None and m.any() else np.full((ZOOM_SIDE, ZOOM_SIDE, 3), 255, np.uint8)
        for im, m in pairs
    ]
    zooms = [np.pad(z, ((gap, gap), ((224 + gap - ZOOM_SIDE) // 2,) * 2, (0, 0)), constant_values=255) for z in zooms]
    top, bottom = np.concatenate(whole, 1), np.concatenate(zooms, 1)
    width = max(top.shape[1], bottom.shape[1])
    pad = lambda a: np.pad(a, ((0, 0), (0, width - a.shape[1]), (0, 0)), constant_values=255)  # noqa: E731
    return Image.fromarray(np.concatenate([pad(top), pad(bottom)], 0))


def main() -> None:
    from diag.data.ksdd2 import load_image, load_mask, read_manifest
    from diag.experiments import generated_dir

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--n-aug", type=int, default=100)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    positives = [s for s in read_manifest(args.data, "train") if s.is_positive][: args.n]
    sources = {"real-positives": [(load_image(s.image_path), load_mask(s.mask_path)) for s in positives]}
    for method in ("diag", "inout", "memseg"):
        folder = generated_dir(args.results / "generated", method, args.n_aug)
        if not (folder / "manifest.csv").is_file():
            continue
        manifest = pd.read_csv(folder / "manifest.csv")
        groups = manifest.groupby("prompt") if method == "diag" else [("", manifest)]
        for prompt, rows in groups:
            name = method + (f"-{prompt.split()[0]}" if prompt else "")
            pairs = []
            for index in rows["index"][: args.n]:
                image = load_image(folder / "imgs" / f"{index:05d}.png")
                mask = load_mask(folder / "masks" / f"{index:05d}.png")
                pairs.append((image, mask if mask.any() else None))
            sources[name] = pairs
    for name, pairs in sources.items():
        path = args.out / f"{name}.png"
        sheet(pairs).save(path)
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
