"""Histogram metrics of the ``standard`` convention (CE, NMI, QNCIE, TE) and MSE/RMSE.

All four histogram metrics work on the 8-bit grey levels: float inputs are
rounded to integer levels first (half away from zero, as :func:`jaxfuse.metrics.en`
and :func:`jaxfuse.metrics.mi`), histograms have 256 bins (joint ones
256×256) and probabilities are counts over all pixels. Unlike Z. Liu's
MATLAB toolbox (and the VIFB / MEFB code taken from it), the images are
**not** min–max stretched to [0, 255] first (its ``normalize1``); the papers
do not do that, and it changes the values of images that do not span the
full range.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from jaxfuse.metrics._common import prepare, to_uint8_levels
from jaxfuse.metrics._hist import LEVELS, hist256, joint_hist, mi_and_entropies

TSALLIS_Q = 1.85
"""Cvejic's q for :func:`te`, the value of Liu's toolbox and VIFB/MEFB."""


def ce(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """CE: cross entropy of the sources' grey-level distributions against the fused one.

    Convention: for each source X, ``CE(X, F) = Σ_i p_X(i) · log2(p_X(i) /
    p_F(i))`` over the 256 grey levels (this is the relative entropy
    D(p_X ‖ p_F), which the fusion literature calls cross entropy), summed
    over the levels where **both** histograms are non-zero (a level present
    in X but absent from F would make the sum infinite; the metric authors'
    MATLAB code, shipped with VIFB and MEFB, skips those levels, and so do
    we). Combined as the mean ``(CE(IR, F) + CE(VIS, F)) / 2``, as that code
    does; log base 2 (bits). Lower is better.
    Because absent levels are skipped, the value can drop below 0 when F
    misses levels that X uses, and images with disjoint histograms score 0;
    where F covers every level of both sources it is the true
    ``(D(p_IR ‖ p_F) + D(p_VIS ‖ p_F)) / 2 ≥ 0``.
    Reference: D. M. Bulanon, T. F. Burks, V. Alchanatis, "Image fusion of
    visible and thermal images for fruit detection", Biosyst. Eng. 103(1),
    2009; X. Zhang et al., "VIFB: a visible and infrared image fusion
    benchmark", CVPR Workshops 2020 (``metricsCross_entropy.m``).

    Args:
      ir, vis, fused: same-shape images in [0, 255].

    Returns:
      CE in bits; 0 when ``fused`` equals both sources.
    """
    a, b, f = prepare(ir, vis, fused, metric="CE")
    pf = hist256(to_uint8_levels(f))
    pf /= pf.sum()

    def one(x):
        px = hist256(to_uint8_levels(x))
        px /= px.sum()
        m = (px > 0) & (pf > 0)
        return math.fsum(px[m] * np.log2(px[m] / pf[m]))

    return 0.5 * (one(a) + one(b))


def nmi(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """NMI: Hossny's normalised mutual information.

    Convention: ``NMI = 2·[MI(IR, F) / (H(IR) + H(F)) + MI(VIS, F) / (H(VIS) +
    H(F))]``, each MI and entropy from the 256×256 joint grey-level
    histogram as :func:`jaxfuse.metrics.mi` (the log base cancels). Each term
    equals scikit-learn's ``normalized_mutual_info_score(x, f)`` (arithmetic
    mean normalisation), so NMI is their sum, in [0, 2]. When a source and
    the fused image are both constant (``H(X) + H(F) = 0``) the term is 1, as
    scikit-learn's convention (one image determines the other); when only
    one of them is constant it is 0.
    Reference: M. Hossny, S. Nahavandi, D. Creighton, "Comments on
    'Information measure for performance of image fusion'", Electron. Lett.
    44(18), 2008.

    Args:
      ir, vis, fused: same-shape images in [0, 255].

    Returns:
      NMI in [0, 2]; 2 when ``fused`` equals both sources.
    """
    a, b, f = prepare(ir, vis, fused, metric="NMI")
    fl = to_uint8_levels(f)
    total = 0.0
    for x in (a, b):
        m, hx, hf = mi_and_entropies(to_uint8_levels(x), fl)
        total += 1.0 if hx + hf == 0.0 else 2.0 * m / (hx + hf)
    return total


def _ranks(x: np.ndarray) -> np.ndarray:
    """Equal-count ranks 0..255 of the pixels (sorted by value, ties in raster order)."""
    flat = x.ravel()
    order = np.argsort(flat, kind="stable")
    r = np.empty(flat.size, dtype=np.int64)
    r[order] = (np.arange(flat.size, dtype=np.int64) * LEVELS) // flat.size
    return r.reshape(x.shape)


def _ncc(x: np.ndarray, y: np.ndarray) -> float:
    """Nonlinear correlation coefficient ``H_b(X) + H_b(Y) − H_b(X, Y)``, log base 256."""
    m, _, _ = mi_and_entropies(x, y)
    return m / math.log2(LEVELS)


def qncie(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike, *, binning: str = "levels") -> float:
    """QNCIE: nonlinear correlation information entropy of (IR, VIS, F).

    Convention: the nonlinear correlation coefficient ``NCC(X, Y) = H_b(X) +
    H_b(Y) − H_b(X, Y)`` with logarithms to base ``b = 256`` on a ``b×b``
    grid; the 3×3 matrix ``R`` with ones on the diagonal and the three
    pairwise NCCs off it; its eigenvalues ``λ_i``; ``H_R = −Σ_i (λ_i/3)
    log_256(λ_i/3)`` and ``QNCIE = 1 − H_R``.
    Binning (the papers' ``b×b`` grid is read two ways): ``"levels"``
    (default) puts each grey level in its own bin, as Liu's toolbox
    (``metricWang.m``) and VIFB/MEFB do, so ``NCC(X, X) = EN(X)/8`` and
    identical inputs reach 1 only for a flat 256-level histogram
    (``R = [[1, h, h], [h, 1, h], [h, h, 1]]`` with ``h = EN/8``).
    ``"ranks"`` is the original grid of Wang et al.: each image's pixels sorted
    by value and split into 256 ranks of equal count (ties broken by raster
    position, so constant images get positional ranks), which makes every
    marginal entropy 1 and ``NCC(X, X) = 1``: identical inputs give 1 (exactly
    when 256 divides the pixel count, else very nearly: 1 − 6·10⁻⁶ for
    100×100 images).
    With ``"levels"`` a constant image has ``NCC = 0`` with everything, so
    three constant images give the minimum ``1 − log_256 3``.
    Eigenvalues are clipped at 0 (``R`` is not guaranteed positive
    semi-definite, though for natural images it normally is); ``0·log 0 = 0``.
    Reference: Q. Wang, Y. Shen, J. Jin, "Performance evaluation of image
    fusion techniques", in T. Stathaki (ed.), Image Fusion: Algorithms and
    Applications, Academic Press, 2008, pp. 469–492; Q. Wang, Y. Shen, J. Q.
    Zhang, "A nonlinear correlation measure for multivariable data set",
    Physica D 200, 2005.

    Args:
      ir, vis, fused: same-shape images in [0, 255].
      binning: ``"levels"`` or ``"ranks"``.

    Returns:
      QNCIE in [1 − log_256 3 ≈ 0.802, 1] (the lower end for three mutually
      independent images); 1 for identical inputs with ``binning="ranks"``
      (see above).
    """
    if binning not in ("levels", "ranks"):
        raise ValueError(f"QNCIE: binning must be 'levels' or 'ranks', got {binning!r}")
    a, b, f = prepare(ir, vis, fused, metric="QNCIE")
    lab = _ranks if binning == "ranks" else to_uint8_levels
    a, b, f = lab(a), lab(b), lab(f)
    nab, naf, nbf = _ncc(a, b), _ncc(a, f), _ncc(b, f)
    r = np.array([[1.0, nab, naf], [nab, 1.0, nbf], [naf, nbf, 1.0]])
    p = np.clip(np.linalg.eigvalsh(r), 0.0, None) / 3.0
    p = p[p > 0]
    hr = -float(np.sum(p * np.log2(p))) / math.log2(LEVELS)
    return 1.0 - hr


def _tsallis_mi(x: np.ndarray, y: np.ndarray, q: float) -> float:
    j = joint_hist(x, y)
    j /= j.sum()
    px, py = j.sum(axis=1), j.sum(axis=0)
    nz = j > 0
    ri, ci = np.nonzero(nz)
    pj, pp = j[nz], px[ri] * py[ci]
    if q == 1.0:  # the Shannon limit, in nats
        return max(math.fsum(pj * np.log(pj / pp)), 0.0)
    s = math.fsum(pj ** q / pp ** (q - 1.0))
    # >= 0 for every q > 0 (Jensen); clip rounding noise (and -0.0) at 0.
    return max((1.0 - s) / (1.0 - q), 0.0)


def te(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike, *, q: float = TSALLIS_Q) -> float:
    """TE: Cvejic's Tsallis-entropy mutual information, ``I_q(IR, F) + I_q(VIS, F)``.

    Convention: ``I_q(X, F) = (1 − Σ_{i,j} p(i, j)^q / (p_X(i) p_F(j))^(q−1))
    / (1 − q)`` over the non-empty cells of the 256×256 joint grey-level
    histogram, summed over the two sources (not normalised), with
    ``q = 1.85`` (:data:`TSALLIS_Q`, the value of Liu's toolbox and
    VIFB/MEFB; Cvejic et al. study a range of q). ``q = 1`` gives the Shannon
    limit, ordinary MI in nats. Tsallis MI needs no log base. Liu's
    ``tsallis`` multiplies ``p(i, j)`` with the swapped marginals
    ``p_F(i) p_X(j)``; here the marginals are the cell's own. Higher is
    better; there is no fixed ideal: identical inputs give
    ``2·S_{2−q}(F)``, twice the Tsallis entropy of order ``2 − q`` of the
    fused image, ``(1 − Σ_i p_F(i)^(2−q)) / (1 − q)``.
    Reference: N. Cvejic, C. N. Canagarajah, D. R. Bull, "Image fusion metric
    based on mutual information and Tsallis entropy", Electron. Lett.
    42(11), 2006.

    Args:
      ir, vis, fused: same-shape images in [0, 255].
      q: entropic index, > 0.

    Returns:
      TE ≥ 0; 0 for constant images.
    """
    if not (isinstance(q, (int, float)) and math.isfinite(q) and q > 0):
        raise ValueError(f"TE: q must be a finite number > 0, got {q!r}")
    a, b, f = prepare(ir, vis, fused, metric="TE")
    fl = to_uint8_levels(f)
    return _tsallis_mi(to_uint8_levels(a), fl, float(q)) + _tsallis_mi(to_uint8_levels(b), fl,
                                                                         float(q))


def mse_fusion(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """MSE of a fused image: ``(MSE(F, IR) + MSE(F, VIS)) / 2`` on the 0–255 scale.

    Convention: ``MSE(F, X) = mean((F − X)²)`` over all pixels of the 0–255
    values (not rounded), averaged over the two sources, the MSE that
    :func:`jaxfuse.metrics.psnr_fusion` turns into dB
    (``PSNR = 10·log10(255² / MSE)``). Lower is better. (The reconstruction
    :func:`jaxfuse.metrics.mse` is on the 0–1 scale instead.)
    Reference: P. Jagalingam, A. V. Hegde, "A review of quality metrics for
    fused image", Aquatic Procedia 4, 2015.

    Args:
      ir, vis, fused: same-shape images in [0, 255].

    Returns:
      MSE in [0, 65025]; 0 when ``fused`` equals both sources.
    """
    a, b, f = prepare(ir, vis, fused, metric="MSE_fusion")
    return 0.5 * (float(np.mean((f - a) ** 2)) + float(np.mean((f - b) ** 2)))


def rmse_fusion(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """RMSE of a fused image: ``(RMSE(F, IR) + RMSE(F, VIS)) / 2`` on the 0–255 scale.

    Convention: ``RMSE(F, X) = sqrt(mean((F − X)²))`` of the 0–255 values,
    then the mean of the two sources' RMSEs (not the root of
    :func:`mse_fusion`, which is never smaller). VIFB's
    ``metricsRmse.m`` divides ``sqrt(Σ(F − X)²)`` by the pixel count instead,
    which is not an RMSE and shrinks with image size. Lower is better.
    Reference: P. Jagalingam, A. V. Hegde, "A review of quality metrics for
    fused image", Aquatic Procedia 4, 2015.

    Args:
      ir, vis, fused: same-shape images in [0, 255].

    Returns:
      RMSE in [0, 255]; 0 when ``fused`` equals both sources.
    """
    a, b, f = prepare(ir, vis, fused, metric="RMSE_fusion")
    return 0.5 * (math.sqrt(float(np.mean((f - a) ** 2))) + math.sqrt(float(np.mean((f - b) ** 2))))
