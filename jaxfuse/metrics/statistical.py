"""Pixel-statistics metrics: SD, SCD, CC, PSNR (fusion), and the reconstruction PSNR and MSE."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from jaxfuse.metrics._common import pearson, prepare, prepare_two

PSNR_MAX_DB = 100.0  # reported for a zero MSE (identical images) instead of +inf


def sd(ir: ArrayLike | None, vis: ArrayLike | None, fused: ArrayLike) -> float:
    """SD: standard deviation of the fused image, on 0–255 values.

    Convention: population standard deviation (divide by H·W), as
    ``np.std`` in the CDDFuse / VIFB code. Note: the RFN-Nest kit's
    ``analysis_sd`` returns ``sqrt(Σ(F − μ)²)`` of the x/255 image, without
    dividing by the pixel count; its values are not comparable.
    Reference: Y.-J. Rao, "In-fibre Bragg grating sensors", Meas. Sci.
    Technol. 8(4), 1997 (as cited for SD by the fusion literature).

    Args:
      ir, vis: only checked for shape (may be None).
      fused: image in [0, 255].

    Returns:
      SD in [0, 127.5]; 0 for a constant image.
    """
    _, _, f = prepare(ir, vis, fused, metric="SD", need_sources=False)
    return float(np.std(f))


def scd(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """SCD: sum of the correlations of differences.

    Convention: ``corr2(F − VIS, IR) + corr2(F − IR, VIS)`` on x/255 images,
    ``corr2`` the Pearson correlation over all pixels (the kit's
    ``analysis_SCD``); a correlation with a constant image counts 0 (MATLAB
    gives NaN).
    Reference: V. Aslantas, E. Bendes, "A new image quality metric for image
    fusion: the sum of the correlations of differences", AEU Int. J. Electron.
    Commun. 69(12), 2015.

    Args:
      ir, vis, fused: same-shape images in [0, 255].

    Returns:
      SCD in [-2, 2].
    """
    a, b, f = prepare(ir, vis, fused, metric="SCD")
    a, b, f = a / 255.0, b / 255.0, f / 255.0
    return pearson(f - b, a) + pearson(f - a, b)


def cc(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """CC: mean correlation coefficient, ``(r(F, IR) + r(F, VIS)) / 2``.

    Convention: Pearson correlation over all pixels, averaged over the two
    sources (CDDFuse's ``CC``); a constant image correlates 0.
    Reference: e.g. J. Ma et al., "Infrared and visible image fusion methods
    and applications: a survey", Inf. Fusion 45, 2019.

    Args:
      ir, vis, fused: same-shape images in [0, 255].

    Returns:
      CC in [-1, 1]; 1 when ``fused`` equals both (non-constant) sources.
    """
    a, b, f = prepare(ir, vis, fused, metric="CC")
    return 0.5 * (pearson(f, a) + pearson(f, b))


def _psnr_from_mse(mse01: float) -> float:
    if mse01 <= 0.0:
        return PSNR_MAX_DB
    return min(10.0 * math.log10(1.0 / mse01), PSNR_MAX_DB)


def psnr_fusion(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """PSNR of a fused image: ``10·log10(255² / ((MSE(F, IR) + MSE(F, VIS)) / 2))``.

    Convention: peak 255 (the data range), the MSE averaged over the two
    sources (as CDDFuse's ``PSNR``, which however uses ``max(F)²`` as the
    peak). A zero MSE gives ``PSNR_MAX_DB`` (100 dB) rather than +inf so means
    stay finite.
    Reference: e.g. Ma et al., Inf. Fusion 45, 2019.

    Args:
      ir, vis, fused: same-shape images in [0, 255].

    Returns:
      PSNR in dB, at most 100.
    """
    a, b, f = prepare(ir, vis, fused, metric="PSNR")
    m = 0.5 * (np.mean((f - a) ** 2) + np.mean((f - b) ** 2)) / 255.0 ** 2
    return _psnr_from_mse(float(m))


def mse(image: ArrayLike, reconstruction: ArrayLike) -> float:
    """MSE between an image and its reconstruction, on the 0–1 scale (paper Table III).

    Convention: ``mean((x/255 − y/255)²)``; multiply by 255² = 65025 for the
    0–255 scale. Table III's values (e.g. 0.00042) are on this scale.

    Args:
      image, reconstruction: same-shape images in [0, 255].

    Returns:
      MSE in [0, 1]; 0 for identical images.
    """
    a, b = prepare_two(image, reconstruction, metric="MSE")
    return float(np.mean((a / 255.0 - b / 255.0) ** 2))


def psnr(image: ArrayLike, reconstruction: ArrayLike) -> float:
    """PSNR between an image and its reconstruction, in dB (paper Table III).

    Convention: ``10·log10(1 / MSE)`` with the MSE on the 0–1 scale (equal to
    ``10·log10(255² / MSE_255)``, scikit-image's ``peak_signal_noise_ratio``
    with ``data_range=255``). Identical images give ``PSNR_MAX_DB`` (100 dB)
    instead of +inf. Table III averages per-image PSNRs, so its PSNR and MSE
    columns don't convert into each other.

    Args:
      image, reconstruction: same-shape images in [0, 255].

    Returns:
      PSNR in dB, at most 100.
    """
    a, b = prepare_two(image, reconstruction, metric="PSNR")
    return _psnr_from_mse(float(np.mean((a / 255.0 - b / 255.0) ** 2)))
