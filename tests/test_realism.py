"""The realism probe: cross-validated AUROC of a linear probe telling generated from real."""

from __future__ import annotations

import math

import numpy as np

from diag.fid.realism import defect_box, out_of_fold_scores, probe_auroc


def test_the_probe_separates_what_differs_and_not_what_does_not() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(40, 16))
    assert probe_auroc(real, rng.normal(size=(40, 16)) + 3.0) > 0.95
    assert abs(probe_auroc(real, rng.normal(size=(40, 16))) - 0.5) < 0.2
    assert math.isnan(probe_auroc(real[:1], real[1:3]))  # too few for cross-validation


def test_out_of_fold_scores_rank_only_the_group_that_differs() -> None:
    """What benchmarks/realism_by_pairing.py splits by group: one score per row, real rows first."""
    rng = np.random.default_rng(1)
    real, alike, shifted = rng.normal(size=(40, 16)), rng.normal(size=(20, 16)), rng.normal(size=(20, 16)) + 3.0
    scores = out_of_fold_scores(real, np.concatenate([alike, shifted]))
    assert scores.shape == (80,)
    real_scores, alike_scores, shifted_scores = scores[:40], scores[40:60], scores[60:]
    assert shifted_scores.min() > np.median(real_scores) and shifted_scores.mean() > alike_scores.mean() + 1


def test_the_defect_box_holds_the_mask_and_stays_inside_the_image() -> None:
    mask = np.zeros((632, 224), bool)
    mask[600:630, 200:220] = True
    top, bottom, left, right = defect_box(mask)
    assert 0 <= top <= 600 and bottom <= 632 and 0 <= left <= 200 and right <= 224
    assert mask[top:bottom, left:right].sum() == mask.sum()
    assert defect_box(np.zeros((632, 224), bool)) is None
