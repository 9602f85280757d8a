"""The ``paper`` convention: Res2NetFuse Table IV, exactly as the MATLAB kit computes it.

The kit shared by DenseFuse / NestFuse / RFN-Nest / Res2NetFuse, quirks
included: its MI is 2·EN (see :func:`jaxfuse.metrics.mi_kit`), its Qabf sets
``G = gF`` where ``gX == gF``, its MS_SSIM is Ma et al.'s multi-exposure SSIM.
Images are read as float luma (ITU-R BT.601, not rounded); the TNO pairs
the kit was run on are 8-bit grey, where that is the identity.
"""

from __future__ import annotations

from functools import partial

from jaxfuse.io import load_image
from jaxfuse.metrics.conventions import Convention
from jaxfuse.metrics.gradient import ag, nabf, qabf, sf
from jaxfuse.metrics.information import en, fmi_dct, fmi_pixel, fmi_w, mi, mi_kit
from jaxfuse.metrics.statistical import cc, psnr_fusion, scd, sd
from jaxfuse.metrics.structural import mef_ssim, ssim_a, vif

DEFAULTS = ("EN", "MI", "Qabf", "SCD", "MS_SSIM", "FMI_dct", "FMI_w", "SSIM_a")
"""Res2NetFuse Table IV's columns, kit-exact (MI = 2·EN)."""

FUNCTIONS = {
    "EN": en,
    "MI": mi_kit,
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

ALIASES = {"MEF_SSIM": "MS_SSIM", "MI_KIT": "MI_2EN"}

CONVENTION = Convention(
    name="paper",
    summary="Res2NetFuse Table IV, exactly as the reference MATLAB kit (MI = 2*EN)",
    functions=FUNCTIONS,
    defaults=DEFAULTS,
    load=partial(load_image, gray=True),
    aliases=ALIASES,
    lower_is_better=frozenset({"Nabf"}),
    note="MI = 2*EN, as the reference kit reports it",
)
