"""Grey-level histograms and their entropies, shared by the histogram metrics.

Histograms are of integer grey levels 0..255 (joint ones 256×256), as
float64 counts; entropies are ``−Σ p log p`` over the non-empty bins with
``p = counts / Σ counts``. Counts are integers, so every sum of them is
exact and the results do not depend on how a caller got its counts
(``bincount`` of the image, or the margins of a joint histogram).

Kept apart on purpose: CDDFuse's EN (``np.round`` half to even, Python's
sequential ``sum``) and the cross entropies (``math.fsum`` in the
``standard`` CE, NumPy's pairwise sum in VIFB's), whose summation is part
of their convention.
"""

from __future__ import annotations

import numpy as np

LEVELS = 256


def hist256(levels: np.ndarray) -> np.ndarray:
    """256-bin counts of integer grey levels, as float64."""
    return np.bincount(levels.ravel(), minlength=LEVELS).astype(np.float64)


def joint_hist(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """256×256 joint histogram of integer grey levels, rows ``x``, columns ``y`` (float64)."""
    return np.bincount((x * LEVELS + y).ravel(), minlength=LEVELS * LEVELS).reshape(
        LEVELS, LEVELS).astype(np.float64)


def entropy_of_counts(counts: np.ndarray, log=np.log2) -> float:
    """``−Σ p log p`` of a histogram (bits with ``np.log2``, nats with ``np.log``)."""
    p = counts[counts > 0].astype(np.float64)
    p /= p.sum()
    return float(-np.sum(p * log(p)))


def mi_and_entropies(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """``(MI(X, Y), H(X), H(Y))`` in bits from the joint grey-level histogram; MI clipped at 0."""
    j = joint_hist(x, y)
    hx = entropy_of_counts(j.sum(axis=1))
    hy = entropy_of_counts(j.sum(axis=0))
    hxy = entropy_of_counts(j.ravel())
    return max(hx + hy - hxy, 0.0), hx, hy
