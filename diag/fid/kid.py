"""KID, the kernel Inception distance (Bińkowski et al. 2018), beside FID.

KID is the squared maximum mean discrepancy between two sets of Inception features under the
cubic polynomial kernel k(x, y) = (x . y / d + 1)^3, estimated without bias. FID at N = 100
against 49-246 real images is biased by the sample size (and rank-deficient where N <= d);
KID is unbiased at any N and its spread over subsets says when two methods cannot be told
apart, which is what small sets need. Written here because pytorch-fid has no KID and
torchmetrics' (the other common one) would add a dependency for twenty lines.

    kid(real, generated)                       # whole sets: deterministic
    kid_subsets(real, generated, size, count)  # mean and std over random subsets (as torchmetrics reports it)
"""

from __future__ import annotations

import numpy as np

from diag.errors import DataError
from diag.fid.settings import DEFAULTS


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x . y / d + 1)^3 for every pair of rows."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def check_features(real: np.ndarray, generated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    real, generated = np.asarray(real, np.float64), np.asarray(generated, np.float64)
    if real.ndim != 2 or generated.ndim != 2 or real.shape[1] != generated.shape[1]:
        raise DataError(
            f"KID compares two (samples, features) arrays of the same width; got {real.shape} and {generated.shape}"
        )
    if len(real) < 2 or len(generated) < 2:
        raise DataError(f"KID needs at least 2 samples per set; got {len(real)} and {len(generated)}")
    return real, generated


def kid(real: np.ndarray, generated: np.ndarray) -> float:
    """The unbiased squared MMD of the two sets (may be slightly negative when they match)."""
    real, generated = check_features(real, generated)
    m, n = len(real), len(generated)
    k_rr = polynomial_kernel(real, real)
    k_gg = polynomial_kernel(generated, generated)
    within_real = (k_rr.sum() - np.trace(k_rr)) / (m * (m - 1))  # the unbiased estimate leaves out i == j
    within_generated = (k_gg.sum() - np.trace(k_gg)) / (n * (n - 1))
    return float(within_real + within_generated - 2 * polynomial_kernel(real, generated).mean())


def kid_subsets(
    real: np.ndarray,
    generated: np.ndarray,
    subset_size: int = DEFAULTS.kid_subset_size,
    subsets: int = DEFAULTS.kid_subsets,
    seed: int = 0,
) -> tuple[float, float, int]:
    """Mean and standard deviation of KID over ``subsets`` random subsets of each set (drawn without
    replacement, ``subset_size`` or the smaller set's size); returns (mean, std, size used)."""
    real, generated = check_features(real, generated)
    if subsets < 1 or subset_size < 2:
        raise DataError(f"KID subsets: need subsets >= 1 and subset_size >= 2; got {subsets} and {subset_size}")
    size = min(subset_size, len(real), len(generated))
    rng = np.random.default_rng(seed)
    draw = lambda features: features[rng.choice(len(features), size, replace=False)]  # noqa: E731
    values = [kid(draw(real), draw(generated)) for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values)), size
