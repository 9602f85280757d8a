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

Two conventions, never mixed silently:

* ``"paper"`` (:data:`PAPER_METRICS`): Table IV of Res2NetFuse, exactly as the
  shared MATLAB kit (DenseFuse / NestFuse / RFN-Nest / Res2NetFuse) computes
  it, quirks included. Its **MI is 2·EN**, not mutual information: the kit's
  MI routine collapses to the fused image's entropy (see :func:`mi_kit`).
* ``"standard"`` (:data:`STANDARD_METRICS`): the textbook set used by recent
  papers (CDDFuse, VIFB), with real mutual information.

``score_pair`` computes a selection by name; ``MI`` resolves to
:func:`mi_kit` under ``"paper"`` and to :func:`mi` under ``"standard"``
(``MI_2EN`` and ``MI_real`` name one or the other explicitly).
"""

from __future__ import annotations

from typing import Callable, Iterable

from jaxfuse.metrics._common import prepare
from jaxfuse.metrics.gradient import ag, nabf, qabf, sf
from jaxfuse.metrics.information import en, fmi, fmi_dct, fmi_pixel, fmi_w, mi, mi_kit
from jaxfuse.metrics.statistical import PSNR_MAX_DB, cc, mse, psnr, psnr_fusion, scd, sd
from jaxfuse.metrics.structural import (MEF_SSIM_MIN_SIZE, VIF_MIN_SIZE, mef_ssim, ssim, ssim_a,
                                        vif)

PAPER_METRICS = ("EN", "MI", "Qabf", "SCD", "MS_SSIM", "FMI_dct", "FMI_w", "SSIM_a")
"""Res2NetFuse Table IV's columns, kit-exact (MI = 2·EN)."""

STANDARD_METRICS = ("EN", "MI", "SD", "SF", "AG", "SCD", "VIF", "Qabf", "SSIM_a", "PSNR", "CC",
                    "Nabf")
"""The textbook set (CDDFuse's EN, SD, SF, MI, SCD, VIF, Qabf, SSIM plus AG, PSNR, CC, Nabf)."""

CONVENTIONS = ("paper", "standard")

FUSION_METRICS: dict[str, Callable[..., float]] = {
    "EN": en,
    "MI_2EN": mi_kit,
    "MI_real": mi,
    "Qabf": qabf,
    "SCD": scd,
    "MS_SSIM": mef_ssim,
    "FMI_dct": fmi_dct,
    "FMI_w": fmi_w,
    "FMI_pixel": fmi_pixel,
    "SSIM_a": ssim_a,
    "SD": sd,
    "SF": sf,
    "AG": ag,
    "VIF": vif,
    "PSNR": psnr_fusion,
    "CC": cc,
    "Nabf": nabf,
}
"""Every fusion metric by its unambiguous name (``MI`` is resolved by convention)."""

_ALIASES = {"MEF_SSIM": "MS_SSIM", "MI_KIT": "MI_2EN", "QABF": "Qabf", "FMI_W": "FMI_w",
            "FMI_DCT": "FMI_dct", "FMI_PIXEL": "FMI_pixel", "SSIM_A": "SSIM_a", "NABF": "Nabf"}


def metric_names() -> tuple[str, ...]:
    """All names :func:`score_pair` accepts (case-insensitive)."""
    return ("MI",) + tuple(FUSION_METRICS)


def resolve_metric(name: str, convention: str = "paper") -> tuple[str, Callable[..., float]]:
    """Returns ``(canonical name, function)`` for a metric name under ``convention``.

    Raises:
      ValueError: unknown name or convention.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r} (expected 'paper' or 'standard')")
    key = str(name).strip()
    upper = key.upper()
    if upper == "MI":
        return "MI", (mi_kit if convention == "paper" else mi)
    by_upper = {k.upper(): k for k in FUSION_METRICS}
    canon = _ALIASES.get(upper) or by_upper.get(upper)
    if canon is None:
        raise ValueError(f"unknown metric {name!r} (known: {', '.join(metric_names())})")
    return canon, FUSION_METRICS[canon]


def default_metrics(convention: str = "paper") -> tuple[str, ...]:
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r} (expected 'paper' or 'standard')")
    return PAPER_METRICS if convention == "paper" else STANDARD_METRICS


def score_pair(ir, vis, fused, *, metrics: Iterable[str] | None = None,
               convention: str = "paper") -> dict[str, float]:
    """Scores one fused image against its infrared and visible sources.

    Args:
      ir, vis, fused: same-shape images in [0, 255] (see the module contract).
      metrics: names to compute, in order (case-insensitive; see
        :func:`metric_names`); default :data:`PAPER_METRICS` or
        :data:`STANDARD_METRICS` according to ``convention``.
      convention: ``"paper"`` (kit-exact Table IV values; ``MI`` = 2·EN) or
        ``"standard"`` (textbook; ``MI`` = real mutual information in bits).

    Returns:
      ``{name: value}`` in the requested order, names canonical
      (``"qabf"`` → ``"Qabf"``).

    Raises:
      ValueError: unknown metric or convention, bad shapes or values, or an
        image smaller than a requested metric's window.
    """
    names = default_metrics(convention) if metrics is None else tuple(metrics)
    resolved = [resolve_metric(n, convention) for n in names]
    a, b, f = prepare(ir, vis, fused, metric="score_pair")
    return {canon: float(fn(a, b, f)) for canon, fn in resolved}


__all__ = [
    "PAPER_METRICS", "STANDARD_METRICS", "CONVENTIONS", "FUSION_METRICS", "PSNR_MAX_DB",
    "MEF_SSIM_MIN_SIZE", "VIF_MIN_SIZE",
    "score_pair", "resolve_metric", "metric_names", "default_metrics",
    "en", "mi_kit", "mi", "qabf", "scd", "mef_ssim", "fmi", "fmi_dct", "fmi_w", "fmi_pixel", "ssim_a",
    "sd", "sf", "ag", "vif", "psnr_fusion", "cc", "nabf",
    "ssim", "psnr", "mse",
]
