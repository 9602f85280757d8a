"""CDDFuse's ``Evaluator.Qabf`` and ``Evaluator.SSIM`` (scikit-image 0.19.2), in float32 as there."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from jaxfuse.metrics._sobel import sobel
from jaxfuse.metrics.cddfuse._read import _F32, _prepare, _quiet

SSIM_WIN = 7
"""scikit-image 0.19.2's default (uniform) SSIM window."""


# ---------------------------------------------------------------------------
# Qabf (float32, 0-255)

_HALF_PI = _F32(math.pi / 2)


def _qabf_edges(x: np.ndarray):
    """``Qabf_getArray``: Sobel strength and orientation, float32.

    ``convolve2d(x, h, 'same')`` with zero padding for
    h_x = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] and
    h_y = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]] (true convolution). The sums
    are formed in float64 and rounded to float32; on grey levels they are
    small integers, exact either way, so the tests ``Sx == 0`` and
    ``gX == gF`` fall as in the reference.
    """
    sx, sy = sobel(x.astype(np.float64))
    sx, sy = sx.astype(_F32), sy.astype(_F32)
    g = np.sqrt(sx * sx + sy * sy)
    zero = sx == 0
    with _quiet():
        ang = np.where(zero, _HALF_PI, np.arctan(sy / np.where(zero, _F32(1), sx)))
    return g, ang.astype(_F32)


def _qabf_q(ax, gx, af, gf) -> np.ndarray:
    """``Qabf_getQabf``: edge preservation of one source, float32."""
    tg, kg, dg = _F32(0.9994), _F32(-15), _F32(0.5)
    ta, ka, da = _F32(0.9879), _F32(-22), _F32(0.8)
    big, eq = gx > gf, gx == gf
    with _quiet():
        G = np.where(big, gf / np.where(big, gx, _F32(1)),
                     np.where(eq, gf, gx / np.where(big | eq, _F32(1), gf))).astype(_F32)
        A = _F32(1) - np.abs(ax - af) / _HALF_PI
        qg = tg / (_F32(1) + np.exp(kg * (G - dg)))
        qa = ta / (_F32(1) + np.exp(ka * (A - da)))
    return qg * qa


def qabf(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """Qabf: Xydeas–Petrović edge preservation as ``Evaluator.Qabf``, float32.

    Convention: on 0–255 values; Sobel strength ``g`` and orientation
    ``atan(Sy/Sx)`` (π/2 where ``Sx == 0``); per source X the relative
    strength ``G = min/max(gX, gF)`` but ``G = gF`` where ``gX == gF``
    (the MATLAB kit's quirk, kept); ``A = 1 − |αX − αF|/(π/2)``; sigmoids
    Tg = 0.9994, kg = −15, Dg = 0.5, Ta = 0.9879, ka = −22, Da = 0.8;
    ``Qabf = Σ(Q_AF·gA + Q_BF·gB) / Σ(gA + gB)``, all in float32. On
    0–255 data ``gF`` is 0 or at least 1 where the tie occurs, so the quirk
    barely matters (unlike the kit's x/255 images).

    Args:
      ir, vis, fused: same-shape images in [0, 255], at least 3×3.

    Returns:
      Qabf in [0, 1); 0 when neither source has an edge (CDDFuse: 0/0);
      about 0.975 when the three images are equal. The zero padding makes
      the border of a non-black constant image an edge, so constant images
      other than black still score (as in CDDFuse).
    """
    a, b, f = _prepare(ir, vis, fused, metric="Qabf", min_size=3, why="3x3 Sobel window")
    ga, aa = _qabf_edges(a)
    gb, ab = _qabf_edges(b)
    gf, af = _qabf_edges(f)
    den = np.sum(ga + gb)
    if den == 0:
        return 0.0
    num = np.sum(_qabf_q(aa, ga, af, gf) * ga + _qabf_q(ab, gb, af, gf) * gb)
    return float(num / den)


# ---------------------------------------------------------------------------
# SSIM: scikit-image 0.19.2 on float32, without scikit-image

def _uniform1d(x: np.ndarray, axis: int, size: int = SSIM_WIN) -> np.ndarray:
    """``scipy.ndimage.uniform_filter1d(x, size, axis)`` on float32, bit for bit.

    SciPy (since 1.0, so in the pinned 1.7) keeps a float64 running *sum*
    along each line, extended by reflection (``d c b a | a b c d | d c b
    a``): the first window summed left to right from 0.0, then the entering
    value minus the leaving one added per step, each output the sum divided
    by ``size`` and stored as float32. ``np.cumsum`` adds in the same
    sequence.
    """
    v = np.moveaxis(x, axis, 0).astype(np.float64)
    n = v.shape[0]
    h1 = size // 2
    h2 = size - h1 - 1
    ext = np.concatenate([v[h1 - 1::-1], v, v[:n - h2 - 1:-1]], axis=0)
    steps = np.empty_like(v)
    acc = np.zeros_like(v[0])
    for k in range(size):  # the first window, summed in order
        acc = acc + ext[k]
    steps[0] = acc
    steps[1:] = ext[size:size + n - 1] - ext[:n - 1]
    out = (np.cumsum(steps, axis=0) / size).astype(_F32)
    return np.moveaxis(out, 0, axis)


def _uniform(x: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.uniform_filter(x, 7)``: rows first, then columns, float32 between."""
    return _uniform1d(_uniform1d(x, 0), 1)


def _ssim_019(x: np.ndarray, y: np.ndarray, x_stats=None) -> float:
    """scikit-image 0.19.2 ``structural_similarity(x, y)`` for float32 images, no data_range.

    Every array operation in float32 as there (the scalars rounded to
    float32 as NumPy does): ``data_range = 2`` from the float dtype range
    (-1, 1), ``C1 = (0.01·2)²``, ``C2 = (0.03·2)²``, 7×7 uniform means,
    covariances times 49/48, the map's mean over the interior (3-pixel
    border cropped) in float64. ``x_stats`` is ``(U(x), U(x·x))`` if known.
    """
    ux, uxx = x_stats if x_stats is not None else (_uniform(x), _uniform(x * x))
    uy = _uniform(y)
    uyy = _uniform(y * y)
    uxy = _uniform(x * y)
    cov_norm = _F32(SSIM_WIN ** 2 / (SSIM_WIN ** 2 - 1))
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    data_range = 2  # dtype_range[np.float32] = (-1, 1)
    c1 = _F32((0.01 * data_range) ** 2)
    c2 = _F32((0.03 * data_range) ** 2)
    a1 = _F32(2) * ux * uy + c1
    a2 = _F32(2) * vxy + c2
    b1 = ux ** 2 + uy ** 2 + c1
    b2 = vx + vy + c2
    with _quiet():
        s = (a1 * a2) / (b1 * b2)
    pad = (SSIM_WIN - 1) // 2
    return float(s[pad:-pad, pad:-pad].mean(dtype=np.float64))


def ssim(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """SSIM: ``ssim(F, IR) + ssim(F, VIS)``, a **sum** of scikit-image 0.19.2 SSIMs.

    Convention: ``structural_similarity(F, X)`` of scikit-image 0.19.2 with
    its defaults on CDDFuse's float32 images: no ``data_range`` given, so it
    is taken from the dtype as 2 although the values span 0–255, which makes
    ``C1 = 0.0004`` and ``C2 = 0.0036`` nearly 0; 7×7 uniform window,
    sample covariance, reflected borders, mean over the map without its
    3-pixel border; float32 arithmetic, whose rounding in the variances of
    flat areas is part of the value (a float64 SSIM of the same formula
    differs by up to 3e-4 on TNO-21). Current scikit-image computes the same
    only when called with ``data_range=2`` (it refuses float input without
    one). Not Wang et al.'s Gaussian SSIM, and not the mean of the two terms
    (``SSIM_a`` elsewhere); values are in [−2, 2].

    Args:
      ir, vis, fused: same-shape images in [0, 255], at least 7×7.

    Returns:
      The sum of the two SSIMs; 2 when ``fused`` equals both sources
      (constant images included), finite for constant images.
    """
    a, b, f = _prepare(ir, vis, fused, metric="SSIM", min_size=SSIM_WIN,
                       why=f"{SSIM_WIN}x{SSIM_WIN} window")
    f_stats = (_uniform(f), _uniform(f * f))
    return _ssim_019(f, a, f_stats) + _ssim_019(f, b, f_stats)
