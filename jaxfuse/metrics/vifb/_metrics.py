"""The VIFB metrics other than Qcb and Qcv, on a :class:`~jaxfuse.metrics.vifb.VifbPair`.

Each takes (pair, fused context, unit) where unit = (vis key, ir key, fused
key) of one pass of VIFB's channel loop (key None: the whole image); the
loop and the mean over channels are in ``VifbPair._one``. The fused image's
key is None only when it is grey.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from jaxfuse.metrics._common import correlate_valid, matlab_gaussian
from jaxfuse.metrics._hist import entropy_of_counts, hist256
from jaxfuse.metrics._sobel import sobel
from jaxfuse.metrics.vifb._matlab import _dot, _gray_double, _gray_u8, _norm_levels, _normalize1
from jaxfuse.metrics.vifb._perceptual import _m_qcb, _m_qcv

if TYPE_CHECKING:
    from jaxfuse.metrics.vifb._pair import VifbPair, _Fused


def _entropy_nats(counts: np.ndarray) -> float:
    return entropy_of_counts(counts, log=np.log)


_SSIM_WINDOW = matlab_gaussian(11, 1.5)
_SSIM_WINDOW = _SSIM_WINDOW / np.sum(_SSIM_WINDOW)
_SSIM_C1 = (0.01 * 255) ** 2
_SSIM_C2 = (0.03 * 255) ** 2


def _filter_valid(x: np.ndarray) -> np.ndarray:
    """``filter2(w, x, 'valid')`` with the 11×11 SSIM window (separable passes)."""
    return correlate_valid(x, _SSIM_WINDOW)


def _qabf_edges(p: np.ndarray):
    """Sobel magnitude (float64, exact ties) and ``atan(Sy/Sx)`` (``π/2`` where ``Sx == 0``, float32)."""
    sx, sy = sobel(p)
    g = np.sqrt(sx * sx + sy * sy)
    zero = sx == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(sy, sx, out=sy)
    np.arctan(sy, out=sy)
    sy[zero] = np.pi / 2
    # The angle only enters the smooth sigmoid Qa: float32 (error ~1e-7) is
    # far below the 5 printed digits; the strength ties gX == gF need float64.
    return g, sy.astype(np.float32)


_QABF = dict(tg=0.9994, kg=-15.0, dg=0.5, ta=0.9879, ka=-22.0, da=0.8)


def _qabf_weighted(gx, ax, gf, af) -> float:
    """``Σ Q_XF · gX`` for one source X (float64 ties, float32 sigmoids, float64 sum)."""
    c = _QABF
    lo = np.minimum(gx, gf)
    hi = np.maximum(gx, gf)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(lo, hi, out=lo)
    # VIFB: G = gF where gX == gF (0 where both are 0, else >= 255: Qg saturates at Tg).
    np.copyto(lo, gf, where=gx == gf)
    g = lo.astype(np.float32)
    g -= c["dg"]
    g *= c["kg"]
    np.exp(g, out=g)
    g += 1.0
    np.divide(np.float32(c["tg"]), g, out=g)
    a = np.subtract(ax, af)
    np.abs(a, out=a)
    a /= np.float32(np.pi / 2)
    np.subtract(np.float32(1.0), a, out=a)
    a -= np.float32(c["da"])
    a *= np.float32(c["ka"])
    np.exp(a, out=a)
    a += 1.0
    np.divide(np.float32(c["ta"]), a, out=a)
    g *= a
    return float(_dot(g.ravel().astype(np.float64), gx.ravel()))


# --------------------------------------------------------------------------- the metrics

def _m_avg_gradient(P: VifbPair, F: _Fused, _unit) -> float:
    planes = F.img.f32()
    r, c = planes[0].shape
    g = []
    for band in planes:
        # Central differences of grey levels are halves: exact in float32.
        dy, dx = np.gradient(band)
        dx *= dx
        dy *= dy
        dx += dy
        dx /= 2.0
        np.sqrt(dx, out=dx)
        g.append(float(np.sum(dx, dtype=np.float64)) / ((r - 1) * (c - 1)))
    return sum(g) / len(g)


def _m_edge_intensity(P: VifbPair, F: _Fused, _unit) -> float:
    total = 0.0
    planes = F.img.f32()
    for x in planes:
        # imfilter(F, fspecial('sobel'), 'replicate') and its transpose: a
        # correlation, so the signs differ from conv2's, which the magnitude
        # ignores. Integer sums below 2^24: exact in float32.
        gy, gx = sobel(x, pad="edge")
        gx *= gx
        gy *= gy
        gx += gy
        np.sqrt(gx, out=gx)
        total += float(np.sum(gx, dtype=np.float64))
    return total / (planes[0].size * len(planes))


def _m_spatial_frequency(P: VifbPair, F: _Fused, _unit) -> float:
    # MATLAB's fused(i, j) with j up to 3W on an H×W×3 array: the channels side
    # by side (H×3W), the seams between them included.
    planes = F.img.f32()
    rf = cf = 0.0
    for k, x in enumerate(planes):
        d = np.diff(x, axis=1)
        rf += float(_dot(d.ravel().astype(np.float64), d.ravel()))
        d = np.diff(x, axis=0)
        cf += float(_dot(d.ravel().astype(np.float64), d.ravel()))
        if k > 0:
            s = planes[k][:, 0].astype(np.float64) - planes[k - 1][:, -1]
            rf += float(_dot(s, s))
    m, n = planes[0].shape[0], planes[0].shape[1] * len(planes)
    return math.sqrt(rf / (m * n) + cf / (m * n))


def _fused_hist(F: _Fused, key) -> np.ndarray:
    def fn(_x):
        return hist256(F.img.u8()[0 if key is None else key])
    return F.get("hist", key, fn)


def _src_hist(P: VifbPair, which, key) -> np.ndarray:
    def fn(x):
        g = _gray_u8(x)
        return hist256(g.astype(np.uint8))
    return P._get("hist_gray_u8", which, key, fn)


def _m_entropy(P: VifbPair, F: _Fused, unit) -> float:
    return entropy_of_counts(_fused_hist(F, unit[2]))


def _kl_skip(p1: np.ndarray, p2: np.ndarray) -> float:
    m = (p1 != 0) & (p2 != 0)
    return float(np.sum(p1[m] * np.log2(p1[m] / p2[m])))


def _m_cross_entropy(P: VifbPair, F: _Fused, unit) -> float:
    kv, ki, kf = unit
    hf = _fused_hist(F, kf)
    n = float(np.sum(hf))
    pf = hf / n
    pv = _src_hist(P, "vis", kv) / n
    pi = _src_hist(P, "ir", ki) / n
    return (_kl_skip(pv, pf) + _kl_skip(pi, pf)) / 2.0


def _m_mutinf(P: VifbPair, F: _Fused, unit) -> float:
    kv, ki, kf = unit
    bf = F.get("norm_i32", kf, lambda x: F.get("norm", kf, _norm_levels).astype(np.int32))
    hf = F.get("mi_h", kf, lambda x: _entropy_nats(np.bincount(bf.ravel(), minlength=256)))
    total = 0.0
    for which, key in (("vis", kv), ("ir", ki)):
        # Bin index of the source times 256, so the joint index is one addition.
        ba = P._get("mi_bins256", which, key,
                    lambda x: _normalize1(_gray_u8(x), levels=True).astype(np.int32) * 256)
        ha = P._get("mi_h", which, key,
                    lambda x: _entropy_nats(np.bincount((ba // 256).ravel(), minlength=256)))
        joint = np.bincount(np.add(ba, bf).ravel(), minlength=65536)
        total += ha + hf - _entropy_nats(joint)
    return total


def _mse_norm(P: VifbPair, F: _Fused, unit):
    """VIFB's ``mse``: ``sqrt(Σ(a − f)²)/(H·W)`` for the visible and the infrared part of ``unit``."""
    kv, ki, kf = unit
    f = F.part(kf)
    out = []
    for which, key in (("vis", kv), ("ir", ki)):
        def fn(_f, which=which, key=key):
            d = P._get("gray_double", which, key, _gray_double) - f
            d = d.ravel()
            return math.sqrt(float(_dot(d, d))) / (f.shape[0] * f.shape[1])
        out.append(F.get(("mse", which, key), kf, fn))
    return out


def _m_rmse(P: VifbPair, F: _Fused, unit) -> float:
    a, b = _mse_norm(P, F, unit)
    return (a + b) / 2.0


def _m_psnr(P: VifbPair, F: _Fused, unit) -> float:
    a, b = _mse_norm(P, F, unit)
    mes = (a + b) / 2.0
    if mes == 0.0:
        # VIFB: 20 log10(255/0) = Inf. One grey level off at one pixel gives mes = 1/(2HW).
        h, w = F.img.shape[:2]
        mes = 1.0 / (2.0 * h * w)
    return 20.0 * math.log10(255.0 / math.sqrt(mes))


def _ssim_src(x):
    """Source terms of VIFB's ``ssim``: the image, ``2·μa``, ``μa² + C1``, ``σa² + C2``."""
    mu = _filter_valid(x)
    mu_sq = mu * mu
    sig = _filter_valid(x * x)
    sig -= mu_sq
    sig += _SSIM_C2
    mu_sq += _SSIM_C1
    return x, 2.0 * mu, mu_sq, sig


def _ssim_fused(f):
    mu = _filter_valid(f)
    mu_sq = mu * mu
    sig = _filter_valid(f * f)
    sig -= mu_sq
    return mu, mu_sq, sig


def _m_ssim(P: VifbPair, F: _Fused, unit) -> float:
    kv, ki, kf = unit
    f = F.part(kf)
    ub, ub_sq, sigb_sq = F.get("ssim", kf, _ssim_fused)
    total = 0.0
    for which, key in (("vis", kv), ("ir", ki)):
        a, ua2, ua_sq_c1, siga_sq_c2 = P._get("ssim", which, key, lambda x: _ssim_src(_gray_u8(x)))
        # ((2 μa μb + C1)(2 σab + C2)) / ((μa² + μb² + C1)(σa² + σb² + C2)),
        # σab = filter(a·f) − μa μb.
        t = ua2 * ub
        num = _filter_valid(a * f)
        num *= 2.0
        num -= t
        num += _SSIM_C2
        t += _SSIM_C1
        num *= t
        den = ua_sq_c1 + ub_sq
        den *= siga_sq_c2 + sigb_sq
        num /= den
        total += float(np.mean(num))
    return total


def _m_variance(P: VifbPair, F: _Fused, unit) -> float:
    # sqrt(Σ(f − mean)²/(r·c)) of grey levels, from the 256-bin histogram.
    h = _fused_hist(F, unit[2])
    n = float(np.sum(h))
    levels = np.arange(256, dtype=np.float64)
    mu = float(_dot(h, levels)) / n
    d = levels - mu
    return math.sqrt(float(_dot(h, d * d)) / n)


def _m_qabf(P: VifbPair, F: _Fused, unit) -> float:
    kv, ki, kf = unit
    gf, af = F.get("qabf", kf, lambda x: _qabf_edges(255.0 * x))
    ga, aa = P._get("qabf", "vis", kv, lambda x: _qabf_edges(255.0 * _gray_double(x)))
    gb, ab = P._get("qabf", "ir", ki, lambda x: _qabf_edges(255.0 * _gray_double(x)))
    deno = P._get2("qabf_den", unit, lambda: float(np.sum(ga + gb)))
    if deno == 0.0:
        return 0.0  # no source gradient anywhere (VIFB: 0/0)
    return (_qabf_weighted(ga, aa, gf, af) + _qabf_weighted(gb, ab, gf, af)) / deno


_METRICS = {
    "Avg_gradient": _m_avg_gradient,
    "Cross_entropy": _m_cross_entropy,
    "Edge_intensity": _m_edge_intensity,
    "Entropy": _m_entropy,
    "Mutinf": _m_mutinf,
    "Psnr": _m_psnr,
    "Qabf": _m_qabf,
    "Qcb": _m_qcb,
    "Qcv": _m_qcv,
    "Rmse": _m_rmse,
    "Spatial_frequency": _m_spatial_frequency,
    "Ssim": _m_ssim,
    "Variance": _m_variance,
}
