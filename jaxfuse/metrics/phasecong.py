"""Phase congruency (Kovesi's ``phasecong3``) and the index built on it, Zhao et al.'s Qp.

:func:`phasecong` computes Kovesi's PC_2 measure and the moments of its
covariance; :func:`qp` (Zhao, Laganière, Liu, IJICIC 2007) correlates those
three feature maps of the sources and the fused image. Both are also
available from :mod:`jaxfuse.metrics.quality`, with the other quality
indices of the ``standard`` convention.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
from typing import NamedTuple

import numpy as np
import scipy.fft
from numpy.typing import ArrayLike

from jaxfuse.metrics._common import correlate_valid, matlab_gaussian, prepare

QP_MIN_SIZE = 11   # one 11x11 Gaussian window

_GAUSS11 = matlab_gaussian(11, 1.5)


class PhaseCongruency(NamedTuple):
    """Outputs of :func:`phasecong`, each an array of the image's shape."""

    pc: np.ndarray
    """Phase congruency over all orientations, ``Σ_o W_o·⌊E_o − T_o⌋ / (Σ_o Σ_s A_so + ε)``."""
    M: np.ndarray
    """Maximum moment of the phase congruency covariance (edge strength)."""
    m: np.ndarray
    """Minimum moment of the phase congruency covariance (corner strength)."""


def _kovesi_freq(n: int) -> np.ndarray:
    """Kovesi's normalised frequency coordinate, in FFT order (after ``ifftshift``).

    ``[-n/2 .. n/2 - 1] / n`` for even ``n``; ``[-(n-1)/2 .. (n-1)/2] / (n - 1)``
    for odd ``n`` (so the extreme frequencies are ±0.5 exactly).
    """
    return np.fft.fftfreq(n) * (n / (n - 1.0) if n % 2 else 1.0)


def phasecong(image: ArrayLike, *, nscale: int = 4, norient: int = 6, min_wavelength: float = 3.0,
              mult: float = 2.1, sigma_onf: float = 0.55, k: float = 2.0, cutoff: float = 0.5,
              g: float = 10.0) -> PhaseCongruency:
    """Phase congruency of an image by Kovesi's log-Gabor method (``phasecong3``).

    Kovesi's PC_2 measure with ``phasecong3.m``'s defaults (its 2010 version,
    which :func:`qp` uses): per orientation ``o`` (angles ``o·π/norient``) and
    scale ``s`` (wavelengths ``min_wavelength·mult^s``), the image is filtered
    in the frequency domain by ``G_s(r)·S_o(θ)``:

    * radial log-Gabor ``G_s = exp(−log²(r/f_s) / (2·log² sigma_onf))``,
      ``f_s = 1/wavelength``, times the low-pass ``1/(1 + (r/0.45)^30)``,
      zero at DC; frequencies normalised to ±0.5 (Kovesi's grid: an odd
      size ``n`` divides by ``n − 1``);
    * angular spread ``S_o = (1 + cos(min(|Δθ|·norient/2, π)))/2``.

    With ``e + i·o = IFFT(FFT(I)·G_s·S_o)`` the even/odd responses,
    ``A_so = |e + i·o|``, the mean phase direction ``(Σ_s e, Σ_s o)/|·|``
    (``+ε`` in the norm) gives the energy
    ``E_o = Σ_s (e·cos φ̄ + o·sin φ̄ − |e·sin φ̄ − o·cos φ̄|)``. Noise: Rayleigh
    parameter ``τ = median(A_0o)/sqrt(log 4)`` of the smallest scale,
    ``τ_tot = τ·(1 − mult^−nscale)/(1 − 1/mult)``, threshold
    ``T_o = τ_tot·sqrt(π/2) + k·τ_tot·sqrt((4 − π)/2)``; frequency spread
    weight ``W_o = 1/(1 + exp(g·(cutoff − width)))``,
    ``width = (Σ_s A_so/(max_s A_so + ε) − 1)/(nscale − 1)``. Then
    ``PC_o = W_o·max(E_o − T_o, 0)/(Σ_s A_so + ε)``, the moments of the
    covariance of ``(PC_o cos θ_o, PC_o sin θ_o)`` (``covx2``, ``covy2``
    divided by ``norient/2``, ``covxy`` by ``norient/4``):
    ``M, m = (covx2 + covy2 ± (sqrt(covxy² + (covx2 − covy2)²) + ε))/2``,
    and the overall phase congruency ``pc = Σ_o W_o·max(E_o − T_o, 0) /
    (Σ_o Σ_s A_so + ε)`` (Kovesi 1999's PC_2 over all orientations, as
    ``myphasecong3.m`` of Liu's toolbox returns it). ``ε = 1e-4``.

    Simplifications and differences: ``phasecong3`` divides ``PC_o`` by
    ``Σ_s A_so`` without ``ε`` (0/0 on flat images); ``+ε`` here keeps flat
    images at 0. Only ``pc``, ``M`` and ``m`` are computed (not the
    orientation, feature type or the per-orientation maps). Liu's
    ``myphasecong3.m`` (used by ``metricZhao.m``) is a modified
    ``phasecong2``: Gaussian angular spread (``dThetaOnSigma`` 1.2), a noise
    model from the squared amplitudes with an empirical 1/1.7 factor,
    ``width = Σ A/(max A + ε)/nscale`` and ``covxy`` divided by ``norient``
    (a scaling bug ``phasecong3`` fixed); its values differ somewhat.
    Convolutions are circular (FFT), as Kovesi's.

    Reference: P. Kovesi, "Image features from phase congruency", Videre:
    J. Computer Vision Research 1(3), 1999; P. Kovesi, "Phase congruency
    detects corners and edges", DICTA 2003; ``phasecong3.m``,
    https://www.peterkovesi.com/matlabfns/.

    Args:
      image: a finite 2-D array, at least 3×3. The noise threshold scales
        with the image; ``ε`` assumes filter amplitudes well above 1e-4, as
        0–255 images give.
      nscale, norient, min_wavelength, mult, sigma_onf, k, cutoff, g:
        Kovesi's parameters (defaults as ``phasecong3``).

    Returns:
      :class:`PhaseCongruency` ``(pc, M, m)``.
    """
    x = np.asarray(image, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 3 or x.shape[1] < 3:
        raise ValueError(f"phasecong: image must be 2-D and at least 3x3 pixels, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("phasecong: image contains NaN or Inf")
    if int(nscale) != nscale or nscale < 2:
        raise ValueError(f"phasecong: nscale must be an integer >= 2, got {nscale!r}")
    if int(norient) != norient or norient < 1:
        raise ValueError(f"phasecong: norient must be an integer >= 1, got {norient!r}")
    if min_wavelength < 2:
        raise ValueError(f"phasecong: min_wavelength must be >= 2, got {min_wavelength!r}")
    if not 0.0 <= cutoff <= 1.0:
        raise ValueError(f"phasecong: cutoff must be in [0, 1], got {cutoff!r}")
    return _phasecong(x, int(nscale), int(norient), float(min_wavelength), float(mult),
                      float(sigma_onf), float(k), float(cutoff), float(g))


def _median(x: np.ndarray) -> float:
    """``np.median`` of all of ``x`` (mean of the two middle values for an even count), faster."""
    v = x.reshape(-1)
    n = v.size
    if n % 2:
        return float(np.partition(v, n // 2)[n // 2])
    p = np.partition(v, [n // 2 - 1, n // 2])
    return float((p[n // 2 - 1] + p[n // 2]) / 2.0)


def _phasecong_filters(shape, nscale, norient, min_wavelength, mult, sigma_onf):
    """The filter bank in FFT order, as factors ``(radial, angular)``.

    ``radial`` is ``(nscale, rows, cols)``, ``angular`` a list of ``norient``
    ``(rows, cols)`` arrays; filter ``(o, s)`` is ``radial[s] * angular[o]``
    (kept apart: the full bank would be ``norient·nscale`` images).
    """
    rows, cols = shape
    fx = _kovesi_freq(cols)[None, :]
    fy = _kovesi_freq(rows)[:, None]
    radius = np.sqrt(fx * fx + fy * fy)
    theta = np.arctan2(-fy, fx)
    lowpass = 1.0 / (1.0 + (radius / 0.45) ** 30)
    radius[0, 0] = 1.0  # log(0) avoided; the filters are zeroed there below
    log_radius = np.log(radius)
    log_gabor = np.empty((nscale, rows, cols))
    for s in range(nscale):
        fo = 1.0 / (min_wavelength * mult ** s)
        log_gabor[s] = np.exp(-(log_radius - math.log(fo)) ** 2 / (2.0 * math.log(sigma_onf) ** 2))
        log_gabor[s] *= lowpass
        log_gabor[s, 0, 0] = 0.0
    spreads = []
    for o in range(norient):
        angl = o * math.pi / norient
        # |Δθ| wrapped to [0, π] (Kovesi: |atan2(sin Δθ, cos Δθ)|), scaled, clamped to π.
        dtheta = np.abs(np.remainder(theta - angl + math.pi, 2.0 * math.pi) - math.pi)
        dtheta = np.minimum(dtheta * (norient / 2.0), math.pi)
        spreads.append((np.cos(dtheta) + 1.0) / 2.0)
    return log_gabor, spreads


def _phasecong(im, nscale=4, norient=6, min_wavelength=3.0, mult=2.1, sigma_onf=0.55, k=2.0,
               cutoff=0.5, g=10.0, bank=None) -> PhaseCongruency:
    eps = 1e-4
    rows, cols = im.shape
    if bank is None:
        bank = _phasecong_filters(im.shape, nscale, norient, min_wavelength, mult, sigma_onf)
    log_gabor, spreads = bank
    spectrum = scipy.fft.fft2(im)
    spec_re, spec_im = spectrum.real.copy(), spectrum.imag.copy()
    buf = np.empty((nscale, rows, cols), dtype=np.complex128)
    an = np.empty((nscale, rows, cols))
    noise_gain = (1.0 - (1.0 / mult) ** nscale) / (1.0 - 1.0 / mult)
    noise_factor = noise_gain * (math.sqrt(math.pi / 2.0) + k * math.sqrt((4.0 - math.pi) / 2.0)) \
        / math.sqrt(math.log(4.0))
    total_energy = np.zeros((rows, cols))
    total_sum_an = np.zeros((rows, cols))
    covx2 = np.zeros((rows, cols))
    covy2 = np.zeros((rows, cols))
    covxy = np.zeros((rows, cols))
    tmp = np.empty((rows, cols))
    for o in range(norient):
        angl = o * math.pi / norient
        np.multiply(log_gabor, spec_re * spreads[o], out=buf.real)
        np.multiply(log_gabor, spec_im * spreads[o], out=buf.imag)
        eo = scipy.fft.ifft2(buf, axes=(-2, -1), overwrite_x=True)  # (nscale, rows, cols)
        even, odd = eo.real, eo.imag
        np.abs(eo, out=an)
        sum_an = an.sum(axis=0)
        max_an = an.max(axis=0)
        sum_eo = eo.sum(axis=0)
        # Noise threshold T from the Rayleigh parameter of the smallest scale.
        threshold = _median(an[0]) * noise_factor
        norm = np.abs(sum_eo)
        x_energy = norm + eps
        mean_e = sum_eo.real / x_energy
        mean_o = sum_eo.imag / x_energy
        # Σ_s (e·mean_e + o·mean_o) = |Σ e + iΣ o|² / x_energy; then the |cross| terms per scale.
        energy = norm * norm / x_energy
        for s in range(nscale):
            np.multiply(even[s], mean_o, out=tmp)
            tmp -= odd[s] * mean_e
            energy -= np.abs(tmp, out=tmp)
        energy -= threshold
        np.maximum(energy, 0.0, out=energy)
        width = (sum_an / (max_an + eps) - 1.0) / (nscale - 1)
        weighted = energy / (1.0 + np.exp((cutoff - width) * g))
        pc_o = weighted / (sum_an + eps)
        total_energy += weighted
        total_sum_an += sum_an
        covx = pc_o * math.cos(angl)
        covy = pc_o * math.sin(angl)
        covx2 += covx * covx
        covy2 += covy * covy
        covxy += covx * covy
    covx2 /= norient / 2.0
    covy2 /= norient / 2.0
    covxy *= 4.0 / norient
    denom = np.sqrt(covxy * covxy + (covx2 - covy2) ** 2) + eps
    big = (covy2 + covx2 + denom) / 2.0
    small = (covy2 + covx2 - denom) / 2.0
    return PhaseCongruency(total_energy / (total_sum_an + eps), big, small)


_QP_FEATURE_THRESHOLD = 0.1
_QP_THREADS = max(1, min(3, os.cpu_count() or 1))
_QP_C = 1e-4


def _qp_component(x1, x2, xs, xf, m1, m2, m3) -> float:
    """Sum over feature pixels of max(C_AF, C_BF, C_SF) for one feature.

    Local correlations ``(σ_xf + C)/(sqrt(|σ_x²·σ_f²|) + C)`` in 11×11
    Gaussian windows (σ 1.5) inside the image; the source maps are zeroed
    outside their feature masks, the fused map is not (as ``metricZhao.m``).
    """
    r = (_GAUSS11.shape[0] - 1) // 2

    def filt(x):
        return correlate_valid(x, _GAUSS11)

    mf = filt(xf)
    vf = filt(xf * xf) - mf * mf
    best = None
    for x, mask in ((x1 * m1, m1), (x2 * m2, m2), (xs * m3, m3)):
        mx = filt(x)
        vx = filt(x * x) - mx * mx
        cxf = filt(x * xf) - mx * mf
        c = (cxf + _QP_C) / (np.sqrt(np.abs(vx * vf)) + _QP_C)
        c = np.where(mask[r:-r, r:-r], c, 0.0)
        best = c if best is None else np.maximum(best, c)
    return float(best.sum())


def qp(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """Qp: Zhao et al.'s phase-congruency-based fusion metric.

    Definition (Zhao, Laganière, Liu): ``Q_P = (P_p)^α·(P_M)^β·(P_m)^γ``
    over three features of :func:`phasecong`: phase congruency ``p`` and
    the maximum and minimum moments ``M``, ``m``, with
    ``P_k = max(C^k_AF, C^k_BF, C^k_SF)`` and the correlation coefficients
    ``C^k_xy = (σ^k_xy + C)/(σ^k_x·σ^k_y + C)`` between a source's (or S's)
    feature map and the fused image's; ``S`` is the maximum-selected map,
    at each pixel the feature of the source with the larger phase
    congruency.

    Choices:

    * exponents ``α = β = γ = 1``;
    * features from :func:`phasecong` with Kovesi's ``phasecong3`` defaults
      (nscale 4, norient 6, minWaveLength 3, mult 2.1, sigmaOnf 0.55, k 2,
      cutOff 0.5, g 10, noise from the median of the smallest scale);
    * as ``metricZhao.m``: ``C = 1e-4``; the correlations are local, in
      11×11 Gaussian windows (σ 1.5), with ``sqrt(|σ_x²·σ_f²|)`` as
      ``σ_x·σ_f``; only feature pixels count: a source's map is zeroed where
      its phase congruency is ≤ 0.1 (S's where both are), ``C_AF`` (``C_BF``,
      ``C_SF``) counts only at A's (B's, either's) feature pixels and 0
      elsewhere, the fused map is not masked, and ``P_k`` is the sum of the
      per-pixel maxima over the count of S's feature pixels;
    * windows inside the image ('valid'), where ``metricZhao.m`` zero-pads
      ('same'), which biases its border ring;
    * ``Q_P = 1`` when neither source has a feature pixel (0/0 in
      ``metricZhao.m``: nothing to preserve).

    Because the source maps are masked and the fused map is not, identical
    inputs do not reach 1: ``qp(x, x, x)`` is below 1 (0.86 to 0.95 on the
    42 TNO-21 source images), the shortfall coming from windows across the
    boundaries of the feature mask. ``metricZhao.m`` also uses Liu's
    ``myphasecong3`` (see :func:`phasecong`), so values differ from it
    somewhat.

    Reference: J. Zhao, R. Laganière, Z. Liu, "Performance assessment of
    combinative pixel-level image fusion based on an absolute feature
    measurement", Int. J. Innovative Computing, Information and Control
    3(6A), 1433–1447, 2007; P. Kovesi, Videre 1(3), 1999.

    Args:
      ir, vis, fused: same-shape images in [0, 255], at least 11×11.

    Returns:
      Qp, usually in [0, 1] (each factor is at most 1).
    """
    a, b, f = prepare(ir, vis, fused, metric="Qp", min_size=QP_MIN_SIZE,
                      why="11x11 Gaussian window")
    bank = _phasecong_filters(f.shape, 4, 6, 3.0, 2.1, 0.55)
    # The three images, then the three features, are independent: run them on
    # threads (FFTs, ufuncs and filters release the GIL); results do not depend
    # on the thread count.
    with concurrent.futures.ThreadPoolExecutor(_QP_THREADS) as ex:
        fa, fb, ff = ex.map(lambda x: _phasecong(x, bank=bank), (a, b, f))
        first = fa.pc > fb.pc
        m1 = fa.pc > _QP_FEATURE_THRESHOLD
        m2 = fb.pc > _QP_FEATURE_THRESHOLD
        m3 = np.where(first, fa.pc, fb.pc) > _QP_FEATURE_THRESHOLD
        r = (_GAUSS11.shape[0] - 1) // 2
        count = int(np.count_nonzero(m3[r:-r, r:-r]))
        if count == 0:  # no feature pixel in either source: nothing to preserve
            return 1.0
        totals = list(ex.map(lambda t: _qp_component(t[0], t[1], np.where(first, t[0], t[1]), t[2],
                                                     m1, m2, m3), zip(fa, fb, ff)))
    return float(np.prod([t / count for t in totals]))
