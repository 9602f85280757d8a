"""Gradient-based metrics: Qabf, Nabf, SF, AG, EI."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from jaxfuse.metrics._common import prepare
from jaxfuse.metrics._sobel import sobel


def _qabf_edges(x: np.ndarray):
    """Sobel responses of the kit's ``conv2(x, h, 'same')``, zero padding.

    h_x = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], h_y = [[1, 2, 1], [0, 0, 0],
    [-1, -2, -1]], true convolution. The terms are added in the order of
    Octave's conv2 (liboctave ``dconv2o``: over kernel columns last to
    first, rows first to last, zero taps skipped), so the exact tests
    ``Sx == 0`` and ``gX == gF`` below fall as in the reference run. (So
    not :func:`jaxfuse.metrics._sobel.sobel`: on these x/255 values the
    order of the additions decides the exact ties.)
    """
    h, w = x.shape
    p = np.pad(x, 1)

    def s(dr, dc):  # x[r + dr, c + dc] with zeros outside
        return p[1 + dr: 1 + dr + h, 1 + dc: 1 + dc + w]

    sx = ((((s(1, -1) + 2 * s(0, -1)) + s(-1, -1)) - s(1, 1)) - 2 * s(0, 1)) - s(-1, 1)
    sy = ((((s(1, -1) - s(-1, -1)) + 2 * s(1, 0)) - 2 * s(-1, 0)) + s(1, 1)) - s(-1, 1)
    g = np.sqrt(sx * sx + sy * sy)
    zero = sx == 0
    a = np.where(zero, np.pi / 2, np.arctan(sy / np.where(zero, 1.0, sx)))
    return g, a


def _qabf_q(gx, ax, gf, af, kit: bool):
    tg, kg, dg = 0.9994, -15.0, 0.5
    ta, ka, da = 0.9879, -22.0, 0.8
    big = gx > gf
    eq = gx == gf
    G = np.where(big, gf / np.where(big, gx, 1.0),
                 np.where(eq, gf if kit else 1.0, gx / np.where(big | eq, 1.0, gf)))
    A = 1.0 - np.abs(ax - af) / (np.pi / 2)
    return tg / (1.0 + np.exp(kg * (G - dg))) * (ta / (1.0 + np.exp(ka * (A - da))))


def qabf(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike, *, kit: bool = True) -> float:
    """Qabf: Xydeas–Petrovic gradient-based edge preservation.

    Convention: the kit's ``analysis_Qabf(im2double(ir), im2double(vis),
    im2double(f))``, in float64: Sobel responses by 2-D convolution with zero
    padding ('same'), ``g = sqrt(Sx² + Sy²)``, orientation ``atan(Sy/Sx)``
    (``π/2`` where ``Sx == 0``); per source X, relative strength
    ``G = min(gX, gF)/max(gX, gF)`` and orientation agreement
    ``A = 1 − |αX − αF|/(π/2)``, sigmoids with Tg = 0.9994, kg = −15,
    Dg = 0.5, Ta = 0.9879, ka = −22, Da = 0.8, and
    ``Qabf = Σ(Q_AF·gA + Q_BF·gB) / Σ(gA + gB)``.
    Kit quirk (kept when ``kit=True``): where ``gX == gF`` exactly the kit
    sets ``G = gF`` instead of 1, so even ``fused == ir == vis`` scores below
    the maximum. With ``kit=False``, ``G = 1`` there and identical images
    reach the maximum ``≈ 0.9748`` (the sigmoids never reach 1).
    Because of the exact tests ``Sx == 0`` and ``gX == gF``, correct
    implementations differ by up to 0.01 on single images (about 0.002 on
    21-pair means), depending on the order in which the convolution adds its
    terms; this one adds them in the order of Octave's ``conv2`` and
    reproduces the kit run under Octave to 1e-10 (SciPy's ``convolve2d``
    reproduces other published ports instead).
    Reference: C. S. Xydeas, V. Petrović, "Objective image fusion performance
    measure", Electron. Lett. 36(4), 2000.

    Args:
      ir, vis, fused: same-shape images in [0, 255], at least 3×3.
      kit: keep the kit's ``G = gF`` quirk (default, matches the paper).

    Returns:
      Qabf in [0, 1); 0 when the sources have no edges at all (0/0 in the kit).
    """
    a, b, f = prepare(ir, vis, fused, metric="Qabf", min_size=3, why="3x3 Sobel window")
    ga, aa = _qabf_edges(a / 255.0)
    gb, ab = _qabf_edges(b / 255.0)
    gf, af = _qabf_edges(f / 255.0)
    den = float(np.sum(ga + gb))
    if den == 0.0:
        return 0.0
    num = float(np.sum(_qabf_q(ga, aa, gf, af, kit) * ga + _qabf_q(gb, ab, gf, af, kit) * gb))
    return num / den


def _kumar_sobel(x: np.ndarray):
    """``sobel_fn`` of the kit: 3x3 correlation with the Sobel kernels / 8.

    The image is first extended by one pixel, mirrored without repeating the
    edge (``per_extn_im_fn``). The terms are added as MATLAB's
    ``sum(sum(window .* kernel))`` does (column sums first), so exact ties
    between gradients fall as in the kit.
    """
    xp = np.pad(x, 1, mode="reflect")

    def win(dr, dc):
        return xp[1 + dr: xp.shape[0] - 1 + dr, 1 + dc: xp.shape[1] - 1 + dc]

    # vtemp = [-1 0 1; -2 0 2; -1 0 1]/8: column sums -left, 0, right.
    left = (win(-1, -1) + 2 * win(0, -1)) + win(1, -1)
    right = (win(-1, 1) + 2 * win(0, 1)) + win(1, 1)
    gv = (right - left) / 8.0
    # htemp = [-1 -2 -1; 0 0 0; 1 2 1]/8: column sums (bottom - top) per column.
    gh = (((win(1, -1) - win(-1, -1)) + 2 * (win(1, 0) - win(-1, 0))) + (win(1, 1) - win(-1, 1))) / 8.0
    return gv, gh


def nabf(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike, *, scale: float = 1.0 / 255.0) -> float:
    """Nabf: fusion artefacts, Kumar's modification of Petrović's N_AB/F.

    Convention: the kit's ``analysis_nabf`` (B. K. Shreyamsha Kumar's
    ``objective_fusion_perform_fn``): Sobel gradients /8 with mirror borders,
    Petrović's edge-preservation ``Q_XF`` (sigmoid constants 0.9999/19/0.5 and
    0.9995/22/0.5, ``sqrt(Qg·Qa)``), weights ``g^1.5`` where ``g ≥ 2`` else
    0.001, and ``Nabf = Σ na·((1 − Q_AF)·wA + (1 − Q_BF)·wB) / Σ(wA + wB)``
    with ``na = 1`` where the fused gradient exceeds both sources'. The kit
    passes ``im2double`` images (``scale = 1/255``, the default), where no
    gradient reaches the threshold 2 and all weights are 0.001; Kumar's own
    program passes 0–255 images (``scale = 1``), which weights strong edges.
    Lower is better; 0 when ``fused`` equals a source or adds no stronger
    gradient anywhere.
    Reference: B. K. Shreyamsha Kumar, "Multifocus and multispectral image
    fusion based on pixel significance using discrete cosine harmonic wavelet
    transform", SIViP 7, 2013; V. Petrović, C. Xydeas, "Objective image
    fusion performance characterisation", ICCV 2005.

    Args:
      ir, vis, fused: same-shape images in [0, 255], at least 3×3.
      scale: factor applied to the 0–255 values first.

    Returns:
      Nabf in [0, 1].
    """
    a, b, f = prepare(ir, vis, fused, metric="Nabf", min_size=3, why="3x3 Sobel window")
    td, wt_min, lg = 2.0, 0.001, 1.5
    nrg, kg, sg = 0.9999, 19.0, 0.5
    nra, ka, sa = 0.9995, 22.0, 0.5
    grads = []
    for x in (a, b, f):
        gv, gh = _kumar_sobel(x * scale)
        g = np.sqrt(gh * gh + gv * gv)
        flat = (gv == 0) & (gh == 0)
        ang = np.where(flat, 0.0, np.arctan(gv / np.where(gh == 0, 1.0, gh)))
        # MATLAB: atan(gv/0) = ±π/2 for gv ≠ 0.
        ang = np.where((gh == 0) & ~flat, np.sign(gv) * np.pi / 2, ang)
        grads.append((g, ang))
    (ga, aa), (gb, ab), (gf, af) = grads

    def q(gx, ax):
        zero = (gx == 0) | (gf == 0)
        big = gx > gf
        safe_gx = np.where(zero | ~big, 1.0, gx)
        safe_gf = np.where(zero | big, 1.0, gf)
        G = np.where(zero, 0.0, np.where(big, gf / safe_gx, gx / safe_gf))
        A = np.abs(np.abs(ax - af) - np.pi / 2) * 2 / np.pi
        qg = nrg / (1 + np.exp(-kg * (G - sg)))
        qa = nra / (1 + np.exp(-ka * (A - sa)))
        return np.sqrt(qg * qa)

    qaf, qbf = q(ga, aa), q(gb, ab)
    wa = np.where(ga >= td, ga ** lg, wt_min)
    wb = np.where(gb >= td, gb ** lg, wt_min)
    na = (gf > ga) & (gf > gb)
    return float(np.sum(na * ((1 - qaf) * wa + (1 - qbf) * wb)) / np.sum(wa + wb))


def sf(ir: ArrayLike | None, vis: ArrayLike | None, fused: ArrayLike) -> float:
    """SF: spatial frequency of the fused image, on 0–255 values.

    Convention: ``sqrt(RF² + CF²)`` with ``RF² = mean((F[i, j] − F[i, j−1])²)``
    over the ``H×(W−1)`` horizontal differences and ``CF²`` likewise over the
    ``(H−1)×W`` vertical ones (as the CDDFuse / VIFB code). Some papers divide
    by ``H·W`` instead, which changes values by about ``1/W``.
    Reference: A. M. Eskicioglu, P. S. Fisher, "Image quality measures and
    their performance", IEEE Trans. Commun. 43(12), 1995.

    Args:
      ir, vis: only checked for shape (may be None).
      fused: image in [0, 255], at least 2×2.

    Returns:
      SF ≥ 0; 0 for a constant image.
    """
    _, _, f = prepare(ir, vis, fused, metric="SF", min_size=2, why="pixel differences",
                      need_sources=False)
    rf = np.mean(np.diff(f, axis=1) ** 2)
    cf = np.mean(np.diff(f, axis=0) ** 2)
    return float(np.sqrt(rf + cf))


def ag(ir: ArrayLike | None, vis: ArrayLike | None, fused: ArrayLike) -> float:
    """AG: average gradient of the fused image, on 0–255 values.

    Convention: the textbook definition of Cui et al. (2015), ``mean over
    i < H−1, j < W−1 of sqrt((ΔxF² + ΔyF²)/2)`` with forward differences
    ``ΔxF = F[i, j+1] − F[i, j]``, ``ΔyF = F[i+1, j] − F[i, j]`` over the
    ``(H−1)×(W−1)`` pixels that have both. The evaluation codes differ:
    VIFB's ``metricsAvg_gradient.m`` uses MATLAB's ``gradient`` (central
    differences inside, one-sided at the borders) over all ``H×W`` pixels and
    divides the sum by ``(H−1)(W−1)``; CDDFuse's ``AG`` uses central
    differences too (``np.gradient``). Both give somewhat different values
    from this one.
    Reference: G. Cui, H. Feng, Z. Xu, Q. Li, Y. Chen, "Detail preserved
    fusion of visible and infrared images using regional saliency extraction
    and multi-scale image decomposition", Opt. Commun. 341, 2015.

    Args:
      ir, vis: only checked for shape (may be None).
      fused: image in [0, 255], at least 2×2.

    Returns:
      AG ≥ 0; 0 for a constant image.
    """
    _, _, f = prepare(ir, vis, fused, metric="AG", min_size=2, why="pixel differences",
                      need_sources=False)
    dx = f[:-1, 1:] - f[:-1, :-1]
    dy = f[1:, :-1] - f[:-1, :-1]
    return float(np.mean(np.sqrt((dx * dx + dy * dy) / 2.0)))


def ei(ir: ArrayLike | None, vis: ArrayLike | None, fused: ArrayLike) -> float:
    """EI: edge intensity, the mean Sobel gradient magnitude of the fused image.

    Convention: ``mean(sqrt(Gx² + Gy²))`` over all ``H×W`` pixels of the
    0–255 values, ``Gx``, ``Gy`` the responses to the unnormalised Sobel
    kernels ``[[1, 2, 1], [0, 0, 0], [−1, −2, −1]]`` and its transpose
    (MATLAB's ``fspecial('sobel')``, no ``/8``), by correlation with
    replicated borders (``imfilter(F, h, 'replicate')``), as VIFB's and
    MEFB's ``metricsEdge_intensity.m``; the same as
    ``hypot(ndimage.sobel(F, 0, mode="nearest"), ndimage.sobel(F, 1,
    mode="nearest"))``. The sign convention of the kernels does not matter
    for the magnitude.
    Reference: B. Rajalingam, R. Priya, "Hybrid multimodality medical image
    fusion technique for feature enhancement in medical diagnosis", Int. J.
    Eng. Sci. Invention, 2018 (as cited by VIFB for EI).

    Args:
      ir, vis: only checked for shape (may be None).
      fused: image in [0, 255], at least 3×3.

    Returns:
      EI ≥ 0; 0 for a constant image.
    """
    _, _, f = prepare(ir, vis, fused, metric="EI", min_size=3, why="3x3 Sobel window",
                      need_sources=False)
    gx, gy = sobel(f, pad="edge")
    return float(np.mean(np.sqrt(gx * gx + gy * gy)))
