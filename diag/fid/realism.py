"""How easily can generated defects be told from real ones? A linear probe beside FID.

FID compares whole distributions and is dominated, at these set sizes, by the defect-free
surface that fills most of every image. This measure asks the question a classifier would:
fit a logistic regression on FID-Inception features (2048-d pool) to separate real from
generated images and report its cross-validated AUROC: 0.5 means the two cannot be told
apart, 1.0 means they always can. It is computed twice: on the box around each defect
(real positives' masks, generated sets' masks; none for In&Out, whose images carry no mask)
and on whole images.

    diag fid --table RESULTS --n-aug 100 --data DATA      # also writes RESULTS/realism_100.csv
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from diag.data.ksdd2 import list_images, load_image, load_mask, read_manifest
from diag.errors import MissingResult
from diag.fid.settings import DEFAULTS

DIM = 2048
FOLDS = 5


def defect_box(mask: np.ndarray, margin: int = 12, min_side: int = 48) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of a square-ish box around the mask, inside the image; None if empty."""
    if not mask.any():
        return None
    ys, xs = np.nonzero(mask)
    cy, cx = (ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2
    half = max(min_side, ys.max() - ys.min() + 2 * margin, xs.max() - xs.min() + 2 * margin) // 2
    top, left = max(0, cy - half), max(0, cx - half)
    bottom, right = min(mask.shape[0], top + 2 * half), min(mask.shape[1], left + 2 * half)
    return top, bottom, left, right


def crop_features(pairs: Sequence[tuple[Path, Path]], model, batch_size: int = 32) -> np.ndarray:
    """Pool features of the box around each (image, mask) pair's defect; pairs with an empty mask are skipped.

    Crops keep their own size; ``as_batch`` resizes them as FID resizes whole images.
    """
    from diag.fid.features import as_batch

    crops = []
    for image_path, mask_path in pairs:
        box = defect_box(load_mask(mask_path))
        if box is not None:
            top, bottom, left, right = box
            crop = torch.from_numpy(load_image(image_path)[top:bottom, left:right].astype(np.float32) / 255)
            crops.append(crop.permute(2, 0, 1))
    out = []
    with torch.no_grad():
        for start in range(0, len(crops), batch_size):
            out.append(model(as_batch(crops[start : start + batch_size]))[DIM].double().numpy())
    return np.concatenate(out) if out else np.zeros((0, DIM))


def make_probe():
    """Standardised features into a strongly regularised logistic regression (C 0.01: ~100 rows, 2048 features)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=3000))


def labelled(real: np.ndarray, generated: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows (real first), labels (1 = generated) and the number of folds the smaller side allows."""
    x = np.concatenate([real, generated])
    y = np.r_[np.zeros(len(real)), np.ones(len(generated))]
    return x, y, min(FOLDS, len(real), len(generated))


def probe_auroc(real: np.ndarray, generated: np.ndarray) -> float:
    """Cross-validated AUROC of a logistic regression telling ``generated`` rows from ``real`` ones (NaN if too few)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    x, y, folds = labelled(real, generated)
    if folds < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notes on tiny folds
        scores = cross_val_score(
            make_probe(), x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=0), scoring="roc_auc"
        )
    return float(np.mean(scores))


def out_of_fold_scores(real: np.ndarray, generated: np.ndarray) -> np.ndarray:
    """Each row's probe score from the fit that did not see its fold (real rows first): for splitting the probe by group."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x, y, folds = labelled(real, generated)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cv = StratifiedKFold(folds, shuffle=True, random_state=0)
        return cross_val_predict(make_probe(), x, y, cv=cv, method="decision_function")


def realism_table(
    data: Path | str,
    results: Path | str,
    n_aug: int,
    methods: Sequence[str],
    *,
    compute: bool = True,
    device: str = DEFAULTS.device,
) -> pd.DataFrame:
    """Per method: the probe's AUROC on defect crops and on whole images, against the training positives."""
    from diag.data.fingerprint import data_fingerprint
    from diag.files import write_csv_atomic
    from diag.layout import generated_dir, method_set, set_fingerprint
    from diag.fid.features import extract_features
    from diag.fid.inception import load_fid_inception
    from diag.fid.table import current_table

    data, results = Path(data), Path(results)
    path = results / f"realism_{n_aug}.csv"
    if not compute:
        if path.is_file():
            return pd.read_csv(path)
        raise MissingResult(f"{path}: realism table missing")
    sets = {m: set_fingerprint(method_set(results / "generated", m, n_aug, data)) for m in methods}
    fingerprint = data_fingerprint(data)
    table = current_table(path, fingerprint, sets)
    if table is not None:
        return table
    model = load_fid_inception((DIM,), device)
    positives = [s for s in read_manifest(data, "train") if s.is_positive]
    cache = results / "feature-cache"
    real_whole = extract_features([s.image_path for s in positives], model, cache_dir=cache, progress=False)[DIM]
    real_crops = crop_features([(s.image_path, s.mask_path) for s in positives], model)
    rows = []
    for method in methods:
        folder = generated_dir(results / "generated", method, n_aug)
        images = list_images(folder / "imgs")
        whole = extract_features(images, model, cache_dir=cache, progress=False)[DIM]
        crops = crop_features([(p, folder / "masks" / p.name) for p in images], model)
        rows.append(
            {
                "method": method,
                "auroc_crops": probe_auroc(real_crops, crops) if len(crops) else float("nan"),
                "auroc_images": probe_auroc(real_whole, whole),
                "n_real": len(positives),
                "n_generated": len(images),
                "n_crops": len(crops),
                "generated_sha1": sets[method],
                "data_fingerprint": fingerprint,
            }
        )
    table = pd.DataFrame(rows)
    write_csv_atomic(table, path)
    return table
