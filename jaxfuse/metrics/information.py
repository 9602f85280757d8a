"""Information-theoretic fusion metrics: EN, MI (kit and real), fast FMI on five features."""

from __future__ import annotations

import concurrent.futures
import math
import os

import jax
import numpy as np
from numpy.typing import ArrayLike

from jaxfuse.metrics._common import prepare, to_uint8_levels
from jaxfuse.metrics._fmi_features import (EDGE_METHODS, FMI_FEATURES, _fmi_features,  # noqa: F401
                                           _matlab_canny_edges, _matlab_sobel_edges)  # (for tests)
from jaxfuse.metrics._fmi_kernel import _fmi_chunk_sum
from jaxfuse.metrics._hist import entropy_of_counts, mi_and_entropies


def en(ir: ArrayLike | None, vis: ArrayLike | None, fused: ArrayLike) -> float:
    """EN: Shannon entropy of the fused image, in bits.

    Convention: 256-bin histogram of the 8-bit grey levels, probabilities over
    all pixels, ``-Σ p log2 p`` over non-empty bins; as MATLAB's
    ``entropy`` in the reference kit. Float inputs are rounded to integer
    levels first (half away from zero, as MATLAB's ``im2uint8``).
    Reference: J. W. Roberts et al., "Assessment of image fusion procedures
    using entropy, image quality, and multispectral classification", J. Appl.
    Remote Sens. 2 (2008).

    Args:
      ir, vis: source images, only checked for shape (may be None).
      fused: ``(H, W)`` or ``(H, W, 3)``, values in [0, 255].

    Returns:
      Entropy in bits, in [0, 8]; 0 for a constant image.
    """
    _, _, f = prepare(ir, vis, fused, metric="EN", need_sources=False)
    counts = np.bincount(to_uint8_levels(f).ravel(), minlength=256)
    return entropy_of_counts(counts)


def mi_kit(ir: ArrayLike | None, vis: ArrayLike | None, fused: ArrayLike) -> float:
    """MI as the reference kit (and Table IV) reports it: exactly ``2·EN(F)``.

    Convention: **not** mutual information. The kit's ``analysis_MI`` feeds
    each image matrix to an entropy routine that treats its columns as
    several predictors; the joint-entropy labels get clipped to 255, both
    joint entropies come out 0 and each term MI(X, F) collapses to H(F). The
    papers' "MI" column (DenseFuse, NestFuse, RFN-Nest, Res2NetFuse) is
    therefore 2·EN: Table IV's 13.32592 = 2 × 6.66296. Use this only to
    compare with those tables; use :func:`mi` for real mutual information.

    Args:
      ir, vis, fused: same-shape images in [0, 255] (sources only checked).

    Returns:
      ``2 * en(ir, vis, fused)`` in bits.
    """
    _, _, f = prepare(ir, vis, fused, metric="MI_2EN", need_sources=False)
    return 2.0 * en(None, None, f)


def mi(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike, *, base: str = "bits") -> float:
    """MI: real mutual information, ``MI(F, IR) + MI(F, VIS)``.

    Convention: each term from the 256×256 joint histogram of the 8-bit grey
    levels (floats rounded as in :func:`en`), ``H(X) + H(F) − H(X, F)``.
    Sum over the two sources, as in Qu et al. and the CDDFuse/VIFB
    evaluation code. TNO values are about 1.6–2.4 bits.
    Reference: G. Qu, D. Zhang, P. Yan, "Information measure for performance
    of image fusion", Electron. Lett. 38(7), 2002.

    Args:
      ir, vis, fused: same-shape images in [0, 255].
      base: ``"bits"`` (log2, default) or ``"nats"`` (natural log, as
        scikit-learn's ``mutual_info_score``; 1 bit = ln 2 nats).

    Returns:
      The sum of the two mutual informations; 0 for constant images.
    """
    if base not in ("bits", "nats"):
        raise ValueError(f"MI: base must be 'bits' or 'nats', got {base!r}")
    a, b, f = prepare(ir, vis, fused, metric="MI")
    fi = to_uint8_levels(f)
    total = mi_and_entropies(to_uint8_levels(a), fi)[0] + mi_and_entropies(to_uint8_levels(b), fi)[0]
    return total * math.log(2.0) if base == "nats" else total


# ---------------------------------------------------------------------------
# Fast FMI (Haghighat & Razian 2014) as the kit's analysis_fmi computes it:
# features in _fmi_features, the per-window kernel in _fmi_kernel; here the
# windows, the chunks and the threads.

_FMI_CHUNK = 4096  # windows per jitted call (bounds memory; larger chunks amortise dispatch)


def _windows(x: np.ndarray, start: int, stop: int, out: np.ndarray) -> None:
    """Writes the 3×3 windows with flat indices [start, stop) into ``out[:, :stop-start]``."""
    n = x.shape[1]
    r, c = np.divmod(np.arange(start, stop), n - 2)
    base = r * n + c
    flat = x.ravel()
    for j in range(9):  # column-major: j = row + 3·col, as MATLAB's aSub(:)
        np.take(flat, base + (j % 3) * n + j // 3, out=out[j, : stop - start])
    out[:, stop - start:] = 0.0


def _fmi_of_features(fa: np.ndarray, fb: np.ndarray, ff: np.ndarray) -> float:
    m, n = ff.shape
    total = (m - 2) * (n - 2)

    def chunk(start: int) -> float:
        stop = min(start + _FMI_CHUNK, total)
        bufs = [np.empty((9, _FMI_CHUNK)) for _ in range(3)]
        for src, buf in zip((fa, fb, ff), bufs):
            _windows(src, start, stop, buf)
        # enable_x64 and default_device are thread-local: set them in the
        # thread that calls. CPU always: float64, and the same rounding on
        # every machine (an accelerator, if any, stays free for the model).
        with _enable_x64(), jax.default_device(jax.devices("cpu")[0]):
            return float(_fmi_chunk_sum(*bufs, np.int64(stop - start)))

    starts = range(0, total, _FMI_CHUNK)
    workers = min(_FMI_THREADS, len(starts))
    if workers > 1:
        with concurrent.futures.ThreadPoolExecutor(workers) as ex:
            parts = list(ex.map(chunk, starts))
    else:
        parts = [chunk(s) for s in starts]
    return math.fsum(parts) / total


def _enable_x64():
    """``jax.enable_x64(True)`` (jax >= 0.7), or its older experimental spelling."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64
    return enable_x64(True)


# XLA runs one small chunk on one core; two chunks in flight use two cores.
_FMI_THREADS = max(1, min(4, os.cpu_count() or 1))


def fmi(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike, *, feature: str = "dct",
        edge_method: str = "sobel") -> float:
    """Fast FMI (feature mutual information), window 3, as the reference kit.

    Convention: ``analysis_fmi(im2double(ir), im2double(vis), im2double(f),
    feature, 3)`` of the kit (Haghighat's ``fmi.m``): features of the x/255
    images (``dct``: the orthonormal 2-D DCT-II of the whole image;
    ``wavelet``: one level of the 'dmey' DWT with symmetric extension arranged
    ``[[cA, cH], [cV, cD]]`` and min–max rescaled to [0, 1]; ``none``: the
    pixels; ``gradient``: MATLAB's one-output ``gradient(x)``, the signed
    horizontal derivative only, not a magnitude; ``edge``: the 0/1 map of
    MATLAB's ``edge(x)``, i.e. its default Sobel detector, or of ``edge(x,
    'canny')`` with ``edge_method="canny"``; see :func:`fmi_gradient` and
    :func:`fmi_edge`), then for every 3×3 window (valid region) the
    normalised MI ``2·MI/(H_X + H_F)`` between the
    source and fused windows' values taken as distributions (column-major
    order; a window identical to the fused one scores 1), averaged over the
    two sources and over windows. The kit's quirk of comparing the visible
    window with the already normalised fused window is reproduced.
    Vectorised in JAX on the CPU, float64 enabled only inside the call (the
    global ``jax_enable_x64`` is left alone), over chunks of 4096 windows in
    up to ``min(4, cpu_count)`` threads; memory does not grow with the number
    of windows. The first call compiles the kernel (a few seconds).
    Reference: M. Haghighat, M. A. Razian, "Fast-FMI: non-reference image
    fusion metric", AICT 2014; M. Haghighat et al., Comput. Electr. Eng.
    37(5), 2011.

    Args:
      ir, vis, fused: same-shape images in [0, 255], at least 3×3.
      feature: ``"dct"`` (FMI_dct), ``"wavelet"`` (FMI_w), ``"none"``
        (FMI_pixel), ``"gradient"`` (FMI_gradient) or ``"edge"`` (FMI_edge).
      edge_method: for ``feature="edge"``: ``"sobel"`` (``fmi.m``'s
        ``edge(x)``, default) or ``"canny"``.

    Returns:
      FMI in [0, 1]; 1 when ``fused`` equals both sources.
    """
    name = {"dct": "FMI_dct", "wavelet": "FMI_w", "none": "FMI_pixel", "gradient": "FMI_gradient",
            "edge": "FMI_edge"}.get(feature, "FMI")
    if feature not in FMI_FEATURES:
        raise ValueError(f"FMI: feature must be one of {', '.join(map(repr, FMI_FEATURES))}, "
                         f"got {feature!r}")
    if edge_method not in EDGE_METHODS:
        raise ValueError(f"{name}: edge_method must be 'sobel' or 'canny', got {edge_method!r}")
    a, b, f = prepare(ir, vis, fused, metric=name, min_size=3, why="3x3 window")
    fa, fb, ff = (_fmi_features(x, feature, edge_method) for x in (a, b, f))
    return _fmi_of_features(fa, fb, ff)


def fmi_dct(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """FMI_dct: :func:`fmi` with ``feature="dct"`` (the paper's FMI_dct column)."""
    return fmi(ir, vis, fused, feature="dct")


def fmi_w(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """FMI_w: :func:`fmi` with ``feature="wavelet"`` (the paper's FMI_w column)."""
    return fmi(ir, vis, fused, feature="wavelet")


def fmi_pixel(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """FMI_pixel: :func:`fmi` with ``feature="none"`` (raw x/255 pixels; not in the paper)."""
    return fmi(ir, vis, fused, feature="none")


def fmi_gradient(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """FMI_gradient: :func:`fmi` with ``feature="gradient"``, as Haghighat's ``fmi.m``.

    Convention: the feature is MATLAB's ``gradient(x)`` with one output, i.e.
    the signed derivative along each row, ``(x[:, j+1] − x[:, j−1]) / 2``
    inside and the one-sided difference at the first and last column
    (``np.gradient(x, axis=1)``), of the x/255 image; ``fmi.m`` keeps only
    this component, so the vertical derivative is not used and the feature is
    signed, not a magnitude. Then the fast-FMI windows of :func:`fmi` (3×3,
    column-major, averaged over the two sources and all windows).
    Reference: M. B. A. Haghighat, A. Aghagolzadeh, H. Seyedarabi, "A
    non-reference image fusion metric based on mutual information of image
    features", Comput. Electr. Eng. 37(5), 2011; M. Haghighat, M. A. Razian,
    "Fast-FMI: non-reference image fusion metric", AICT 2014.

    Args:
      ir, vis, fused: same-shape images in [0, 255], at least 3×3.

    Returns:
      FMI in [0, 1]; 1 when ``fused`` equals both sources.
    """
    return fmi(ir, vis, fused, feature="gradient")


def fmi_edge(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike, *, method: str = "sobel") -> float:
    """FMI_edge: :func:`fmi` on binary edge maps, as Haghighat's ``fmi.m``.

    Convention: ``fmi.m`` calls ``edge(x)`` with no method, which in MATLAB
    is the **Sobel** detector (not Canny): Sobel responses ``bx``, ``by``
    (correlation with ``fspecial('sobel')/8`` and its transpose, replicate
    borders), ``b = bx² + by²``, threshold ``b > 4·mean(b)`` (Pratt's RMS
    rule), thinned to pixels that are a local maximum of ``b`` across the
    dominant gradient direction; the 0/1 map is the feature. ``method="sobel"``
    (default) reproduces that (on integer grey levels ``b`` is exact, so ties
    between neighbours are exact; MATLAB's floating-point ties may fall either
    way on a few pixels). ``method="canny"`` uses MATLAB's ``edge(x,
    'canny')`` instead, ported here: Gaussian σ = √2 with its derivative,
    magnitude normalised to its maximum, high threshold = the first multiple
    of 1/64 below which more than 70% of the pixels lie (64-bin histogram),
    low = 0.4·high, interpolated non-maximum suppression and 8-connected
    hysteresis. scikit-image's ``feature.canny`` differs from MATLAB's in
    the smoothing (Gaussian then Sobel) and, above all, in the thresholds
    (fixed, 10%/20% of the dtype range, unless given), so it is not used.
    The fast-FMI windows then follow :func:`fmi`; a window whose edge map is
    all 0 (or all 1) is a constant window, normalised to ones as in the kit.
    Reference: M. B. A. Haghighat, A. Aghagolzadeh, H. Seyedarabi, Comput.
    Electr. Eng. 37(5), 2011; M. Haghighat, M. A. Razian, AICT 2014;
    I. E. Sobel's operator with the threshold of W. K. Pratt, "Digital Image
    Processing", Wiley; J. Canny, IEEE TPAMI 8(6), 1986.

    Args:
      ir, vis, fused: same-shape images in [0, 255], at least 3×3.
      method: ``"sobel"`` (``fmi.m``'s ``edge(x)``) or ``"canny"``.

    Returns:
      FMI in [0, 1]; 1 when ``fused`` equals both sources.
    """
    return fmi(ir, vis, fused, feature="edge", edge_method=method)
