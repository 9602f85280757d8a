"""Fusion and reconstruction metrics, each one pure function with a named convention.

Contract (all metrics):

* Inputs are NumPy or JAX arrays, ``(H, W)`` grayscale (or ``(H, W, 1)``) of
  any integer or float dtype with values on the **0–255 scale** (uint8 as
  read from disk, or floats such as :func:`jaxfuse.io.load_image` returns).
  RGB ``(H, W, 3)`` inputs are converted first with the ITU-R BT.601 luma
  ``0.299 R + 0.587 G + 0.114 B`` (the formula of
  :func:`jaxfuse.io.rgb_to_gray`), in float64 and not rounded. MATLAB's
  ``rgb2gray`` (weights 0.2989/0.5870/0.1140, rounded to uint8) can differ by
  one grey level; to reproduce the kit on colour images exactly, convert
  them with MATLAB first.
* Fusion metrics take ``(ir, vis, fused)`` of equal shape and return one
  Python float. Reconstruction metrics (:func:`ssim`, :func:`psnr`,
  :func:`mse`, paper Table III) take ``(image, reconstruction)``.
* Every function validates first and raises ``ValueError`` naming the metric
  for wrong shapes, mismatched sizes, values outside [0, 255], NaN/Inf, or
  images smaller than its window (the message gives the minimum size).
* Constant images give finite values (never NaN/Inf); identical inputs give
  the ideal value where the metric has one (documented per function).
* Arithmetic is float64 (NumPy/SciPy; the window-heavy FMI in JAX with x64
  enabled only inside the call, never globally). Metrics on 8-bit data
  (EN, MI) round floats to integer levels (half away from zero, like MATLAB).

Conventions, never mixed silently (:mod:`jaxfuse.metrics.conventions`; each
is a table of functions by the names its evaluator prints):

* ``"paper"``: Table IV of Res2NetFuse, exactly as the shared MATLAB kit
  (DenseFuse / NestFuse / RFN-Nest / Res2NetFuse) computes it, quirks
  included. Its **MI is 2·EN**, not mutual information (see :func:`mi_kit`).
* ``"standard"``: each metric as its original paper defines it (cited per
  function), with real mutual information in bits.
* ``"cddfuse"``: CDDFuse's ``utils/Evaluator.py`` exactly as its
  ``test_IVF.py`` calls it (:mod:`jaxfuse.metrics.cddfuse`).
* ``"vifb"``: VIFB's MATLAB ``compute_metrics.m``, its 13 metrics
  (:mod:`jaxfuse.metrics.vifb`).

``score_pair(..., convention=C)`` computes a selection by name within one
convention; :func:`get_convention` gives the table itself.
"""

from __future__ import annotations

from typing import Callable, Iterable

from jaxfuse.metrics._common import prepare
from jaxfuse.metrics.conventions import CONVENTIONS, Convention, get_convention
from jaxfuse.metrics.gradient import ag, nabf, qabf, sf
from jaxfuse.metrics.information import en, fmi, fmi_dct, fmi_pixel, fmi_w, mi, mi_kit
from jaxfuse.metrics.statistical import PSNR_MAX_DB, cc, mse, psnr, psnr_fusion, scd, sd
from jaxfuse.metrics.structural import (MEF_SSIM_MIN_SIZE, VIF_MIN_SIZE, mef_ssim, ssim, ssim_a,
                                        vif)

PAPER_METRICS = ("EN", "MI", "Qabf", "SCD", "MS_SSIM", "FMI_dct", "FMI_w", "SSIM_a")
"""Res2NetFuse Table IV's columns, kit-exact (MI = 2·EN)."""

STANDARD_METRICS = ("EN", "MI", "SD", "SF", "AG", "SCD", "VIF", "Qabf", "SSIM_a", "PSNR", "CC",
                    "Nabf")
"""The textbook set (EN, SD, SF, MI, SCD, VIF, Qabf, SSIM as recent papers report, plus AG, PSNR, CC, Nabf)."""


def metric_names(convention: str = "paper") -> tuple[str, ...]:
    """All canonical names ``convention`` knows (names are matched case-insensitively)."""
    return get_convention(convention).names()


def resolve_metric(name: str, convention: str = "paper") -> tuple[str, Callable[..., float]]:
    """Returns ``(canonical name, function)`` for a metric name under ``convention``.

    Raises:
      ValueError: unknown name or convention.
    """
    conv = get_convention(convention)
    canon = conv.resolve(name)
    return canon, conv.functions[canon]


def default_metrics(convention: str = "paper") -> tuple[str, ...]:
    """The set ``convention`` reports by default, in its order."""
    return get_convention(convention).defaults


def score_pair(ir, vis, fused, *, metrics: Iterable[str] | None = None,
               convention: str = "paper") -> dict[str, float]:
    """Scores one fused image against its infrared and visible sources.

    Args:
      ir, vis, fused: same-shape images on the 0–255 scale, as the
        convention's ``load`` returns them (see the module contract; the
        ``vifb`` convention keeps colour, the others convert to grey).
      metrics: names to compute, in order (case-insensitive; see
        :func:`metric_names`); default: the convention's set.
      convention: one of :data:`CONVENTIONS`.

    Returns:
      ``{name: value}`` in the requested order, names canonical
      (``"qabf"`` → ``"Qabf"``).

    Raises:
      ValueError: unknown metric or convention, bad shapes or values, or an
        image smaller than a requested metric's window.
    """
    conv = get_convention(convention)
    names = conv.resolve_all(None if metrics is None else tuple(metrics))
    if conv.name in ("paper", "standard"):
        ir, vis, fused = prepare(ir, vis, fused, metric="score_pair")
    return conv.score(ir, vis, fused, names)


__all__ = [
    "PAPER_METRICS", "STANDARD_METRICS", "CONVENTIONS", "Convention", "get_convention", "PSNR_MAX_DB",
    "MEF_SSIM_MIN_SIZE", "VIF_MIN_SIZE",
    "score_pair", "resolve_metric", "metric_names", "default_metrics",
    "en", "mi_kit", "mi", "qabf", "scd", "mef_ssim", "fmi", "fmi_dct", "fmi_w", "fmi_pixel", "ssim_a",
    "sd", "sf", "ag", "vif", "psnr_fusion", "cc", "nabf",
    "ssim", "psnr", "mse",
]
