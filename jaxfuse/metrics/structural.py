"""Structural-similarity metrics: SSIM, SSIM_a, MEF-SSIM (the paper's MS_SSIM), VIF."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

from jaxfuse.metrics._common import (box_sum_valid, correlate_valid, matlab_gaussian, prepare,
                                     prepare_two)

_EPS = np.finfo(np.float64).eps
_GAUSS11 = matlab_gaussian(11, 1.5)
_G1 = _GAUSS11.sum(axis=1)  # its exact 1-D factor (no entry is below eps·max)


def _blur(a: np.ndarray) -> np.ndarray:
    # imfilter(a, fspecial('gaussian', 11, 1.5), 'replicate'), separably.
    a = ndimage.correlate1d(a, _G1, axis=0, mode="nearest")
    return ndimage.correlate1d(a, _G1, axis=1, mode="nearest")


def _ssim_map(x: np.ndarray, y: np.ndarray, x_stats=None) -> np.ndarray:
    """MATLAB ``ssim`` map on [0, 1] images: Gaussian 11×11, σ 1.5, replicate padding.

    ``x_stats``: ``(blur(x), blur(x*x))`` if already computed.
    """
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mux, bxx = x_stats if x_stats is not None else (_blur(x), _blur(x * x))
    muy = _blur(y)
    mux2, muy2, muxy = mux * mux, muy * muy, mux * muy
    sx2 = bxx - mux2
    sy2 = _blur(y * y) - muy2
    sxy = _blur(x * y) - muxy
    num = (2.0 * muxy + c1) * (2.0 * sxy + c2)
    den = (mux2 + muy2 + c1) * (sx2 + sy2 + c2)
    return num / den


def ssim(image: ArrayLike, reconstruction: ArrayLike) -> float:
    """SSIM between an image and its reconstruction (paper Table III), MATLAB defaults.

    Convention: MATLAB's ``ssim(A, B)`` on ``im2double`` images (x/255, so
    L = 1): 11×11 Gaussian window with σ = 1.5 (``fspecial``: entries below
    eps·max zeroed, normalised), replicate ("nearest") border padding so the
    map has the image's size, K1 = 0.01, K2 = 0.03, mean of the map.
    scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1)`` computes the same map but
    averages only the interior (it crops 5 pixels of border), so the two
    differ in the third decimal.
    Reference: Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image
    quality assessment: from error visibility to structural similarity",
    IEEE TIP 13(4), 2004.

    Args:
      image, reconstruction: same-shape images in [0, 255], at least 11×11.

    Returns:
      SSIM in [-1, 1]; 1 for identical images (constant ones included).
    """
    a, b = prepare_two(image, reconstruction, metric="SSIM", min_size=11, why="11x11 Gaussian window")
    return float(_ssim_map(a / 255.0, b / 255.0).mean())


def ssim_a(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """SSIM_a: ``(SSIM(F, IR) + SSIM(F, VIS)) / 2`` with MATLAB's ``ssim`` defaults.

    Convention: as the reference kit (Res2NetFuse Table IV's SSIM_a); each
    term is :func:`ssim` (x/255 images, Gaussian 11×11 σ 1.5, replicate
    borders, K1 = 0.01, K2 = 0.03, L = 1, mean of the full map).
    Reference: Wang et al., IEEE TIP 13(4), 2004; H. Li, X.-J. Wu,
    "DenseFuse", IEEE TIP 28(5), 2019.

    Args:
      ir, vis, fused: same-shape images in [0, 255], at least 11×11.

    Returns:
      Mean SSIM in [-1, 1]; 1 when ``fused`` equals both sources.
    """
    a, b, f = prepare(ir, vis, fused, metric="SSIM_a", min_size=11, why="11x11 Gaussian window")
    f = f / 255.0
    f_stats = (_blur(f), _blur(f * f))
    return float(0.5 * (_ssim_map(f, a / 255.0, f_stats).mean() + _ssim_map(f, b / 255.0, f_stats).mean()))


# ---------------------------------------------------------------------------
# MEF-SSIM of Ma, Zeng and Wang (2015): the "MS_SSIM" of the kit and paper.

_MEF_WEIGHTS = np.array([0.0448, 0.2856, 0.3001]) / (0.0448 + 0.2856 + 0.3001)
_MEF_LEVELS = 3
_MEF_WIN = 11
MEF_SSIM_MIN_SIZE = _MEF_WIN * 2 ** (_MEF_LEVELS - 1)  # 44: the kit refuses smaller images


_MEF_STRIP = 96  # output rows per strip: bounds the temporaries to ~40 strips, not ~40 images


def _mef_ssim_scale(srcs: list[np.ndarray], f: np.ndarray) -> float:
    """Mean quality map of one scale (``mef_ssim`` of the kit), in strips of rows."""
    rows = f.shape[0] - _MEF_WIN + 1
    total = 0.0
    for r0 in range(0, rows, _MEF_STRIP):
        r1 = min(r0 + _MEF_STRIP, rows) + _MEF_WIN - 1
        total += _mef_ssim_strip([x[r0:r1] for x in srcs], f[r0:r1])
    return total / (rows * (f.shape[1] - _MEF_WIN + 1))


def _mef_ssim_strip(srcs: list[np.ndarray], f: np.ndarray) -> float:
    """Sum of the quality map over the valid windows of ``f`` (vectorised)."""
    k = _MEF_WIN
    n = float(k * k)
    K = len(srcs)
    s1 = [box_sum_valid(x, k) for x in srcs]
    # 121·cov(X_k, X_l) over each box; exact for integer or dyadic images.
    cbox = {}
    for i in range(K):
        for j in range(i, K):
            sij = box_sum_valid(srcs[i] * srcs[j], k)
            cbox[i, j] = cbox[j, i] = np.maximum((n * sij - s1[i] * s1[j]) / n, 0.0) if i == j \
                else (n * sij - s1[i] * s1[j]) / n
    norms = [np.sqrt(cbox[i, i]) for i in range(K)]          # ||x_k - mu_k||
    ed = [v + 0.001 for v in norms]                           # signal strengths c_k
    tot = sum(cbox[i, j] for i in range(K) for j in range(K))
    num = np.sqrt(np.maximum(tot, 0.0))                       # ||sum_k x_k - mean||
    den = sum(norms)
    r = (num + _EPS) / (den + _EPS)
    r = np.where(r > 1, 1 - _EPS, r)
    r = np.where(r < 0, _EPS, r)
    p = np.minimum(np.tan(np.pi / 2 * r), 10.0)
    wmap = [(e / k) ** p + _EPS for e in ed]
    wsum = sum(wmap)
    a = [wm / wsum / e for wm, e in zip(wmap, ed)]            # coefficient of (x_k - mu_k)
    max_ed = np.maximum.reduce(ed)
    # Desired patch r = s·Σ a_k (x_k − mu_k), s rescaling its norm to max_k c_k.
    rnorm2 = sum(a[i] * a[j] * cbox[i, j] for i in range(K) for j in range(K))
    rnorm = np.sqrt(np.maximum(rnorm2, 0.0))
    scale = np.where(rnorm > 0, max_ed / np.where(rnorm > 0, rnorm, 1.0), 1.0)
    coef = [ai * scale for ai in a]
    # Gaussian-weighted (co)variances inside each 11×11 block: shift-invariant,
    # so the desired patch's ones are quadratic forms of the sources' ones.
    g = _GAUSS11
    gm = [correlate_valid(x, g) for x in srcs]
    gmf = correlate_valid(f, g)
    gcov = {}
    for i in range(K):
        for j in range(i, K):
            gcov[i, j] = gcov[j, i] = correlate_valid(srcs[i] * srcs[j], g) - gm[i] * gm[j]
    gcf = [correlate_valid(x * f, g) - m * gmf for x, m in zip(srcs, gm)]
    var_f = correlate_valid(f * f, g) - gmf * gmf
    var_r = sum(coef[i] * coef[j] * gcov[i, j] for i in range(K) for j in range(K))
    cov_rf = sum(c * v for c, v in zip(coef, gcf))
    zero = rnorm2 <= 0  # all sources flat here: the desired patch is exactly 0
    var_r = np.where(zero, 0.0, var_r)
    cov_rf = np.where(zero, 0.0, cov_rf)
    C = (0.03 * 255.0) ** 2
    q = (2.0 * cov_rf + C) / (var_r + var_f + C)
    return float(q.sum())


def _downsample(x: np.ndarray) -> np.ndarray:
    # imfilter(x, ones(2)/4, 'symmetric', 'same') then x(1:2:end, 1:2:end):
    # the mean of each 2x2 block starting at an odd (1-based) row/column, the
    # last row/column repeated when the size is odd.
    xp = np.pad(x, ((0, 1), (0, 1)), mode="symmetric")
    y = (xp[:-1, :-1] + xp[1:, :-1] + xp[:-1, 1:] + xp[1:, 1:]) / 4.0
    return y[::2, ::2]


def mef_ssim(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """MS_SSIM of the paper: the multi-exposure-fusion SSIM of Ma, Zeng and Wang.

    Convention: the kit's ``analysis_ms_ssim(imgSeq, F)`` with its defaults
    (not Wang's MS-SSIM): sources ``[IR, VIS]`` and F on raw 0–255 values;
    per scale and per 11×11 window inside the image, a desired patch is
    built from the sources' structures (weights from signal strength and a
    structure-consistency exponent ``p = tan(π/2·R)`` capped at 10), scaled to
    the largest source contrast and compared with F by the SSIM contrast-
    structure term with Gaussian weights (σ 1.5) and ``C = (0.03·255)²``; the
    scale score is the mean. Three scales (2×2 mean, symmetric padding, keep
    every second pixel from the first) combined as ``Π q_l^w_l`` with weights
    [0.0448, 0.2856, 0.3001] normalised. Vectorised: per-window statistics
    come from box and Gaussian filters of the sources' products instead of
    the kit's loop over windows (equal up to rounding). A negative scale
    score (possible only for adversarial images) is clipped to 0 before the
    weighted geometric mean, where MATLAB would return a complex number.
    Reference: K. Ma, K. Zeng, Z. Wang, "Perceptual quality assessment for
    multi-exposure image fusion", IEEE TIP 24(11), 2015.

    Args:
      ir, vis, fused: same-shape images in [0, 255], at least 44×44 (an
        11×11 window at the third scale).

    Returns:
      MEF-SSIM in [0, 1]; 1 for constant images, close to 1 (not exactly:
      the kit adds 0.001 to each contrast) when ``fused`` equals both sources.
    """
    a, b, f = prepare(ir, vis, fused, metric="MS_SSIM", min_size=MEF_SSIM_MIN_SIZE,
                      why=f"11x11 window at scale {_MEF_LEVELS}")
    srcs = [a, b]
    scores = []
    for level in range(_MEF_LEVELS):
        if level:
            srcs = [_downsample(x) for x in srcs]
            f = _downsample(f)
        scores.append(_mef_ssim_scale(srcs, f))
    q = np.maximum(np.array(scores), 0.0)
    return float(np.prod(q ** _MEF_WEIGHTS))


# ---------------------------------------------------------------------------
# VIF, pixel domain (vifp_mscale of Sheikh and Bovik).

def _vif_kernels():
    return [matlab_gaussian(2 ** (4 - s + 1) + 1, (2 ** (4 - s + 1) + 1) / 5.0) for s in range(1, 5)]


_VIF_KERNELS = _vif_kernels()


def _vif_min_size() -> int:
    n = 1
    while True:
        m, ok = n, True
        for s, win in enumerate(_VIF_KERNELS):
            k = win.shape[0]
            if s:
                m = m - k + 1
                m = (m + 1) // 2 if m > 0 else 0
            if m < k:
                ok = False
                break
        if ok:
            return n
        n += 1


VIF_MIN_SIZE = _vif_min_size()  # 41


def _vifp(ref: np.ndarray, dist: np.ndarray) -> float:
    sigma_nsq = 2.0
    num = den = 0.0
    for s, win in enumerate(_VIF_KERNELS):
        if s:
            ref = correlate_valid(ref, win)[::2, ::2]
            dist = correlate_valid(dist, win)[::2, ::2]
        mu1 = correlate_valid(ref, win)
        mu2 = correlate_valid(dist, win)
        s1 = np.maximum(correlate_valid(ref * ref, win) - mu1 * mu1, 0.0)
        s2 = np.maximum(correlate_valid(dist * dist, win) - mu2 * mu2, 0.0)
        s12 = correlate_valid(ref * dist, win) - mu1 * mu2
        g = s12 / (s1 + 1e-10)
        sv = s2 - g * s12
        flat1 = s1 < 1e-10
        g = np.where(flat1, 0.0, g)
        sv = np.where(flat1, s2, sv)
        s1 = np.where(flat1, 0.0, s1)
        flat2 = s2 < 1e-10
        g = np.where(flat2, 0.0, g)
        sv = np.where(flat2, 0.0, sv)
        neg = g < 0
        sv = np.where(neg, s2, sv)
        g = np.where(neg, 0.0, g)
        sv = np.maximum(sv, 1e-10)
        num += float(np.sum(np.log10(1.0 + g * g * s1 / (sv + sigma_nsq))))
        den += float(np.sum(np.log10(1.0 + s1 / sigma_nsq)))
    return num / den if den > 0 else 1.0


def vif(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIF: pixel-domain visual information fidelity, summed over the two sources.

    Convention: ``vifp_mscale(IR, F) + vifp_mscale(VIS, F)`` on 0–255 values,
    as in the CDDFuse / VIFB evaluation code: four scales with Gaussian
    windows of size 17, 9, 5, 3 (σ = size/5), 'valid' filtering and
    2× subsampling between scales, noise variance σ_n² = 2. Each term is 1
    for a perfect copy of its source, so ``fused == ir == vis`` gives 2. A
    flat source (no information to preserve, 0/0 in the original) counts 1.
    Reference: H. R. Sheikh, A. C. Bovik, "Image information and visual
    quality", IEEE TIP 15(2), 2006; Y. Han et al., "A new image fusion
    performance metric based on visual information fidelity", Inf. Fusion
    14(2), 2013.

    Args:
      ir, vis, fused: same-shape images in [0, 255], at least 41×41.

    Returns:
      The sum of the two VIFs, usually in [0, 2] (above 1 per source means
      contrast enhancement).
    """
    a, b, f = prepare(ir, vis, fused, metric="VIF", min_size=VIF_MIN_SIZE,
                      why="17x17 window and four scales")
    return _vifp(a, f) + _vifp(b, f)


