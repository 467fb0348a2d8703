"""Metric code against cases computed by hand."""

import numpy as np
import pytest

from diag.metrics import best_f1_threshold, evaluate_scores


def test_perfect_ranking() -> None:
    m = evaluate_scores([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert m["ap"] == 1 and m["auroc"] == 1
    assert m["precision"] == 1 and m["recall"] == 1 and m["accuracy"] == 1
    # thresholds ascending: 0.1, 0.2, 0.8, 0.9 -> best F1 at 0.8 -> midpoint with 0.2
    assert m["threshold"] == pytest.approx(0.5)


def test_first_point_keeps_its_own_threshold() -> None:
    # thresholds 0.2, 0.3, 0.9: F1 .8, .5, 0 -> best is the first point, kept as it is
    assert best_f1_threshold([1, 1, 0], [0.2, 0.3, 0.9]) == pytest.approx(0.2)


def test_midpoint_threshold_by_hand() -> None:
    # scores: neg 0.1, pos 0.4, neg 0.35, pos 0.8
    # sklearn thresholds (ascending, distinct): 0.1, 0.35, 0.4, 0.8
    # P/R at each: 0.1 -> (2/4, 1) F1 .667; 0.35 -> (2/3, 1) F1 .8; 0.4 -> (1, 1) F1 1; 0.8 -> (1, .5)
    # best = 0.4 (index 2): midpoint with 0.35 -> 0.375
    labels, scores = [0, 1, 0, 1], [0.1, 0.4, 0.35, 0.8]
    assert best_f1_threshold(labels, scores) == pytest.approx(0.375)
    m = evaluate_scores(labels, scores)
    assert (m["precision"], m["recall"], m["accuracy"]) == (1.0, 1.0, 1.0)
    assert m["ap"] == pytest.approx(1.0)


def test_ties() -> None:
    # all four tied at 0.5, plus a clear positive: one threshold level for the ties
    labels, scores = [1, 0, 1, 0, 0], [0.9, 0.5, 0.5, 0.5, 0.5]
    m = evaluate_scores(labels, scores)
    # thresholds 0.5, 0.9: at 0.5 P=2/5 R=1 F1=.571; at 0.9 P=1 R=.5 F1=.667 -> midpoint 0.7
    assert m["threshold"] == pytest.approx(0.7)
    assert (m["precision"], m["recall"]) == (1.0, 0.5)
    assert m["accuracy"] == pytest.approx(4 / 5)
    # AP = sum (R_n - R_{n-1}) P_n = 0.5 * 1 + 0.5 * 2/5
    assert m["ap"] == pytest.approx(0.5 + 0.5 * 0.4)
    # AUROC: pos 0.9 beats all 3 negatives; pos 0.5 ties all 3 (half each) -> (3 + 1.5) / 6
    assert m["auroc"] == pytest.approx(4.5 / 6)


def test_all_negative_scores() -> None:
    """Raw logits are often all negative; the metrics must not care about the sign."""
    labels = [0, 0, 1, 0, 1]
    logits = np.array([-5.0, -4.0, -1.0, -3.0, -2.0])
    assert evaluate_scores(labels, logits)["ap"] == evaluate_scores(labels, 1 / (1 + np.exp(-logits)))["ap"] == 1
    assert evaluate_scores(labels, logits)["threshold"] < 0


def test_given_threshold_is_used() -> None:
    m = evaluate_scores([0, 1, 0, 1], [0.1, 0.4, 0.35, 0.8], threshold=0.5)
    assert (m["precision"], m["recall"], m["accuracy"], m["threshold"]) == (1.0, 0.5, 0.75, 0.5)


def test_one_class_only_is_an_error() -> None:
    with pytest.raises(ValueError, match="both positives and negatives"):
        evaluate_scores([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="same length"):
        evaluate_scores([0, 1], [0.1])
