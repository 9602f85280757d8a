"""Structural and feature-based fusion quality indices: Qy, Qp, Qw, Qe.

Textbook definitions for the ``standard`` convention:

* :func:`qy`: Yang et al.'s SSIM-based index (Inf. Fusion 2008);
* :func:`qp`: Zhao et al.'s phase-congruency index (IJICIC 2007), on
  :func:`phasecong`, Kovesi's ``phasecong3`` (both in
  :mod:`jaxfuse.metrics.phasecong`);
* :func:`qw`, :func:`qe`: Piella and Heijmans' weighted and edge-dependent
  fusion quality indices (ICIP 2003), built on Wang and Bovik's universal
  image quality index Q0.

Details the papers leave open are taken from Zheng Liu's MATLAB fusion-metric
toolbox (``metricYang.m``, ``metricZhao.m``, ``metricPeilla.m``), which most
published values come from; each docstring says where and why the two differ.
Window statistics come from separable filters over every window inside the
image ('valid' windows, step 1); nothing loops over windows.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

from jaxfuse.metrics._common import correlate_valid, matlab_gaussian, prepare
from jaxfuse.metrics._sobel import sobel
from jaxfuse.metrics.phasecong import QP_MIN_SIZE, PhaseCongruency, phasecong, qp

QY_MIN_SIZE = 7    # one 7x7 window
QW_MIN_SIZE = 8    # one 8x8 window
QE_MIN_SIZE = 10   # 3x3 Sobel ('valid') leaves one 8x8 window

FLAT_RTOL = 1e-10
"""A window whose variance is at most ``FLAT_RTOL`` times its mean square is flat.

Filtered window statistics carry rounding errors of a few ulps of the mean
square, so the variance of a constant window of a float image comes out as
±1e-14·μ² instead of 0. Ratios of such noise (Q0's ``σ_xy / (σ_x² + σ_y²)``,
the weights ``σ_a² / (σ_a² + σ_b²)``) would be arbitrary; variances this small
(a standard deviation under 10⁻⁵ of the mean, far below one grey level) are
set to exactly 0, and so are covariances involving them. Integer-valued
images never reach the threshold (their smallest non-zero window variance is
63/64² ≈ 0.015 against a mean square of at most 255²)."""

_GAUSS7 = matlab_gaussian(7, 1.5)


# ---------------------------------------------------------------------------
# Window statistics.

def _box_mean_valid(x: np.ndarray, k: int) -> np.ndarray:
    """Mean over every ``k``×``k`` window inside ``x`` (direct sums, no running totals)."""
    w = np.full(k, 1.0 / k)
    lo, hi = k // 2, k - 1 - k // 2
    y = ndimage.correlate1d(x, w, axis=0, mode="constant")[lo:x.shape[0] - hi]
    return ndimage.correlate1d(y, w, axis=1, mode="constant")[:, lo:x.shape[1] - hi]


def _moments(filt, images, pairs):
    """Window means, variances and the covariances of ``pairs`` (indices into ``images``).

    Variances are clipped at 0 and flat windows (see :data:`FLAT_RTOL`) get
    variance 0 and covariance 0 with anything.
    """
    mus = [filt(x) for x in images]
    var, flat = [], []
    for x, mu in zip(images, mus):
        ex2 = filt(x * x)
        v = np.maximum(ex2 - mu * mu, 0.0)
        fl = v <= FLAT_RTOL * ex2
        flat.append(fl)
        var.append(np.where(fl, 0.0, v))
    cov = {}
    for i, j in pairs:
        c = filt(images[i] * images[j]) - mus[i] * mus[j]
        cov[i, j] = np.where(flat[i] | flat[j], 0.0, c)
    return mus, var, cov


def _saliency_weight(va: np.ndarray, vb: np.ndarray) -> np.ndarray:
    """``λ = s_a / (s_a + s_b)`` with saliency = variance; 1/2 where both are flat."""
    tot = va + vb
    return np.where(tot > 0, va / np.where(tot > 0, tot, 1.0), 0.5)


# ---------------------------------------------------------------------------
# Qy: Yang, Zhang, Wang, Liu (2008).

def _ssim_window(mx, my, vx, vy, cxy, c1, c2):
    return ((2.0 * mx * my + c1) * (2.0 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def qy(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike, *, c1: float = (0.01 * 255.0) ** 2,
       c2: float = (0.03 * 255.0) ** 2) -> float:
    """Qy: Yang et al.'s SSIM-based fusion quality metric.

    Definition (Yang et al., eqs. for ``Q_Y``): for every window ``w``,

    ``Q(w) = λ(w)·SSIM(A,F|w) + (1 − λ(w))·SSIM(B,F|w)`` if ``SSIM(A,B|w) ≥ 0.75``,
    ``Q(w) = max(SSIM(A,F|w), SSIM(B,F|w))`` otherwise,

    ``λ(w) = s(A|w) / (s(A|w) + s(B|w))`` with the saliency ``s`` the local
    variance, and ``Q_Y = mean_w Q(w)``. The threshold 0.75 is the paper's:
    above it the sources are redundant in ``w`` and F should resemble their
    saliency-weighted mix; below it they are complementary and F is scored
    by the source it resembles more.

    SSIM(x, y|w) is Wang et al.'s ``(2μxμy + C1)(2σxy + C2) /
    ((μx² + μy² + C1)(σx² + σy² + C2))``.

    Choices:

    * window: 7×7, every window inside the image (step 1, 'valid'),
      weighted by a Gaussian of σ = 1.5 (``fspecial('gaussian', 7, 1.5)``),
      as ``metricYang.m``; means, variances and covariances are Gaussian-
      weighted (divide by the weight sum 1, not N − 1).
    * constants: ``C1 = (0.01·255)²``, ``C2 = (0.03·255)²`` on 0–255 values
      (Wang et al.'s K1 = 0.01, K2 = 0.03, L = 255, the SSIM the paper
      cites). ``metricYang.m`` sets ``C1 = C2 = 2e-16`` (practically none),
      so flat or nearly flat windows score by rounding noise and ``λ`` is
      0/0 where both sources are flat; ``c1=2e-16, c2=2e-16`` reproduces it
      (with ``λ = 1/2`` there instead of NaN). The toolbox also returns
      −Inf maps for images under 11×11 although its window is 7×7.
    * ``λ = 1/2`` where both sources are flat (0/0 in the definition); flat
      means below :data:`FLAT_RTOL`.

    Reference: C. Yang, J.-Q. Zhang, X.-R. Wang, X. Liu, "A novel similarity
    based quality metric for image fusion", Information Fusion 9(2),
    156–160, 2008; SSIM: Z. Wang, A. C. Bovik, H. R. Sheikh, E. P.
    Simoncelli, IEEE TIP 13(4), 2004.

    Args:
      ir, vis, fused: same-shape images in [0, 255], at least 7×7.
      c1, c2: SSIM stabilising constants (> 0), on the 0–255 scale.

    Returns:
      Qy in [-1, 1]; 1 when ``fused == ir == vis`` (constant images
      included).
    """
    a, b, f = prepare(ir, vis, fused, metric="Qy", min_size=QY_MIN_SIZE, why="7x7 window")
    if not (c1 > 0 and c2 > 0):
        raise ValueError(f"Qy: c1 and c2 must be positive, got {c1!r} and {c2!r}")

    def filt(x):
        return correlate_valid(x, _GAUSS7)

    (ma, mb, mf), (va, vb, vf), cov = _moments(filt, [a, b, f], [(0, 1), (0, 2), (1, 2)])
    s_ab = _ssim_window(ma, mb, va, vb, cov[0, 1], c1, c2)
    s_af = _ssim_window(ma, mf, va, vf, cov[0, 2], c1, c2)
    s_bf = _ssim_window(mb, mf, vb, vf, cov[1, 2], c1, c2)
    lam = _saliency_weight(va, vb)
    q = np.where(s_ab >= 0.75, lam * s_af + (1.0 - lam) * s_bf, np.maximum(s_af, s_bf))
    return float(q.mean())


# ---------------------------------------------------------------------------
# Qw, Qe: Piella and Heijmans (2003), on Wang and Bovik's Q0.

_PIELLA_WIN = 8


def _q0(mx, my, vx, vy, cxy):
    """Wang–Bovik Q0 per window, with the conventions of Wang's ``qindex.m``.

    ``Q0 = 4σxy·μx·μy / ((μx² + μy²)(σx² + σy²))``; where both windows are
    flat (``σx² + σy² = 0``) only the luminance term ``2μxμy / (μx² + μy²)``
    remains, and where both are black (``μx² + μy² = 0``) Q0 = 1.
    """
    d1 = vx + vy
    d2 = mx * mx + my * my
    full = (d1 > 0) & (d2 > 0)
    lum = (d1 == 0) & (d2 > 0)
    q = np.ones_like(d1)
    q = np.where(lum, 2.0 * mx * my / np.where(lum, d2, 1.0), q)
    return np.where(full, 4.0 * cxy * mx * my / np.where(full, d1 * d2, 1.0), q)


def _piella_qw(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    def filt(x):
        return _box_mean_valid(x, _PIELLA_WIN)

    (ma, mb, mf), (va, vb, vf), cov = _moments(filt, [a, b, f], [(0, 2), (1, 2)])
    lam = _saliency_weight(va, vb)
    local = lam * _q0(ma, mf, va, vf, cov[0, 2]) + (1.0 - lam) * _q0(mb, mf, vb, vf, cov[1, 2])
    cw = np.maximum(va, vb)
    tot = float(cw.sum())
    if tot == 0.0:  # both sources flat everywhere: no saliency to weight by
        return float(local.mean())
    return float((cw * local).sum() / tot)


def _sobel_magnitude(x: np.ndarray) -> np.ndarray:
    """``sqrt(Sx² + Sy²)`` of the 3×3 Sobel kernels, only where the kernel fits ('valid')."""
    sx, sy = sobel(x, pad=None)
    return np.sqrt(sx * sx + sy * sy)


def qw(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """Qw: Piella and Heijmans' weighted fusion quality index.

    Definition (Piella & Heijmans, eqs. for Q0, Q and Q_W): with Wang and
    Bovik's universal image quality index per window ``w``,

    ``Q0(x, y|w) = 4·σxy·μx·μy / ((μx² + μy²)(σx² + σy²))``,

    ``Q_W(a, b, f) = Σ_w c(w)·[λ(w)·Q0(a, f|w) + (1 − λ(w))·Q0(b, f|w)]``,

    ``λ(w) = s(a|w) / (s(a|w) + s(b|w))``, ``c(w) = C(w) / Σ_w' C(w')``,
    ``C(w) = max(s(a|w), s(b|w))``: windows where a source is salient count
    more. (Without ``c``, the plain mean over windows is Piella's Q.)

    Choices:

    * saliency ``s`` = local variance (the paper's choice among its
      examples);
    * window: 8×8 uniform, sliding with step 1 over every window inside the
      image (Wang and Bovik's Q0 window); whether variances divide by N or
      N − 1 does not matter, every term is a ratio of them;
    * no stabilising constants (Q0 has none); degenerate windows follow
      Wang's ``qindex.m``: both flat → luminance term ``2μxμy/(μx² + μy²)``,
      both black → 1; flat means below :data:`FLAT_RTOL`; ``λ = 1/2``
      where both sources are flat, and uniform weights ``c`` when both are
      flat everywhere.

    ``metricPeilla.m`` (option 2) differs: it uses Wang's SSIM
    (``ssim_index.m``: 11×11 Gaussian σ 1.5, C1 = (0.01·255)²,
    C2 = (0.03·255)²) in place of Q0, so its values are higher than the
    paper's on low-contrast windows; this follows the paper.

    Reference: G. Piella, H. Heijmans, "A new quality metric for image
    fusion", Proc. ICIP 2003, vol. 3, 173–176; Q0: Z. Wang, A. C. Bovik,
    "A universal image quality index", IEEE SPL 9(3), 2002.

    Args:
      ir, vis, fused: same-shape images in [0, 255], at least 8×8.

    Returns:
      Qw in [-1, 1]; 1 when ``fused == ir == vis`` (constant images
      included).
    """
    a, b, f = prepare(ir, vis, fused, metric="Qw", min_size=QW_MIN_SIZE, why="8x8 window")
    return _piella_qw(a, b, f)


def qe(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike, *, alpha: float = 1.0) -> float:
    """Qe: Piella and Heijmans' edge-dependent fusion quality index.

    Definition (Piella & Heijmans, eq. for Q_E):

    ``Q_E(a, b, f) = Q_W(a, b, f)^(1 − α) · Q_W(a', b', f')^α``,

    with ``a', b', f'`` the edge images and :func:`qw`'s ``Q_W``; ``α ∈ [0, 1]``
    sets how much the edge images count.

    Choices:

    * ``α = 1`` (default): only the edge images count, ``Q_E = Q_W(a', b', f')``;
    * edge images: Sobel gradient magnitude ``sqrt(Sx² + Sy²)`` with the
      3×3 kernels ``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]`` and its
      transpose, computed only where the kernel fits ('valid', no padding,
      so no false edges at the border): the edge images are (H − 2)×(W − 2);
    * ``Q_W`` of the edge images exactly as :func:`qw` (local variance
      saliency, 8×8 sliding windows, step 1);
    * for ``0 < α < 1`` a negative factor is clipped to 0 before its
      fractional power.

    ``metricPeilla.m`` (option 3) differs: Prewitt-like kernels
    ``[1 0 -1]`` with zero padding, SSIM in place of Q0 (see :func:`qw`),
    and ``Qe = Q·Qw(edges)^α`` with ``Q`` never assigned in that branch (an
    error in MATLAB; ports use the image term, i.e. the product form
    ``Q_W(a, b, f)·Q_W(a', b', f')^α``, which is ``qw(...) * qe(...)``
    here). This follows the paper's form.

    Reference: G. Piella, H. Heijmans, "A new quality metric for image
    fusion", Proc. ICIP 2003, vol. 3, 173–176.

    Args:
      ir, vis, fused: same-shape images in [0, 255], at least 10×10.
      alpha: weight of the edge images, in [0, 1].

    Returns:
      Qe in [-1, 1] (in [0, 1] for ``0 < α < 1``); 1 when
      ``fused == ir == vis`` (constant images included).
    """
    a, b, f = prepare(ir, vis, fused, metric="Qe", min_size=QE_MIN_SIZE,
                      why="3x3 Sobel and an 8x8 window")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"Qe: alpha must be in [0, 1], got {alpha!r}")
    edge = _piella_qw(_sobel_magnitude(a), _sobel_magnitude(b), _sobel_magnitude(f)) if alpha > 0 \
        else 1.0
    if alpha == 1.0:
        return edge
    whole = _piella_qw(a, b, f)
    if alpha == 0.0:
        return whole
    return float(max(whole, 0.0) ** (1.0 - alpha) * max(edge, 0.0) ** alpha)


__all__ = ["qy", "qp", "qw", "qe", "phasecong", "PhaseCongruency", "QY_MIN_SIZE", "QP_MIN_SIZE",
           "QW_MIN_SIZE", "QE_MIN_SIZE", "FLAT_RTOL"]
