"""The ``vifb`` convention: VIFB's 13 metrics, exactly as its MATLAB code computes them.

VIFB (X. Zhang, P. Ye, G. Xiao, "VIFB: A Visible and Infrared Image Fusion
Benchmark", CVPR Workshops 2020; repository ``xingchenzhang/VIFB``) scores a
fused image with ``compute_metrics.m``, which reads the visible, infrared and
fused JPEGs with ``imread`` and calls ``metrics<Name>(imgVI, imgIR, fused)``
from its ``metrics/`` folder. Files read and reproduced here:
``compute_metrics.m``, ``metrics/metricsAvg_gradient.m``,
``metricsCross_entropy.m``, ``metricsEdge_intensity.m``, ``metricsEntropy.m``,
``metricsMutinf.m``, ``metricsPsnr.m``, ``metricsQabf.m``, ``metricsQcb.m``,
``metricsQcv.m``, ``metricsRmse.m``, ``metricsSpatial_frequency.m``,
``metricsSsim.m`` and ``metricsVariance.m`` (each file holds its own helpers:
``normalize1``, ``gaussian2d``, ``contrast``, ``mutinf``, ``mse``, ...).

Our functions take jaxfuse's order ``(ir, vis, fused)`` and call VIFB's
``(vis, ir, fused)`` internally. Images are kept as read: ``(H, W)`` grey or
``(H, W, 3)`` colour, 0–255 grey levels. :func:`load` reads files as
MATLAB's ``imread`` does (see there).

Colour handling (``b`` = channels of the fused image, ``b1`` = channels of the
infrared image, as each ``metrics*.m`` tests them):

* ``b == 1``: the metric runs once on the whole images; a colour source is
  turned grey inside the metric where the file does so (``rgb2gray``), on
  ``uint8`` data (rounded) or ``double`` data (not rounded) depending on what
  the file converted first. Qcb and Qcv have no such conversion and MATLAB
  errors on a colour source there; so do we (ValueError).
* ``b == 3, b1 == 1``: channel ``k`` of the visible and fused images against
  the whole grey infrared image; the three values are averaged.
* ``b == 3, b1 == 3``: channel ``k`` of all three, averaged.
* A grey visible image with a colour fused image is an error in VIFB (it
  indexes ``img1(:,:,k)``, k = 2, 3); we raise ValueError for every metric
  that has this channel loop (all but Avg_gradient, Edge_intensity and
  Spatial_frequency, which look at the fused image only).

VIFB's infrared JPEGs are three-channel files with equal channels;
``imread`` returns them ``(H, W, 3)`` and so does :func:`load` (unlike
:func:`jaxfuse.io.load_image`, which makes them ``(H, W)``). For the
infrared image this changes nothing (channel k of equal channels is the grey
image), but a fused or visible image with equal channels must stay
three-channel: with ``b == 1`` Qabf would score ``rgb2gray`` of the colour
visible image instead of its three channels, and Spatial_frequency would
not see the three channels side by side (below).

Quirks of VIFB's code, all kept:

* **Spatial_frequency** does ``[m, n] = size(fused)`` on an ``H×W×3`` array,
  so ``n = 3W``, and indexes ``fused(i, j)`` with ``j`` up to ``3W``: the
  frequency is that of the three channels placed side by side
  (``[R G B]``, ``H×3W``), the two seams included, divided by ``H·3W``.
  Its row and column sums are divided by ``m·n`` (not by the number of
  differences).
* **Avg_gradient** uses MATLAB's ``gradient`` (central differences inside,
  one-sided at the borders), sums ``sqrt((dx² + dy²)/2)`` over all ``H·W``
  pixels and divides by ``(H−1)(W−1)``.
* **Edge_intensity**: Sobel (``fspecial('sobel')`` and its transpose) with
  ``imfilter(..., 'replicate')`` per channel, mean gradient magnitude over
  all pixels and channels.
* **Entropy**: 256-bin histogram of ``floor(F)``, ``-Σ p log2 p``.
* **Cross_entropy**: ``(CE(VI, F) + CE(IR, F))/2`` with
  ``CE(X, F) = Σ pX log2(pX / pF)`` over the bins where **both**
  histograms are non-zero (bins where only ``pX`` is non-zero are skipped,
  so it is finite, unlike a true relative entropy).
* **Mutinf**: ``MI(VI, F) + MI(IR, F)`` in **nats** (natural log), each
  image first stretched to [0, 1] by its own min and max, then
  ``int16(x·255)`` (round half away) into 256 bins; a constant image goes
  into bin 1.
* **Psnr** and **Rmse** use ``mse(a, b) = sqrt(Σ (a − b)²) / (H·W)``: the
  Euclidean norm of the error divided by the pixel count, not a mean square
  error. ``Rmse = (mse(VI, F) + mse(IR, F))/2`` and
  ``Psnr = 20 log10(255 / sqrt((mse(VI, F) + mse(IR, F))/2))``; hence the
  typical values ``Rmse ≈ 0.1``, ``Psnr ≈ 58 dB``.
* **Qabf** (Xydeas–Petrović): the wrapper converts the fused image to
  ``double`` and then ``255*im2double(...)`` multiplies all three images by
  255 (``im2double`` leaves ``double`` data alone). Sobel by ``conv2``
  (zero padding), angle ``atan(Sy/Sx)`` (``π/2`` where ``Sx == 0``), and
  where ``gX == gF`` it sets ``G = gF`` (not 1): with the ×255 scale that
  is ≥ 255 and the strength sigmoid saturates at ``Tg``; where both are 0
  it is 0. Even ``fused == vis == ir`` scores
  ``Tg·Ta/(1 + exp(ka·(1 − Da))) ≈ 0.9753``, not 1.
* **Qcb** (Chen–Blum) and **Qcv** (Chen–Varshney): Z. Liu's
  ``metricChenBlum.m`` / ``metricChen.m`` as VIFB copied them; see
  :func:`qcb_gray` and :func:`qcv_gray`. Their frequency-domain filters are
  symmetric, so MATLAB's ``ifft2`` gives real images; we filter with real
  FFTs. Qcv's ``blkproc`` pads the last block row/column with zeros and its
  ``mean2`` divides those partial blocks by 256 as well.
* **Ssim**: ``ssim(VI, F) + ssim(IR, F)`` (a **sum**, ideal 2), Wang et
  al.'s SSIM with an 11×11 Gaussian (σ = 1.5), ``filter2(..., 'valid')``,
  ``C1 = (0.01·255)²``, ``C2 = (0.03·255)²``, mean of the map.
* **Variance** is the population **standard deviation** (``sqrt`` of the
  mean squared deviation), not a variance.
* ``rgb2gray`` (``b == 1`` with a colour source): weights 0.298936021293775,
  0.587043074451121, 0.114020904255103; rounded to integers when the file
  passes it ``uint8`` data (Cross_entropy, Mutinf, Ssim), not rounded when
  it passes ``double`` data (Psnr, Rmse, Qabf). Two caveats on that
  ``double`` path, which VIFB's own runs never take (all its fused images
  are colour): ``rgb2gray.m`` of MATLAB releases up to about R2013 clamps
  ``double`` results to [0, 1], which would turn these 0–255 sources almost
  white; we follow the documented weighted sum of current releases. And the
  weights sum to ``1 − 1e−15``, so the grey of an equal-channel image is not
  exactly integral; Qabf's exact tests ``Sx == 0`` then depend on the last
  bit of the conversion (Octave's rounded weights, which sum to exactly 1,
  give Qabf values about 1e−3 apart on such images).

Where VIFB's formulas give NaN or Inf, we return finite values instead
(identical inputs keep the ideal value where one exists):

* Psnr with ``fused == vis == ir`` (error 0): VIFB gives ``Inf``; we give
  ``20 log10(255 · sqrt(2·H·W))``, the value for a one-grey-level error at
  one pixel of one source, which no other integer image can exceed.
* Qabf when the sources have no gradient at all (``0/0``): 0.
* Qcb and Qcv on a constant image: ``normalize1`` divides by ``max − min =
  0`` (NaN, unless the image is all 0); we map a constant image to zeros.
  Qcb's local contrast ``buff/buff1 − 1`` where the wider Gaussian blur
  ``buff1`` is exactly 0: we take contrast 0. Its preservation ratio
  ``min/max`` of two zero contrasts: 1 (equal contrast), and the saliency
  weights of two zero source contrasts: 1/2 each. So identical inputs give
  the ideal Qcb = 1, constant ones included.
* Qcv when both sources have no gradient (``Σ λ = 0``): equal weights, i.e.
  the mean of the block distortions; identical inputs keep the ideal 0.

Cross_entropy (ideal 0), Entropy, Mutinf, Ssim (ideal 2), Variance, Rmse
(ideal 0), Avg_gradient, Edge_intensity and Spatial_frequency are finite for
constant images as VIFB writes them.

Non-integer inputs (e.g. a float fused image from a model) are rounded to
grey levels first (half away from zero, as MATLAB's ``uint8``): VIFB only
ever scores 8-bit files, and its histograms need integer levels.

Numerics: float64 throughout, except where float32 is exact or far below
the printed digits: Sobel and gradient sums of grey levels (integers and
halves below 2^24, exact), and Qabf's two sigmoids (relative error ~1e-8;
its exact tests ``Sx == 0`` and ``gX == gF`` stay in float64, on exact
integer sums). Dot products avoid BLAS (its threads cost more than they
save on a busy machine). Filters: Qcb's and Qcv's CSFs as real FFTs,
Qcb's 31×31 Gaussians as zero-padded FFT convolution (1e-10 relative to
``filter2``), SSIM's window as two 1-D passes. Against GNU Octave running
VIFB's ``.m`` files all values agree to 3e-8 relative.

Speed: source-only work (histograms, filtered sources, source gradients)
does not depend on the fused image; :class:`VifbPair` keeps it for one
infrared/visible pair and scores any number of fused images
(:func:`score_many`).
"""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Iterable

import numpy as np
import scipy.fft as sfft
from numpy.typing import ArrayLike
from PIL import Image

from jaxfuse.errors import JaxfuseError
from jaxfuse.io import _to_array, load_image
from jaxfuse.metrics._common import check_size, correlate_valid, matlab_gaussian
from jaxfuse.metrics.conventions import Convention

DEFAULTS = ("Avg_gradient", "Cross_entropy", "Edge_intensity", "Entropy", "Mutinf", "Psnr", "Qabf",
            "Qcb", "Qcv", "Rmse", "Spatial_frequency", "Ssim", "Variance")
"""VIFB's 13 metrics, in the order of its ``metrics/`` folder."""

LOWER_IS_BETTER = frozenset({"Cross_entropy", "Qcv", "Rmse"})
"""VIFB's paper marks these three as better when smaller."""

MIN_SIZE = {"Avg_gradient": (2, "pixel differences"), "Spatial_frequency": (2, "pixel differences"),
            "Edge_intensity": (3, "3x3 Sobel window"), "Qabf": (3, "3x3 Sobel window"),
            "Qcv": (3, "3x3 Sobel window"), "Ssim": (11, "11x11 Gaussian window")}
"""Smallest image side per metric (others: 1), with the reason."""

# MATLAB's rgb2gray: the first row of inv([1 .956 .621; 1 -.272 -.647; 1 -1.106 1.703]).
_RGB2GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)

# Metrics whose file loops over the fused image's channels with img1(:,:,k).
_FUSED_ONLY = frozenset({"Avg_gradient", "Edge_intensity", "Spatial_frequency"})


# --------------------------------------------------------------------------- input handling

def load(path) -> np.ndarray:
    """Reads an image file as MATLAB's ``imread`` gives it to VIFB.

    One-channel files give ``(H, W)``, three-channel files ``(H, W, 3)``,
    **also when the three channels are equal** (VIFB's infrared JPEGs), as
    ``uint8``. JPEGs are decoded by Pillow (libjpeg-turbo, accurate integer
    IDCT, fancy upsampling), which reproduces VIFB's values. Alpha is dropped
    (``imread`` returns it separately); other modes (palette, CMYK, 16-bit,
    float) are converted as :func:`jaxfuse.io.load_image` converts them and
    rounded to grey levels.

    Raises:
      JaxfuseError: missing, unreadable or unsupported files.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                img.load()
                if img.mode in ("L", "RGB"):
                    return np.array(img, dtype=np.uint8)
                if img.mode == "RGBA":
                    return np.array(img.convert("RGB"), dtype=np.uint8)
                a = _to_array(img, path)
    except Exception:  # noqa: BLE001 - let load_image word the problem
        load_image(path)  # raises JaxfuseError for anything Pillow cannot read
        raise JaxfuseError(path, "unreadable image") from None
    return np.clip(np.floor(a.astype(np.float64) + 0.5), 0, 255).astype(np.uint8)


def _image(x, metric: str, name: str) -> np.ndarray:
    """``x`` as float64 grey levels, ``(H, W)`` or ``(H, W, 3)``, or ValueError."""
    try:
        a = np.asarray(x)
    except Exception as e:  # e.g. ragged lists
        raise ValueError(f"{metric}: {name} is not an array ({e})") from None
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{metric}: {name} must be a numeric image (uint8 or 0-255 values), "
                         f"got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] == 3)):
        raise ValueError(f"{metric}: {name} must be (H, W) grey or (H, W, 3) colour, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{metric}: {name} is empty (shape {a.shape})")
    if a.dtype == np.uint8:
        return a.astype(np.float64)
    a = a.astype(np.float64)
    lo, hi = float(a.min()), float(a.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{metric}: {name} contains NaN or Inf")
    if lo < 0.0 or hi > 255.0:
        raise ValueError(f"{metric}: {name} has values in [{lo:g}, {hi:g}]; expected the 0-255 scale "
                         "(multiply [0, 1] images by 255)")
    return _round_half_up(a)


def _round_half_up(x: np.ndarray) -> np.ndarray:
    """MATLAB's ``round`` for non-negative values (exact at every .5 tie)."""
    r = np.floor(x)
    return r + (x - r >= 0.5)


def _check_shapes(metric: str, vis: "_Img", ir: "_Img", fused: "_Img") -> None:
    for name, a in (("vis", vis), ("ir", ir)):
        if a.shape[:2] != fused.shape[:2]:
            raise ValueError(f"{metric}: ir, vis and fused must have the same height and width, "
                             f"got {name} {a.shape} and fused {fused.shape}")
    size, why = MIN_SIZE.get(metric, (1, ""))
    check_size(fused.shape, size, metric, why)


def _units(metric: str, vis: "_Img", ir: "_Img", fused: "_Img"):
    """VIFB's channel loop: ``[(vis key, ir key, fused key), ...]``, key None = whole image."""
    if fused.ndim == 2:
        return [(None, None, None)]
    if vis.ndim == 2:
        raise ValueError(f"{metric}: VIFB's metrics{metric}.m takes channel k of the visible image for "
                         "each channel of a colour fused image; a grey visible image with a colour "
                         "fused image is an error there")
    if ir.ndim == 2:
        return [(k, None, k) for k in range(3)]
    return [(k, k, k) for k in range(3)]


def _rgb2gray(x: np.ndarray, rounded: bool) -> np.ndarray:
    """MATLAB ``rgb2gray``: rounded for ``uint8`` input, unrounded for ``double``."""
    g = _RGB2GRAY[0] * x[..., 0] + _RGB2GRAY[1] * x[..., 1] + _RGB2GRAY[2] * x[..., 2]
    return np.clip(_round_half_up(g), 0, 255) if rounded else g


# --------------------------------------------------------------------------- shared kernels

def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Inner product of two 1-D float64 arrays.

    ``einsum`` rather than BLAS: OpenBLAS threads spin up for long vectors and
    cost more than the product itself on a busy machine.
    """
    return float(np.einsum("i,i->", a, b))


def _hist(levels: np.ndarray) -> np.ndarray:
    """256-bin counts of integer grey levels, as float64."""
    return np.bincount(levels.ravel(), minlength=256).astype(np.float64)


def _normalize1(x: np.ndarray, levels: bool = False) -> np.ndarray:
    """Liu's ``normalize1`` (also ``mutinf``'s stretch): ``round((x − min)/(max − min)·255)``.

    A constant image becomes zeros (``normalize1``: NaN unless all 0;
    ``mutinf``: zeros). With ``levels`` (``x`` holds integer grey levels)
    and ``min = 0, max = 255`` the stretch is the identity (checked for all
    256 levels), so the arithmetic is skipped.
    """
    hi, lo = float(x.max()), float(x.min())
    if hi == lo:
        return np.zeros_like(x)
    if levels and lo == 0.0 and hi == 255.0:
        return x
    return _round_half_up((x - lo) / (hi - lo) * 255.0)


def _norm_levels(x: np.ndarray) -> np.ndarray:
    return _normalize1(x, levels=True)


def _freqspace(h: int, w: int):
    """``[u, v] = freqspace([h, w], 'meshgrid')``: column and row frequency grids."""
    f1 = (np.arange(w, dtype=np.float64) - math.floor(w / 2)) * (2.0 / w)
    f2 = (np.arange(h, dtype=np.float64) - math.floor(h / 2)) * (2.0 / h)
    return f1[None, :], f2[:, None]


def _half_spectrum(full_centred: np.ndarray) -> np.ndarray:
    """A centred (``fftshift``-ed) symmetric filter in ``rfft2`` layout.

    ``ifft2(ifftshift(fftshift(fft2(x)) .* S))`` equals
    ``irfft2(rfft2(x) * ifftshift(S)[:, :w//2+1])`` because ``S`` depends on
    ``|u|, |v|`` only, so the product stays conjugate-symmetric and MATLAB's
    result is real.
    """
    w = full_centred.shape[1]
    return np.ascontiguousarray(np.fft.ifftshift(full_centred)[:, : w // 2 + 1])


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


_SSIM_WINDOW = matlab_gaussian(11, 1.5)
_SSIM_WINDOW = _SSIM_WINDOW / np.sum(_SSIM_WINDOW)
_SSIM_C1 = (0.01 * 255) ** 2
_SSIM_C2 = (0.03 * 255) ** 2


def _filter_valid(x: np.ndarray) -> np.ndarray:
    """``filter2(w, x, 'valid')`` with the 11×11 SSIM window (separable passes)."""
    return correlate_valid(x, _SSIM_WINDOW)


def _block_sum(x: np.ndarray, n: int) -> np.ndarray:
    """``blkproc(x, [n n], @(b) sum(b(:)))`` with blkproc's zero padding."""
    h, w = x.shape
    ph, pw = -(-h // n) * n, -(-w // n) * n
    if (ph, pw) != (h, w):
        x = np.pad(x, ((0, ph - h), (0, pw - w)))
    return x.reshape(ph // n, n, pw // n, n).sum(axis=(1, 3))


def _sobel_conv2(p: np.ndarray):
    """``conv2(p, [-1 0 1; -2 0 2; -1 0 1], 'same')`` and ``conv2(p, [1 2 1; 0 0 0; -1 -2 -1], 'same')``.

    True convolution, zero padding: ``Sx = left − right`` and
    ``Sy = bottom − top`` column/row sums weighted 1, 2, 1. On VIFB's data
    (255 × integers) every sum is exact, so the order of additions is free.
    """
    q = np.pad(p, 1)
    h, w = p.shape
    col = q[:-2, :] + 2.0 * q[1:-1, :]
    col += q[2:, :]  # vertical 1-2-1, width w+2
    row = q[:, :-2] + 2.0 * q[:, 1:-1]
    row += q[:, 2:]  # horizontal 1-2-1, height h+2
    sx = col[:, :w] - col[:, 2:]
    sy = row[2:, :] - row[:h, :]
    return sx, sy


def _sobel_filter2(p: np.ndarray):
    """``filter2([-1 0 1; -2 0 2; -1 0 1], p, 'same')`` and its transpose: correlation, zero padding."""
    sx, sy = _sobel_conv2(p)
    return -sx, sy


def _qabf_edges(p: np.ndarray):
    """Sobel magnitude (float64, exact ties) and ``atan(Sy/Sx)`` (``π/2`` where ``Sx == 0``, float32)."""
    sx, sy = _sobel_conv2(p)
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
    gx, gy = _sobel_filter2(n)
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


# --------------------------------------------------------------------------- images and caches

class _Img:
    """One image: the whole array (for ``b == 1`` paths) and contiguous channel planes."""

    __slots__ = ("full", "planes", "_u8", "_f32")

    def __init__(self, a: np.ndarray):
        self.full = a
        self.planes = [a] if a.ndim == 2 else [np.ascontiguousarray(a[..., k]) for k in range(3)]
        self._u8 = None
        self._f32 = None

    @property
    def ndim(self) -> int:
        return self.full.ndim

    @property
    def shape(self):
        return self.full.shape

    def part(self, key):
        return self.full if key is None else self.planes[key]

    def u8(self):
        """Planes as uint8 (bincount input)."""
        if self._u8 is None:
            self._u8 = [p.astype(np.uint8) for p in self.planes]
        return self._u8

    def f32(self):
        """Planes as float32: exact for grey levels and their small integer combinations."""
        if self._f32 is None:
            self._f32 = [p.astype(np.float32) for p in self.planes]
        return self._f32


class VifbPair:
    """One infrared/visible pair, with VIFB's source-only work kept for many fused images.

    ``VifbPair(ir, vis).score(fused)`` gives what every function of
    :data:`CONVENTION` gives on ``(ir, vis, fused)``; scoring several fused
    images of the same pair reuses the sources' histograms, filtered images
    and gradients.

    Args:
      ir, vis: ``(H, W)`` or ``(H, W, 3)`` images of the same height and
        width, 0–255 grey levels (as :func:`load` returns them).
      metric: name used in error messages.
    """

    def __init__(self, ir: ArrayLike, vis: ArrayLike, *, metric: str = "vifb"):
        self.ir = _Img(_image(ir, metric, "ir"))
        self.vis = _Img(_image(vis, metric, "vis"))
        if self.ir.shape[:2] != self.vis.shape[:2]:
            raise ValueError(f"{metric}: ir, vis and fused must have the same height and width, "
                             f"got ir {self.ir.shape} and vis {self.vis.shape}")
        self._memo: dict = {}

    def _src(self, which: str, key) -> np.ndarray:
        return (self.vis if which == "vis" else self.ir).part(key)

    def _get(self, tag, which, key, fn):
        """Memoised ``fn(source part)`` for source ``which`` ("vis"/"ir"), channel ``key``."""
        k = (tag, which, key)
        if k not in self._memo:
            self._memo[k] = fn(self._src(which, key))
        return self._memo[k]

    def _get2(self, tag, unit, fn):
        """Memoised ``fn()`` depending on both sources' channels of ``unit``."""
        k = (tag, unit[0], unit[1])
        if k not in self._memo:
            self._memo[k] = fn()
        return self._memo[k]

    def score(self, fused: ArrayLike, metrics: Iterable[str] | None = None) -> dict[str, float]:
        """``{name: value}`` for ``metrics`` (VIFB names; default: all 13 in VIFB's order)."""
        names = list(DEFAULTS if metrics is None else metrics)
        for n in names:
            if n not in _METRICS:
                raise ValueError(f"unknown metric {n!r} for convention 'vifb' (known: {', '.join(DEFAULTS)})")
        ctx = _Fused(_image(fused, names[0] if len(names) == 1 else "vifb", "fused"))
        return {n: self._one(n, ctx) for n in names}

    def _one(self, name: str, ctx: "_Fused") -> float:
        _check_shapes(name, self.vis, self.ir, ctx.img)
        if name in _FUSED_ONLY:
            return float(_METRICS[name](self, ctx, None))
        units = _units(name, self.vis, self.ir, ctx.img)
        vals = [_METRICS[name](self, ctx, u) for u in units]
        return float(vals[0]) if len(vals) == 1 else float(sum(vals) / len(vals))


class _Fused:
    """One fused image and its memoised per-channel quantities."""

    def __init__(self, f: np.ndarray):
        self.img = _Img(f)
        self._memo: dict = {}

    def part(self, key) -> np.ndarray:
        return self.img.part(key)

    def get(self, tag, key, fn):
        k = (tag, key)
        if k not in self._memo:
            self._memo[k] = fn(self.part(key))
        return self._memo[k]


# --------------------------------------------------------------------------- the 13 metrics
# Each takes (pair, fused context, unit) where unit = (vis key, ir key, fused key) of one
# pass of VIFB's channel loop (key None: the whole image); the loop and the mean over
# channels are in VifbPair._one. The fused image's key is None only when it is grey.

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
        q = np.pad(x, 1, mode="edge")
        h, w = x.shape
        # imfilter(F, [1 2 1; 0 0 0; -1 -2 -1], 'replicate') is correlation:
        # top row minus bottom row; the transpose gives left minus right.
        # Integer sums below 2^24: exact in float32.
        row = q[:, :-2] + 2.0 * q[:, 1:-1]
        row += q[:, 2:]
        gx = row[:h] - row[2:]
        col = q[:-2] + 2.0 * q[1:-1]
        col += q[2:]
        gy = col[:, :w] - col[:, 2:]
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


def _gray_u8(x):
    return _rgb2gray(x, rounded=True) if x.ndim == 3 else x


def _gray_double(x):
    return _rgb2gray(x, rounded=False) if x.ndim == 3 else x


def _fused_hist(F: _Fused, key) -> np.ndarray:
    def fn(_x):
        return _hist(F.img.u8()[0 if key is None else key])
    return F.get("hist", key, fn)


def _src_hist(P: VifbPair, which, key) -> np.ndarray:
    def fn(x):
        g = _gray_u8(x)
        return _hist(g.astype(np.uint8))
    return P._get("hist_gray_u8", which, key, fn)


def _m_entropy(P: VifbPair, F: _Fused, unit) -> float:
    h = _fused_hist(F, unit[2])
    p = h[h != 0] / np.sum(h)
    return float(-np.sum(p * np.log2(p)))


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


def _entropy_nats(counts: np.ndarray) -> float:
    p = counts[counts != 0] / np.sum(counts)
    return float(np.sum(-p * np.log(p)))


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


def _two_d_sources(name: str, P: VifbPair, unit) -> None:
    kv, ki, _ = unit
    for which, key in (("vis", kv), ("ir", ki)):
        if P._src(which, key).ndim != 2:
            raise ValueError(f"{name}: VIFB's metrics{name}.m has no colour conversion; a colour {which} "
                             "image with a grey fused image is an error there")


_QCB_DEFAULTS = dict(f0=15.3870, f1=1.3456, a=0.7622, scale=30.0, sigma1=2.0, sigma2=4.0)
_QCV_DEFAULTS = dict(window=16, alpha=5.0, scale=8.0)


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


# --------------------------------------------------------------------------- public functions

def _score_one(name: str, ir, vis, fused) -> float:
    pair = VifbPair(ir, vis, metric=name)
    return pair._one(name, _Fused(_image(fused, name, "fused")))


def avg_gradient(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsAvg_gradient``: mean over channels of ``Σ sqrt((dx² + dy²)/2) / ((H−1)(W−1))``.

    ``dx, dy`` from MATLAB's ``gradient`` (central differences, one-sided at
    the borders); the sum runs over all ``H·W`` pixels. Only ``fused`` is
    used; the sources are checked for size. 0 for a constant image.
    Reference: G. Cui et al., Opt. Commun. 341, 2015.
    """
    return _score_one("Avg_gradient", ir, vis, fused)


def cross_entropy(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsCross_entropy``: ``(CE(VI, F) + CE(IR, F))/2`` per channel, averaged.

    ``CE(X, F) = Σ pX log2(pX/pF)`` over the grey levels where both
    histograms are non-zero (bits). Lower is better; 0 for identical inputs.
    Reference: D. M. Bulanon et al., Biosyst. Eng. 103(1), 2009.
    """
    return _score_one("Cross_entropy", ir, vis, fused)


def edge_intensity(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsEdge_intensity``: mean Sobel magnitude of ``fused`` (replicated borders).

    Over all pixels and channels; only ``fused`` is used. 0 for a constant
    image. Reference: B. Rajalingam, R. Priya, IJESI, 2018.
    """
    return _score_one("Edge_intensity", ir, vis, fused)


def entropy(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsEntropy``: Shannon entropy (bits) of each fused channel, averaged.

    256-bin histogram. VIFB's channel loop still indexes the visible image,
    so a grey ``vis`` with a colour ``fused`` is refused as in VIFB.
    0 for a constant image. Reference: J. W. Roberts et al., J. Appl.
    Remote Sens. 2, 2008.
    """
    return _score_one("Entropy", ir, vis, fused)


def mutinf(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsMutinf``: ``MI(VI, F) + MI(IR, F)`` in nats, per channel, averaged.

    Each image is stretched by its own min/max to 256 bins first.
    Reference: G. Qu, D. Zhang, P. Yan, Electron. Lett. 38(7), 2002.
    """
    return _score_one("Mutinf", ir, vis, fused)


def psnr(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsPsnr``: ``20 log10(255/sqrt((e(VI, F) + e(IR, F))/2))``, ``e = ‖a − f‖₂/(H·W)``.

    Per channel, averaged. Identical inputs: ``20 log10(255·sqrt(2HW))``
    instead of VIFB's Inf (see the module notes). Reference: P. Jagalingam,
    A. V. Hegde, Aquatic Procedia 4, 2015.
    """
    return _score_one("Psnr", ir, vis, fused)


def qabf(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsQabf``: Xydeas–Petrović edge preservation, per channel, averaged.

    On 255 × the grey levels, with ``G = gF`` where ``gX == gF`` (module
    notes). 0 when the sources have no gradient. Identical inputs give
    ``≈ 0.9753``, the most this formula reaches. Reference: C. S. Xydeas,
    V. Petrović, Electron. Lett. 36(4), 2000.
    """
    return _score_one("Qabf", ir, vis, fused)


def qcb(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsQcb``: :func:`qcb_gray` per channel, averaged (ideal 1)."""
    return _score_one("Qcb", ir, vis, fused)


def qcv(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsQcv``: :func:`qcv_gray` per channel, averaged (lower is better, ideal 0)."""
    return _score_one("Qcv", ir, vis, fused)


def rmse(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsRmse``: ``(e(VI, F) + e(IR, F))/2`` with ``e = ‖a − f‖₂/(H·W)``, per channel, averaged.

    Not a root mean square error (see the module notes). Lower is better;
    0 for identical inputs. Reference: P. Jagalingam, A. V. Hegde, Aquatic
    Procedia 4, 2015.
    """
    return _score_one("Rmse", ir, vis, fused)


def spatial_frequency(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsSpatial_frequency``: ``sqrt(RF + CF)``, sums of squared differences / (m·n).

    A colour image is taken as its three channels side by side (``H×3W``,
    module notes). Only ``fused`` is used; 0 for a constant grey image.
    Reference: A. M. Eskicioglu, P. S. Fisher, IEEE Trans. Commun. 43(12), 1995.
    """
    return _score_one("Spatial_frequency", ir, vis, fused)


def ssim(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsSsim``: ``SSIM(VI, F) + SSIM(IR, F)`` per channel, averaged (ideal 2).

    11×11 Gaussian window (σ = 1.5), valid region only, at least 11×11
    pixels. Reference: Z. Wang et al., IEEE Trans. Image Process. 13(4), 2004.
    """
    return _score_one("Ssim", ir, vis, fused)


def variance(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsVariance``: population standard deviation of each fused channel, averaged.

    Despite the name, a standard deviation (0–255 scale). 0 for a constant
    image. Reference: Y.-J. Rao, Meas. Sci. Technol. 8(4), 1997.
    """
    return _score_one("Variance", ir, vis, fused)


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


def score_many(ir: ArrayLike, vis: ArrayLike, fused_images: Iterable[ArrayLike],
               metrics: Iterable[str] | None = None, *, workers: int = 1) -> list[dict[str, float]]:
    """Scores several fused images of one pair, reusing the source-only work.

    Args:
      ir, vis: the pair, as for :class:`VifbPair`.
      fused_images: the fused images (arrays as :func:`load` returns them).
      metrics: VIFB names (default: all 13).
      workers: threads scoring fused images side by side (NumPy and the
        FFTs release the GIL); the first image is scored alone so that the
        source-only work is done once.

    Returns:
      One ``{name: value}`` per fused image, in order.
    """
    pair = VifbPair(ir, vis)
    names = None if metrics is None else list(metrics)
    images = list(fused_images)
    if workers <= 1 or len(images) < 3:
        return [pair.score(f, names) for f in images]
    first = pair.score(images[0], names)
    with ThreadPoolExecutor(max_workers=workers) as ex:
        rest = list(ex.map(lambda f: pair.score(f, names), images[1:]))
    return [first] + rest


FUNCTIONS = {
    "Avg_gradient": avg_gradient,
    "Cross_entropy": cross_entropy,
    "Edge_intensity": edge_intensity,
    "Entropy": entropy,
    "Mutinf": mutinf,
    "Psnr": psnr,
    "Qabf": qabf,
    "Qcb": qcb,
    "Qcv": qcv,
    "Rmse": rmse,
    "Spatial_frequency": spatial_frequency,
    "Ssim": ssim,
    "Variance": variance,
}

CONVENTION = Convention(
    name="vifb",
    summary="VIFB's 13 MATLAB metrics (compute_metrics.m), colour per channel, quirks included",
    functions=FUNCTIONS,
    defaults=DEFAULTS,
    load=load,
    aliases={"AG": "Avg_gradient", "CE": "Cross_entropy", "EI": "Edge_intensity", "EN": "Entropy",
             "MI": "Mutinf", "PSNR": "Psnr", "QABF": "Qabf", "QCB": "Qcb", "QCV": "Qcv", "RMSE": "Rmse",
             "SF": "Spatial_frequency", "SSIM": "Ssim", "SD": "Variance"},
    lower_is_better=LOWER_IS_BETTER,
    note="VIFB's MATLAB code: Ssim is a sum (ideal 2), Mutinf in nats, Variance is a std, Rmse/Psnr use ||e||/N",
    pair_scorer=VifbPair,
)
