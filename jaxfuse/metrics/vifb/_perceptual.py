"""VIFB's Qcb (Chen–Blum) and Qcv (Chen–Varshney), from Z. Liu's ``metricChenBlum.m`` / ``metricChen.m``.

:func:`qcb_gray` and :func:`qcv_gray` score one grey triple; ``_m_qcb`` and
``_m_qcv`` are the same computations on a :class:`~jaxfuse.metrics.vifb.VifbPair`,
keeping the sources' share for many fused images.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import scipy.fft as sfft
from numpy.typing import ArrayLike

from jaxfuse.metrics._sobel import sobel
from jaxfuse.metrics.vifb._matlab import (_block_sum, _dot, _freqspace, _half_spectrum, _norm_levels,
                                          _normalize1)

if TYPE_CHECKING:
    from jaxfuse.metrics.vifb._pair import VifbPair, _Fused

_QCB_DEFAULTS = dict(f0=15.3870, f1=1.3456, a=0.7622, scale=30.0, sigma1=2.0, sigma2=4.0)
_QCV_DEFAULTS = dict(window=16, alpha=5.0, scale=8.0)


@lru_cache(maxsize=32)
def _qcb_csf(h: int, w: int, f0: float, f1: float, a: float, scale: float) -> np.ndarray:
    """Chen–Blum's DoG contrast sensitivity ``Sd`` for an ``h×w`` image (``rfft2`` layout)."""
    u, v = _freqspace(h, w)
    u = (w / scale) * u
    v = (h / scale) * v
    r = np.sqrt(u * u + v * v)
    sd = np.exp(-(r / f0) ** 2) - a * np.exp(-(r / f1) ** 2)
    return _half_spectrum(sd)


@lru_cache(maxsize=32)
def _qcv_csf(h: int, w: int, scale: float) -> np.ndarray:
    """Chen–Varshney's Mannos–Sakrison CSF ``theta_m`` for an ``h×w`` image (``rfft2`` layout)."""
    u, v = _freqspace(h, w)
    u = (w / scale) * u
    v = (h / scale) * v
    r = np.sqrt(u * u + v * v)
    theta = 2.6 * (0.0192 + 0.144 * r) * np.exp(-(0.144 * r) ** 1.1)
    return _half_spectrum(theta)


def _gaussian2d(sigma: float) -> np.ndarray:
    """Liu's ``gaussian2d``: 31×31 on −15..15, ``exp(−r²/2σ²)/(2πσ²)``, not normalised."""
    x = np.arange(-15, 16, dtype=np.float64)
    rr = x[None, :] * x[None, :] + x[:, None] * x[:, None]
    return np.exp(-rr / (2 * sigma * sigma)) / (2 * math.pi * sigma * sigma)


@lru_cache(maxsize=32)
def _qcb_blur(h: int, w: int, s1: float, s2: float):
    """FFT size and spectra of the two 31×31 Gaussians for zero-padded ``filter2(G, x, 'same')``.

    Linear convolution by an FFT of at least ``(h + 30)×(w + 30)`` points;
    the Gaussians are symmetric, so correlation and convolution agree.
    """
    ph, pw = sfft.next_fast_len(h + 30, real=True), sfft.next_fast_len(w + 30, real=True)
    g1 = sfft.rfft2(_gaussian2d(s1), s=(ph, pw))
    g2 = sfft.rfft2(_gaussian2d(s2), s=(ph, pw))
    return (ph, pw), g1, g2


def _qcb_cp(spec, shape, f0, f1, a, scale, sigma1, sigma2) -> np.ndarray:
    """Chen–Blum's masked local contrast ``C' = C³/(C² + 1e-4)`` of one normalised image.

    ``C = |filter2(G1, y)/filter2(G2, y) − 1|`` of the CSF-filtered image
    ``y``; where the wider blur is exactly 0 (a zero image: VIFB's 0/0) the
    contrast is taken as 0.
    """
    h, w = shape
    y = sfft.irfft2(spec * _qcb_csf(h, w, f0, f1, a, scale), s=shape)
    (ph, pw), g1, g2 = _qcb_blur(h, w, sigma1, sigma2)
    ys = sfft.rfft2(y, s=(ph, pw))
    c = sfft.irfft2(ys * g1, s=(ph, pw))[15:15 + h, 15:15 + w]
    b2 = sfft.irfft2(ys * g2, s=(ph, pw))[15:15 + h, 15:15 + w]
    with np.errstate(divide="ignore", invalid="ignore"):
        c /= b2
    c -= 1.0
    np.abs(c, out=c)
    if not np.all(b2):
        c[b2 == 0.0] = 0.0
    # k·C^p/(h·C^q + Z), k = h = 1, p = 3, q = 2, Z = 1e-4.
    c2 = c * c
    c *= c2
    c2 += 0.0001
    c /= c2
    return c


def _qcb_weights(c1p, c2p):
    """Saliency weights ``λ1 = C1'²/(C1'² + C2'²)``, ``λ2``; 1/2 each where both are 0."""
    s1 = c1p * c1p
    s2 = c2p * c2p
    den = s1 + s2
    with np.errstate(divide="ignore", invalid="ignore"):
        s1 /= den
        s2 /= den
    z = den == 0
    if z.any():
        s1[z] = 0.5
        s2[z] = 0.5
    return s1, s2


def _qcb_value(w1, w2, c1p, c2p, cfp) -> float:
    """``mean(λ1·Q1F + λ2·Q2F)``, ``QXF = min(CX', CF')/max(CX', CF')`` (1 where both are 0).

    ``min/max`` is VIFB's ``(C1P./CfP).*mask + (CfP./C1P).*(1-mask)`` with
    ``mask = C1P < CfP``, to the last bit wherever that is finite.
    """
    total = 0.0
    for w, cp in ((w1, c1p), (w2, c2p)):
        lo = np.minimum(cp, cfp)
        hi = np.maximum(cp, cfp)
        with np.errstate(divide="ignore", invalid="ignore"):
            lo /= hi
        t = _dot(lo.ravel(), w.ravel())
        if not math.isfinite(t):
            # 0/0 where both contrasts are 0: equal contrast, ratio 1.
            lo[hi == 0] = 1.0
            t = _dot(lo.ravel(), w.ravel())
        total += t
    return total / cfp.size


def _qcv_saliency(n, window, alpha):
    """Chen–Varshney's region saliency ``λ = Σ_block g^α`` of one normalised image."""
    # filter2's correlation flips the sign of Sx only, which the magnitude ignores.
    gx, gy = sobel(n)
    g = np.sqrt(gx * gx + gy * gy)
    return _block_sum(g ** alpha, window)


def _qcv_filtered(spec, shape, scale):
    """The Mannos–Sakrison-filtered normalised image (real: the filter is symmetric)."""
    return sfft.irfft2(spec * _qcv_csf(shape[0], shape[1], scale), s=shape)


def _qcv_from(lam1, lam2, c1, c2, cf, window) -> float:
    """``Σ(λ1·D1 + λ2·D2)/Σ(λ1 + λ2)`` from saliencies and CSF-filtered images.

    ``CSF(im1 − fused) = CSF(im1) − CSF(fused)`` (the filter is linear), so
    the sources' filtered images are computed once. ``D = blkproc(·, mean2(x²))``:
    blkproc's zero padding counts in the 256 of partial blocks.
    """
    area = float(window * window)
    out = []
    for c in (c1, c2):
        e = c - cf
        e *= e
        out.append(_block_sum(e, window) / area)
    d1, d2 = out
    den = float(np.sum(lam1 + lam2))
    if den == 0.0:
        # No source gradient anywhere (VIFB: 0/0): equal weights.
        return float(np.sum(d1 + d2)) / (2.0 * d1.size)
    return float(np.sum(lam1 * d1 + lam2 * d2)) / den


# --------------------------------------------------------------------------- on a VifbPair

def _two_d_sources(name: str, P: VifbPair, unit) -> None:
    kv, ki, _ = unit
    for which, key in (("vis", kv), ("ir", ki)):
        if P._src(which, key).ndim != 2:
            raise ValueError(f"{name}: VIFB's metrics{name}.m has no colour conversion; a colour {which} "
                             "image with a grey fused image is an error there")


def _src_spec(P: VifbPair, which, key):
    return P._get("spec", which, key, lambda x: sfft.rfft2(P._get("norm", which, key, _norm_levels)))


def _fused_spec(F: _Fused, key):
    return F.get("spec", key, lambda x: sfft.rfft2(F.get("norm", key, _norm_levels)))


def _m_qcb(P: VifbPair, F: _Fused, unit) -> float:
    _two_d_sources("Qcb", P, unit)
    kv, ki, kf = unit
    shape = F.img.shape[:2]
    cfp = F.get("qcb_cp", kf, lambda x: _qcb_cp(_fused_spec(F, kf), shape, **_QCB_DEFAULTS))
    c1p = P._get("qcb_cp", "vis", kv, lambda x: _qcb_cp(_src_spec(P, "vis", kv), shape, **_QCB_DEFAULTS))
    c2p = P._get("qcb_cp", "ir", ki, lambda x: _qcb_cp(_src_spec(P, "ir", ki), shape, **_QCB_DEFAULTS))
    w1, w2 = P._get2("qcb_w", unit, lambda: _qcb_weights(c1p, c2p))
    return _qcb_value(w1, w2, c1p, c2p, cfp)


def _m_qcv(P: VifbPair, F: _Fused, unit) -> float:
    _two_d_sources("Qcv", P, unit)
    kv, ki, kf = unit
    shape = F.img.shape[:2]
    window, alpha, scale = _QCV_DEFAULTS["window"], _QCV_DEFAULTS["alpha"], _QCV_DEFAULTS["scale"]

    def src(which, key):
        def fn(x):
            lam = _qcv_saliency(P._get("norm", which, key, _norm_levels), window, alpha)
            return lam, _qcv_filtered(_src_spec(P, which, key), shape, scale)
        return P._get("qcv", which, key, fn)

    cf = F.get("qcv_csf", kf, lambda x: _qcv_filtered(_fused_spec(F, kf), shape, scale))
    lam1, c1 = src("vis", kv)
    lam2, c2 = src("ir", ki)
    return _qcv_from(lam1, lam2, c1, c2, cf, window)


# --------------------------------------------------------------------------- on one grey triple

def _gray_triple(metric: str, ir, vis, fused):
    out = []
    for name, x in (("ir", ir), ("vis", vis), ("fused", fused)):
        a = np.asarray(x, dtype=np.float64)
        if a.ndim != 2 or a.size == 0:
            raise ValueError(f"{metric}: {name} must be a non-empty 2-D grey image, got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{metric}: {name} contains NaN or Inf")
        out.append(a)
    if not (out[0].shape == out[1].shape == out[2].shape):
        raise ValueError(f"{metric}: ir, vis and fused must have the same shape, "
                         f"got {out[0].shape}, {out[1].shape}, {out[2].shape}")
    return out


def qcb_gray(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike, *, f0: float = 15.3870,
             f1: float = 1.3456, a: float = 0.7622, scale: float = 30.0, sigma1: float = 2.0,
             sigma2: float = 4.0) -> float:
    """Chen–Blum fusion quality ``Q_CB`` of grey images, as VIFB computes it on one channel.

    Steps (Z. Liu's ``metricChenBlum.m``, copied by VIFB): each image is
    stretched to 0..255 and rounded (``normalize1``; a constant image becomes
    zeros); filtered in the frequency domain by the DoG contrast sensitivity
    function ``S(r) = exp(−(r/f0)²) − a·exp(−(r/f1)²)`` on MATLAB's
    ``freqspace`` grid scaled by ``(W/scale, H/scale)`` cycles; local
    contrast ``C = |G_σ1 ∗ I / G_σ2 ∗ I − 1|`` (Peli's band-limited contrast
    with 31×31 Gaussians, zero padding) masked as
    ``C' = C³/(C² + 10⁻⁴)``; preservation ``Q_XF = min(C'_X, C'_F)/max(...)``;
    saliency weights ``λ_X = C'_X² / (C'_A² + C'_B²)``;
    ``Q_CB = mean(λ_A·Q_AF + λ_B·Q_BF)``. The defaults are VIFB's constants,
    those of Liu's implementation of the paper.
    Where the formula divides 0 by 0 (zero images), see the module notes;
    identical inputs give 1.

    Reference: Y. Chen, R. S. Blum, "A new automated quality assessment
    algorithm for image fusion", Image Vis. Comput. 27(10), 2009.

    Args:
      ir, vis, fused: 2-D float arrays of the same shape, 0–255 scale (any
        range works: each image is stretched first).
      f0, f1, a: DoG CSF parameters; scale: the frequency scaling divisor.
      sigma1, sigma2: the two Gaussians of the local contrast.

    Returns:
      Q_CB in [0, 1], higher is better.
    """
    A, B, F = _gray_triple("Qcb", ir, vis, fused)
    params = dict(f0=f0, f1=f1, a=a, scale=scale, sigma1=sigma1, sigma2=sigma2)
    c1p, c2p, cfp = (_qcb_cp(sfft.rfft2(_normalize1(x)), F.shape, **params) for x in (B, A, F))
    w1, w2 = _qcb_weights(c1p, c2p)
    return _qcb_value(w1, w2, c1p, c2p, cfp)


def qcv_gray(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike, *, window: int = 16,
             alpha: float = 5.0, scale: float = 8.0) -> float:
    """Chen–Varshney fusion quality ``Q_CV`` of grey images, as VIFB computes it on one channel.

    Steps (Z. Liu's ``metricChen.m``, copied by VIFB): each image is
    stretched to 0..255 and rounded (``normalize1``; constant → zeros);
    region saliency ``λ_X = Σ_block g_X^α`` of the Sobel magnitude over
    ``window×window`` blocks (``blkproc``: the last partial blocks padded with
    zeros); the differences ``X − F`` filtered in the frequency domain by the
    Mannos–Sakrison CSF ``2.6·(0.0192 + 0.144r)·exp(−(0.144r)^1.1)`` on
    MATLAB's ``freqspace`` grid scaled by ``(W/scale, H/scale)``; block
    distortion ``D_X = Σ_block (CSF(X − F))² / window²`` (partial blocks too);
    ``Q_CV = Σ(λ_A·D_A + λ_B·D_B) / Σ(λ_A + λ_B)``. The defaults are VIFB's
    constants, those of Liu's implementation (which also builds the paper's
    Daly and Ahumada CSFs but filters with Mannos–Sakrison only). Equal
    weights where both sources have no gradient (module notes); identical
    inputs give 0.

    Reference: H. Chen, P. K. Varshney, "A human perception inspired quality
    metric for image fusion based on regional information", Inf. Fusion
    8(2), 2007.

    Args:
      ir, vis, fused: 2-D float arrays of the same shape, 0–255 scale.
      window: block side; alpha: saliency exponent; scale: CSF frequency
        scaling divisor.

    Returns:
      Q_CV ≥ 0, lower is better.
    """
    A, B, F = _gray_triple("Qcv", ir, vis, fused)
    parts = []
    for x in (B, A, F):
        n = _normalize1(x)
        spec = sfft.rfft2(n)
        parts.append((_qcv_saliency(n, window, alpha), _qcv_filtered(spec, F.shape, scale)))
    (l1, c1), (l2, c2), (_, cf) = parts
    return _qcv_from(l1, l2, c1, c2, cf, window)
