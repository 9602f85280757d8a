"""The ``cddfuse`` convention: CDDFuse's Python evaluator, quirks included.

Most recent infrared/visible fusion papers report numbers from
``utils/Evaluator.py`` of Zhaozixiang1228/MMIF-CDDFuse (read at commit
``40de0585034a57b33d3e293b6807b29f247921b6``, with ``test_IVF.py`` and
``utils/img_read_save.py`` of the same commit), called as its ``test_IVF.py``
calls it: every image read by ``image_read_cv2(path, 'GRAY')``, then
``Evaluator.EN(fi)``, ``SD``, ``SF``, ``MI(fi, ir, vi)``, ``SCD``, ``VIFF``,
``Qabf``, ``SSIM`` (the eight columns it prints, in that order), under the
versions its repository pins (NumPy 1.21, SciPy 1.7, scikit-image 0.19.2,
scikit-learn 1.1, OpenCV 4.5). ``AG``, ``CC``, ``PSNR`` and ``MSE`` are the
class's other methods. This module recomputes all twelve with NumPy alone
(no OpenCV, scikit-learn or scikit-image at run time), operation for
operation where the rounding matters.

Quirks reproduced (each function's docstring has the details):

* **Reading.** ``cv2.imread(path).astype('float32')`` (always three
  channels, BGR), then ``cv2.cvtColor(..., COLOR_BGR2GRAY)`` on *float32*
  data (OpenCV's float weights 0.299/0.587/0.114, not its fixed-point uint8
  path), then ``np.round`` (half to even). Grey files come back unchanged;
  see :func:`rgb_to_gray_cv2` for colour.
* **float32 arithmetic.** The images are float32, so NumPy keeps SD, SF, AG,
  SCD, CC, MSE, PSNR, Qabf and the SSIM maps in float32 (with float32
  accumulation in the sums and means); EN, MI, VIF and the SSIM mean are
  float64. The float32 rounding is reproduced; NumPy's float32 reductions
  changed summation order after 1.21, which moves those metrics by up to
  1e-6 relative against the pinned versions.
* **SSIM** is ``ssim(F, IR) + ssim(F, VIS)`` (a *sum*, in [-2, 2]) of
  scikit-image 0.19.2's ``structural_similarity`` with no ``data_range``: on
  float32 input the range is taken from the dtype as 2 (for values that are
  really 0-255), so ``C1 = 0.0004`` and ``C2 = 0.0036`` are nearly 0; 7x7
  uniform window, sample covariance (×49/48), reflected borders, a 3-pixel
  border cropped from the mean. In float32, the windowed variances of flat
  areas are mostly rounding, which is part of the value (float64 arithmetic
  would move TNO-21 values by up to 3e-4).
* **MI** is scikit-learn's ``mutual_info_score(F, IR) + ...(F, VIS)``, in
  **nats**, with each grey value a label.
* **VIF** is the sum of two ``vifp`` (one per source, 1 for a perfect
  copy), four scales, sigma_n² = 2; a 0/0 term counts 1.
* **Qabf** runs on 0-255 values with ``G = gF`` (not 1) where ``gX == gF``
  and orientation ``atan(Sy/Sx)`` (π/2 where ``Sx == 0``); the Sobel
  filter pads with zeros, so image borders count as edges.
* **EN** rounds with ``np.round`` (half to even) before its histogram.
* **AG** uses ``np.gradient``-style central differences (one-sided at the
  border) and ``sqrt((Gx² + Gy²)/2)``.
* **PSNR** is ``10·log10(max(F)² / MSE)``: the peak is the fused image's
  maximum, not 255, and ``MSE = (MSE(F, IR) + MSE(F, VIS))/2`` on 0-255
  values.
* **SCD, CC** are Pearson correlations over all pixels (SCD of the
  differences ``F - VIS`` with IR and ``F - IR`` with VIS).

Where CDDFuse's formula gives NaN or an infinity, this module returns a
finite value instead, documented per function: a correlation with a
constant image counts 0, a Qabf without source edges is 0, a zero MSE gives
PSNR = 100 dB (as :data:`jaxfuse.metrics.PSNR_MAX_DB`), a zero peak -100 dB.
Inputs are validated first (``ValueError`` naming the metric): 2-D grey
arrays (an RGB ``(H, W, 3)`` array is first converted with
:func:`rgb_to_gray_cv2`), values in [0, 255], equal shapes, and the minimum
size of each metric.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from jaxfuse.io import load_image
from jaxfuse.metrics._common import check_size, to_gray64
from jaxfuse.metrics.conventions import Convention
from jaxfuse.metrics.statistical import PSNR_MAX_DB
from jaxfuse.metrics.structural import VIF_MIN_SIZE, vif as _vif_sum

REFERENCE_COMMIT = "40de0585034a57b33d3e293b6807b29f247921b6"
"""The MMIF-CDDFuse commit whose ``utils/Evaluator.py`` this module follows."""

SSIM_WIN = 7
"""scikit-image 0.19.2's default (uniform) SSIM window."""

_F32 = np.float32
# OpenCV's float BGR->GRAY weights (R2YF, G2YF, B2YF in its color.hpp), as float32.
_CV_R, _CV_G, _CV_B = _F32(0.299), _F32(0.587), _F32(0.114)


# ---------------------------------------------------------------------------
# Reading

def rgb_to_gray_cv2(image: ArrayLike) -> np.ndarray:
    """CDDFuse's grey conversion: OpenCV's float32 ``BGR2GRAY``, then ``np.round``.

    ``image_read_cv2(path, 'GRAY')`` converts the decoded 8-bit BGR image to
    float32 *before* ``cv2.cvtColor``, so OpenCV's float formula applies,
    ``0.114·B + 0.587·G + 0.299·R`` with float32 weights and float32
    products and sums, summed blue, green, red (the order of OpenCV's
    generic C++ loop), and the result is rounded half to even. A grey image
    (OpenCV reads it as three equal channels) comes back unchanged.

    On colour images this equals ``round((299·R + 587·G + 114·B) / 1000)``
    except where that value is exactly ``k + 0.5`` (about 0.1% of the pixels
    of a random colour image): there the float32 rounding decides between
    ``k`` and ``k + 1``, and OpenCV's own builds disagree among themselves
    (Intel IPP, SIMD width and FMA contraction each round such ties their
    way; opencv-python-headless 5.0 on x86-64 differs from this function on
    about 2% of the ties, 2e-5 of all pixels). OpenCV's integer path for
    uint8 input (``cv2.cvtColor(cv2.imread(path), COLOR_BGR2GRAY)``, 14-bit
    fixed-point weights), used by some other evaluators, differs on about
    0.1% of colour pixels by one level; CDDFuse does not use it.

    Args:
      image: ``(H, W, 3)`` RGB (the channel order :func:`jaxfuse.io.load_image`
        returns) or ``(H, W)`` grey, values on the 0–255 scale.

    Returns:
      float32 ``(H, W)`` with integer values in [0, 255].
    """
    a = np.asarray(image)
    if a.ndim == 2:
        r = g = b = a.astype(_F32)
    elif a.ndim == 3 and a.shape[-1] in (3, 4):
        r, g, b = (a[..., i].astype(_F32) for i in range(3))  # alpha is dropped, as cv2.imread does
    elif a.ndim == 3 and a.shape[-1] == 1:
        r = g = b = a[..., 0].astype(_F32)
    else:
        raise ValueError(f"rgb_to_gray_cv2: expected an (H, W) or (H, W, 3) image, got shape {a.shape}")
    # float32 throughout: each product and each sum rounds to float32 as OpenCV's loop does.
    gray = (b * _CV_B + g * _CV_G) + r * _CV_R
    return np.round(gray)


def load(path) -> np.ndarray:
    """Reads an image as CDDFuse's ``image_read_cv2(path, 'GRAY')`` does.

    The file is decoded by Pillow (:func:`jaxfuse.io.load_image`; for 8-bit
    PNG, BMP and TIFF files the same pixels as ``cv2.imread``), then
    converted by :func:`rgb_to_gray_cv2`. Two decoding differences from
    OpenCV remain: 16-bit files are scaled by 1/257 here and by 1/256 in
    OpenCV (one grey level apart at most), and JPEG decoders may differ by
    a level on some pixels; and ``cv2.imread`` applies a JPEG's EXIF
    orientation, which Pillow's decoding here does not.

    Args:
      path: the image file.

    Returns:
      float32 ``(H, W)`` with integer values in [0, 255], the array every
      metric of this convention takes.

    Raises:
      JaxfuseError: missing or unreadable files.
    """
    return rgb_to_gray_cv2(load_image(path))


# ---------------------------------------------------------------------------
# Validation

def _image(x, metric: str, name: str) -> np.ndarray:
    """One input as CDDFuse's float32 ``(H, W)`` array, validated."""
    if x is None:
        raise ValueError(f"{metric}: {name} image is required")
    try:
        a = np.asarray(x)
    except Exception as e:  # e.g. ragged lists
        raise ValueError(f"{metric}: {name} is not an array ({e})") from None
    if a.ndim == 3 and a.shape[-1] == 3:
        # Validate the colour values themselves (as N x 3), then convert as CDDFuse reads colour.
        to_gray64(a.reshape(-1, 3), metric=metric, name=name)
        return rgb_to_gray_cv2(a)
    return to_gray64(a, metric=metric, name=name).astype(_F32)


def _prepare(ir, vis, fused, *, metric: str, min_size: int = 1, why: str = "window",
             need_sources: bool = True):
    """Validated float32 ``(ir, vis, fused)``; ``ir``/``vis`` may be None if not needed."""
    f = _image(fused, metric, "fused")
    out = []
    for name, x in (("ir", ir), ("vis", vis)):
        if x is None and not need_sources:
            out.append(None)
            continue
        a = _image(x, metric, name)
        if a.shape != f.shape:
            raise ValueError(f"{metric}: ir, vis and fused must have the same shape, "
                             f"got {name} {a.shape} and fused {f.shape}")
        out.append(a)
    check_size(f.shape, min_size, metric, why)
    return out[0], out[1], f


def _quiet():
    # 0/0 and x/0 are handled explicitly below; NumPy should not warn about them.
    return np.errstate(divide="ignore", invalid="ignore", over="ignore")


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
    h, w = x.shape
    p = np.pad(x.astype(np.float64), 1)

    def s(dr, dc):  # x[r + dr, c + dc], zero outside
        return p[1 + dr: 1 + dr + h, 1 + dc: 1 + dc + w]

    sx = ((s(-1, -1) + 2 * s(0, -1) + s(1, -1)) - (s(-1, 1) + 2 * s(0, 1) + s(1, 1))).astype(_F32)
    sy = ((s(1, -1) + 2 * s(1, 0) + s(1, 1)) - (s(-1, -1) + 2 * s(-1, 0) + s(-1, 1))).astype(_F32)
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


# ---------------------------------------------------------------------------
# The convention

DEFAULTS = ("EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM")
"""The eight columns ``test_IVF.py`` prints, in its order."""

FUNCTIONS = {
    "EN": en,
    "SD": sd,
    "SF": sf,
    "MI": mi,
    "SCD": scd,
    "VIF": vif,
    "Qabf": qabf,
    "SSIM": ssim,
    "AG": ag,
    "CC": cc,
    "PSNR": psnr,
    "MSE": mse,
}

ALIASES = {"VIFF": "VIF"}

LOWER_IS_BETTER = frozenset({"MSE"})

CONVENTION = Convention(
    name="cddfuse",
    summary="CDDFuse's utils/Evaluator.py as its test_IVF.py calls it (MI in nats, SSIM a sum)",
    functions=FUNCTIONS,
    defaults=DEFAULTS,
    load=load,
    aliases=ALIASES,
    lower_is_better=LOWER_IS_BETTER,
    note="SSIM is the sum of two SSIMs (data range 2 on 0-255 values); MI in nats; "
         "PSNR peak is max(F)",
)
