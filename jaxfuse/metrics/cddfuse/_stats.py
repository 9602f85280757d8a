"""CDDFuse's ``Evaluator`` statistics: EN, SD, SF, AG, MI, MSE, PSNR, CC, SCD and VIF."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from jaxfuse.metrics.cddfuse._read import _F32, _prepare, _quiet
from jaxfuse.metrics.statistical import PSNR_MAX_DB
from jaxfuse.metrics.structural import VIF_MIN_SIZE, vif as _vif_sum


# ---------------------------------------------------------------------------
# No-reference metrics: EN, SD, SF, AG

def en(ir: ArrayLike | None, vis: ArrayLike | None, fused: ArrayLike) -> float:
    """EN: entropy of the fused image in bits (``Evaluator.EN``).

    Convention: ``np.uint8(np.round(F))`` (half to even, unlike MATLAB's
    half away from zero of :func:`jaxfuse.metrics.en`, which matters only
    for non-integer inputs), histogram of the levels over all pixels,
    ``-Σ h·log2(h)`` summed in Python's order.

    Args:
      ir, vis: only checked for shape (may be None).
      fused: image in [0, 255].

    Returns:
      EN in [0, 8]; 0 for a constant image.
    """
    _, _, f = _prepare(ir, vis, fused, metric="EN", need_sources=False)
    a = np.round(f).astype(np.uint8).ravel()
    h = np.bincount(a) / a.shape[0]
    # Python's built-in sum over the bins, as the reference: sequential, not pairwise.
    # (+ 0.0 turns the -0.0 of a constant image into 0.0.)
    return float(-sum((h * np.log2(h + (h == 0))).tolist())) + 0.0


def sd(ir: ArrayLike | None, vis: ArrayLike | None, fused: ArrayLike) -> float:
    """SD: ``np.std(F)`` on the float32 image (population SD, float32 sums).

    Args:
      ir, vis: only checked for shape (may be None).
      fused: image in [0, 255].

    Returns:
      SD in [0, 127.5]; 0 for a constant image.
    """
    _, _, f = _prepare(ir, vis, fused, metric="SD", need_sources=False)
    return float(np.std(f))


def sf(ir: ArrayLike | None, vis: ArrayLike | None, fused: ArrayLike) -> float:
    """SF: spatial frequency ``sqrt(mean(ΔxF²) + mean(ΔyF²))``, float32.

    Convention: forward differences, each mean over the differences that
    exist (``H×(W−1)`` and ``(H−1)×W``).

    Args:
      ir, vis: only checked for shape (may be None).
      fused: image in [0, 255], at least 2×2.

    Returns:
      SF ≥ 0; 0 for a constant image.
    """
    _, _, f = _prepare(ir, vis, fused, metric="SF", min_size=2, why="pixel differences",
                       need_sources=False)
    return float(np.sqrt(np.mean((f[:, 1:] - f[:, :-1]) ** 2) + np.mean((f[1:, :] - f[:-1, :]) ** 2)))


def ag(ir: ArrayLike | None, vis: ArrayLike | None, fused: ArrayLike) -> float:
    """AG: average gradient ``mean(sqrt((Gx² + Gy²)/2))`` (``Evaluator.AG``), float32.

    Convention: central differences ``(F[j+1] − F[j−1])/2`` inside and
    one-sided differences on the first and last row/column (what
    ``np.gradient`` does), over all ``H×W`` pixels. VIFB's AG (forward
    differences, :func:`jaxfuse.metrics.ag`) gives different values.

    Args:
      ir, vis: only checked for shape (may be None).
      fused: image in [0, 255], at least 2×2.

    Returns:
      AG ≥ 0; 0 for a constant image.
    """
    _, _, f = _prepare(ir, vis, fused, metric="AG", min_size=2, why="pixel differences",
                       need_sources=False)
    gx, gy = np.zeros_like(f), np.zeros_like(f)
    gx[:, 0] = f[:, 1] - f[:, 0]
    gx[:, -1] = f[:, -1] - f[:, -2]
    gx[:, 1:-1] = (f[:, 2:] - f[:, :-2]) / _F32(2)
    gy[0, :] = f[1, :] - f[0, :]
    gy[-1, :] = f[-1, :] - f[-2, :]
    gy[1:-1, :] = (f[2:, :] - f[:-2, :]) / _F32(2)
    return float(np.mean(np.sqrt((gx ** 2 + gy ** 2) / _F32(2))))


# ---------------------------------------------------------------------------
# MI: scikit-learn's mutual_info_score

def _labels(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Each pixel's index among the sorted distinct values of ``x``, and their count."""
    v = x.ravel()
    if np.array_equal(v, np.round(v)):  # grey levels (always, for images as load returns them)
        lv = v.astype(np.int64)
        present = np.bincount(lv, minlength=256) > 0
        index = np.cumsum(present) - 1
        return index[lv], int(present.sum())
    values, inverse = np.unique(v, return_inverse=True)
    return inverse.ravel(), int(values.size)


def _mutual_info_score(true: tuple[np.ndarray, int], pred: tuple[np.ndarray, int]) -> float:
    """``sklearn.metrics.mutual_info_score(labels_true, labels_pred)`` in nats.

    The same operations in the same order as scikit-learn (1.1 to 1.9): the
    contingency table's non-zero cells in row-major order, terms below
    float64 eps zeroed, the sum clipped at 0.
    """
    (ti, nt), (pi_, np_) = true, pred
    if nt == 1 or np_ == 1:
        return 0.0  # a single label has no entropy, so MI = 0 (scikit-learn's shortcut)
    cont = np.bincount(ti * np_ + pi_, minlength=nt * np_).reshape(nt, np_)
    nzx, nzy = np.nonzero(cont)
    nz_val = cont[nzx, nzy]
    total = int(cont.sum())
    pi = cont.sum(axis=1)
    pj = cont.sum(axis=0)
    log_cont = np.log(nz_val)
    cont_nm = nz_val / total
    outer = pi.take(nzx).astype(np.int64) * pj.take(nzy).astype(np.int64)
    log_outer = -np.log(outer) + math.log(pi.sum()) + math.log(pj.sum())
    mi = cont_nm * (log_cont - math.log(total)) + cont_nm * log_outer
    mi = np.where(np.abs(mi) < np.finfo(mi.dtype).eps, 0.0, mi)
    return float(np.clip(mi.sum(), 0.0, None))


def mi(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """MI: ``mutual_info_score(F, IR) + mutual_info_score(F, VIS)``, in nats.

    Convention: scikit-learn's ``mutual_info_score`` on the flattened
    images, each distinct grey value a label (no binning), natural
    logarithm; 1 bit = ln 2 ≈ 0.693 nats, so these values are 0.693 times
    those of :func:`jaxfuse.metrics.mi` in bits. Computed here from the
    joint histogram in scikit-learn's own order of operations.

    Args:
      ir, vis, fused: same-shape images in [0, 255].

    Returns:
      MI ≥ 0 in nats; 0 for a constant image; ``2·H(F)`` (nats) when the
      three images are equal.
    """
    a, b, f = _prepare(ir, vis, fused, metric="MI")
    lf = _labels(f)
    return _mutual_info_score(lf, _labels(a)) + _mutual_info_score(lf, _labels(b))


# ---------------------------------------------------------------------------
# Pixel statistics: MSE, PSNR, CC, SCD (float32, as the reference)

def _mse32(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.float32:
    return (np.mean((a - f) ** 2) + np.mean((b - f) ** 2)) / _F32(2)


def mse(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """MSE: ``(mean((IR − F)²) + mean((VIS − F)²)) / 2`` on 0–255 values, float32.

    Lower is better (the only such metric here).

    Args:
      ir, vis, fused: same-shape images in [0, 255].

    Returns:
      MSE in [0, 65025]; 0 when ``fused`` equals both sources.
    """
    a, b, f = _prepare(ir, vis, fused, metric="MSE")
    return float(_mse32(f, a, b))


def psnr(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """PSNR: ``10·log10(max(F)² / MSE)`` with :func:`mse`, float32.

    Convention (CDDFuse's quirk): the peak is the fused image's own maximum,
    not 255, so a darker fused image scores lower at equal error. Where
    CDDFuse gives ±inf or NaN this returns finite values: a zero MSE
    (``fused`` equal to both sources; also an all-black triple) gives
    ``PSNR_MAX_DB`` (100 dB), as the other conventions; a zero peak
    (all-black fused image, non-zero MSE) gives −100 dB. Finite results are
    clipped to ±100 dB.

    Args:
      ir, vis, fused: same-shape images in [0, 255].

    Returns:
      PSNR in dB, in [−100, 100].
    """
    a, b, f = _prepare(ir, vis, fused, metric="PSNR")
    m = _mse32(f, a, b)
    peak2 = np.max(f) ** 2
    if m == 0:
        return PSNR_MAX_DB
    if peak2 == 0:
        return -PSNR_MAX_DB
    with _quiet():
        v = float(_F32(10) * np.log10(peak2 / m))
    return min(max(v, -PSNR_MAX_DB), PSNR_MAX_DB)


def _corr32(x: np.ndarray, y: np.ndarray) -> float:
    """CDDFuse's float32 Pearson correlation; 0 where it is 0/0 (a constant image).

    Constancy is tested exactly (max == min) rather than through the float32
    mean: the float32 mean of a large constant image need not equal the
    constant, which in CDDFuse turns the NaN into rounding noise.
    """
    if x.min() == x.max() or y.min() == y.max():
        return 0.0
    dx = x - np.mean(x)
    dy = y - np.mean(y)
    with _quiet():
        r = np.sum(dx * dy) / np.sqrt(np.sum(dx ** 2) * np.sum(dy ** 2))
    return float(r) if np.isfinite(r) else 0.0


def cc(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """CC: ``(r(IR, F) + r(VIS, F)) / 2``, Pearson correlations in float32.

    A correlation with a constant image counts 0 (CDDFuse: NaN).

    Args:
      ir, vis, fused: same-shape images in [0, 255].

    Returns:
      CC in [−1, 1]; 1 (to float32 rounding) when ``fused`` equals both
      (non-constant) sources.
    """
    a, b, f = _prepare(ir, vis, fused, metric="CC")
    # The reference adds two float32 correlations and halves them in float32.
    return float((_F32(_corr32(a, f)) + _F32(_corr32(b, f))) / _F32(2))


def scd(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """SCD: ``r(IR, F − VIS) + r(VIS, F − IR)``, Pearson correlations in float32.

    A correlation with a constant image or difference counts 0 (CDDFuse:
    NaN), so ``fused == ir == vis`` scores 0.

    Args:
      ir, vis, fused: same-shape images in [0, 255].

    Returns:
      SCD in [−2, 2].
    """
    a, b, f = _prepare(ir, vis, fused, metric="SCD")
    return float(_F32(_corr32(a, f - b)) + _F32(_corr32(b, f - a)))


# ---------------------------------------------------------------------------
# VIF

def vif(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIF: ``vifp(IR, F) + vifp(VIS, F)`` (``Evaluator.VIFF``), float64.

    Convention: the same computation as :func:`jaxfuse.metrics.vif` (four
    scales, Gaussian windows 17/9/5/3 with σ = N/5, 'valid' filtering, 2×
    subsampling, σ_n² = 2, the same clamps), which agrees with CDDFuse's
    ``convolve2d`` version to about 3e-8 relative on TNO-21. A source without
    any variance gives 0/0, which CDDFuse (and this) counts as 1. The
    module-level ``VIFF`` function of the same file computes the same value.

    Args:
      ir, vis, fused: same-shape images in [0, 255], at least 41×41.

    Returns:
      The sum of the two VIFs, usually in [0, 2]; 2 (to 1e-9) when
      ``fused`` equals both sources.
    """
    a, b, f = _prepare(ir, vis, fused, metric="VIF", min_size=VIF_MIN_SIZE,
                       why="17x17 window and four scales")
    return float(_vif_sum(a, b, f))
