"""KID: the unbiased squared MMD with the cubic polynomial kernel, against a direct sum and a closed form."""

from __future__ import annotations

import numpy as np
import pytest

from diag.errors import DataError
from diag.fid.kid import kid, kid_subsets


def direct_kid(x: np.ndarray, y: np.ndarray) -> float:
    """The estimator written as its definition: double sums over pairs, i != j within a set."""
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def expected_kernel(alpha: float, beta: float, s: float, d: int) -> float:
    """E[(x . y / d + 1)^3] for independent x ~ N(alpha, s^2 I_d), y ~ N(beta, s^2 I_d): the sum S of the
    d products x_i y_i has cumulants d times those of one product, and E u^k = E S^k / d^k."""
    m1 = alpha * beta
    m2 = (alpha**2 + s**2) * (beta**2 + s**2)
    m3 = (alpha**3 + 3 * alpha * s**2) * (beta**3 + 3 * beta * s**2)
    k1, k2, k3 = m1, m2 - m1**2, m3 - 3 * m1 * m2 + 2 * m1**3
    s1, s2, s3 = d * k1, d * k2, d * k3
    e1, e2, e3 = s1 / d, (s2 + s1**2) / d**2, (s3 + 3 * s2 * s1 + s1**3) / d**3
    return e3 + 3 * e2 + 3 * e1 + 1


def test_kid_equals_the_direct_double_sum() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 5)), rng.normal(0.3, 1.2, size=(9, 5))
    assert kid(x, y) == pytest.approx(direct_kid(x, y), rel=1e-10)


def test_kid_of_a_set_against_another_draw_of_its_distribution_is_about_zero() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    shifted = rng.normal(0.5, 1.0, size=(400, 8))
    assert abs(kid(a, b)) < 0.02 < kid(a, shifted)


def test_kid_of_two_shifted_gaussians_matches_the_closed_form() -> None:
    d, s, alpha, beta = 4, 1.0, 0.0, 0.6
    closed = expected_kernel(alpha, alpha, s, d) + expected_kernel(beta, beta, s, d) - 2 * expected_kernel(alpha, beta, s, d)
    rng = np.random.default_rng(2)
    estimates = [kid(rng.normal(alpha, s, (1500, d)), rng.normal(beta, s, (1500, d))) for _ in range(4)]
    assert closed > 0.1 and np.mean(estimates) == pytest.approx(closed, rel=0.05)


def test_subsets_give_a_spread_and_record_their_size() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(60, 6)), rng.normal(0.4, 1.0, size=(40, 6))
    mean, std, size = kid_subsets(x, y, subset_size=50, subsets=20, seed=0)
    assert size == 40 and std > 0 and mean == pytest.approx(kid(x, y), abs=3 * std)
    assert kid_subsets(x, y, subset_size=50, subsets=20, seed=0) == (mean, std, size)  # seeded


def test_mismatched_features_are_one_clear_error() -> None:
    with pytest.raises(DataError, match="same width"):
        kid(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(DataError, match="at least 2 samples"):
        kid(np.zeros((1, 4)), np.zeros((3, 4)))


def test_chapter_six_says_which_methods_kid_cannot_tell_apart() -> None:
    import pandas as pd

    from diag.chapters.report import kid_text, kid_view

    fid = pd.DataFrame({
        "method": ["memseg", "inout", "diag"], "kid_64": [0.004, 0.020, 0.0035],
        "kid_64_mean": [0.0041, 0.021, 0.0036], "kid_64_std": [0.0005, 0.002, 0.0004],
        "kid_192": [0.01, 0.05, 0.009], "kid_192_mean": [0.01, 0.05, 0.009], "kid_192_std": [0.001, 0.004, 0.001],
        "kid_subset_size": [49] * 3, "kid_subsets": [100] * 3,
    })
    text = kid_text(fid)
    assert text.startswith("KID-64 orders the sets DIAG < MemSeg < In&Out")
    assert "cannot be told apart by it" in text and "DIAG and MemSeg" in text and "In&Out and" not in text
    assert "100 random subsets of 49 images" in text
    shown = kid_view(fid, "DEMO").data
    assert shown.loc[1, "KID-64 x10³ (DEMO)"] == "20.00" and shown.loc[1, "KID-64 x10³, subsets"] == "21.00 ± 2.00"
    assert "not in this results folder" in kid_text(fid.drop(columns=[c for c in fid if c.startswith("kid")]))
