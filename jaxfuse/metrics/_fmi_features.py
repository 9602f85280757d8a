"""The features of Haghighat's ``fmi.m`` for :func:`jaxfuse.metrics.information.fmi`.

Among them MATLAB's two edge detectors, ``edge(x)`` (Sobel) and
``edge(x, 'canny')``, ported for ``FMI_edge``.
"""

from __future__ import annotations

import math

import numpy as np
import pywt
import scipy.fft
from scipy import ndimage

from jaxfuse.metrics._sobel import sobel

FMI_FEATURES = ("dct", "wavelet", "none", "gradient", "edge")
"""The feature extractions of Haghighat's ``fmi.m`` (``"none"``: raw pixels)."""

EDGE_METHODS = ("sobel", "canny")


def _matlab_sobel_edges(x: np.ndarray) -> np.ndarray:
    """MATLAB's ``edge(x)`` (its defaults: Sobel, automatic threshold, thinning), as 0/1 floats.

    MATLAB: ``bx``/``by`` are the correlations (``imfilter``, replicate
    borders) with ``op'`` and ``op``, ``op = fspecial('sobel')/8``;
    ``b = bx² + by²``; ``cutoff = 4·mean(b)``; a pixel is an edge where
    ``b > cutoff`` and it is a horizontal maximum of ``b``
    (``b[r, c-1] <= b[r, c] > b[r, c+1]``) with ``|bx| >= |by| - 100·eps``,
    or a vertical one (``b[r-1, c] <= b[r, c] > b[r+1, c]``) with
    ``|by| >= |bx| - 100·eps``; a neighbour outside the image counts as
    satisfied. ``x`` is on the 0-255 scale here and ``/8`` is dropped: the
    test is scale-free, and on integer grey levels ``b`` is computed exactly,
    so equal neighbours compare equal (MATLAB works on ``x/255`` in floating
    point, where such exact ties can fall either way; its ``100·eps`` is far
    below one grey level and has no effect here).
    """
    # by comes out as bottom - top, MATLAB's with the opposite sign; only its
    # square and its absolute value are used.
    bx, by = sobel(x, pad="edge")
    b = bx * bx + by * by
    cutoff = 4.0 * math.fsum(b.ravel()) / b.size
    t = np.full(b.shape, True)
    left, right, up, down = t.copy(), t.copy(), t.copy(), t.copy()
    left[:, 1:] = b[:, :-1] <= b[:, 1:]
    right[:, :-1] = b[:, :-1] > b[:, 1:]
    up[1:, :] = b[:-1, :] <= b[1:, :]
    down[:-1, :] = b[:-1, :] > b[1:, :]
    ax, ay = np.abs(bx), np.abs(by)
    e = (b > cutoff) & (((ax >= ay) & left & right) | ((ay >= ax) & up & down))
    return e.astype(np.float64)


def _matlab_canny_edges(x: np.ndarray, sigma: float = math.sqrt(2.0)) -> np.ndarray:
    """MATLAB's ``edge(x, 'canny')`` with its default thresholds, as 0/1 floats.

    Follows the algorithm of recent MATLAB releases: smoothing and
    differentiation with a 1-D Gaussian of ``sigma = √2`` (extent
    ``ceil(4σ)``) and the derivative (``gradient``) of that Gaussian, both by
    convolution with replicate borders; the magnitude ``hypot(dx, dy)``
    divided by its maximum; the high threshold the smallest ``k/64`` such
    that the 64-bin histogram (``imhist``) of the magnitude below it holds
    more than 70% of the pixels, the low one ``0.4·high``; non-maximum
    suppression on interior pixels by linear interpolation between the two
    neighbours in each of four direction sectors (``>=`` both); hysteresis by
    8-connected reconstruction from the pixels above the high threshold.
    Unlike ``skimage.feature.canny`` (Gaussian then Sobel, thresholds on the
    unnormalised magnitude, 10%/20% of the dtype range by default), the
    thresholds adapt to each image as MATLAB's do. The scale of ``x`` does
    not matter.
    """
    ext = int(math.ceil(4.0 * sigma))
    t = np.arange(ext + 1, dtype=np.float64)
    half = np.exp(-(t * t) / (2.0 * sigma * sigma)) / (math.sqrt(2.0 * math.pi) * sigma)
    half = half / (2.0 * half[1:].sum() + half[0])
    gauss = np.concatenate([half[::-1], half[1:]])
    deriv = np.gradient(gauss)
    deriv = deriv / deriv[: ext + 1].sum()
    # imfilter(..., 'conv', 'replicate') is ndimage.convolve1d(..., mode="nearest").
    dx = ndimage.convolve1d(ndimage.convolve1d(x, gauss, axis=0, mode="nearest"), deriv, axis=1,
                            mode="nearest")
    dy = ndimage.convolve1d(ndimage.convolve1d(x, gauss, axis=1, mode="nearest"), deriv, axis=0,
                            mode="nearest")
    mag = np.hypot(dx, dy)
    mmax = mag.max()
    if mmax > 0:
        mag = mag / mmax
    counts = np.bincount(np.floor(mag.ravel() * 63.0 + 0.5).astype(np.int64), minlength=64)
    above = np.nonzero(np.cumsum(counts) > 0.7 * mag.size)[0]
    high = (above[0] + 1) / 64.0
    low = 0.4 * high
    m, n = mag.shape
    e = np.zeros((m, n), dtype=bool)
    if m >= 3 and n >= 3:
        c = mag[1:-1, 1:-1]
        ix, iy = dx[1:-1, 1:-1], dy[1:-1, 1:-1]

        def nb(dr, dc):
            return mag[1 + dr: m - 1 + dr, 1 + dc: n - 1 + dc]

        s1 = ((iy <= 0) & (ix > -iy)) | ((iy >= 0) & (ix < -iy))
        s2 = ~s1 & (((ix > 0) & (-iy >= ix)) | ((ix < 0) & (-iy <= ix)))
        s3 = ~s1 & ~s2 & (((ix <= 0) & (ix > iy)) | ((ix >= 0) & (ix < iy)))
        s4 = ~s1 & ~s2 & ~s3 & (((iy < 0) & (ix <= iy)) | ((iy > 0) & (ix >= iy)))
        # In each sector the divisor is non-zero; elsewhere the ratio is unused.
        ryx = np.abs(iy) / np.where(ix == 0, 1.0, np.abs(ix))
        rxy = np.abs(ix) / np.where(iy == 0, 1.0, np.abs(iy))
        keep = np.zeros_like(s1)
        for sel, d, (p1, q1), (p2, q2) in (
                (s1, ryx, ((0, 1), (-1, 1)), ((0, -1), (1, -1))),
                (s2, rxy, ((-1, 0), (-1, 1)), ((1, 0), (1, -1))),
                (s3, rxy, ((-1, 0), (-1, -1)), ((1, 0), (1, 1))),
                (s4, ryx, ((0, -1), (-1, -1)), ((0, 1), (1, 1)))):
            g1 = nb(*p1) * (1.0 - d) + nb(*q1) * d
            g2 = nb(*p2) * (1.0 - d) + nb(*q2) * d
            keep |= sel & (c >= g1) & (c >= g2)
        e[1:-1, 1:-1] = keep & (c > low)
    # imreconstruct(mag > high, e, 8): the 8-connected components of e that
    # hold a strong pixel (imreconstruct clips the marker to the mask).
    lab, _ = ndimage.label(e, structure=np.ones((3, 3)))
    strong = np.unique(lab[e & (mag > high)])
    return np.isin(lab, strong[strong > 0]).astype(np.float64)


def _fmi_features(x: np.ndarray, feature: str, edge_method: str = "sobel") -> np.ndarray:
    if feature == "edge":
        # Binary, so the scale is irrelevant; computed on the grey levels (exact ties).
        return _matlab_sobel_edges(x) if edge_method == "sobel" else _matlab_canny_edges(x)
    x = x / 255.0  # im2double
    if feature == "dct":
        return scipy.fft.dctn(x, type=2, norm="ortho")
    if feature == "wavelet":
        ca, (ch, cv, cd) = pywt.dwt2(x, "dmey", mode="symmetric")
        m = np.block([[ca, ch], [cv, cd]])
        lo, hi = m.min(), m.max()
        return np.ones_like(m) if hi == lo else (m - lo) / (hi - lo)
    if feature == "none":
        return x
    if feature == "gradient":
        # MATLAB's gradient(x) with one output: d/dx along the rows (columns
        # differenced), central inside, one-sided at the first and last column.
        return np.gradient(x, axis=1)
    raise ValueError(f"FMI: feature must be one of {', '.join(map(repr, FMI_FEATURES))}, "
                     f"got {feature!r}")
