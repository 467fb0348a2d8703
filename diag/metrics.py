"""Table I/II metrics: AP, and precision/recall/accuracy at the best-F1 threshold.

The authors' evaluation (inherited from the KSDD2 authors' mixed-segdec code) picks the
threshold that maximises F1 on the test set's precision-recall curve, taking the midpoint
between the arg-max threshold and the one before it (for the first point, the threshold
itself). That uses the test labels to set the threshold, so we also offer the honest
variant: pass a ``threshold`` chosen on a validation split (``best_f1_threshold``).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from diag.errors import DataError


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).astype(int).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise DataError(
            "labels, scores: must have the same length; "
            f"got {labels.size} and {scores.size}"
        )
    if not set(np.unique(labels)) <= {0, 1}:
        raise DataError(f"labels: must hold 0/1 values; got {sorted(set(np.unique(labels)))}")
    if labels.sum() in (0, labels.size):
        raise DataError(
            "labels: must contain both positives and negatives; AP and AUROC are undefined otherwise."
        )
    if not np.all(np.isfinite(scores)):
        raise DataError("scores: must be finite")
    return labels, scores


def best_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The authors' threshold: midpoint between the best-F1 threshold and the one below it."""
    labels, scores = _check(labels, scores)
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision * recall / (precision + recall + 1e-8)
    best = int(np.argmax(f1[:-1]))  # the last curve point (recall 0) has no threshold
    if best > 0:
        return float((thresholds[best] + thresholds[best - 1]) / 2)
    return float(thresholds[best])


def evaluate_scores(labels: np.ndarray, scores: np.ndarray, threshold: float | None = None) -> dict[str, float]:
    """AP, AUROC, and precision/recall/accuracy at ``threshold`` (default: best F1 on these labels).

    Returns a dict with keys ap, precision, recall, auroc, accuracy, threshold. A sample is
    called defective when its score is >= the threshold.
    """
    labels, scores = _check(labels, scores)
    if threshold is None:
        threshold = best_f1_threshold(labels, scores)
    decisions = scores >= threshold
    tp = int(np.sum(decisions & (labels == 1)))
    fp = int(np.sum(decisions & (labels == 0)))
    fn = int(np.sum(~decisions & (labels == 1)))
    return {
        "ap": float(average_precision_score(labels, scores)),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn),
        "auroc": float(roc_auc_score(labels, scores)),
        "accuracy": float(np.mean(decisions == (labels == 1))),
        "threshold": float(threshold),
    }
