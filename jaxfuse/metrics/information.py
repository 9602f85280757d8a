"""Information-theoretic fusion metrics: EN, MI (kit and real), fast FMI on five features."""

from __future__ import annotations

import concurrent.futures
import math
import os

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np
from numpy.typing import ArrayLike
import pywt
import scipy.fft
from scipy import ndimage

from jaxfuse.metrics._common import prepare, to_uint8_levels


def _entropy_of_counts(counts: np.ndarray) -> float:
    p = counts[counts > 0].astype(np.float64)
    p /= p.sum()
    return float(-np.sum(p * np.log2(p)))


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
    return _entropy_of_counts(counts)


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


def _mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    joint = np.bincount((a * 256 + b).ravel(), minlength=65536)
    h_ab = _entropy_of_counts(joint)
    h_a = _entropy_of_counts(np.bincount(a.ravel(), minlength=256))
    h_b = _entropy_of_counts(np.bincount(b.ravel(), minlength=256))
    return max(h_a + h_b - h_ab, 0.0)


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
    total = _mutual_information(to_uint8_levels(a), fi) + _mutual_information(to_uint8_levels(b), fi)
    return total * math.log(2.0) if base == "nats" else total


# ---------------------------------------------------------------------------
# Fast FMI (Haghighat & Razian 2014) as the kit's analysis_fmi computes it.

_FMI_CHUNK = 4096  # windows per jitted call (bounds memory; larger chunks amortise dispatch)
_TINY = 1e-300  # log2(|x| + tiny): finite at 0, unchanged for |x| > 1e-284


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
    p = np.pad(x, 1, mode="edge")
    h, w = x.shape

    def s(dr, dc):  # x[r + dr, c + dc], borders replicated
        return p[1 + dr: 1 + dr + h, 1 + dc: 1 + dc + w]

    bx = (s(-1, -1) + 2.0 * s(0, -1) + s(1, -1)) - (s(-1, 1) + 2.0 * s(0, 1) + s(1, 1))
    by = (s(-1, -1) + 2.0 * s(-1, 0) + s(-1, 1)) - (s(1, -1) + 2.0 * s(1, 0) + s(1, 1))
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


# The FMI kernel works on lists of nine (N,) vectors (the values of N windows,
# column-major) and is written out element by element, so XLA fuses it into a
# few loops instead of materialising 9x9xN temporaries; optimization barriers
# stop it from re-computing shared intermediates inside every consumer.

def _ssum(xs):
    """Sum of a list of arrays; nine terms are added in NumPy's pairwise order.

    The order matters for the kit's exact tests: for two constant windows
    both pdfs are uniform, and ``mean(p) == 1/9`` exactly (so ``c = 0``) only
    in this order, ((x0+x1)+(x2+x3))+((x4+x5)+(x6+x7))+x8, not left to right.
    """
    if len(xs) == 9:
        return (((xs[0] + xs[1]) + (xs[2] + xs[3])) + ((xs[4] + xs[5]) + (xs[6] + xs[7]))) + xs[8]
    s = xs[0]
    for v in xs[1:]:
        s = s + v
    return s


def _log2(x):
    # MATLAB's real(-p.*log2(p)) is -p·log2|p| for the (rare) negative cells.
    return jnp.log2(jnp.abs(x) + _TINY)


def _minmax(x):
    """Min-max normalises a window; a constant window becomes all ones (kit)."""
    mx, mn = x[0], x[0]
    for v in x[1:]:
        mx, mn = jnp.maximum(mx, v), jnp.minimum(mn, v)
    d = mx - mn
    flat = d == 0
    d = jnp.where(flat, 1.0, d)
    return [jnp.where(flat, 1.0, (v - mn) / d) for v in x]


def _marginals(x):
    """pdf, CDF, log2 pdf, entropy, mean and sd of the 1-based index, per window."""
    sx = _ssum(x)
    p = [v / sx for v in x]
    pc = [p[0]]
    for v in p[1:]:
        pc.append(pc[-1] + v)
    lp = [_log2(v) for v in p]
    h = -_ssum([a * b for a, b in zip(p, lp)])
    e1 = _ssum([(i + 1.0) * v for i, v in enumerate(p)])
    e2 = _ssum([(i + 1.0) ** 2 * v for i, v in enumerate(p)])
    sd = jnp.sqrt(jnp.maximum(e2 - e1 * e1, 0.0))  # population sd
    return dict(p=p, pc=pc, lp=lp, h=h, e1=e1, sd=sd)


def _nfmi(src, fus):
    """Normalised MI ``2·MI/(H_X + H_F)`` of a source and the fused window.

    ``src``, ``fus``: :func:`_marginals` of min-max-normalised windows. As the
    kit's analysis_fmi: Pearson correlation ``c`` of the two pdfs; the joint
    pdf mixes the product ``q_i p_j`` with the Fréchet upper (c ≥ 0) or lower
    (c < 0) bound ``U`` as ``φ·U + (1 − φ)·q_i p_j``, ``φ = c / corr(U)``;
    entropies in bits. Written differently, equal up to rounding:

    * fused value i holds ``[Q_{i-1}, Q_i]`` of the unit interval, source value
      j holds ``[P_{j-1}, P_j]`` (upper bound) or ``[1-P_j, 1-P_{j-1}]``
      (lower bound); ``U_ij`` is their overlap (the kit's 2-D differences of
      ``min(Q_i, P_j)`` or ``max(Q_i + P_j - 1, 0)``), and ``corr(U)`` comes
      from ``E[ij]`` under ``U`` (the kit's Hoeffding sum);
    * ``U`` is non-zero on a monotone staircase of at most 17 cells, one per
      anti-diagonal (after reversing the source order for the lower bound),
      so the joint entropy is the closed-form entropy of ``(1 − φ)·q_i p_j``
      over all 81 cells plus a correction on ≤ 17 cells: 17 logarithms
      instead of 81.
    """
    p, lp, pc, hp = src["p"], src["lp"], src["pc"], src["h"]
    q, lq, qc, hq = fus["p"], fus["lp"], fus["pc"], fus["h"]
    mp, mq = _ssum(p) / 9.0, _ssum(q) / 9.0
    pt = [v - mp for v in p]
    qt = [v - mq for v in q]
    s = _ssum([a * b for a, b in zip(pt, qt)])
    den = jnp.sqrt(_ssum([a * a for a in pt]) * _ssum([b * b for b in qt]))
    c = jnp.where(s == 0, 0.0, s / jnp.where(s == 0, 1.0, den))
    pos = c >= 0
    zero = jnp.zeros_like(c)
    pprev = [zero] + pc[:-1]
    qprev = [zero] + qc[:-1]
    # Source intervals re-indexed left to right: k = j (c >= 0) or 8 - j (c < 0).
    pr = [jnp.where(pos, p[k], p[8 - k]) for k in range(9)]
    lpr = [jnp.where(pos, lp[k], lp[8 - k]) for k in range(9)]
    lo = [jnp.where(pos, pprev[k], 1.0 - pc[8 - k]) for k in range(9)]
    hi = [jnp.where(pos, pc[k], 1.0 - pprev[8 - k]) for k in range(9)]
    jv = [jnp.where(pos, k + 1.0, 9.0 - k) for k in range(9)]
    (q, lq, qc, qprev, pr, lpr, lo, hi, jv, c, pos) = lax.optimization_barrier(
        (q, lq, qc, qprev, pr, lpr, lo, hi, jv, c, pos))
    e_ij = None
    u_d, qp_d, l_d = [None] * 17, [None] * 17, [None] * 17
    for i in range(9):
        for k in range(9):
            u = jnp.maximum(jnp.minimum(qc[i], hi[k]) - jnp.maximum(qprev[i], lo[k]), 0.0)
            t = ((i + 1.0) * jv[k]) * u
            e_ij = t if e_ij is None else e_ij + t
            on = u > 0
            qp = jnp.where(on, q[i] * pr[k], 0.0)
            ll = jnp.where(on, lq[i] + lpr[k], 0.0)
            d = i + k
            if u_d[d] is None:
                u_d[d], qp_d[d], l_d[d] = u, qp, ll
            else:
                u_d[d], qp_d[d], l_d[d] = u_d[d] + u, qp_d[d] + qp, l_d[d] + ll
    cov = e_ij - fus["e1"] * src["e1"]
    psd, qsd = src["sd"], fus["sd"]
    ok = jnp.where(pos, c != 0, True) & (psd != 0) & (qsd != 0) & (cov != 0)
    corr = jnp.where(ok, cov, 1.0) / jnp.where(ok, qsd * psd, 1.0)
    coef = jnp.where(ok, c / corr, 0.0)
    w = 1.0 - coef
    lw = _log2(w)
    sq, sp = _ssum(q), _ssum(pr)
    # Σ over all 81 cells of -(w q_i p_j)·log2|w q_i p_j|, in closed form ...
    h_joint = -w * (lw * sq * sp - sp * hq - sq * hp)
    # ... plus, on the staircase, the true cell minus its product-only value.
    for d in range(17):
        g = w * qp_d[d]
        jd = coef * u_d[d] + g
        h_joint = h_joint - jd * _log2(jd) + g * (lw + l_d[d])
    m = hp + hq - h_joint
    hs = hp + hq
    return jnp.where(m == 0, 0.0, 2.0 * m / jnp.where(hs == 0, 1.0, hs))


@jax.jit
def _fmi_chunk_sum(a, b, f, n_valid):
    """Sum of the FMI values of the first ``n_valid`` of N raw windows, each ``(9, N)``."""
    A, B, F = ([x[i] for i in range(9)] for x in (a, b, f))
    ident_a = _ssum([(x != y).astype(jnp.int32) for x, y in zip(A, F)]) == 0
    fn = _minmax(F)
    fus = _marginals(fn)
    fmi_a = jnp.where(ident_a, 1.0, _nfmi(_marginals(_minmax(A)), fus))
    # Kit quirk: the IR branch normalises the fused window in place, so the
    # VIS branch compares its window with the *normalised* fused window (or
    # the raw one when the IR branch took its "identical" shortcut).
    seen = [jnp.where(ident_a, x, y) for x, y in zip(F, fn)]
    ident_b = _ssum([(x != y).astype(jnp.int32) for x, y in zip(B, seen)]) == 0
    fmi_b = jnp.where(ident_b, 1.0, _nfmi(_marginals(_minmax(B)), fus))
    vals = 0.5 * (fmi_a + fmi_b)
    return jnp.sum(jnp.where(jnp.arange(a.shape[1]) < n_valid, vals, 0.0))


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
