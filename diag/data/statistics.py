"""Per-defect statistics of a prepared data folder: what chapter 1 compares with KSDD2's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from diag.data.ksdd2 import load_image, load_mask, read_manifest


def defect_statistics(data: Path | str, split: str = "train") -> pd.DataFrame:
    """One row per positive: mask area (% of the image), median grey inside the mask, mean grey outside."""
    rows = []
    for sample in read_manifest(data, split):
        if not sample.is_positive:
            continue
        grey, mask = load_image(sample.image_path).astype(float).mean(axis=2), load_mask(sample.mask_path)
        rows.append(
            {
                "mask area %": 100 * mask.mean(),
                "median grey inside": float(np.median(grey[mask])),
                "background grey": float(grey[~mask].mean()),
            }
        )
    return pd.DataFrame(rows)
