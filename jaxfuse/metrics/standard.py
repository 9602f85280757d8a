"""The ``standard`` convention: each metric as its original paper defines it.

Every function's docstring cites the paper it follows. Differences from the
evaluators (``paper``, ``cddfuse``, ``vifb``) are deliberate and listed in
the README's metric table: real mutual information in bits (``mi_base``
"nats" for natural logs), Qabf with ``G = min/max`` (1 at a tie), SSIM_a as
the mean of the two SSIMs, PSNR with peak 255.
"""

from __future__ import annotations

from functools import partial

from jaxfuse.io import load_image
from jaxfuse.metrics.conventions import Convention
from jaxfuse.metrics.entropy import ce, mse_fusion, nmi, qncie, rmse_fusion, te
from jaxfuse.metrics.gradient import ag, ei, nabf, qabf, sf
from jaxfuse.metrics.information import en, fmi_dct, fmi_edge, fmi_gradient, fmi_pixel, fmi_w, mi
from jaxfuse.metrics.quality import qe, qp, qw, qy
from jaxfuse.metrics.statistical import cc, psnr_fusion, scd, sd
from jaxfuse.metrics.structural import mef_ssim, ssim_a, vif
from jaxfuse.metrics.vifb import qcb_gray, qcv_gray

DEFAULTS = ("EN", "MI", "SD", "SF", "AG", "SCD", "VIF", "Qabf", "SSIM_a", "PSNR", "CC", "Nabf")
"""The textbook set of recent papers (EN, SD, SF, MI, SCD, VIF, Qabf, SSIM plus AG, PSNR, CC, Nabf)."""

LOWER_IS_BETTER = frozenset({"Nabf", "CE", "Qcv", "MSE", "RMSE"})


def functions(mi_base: str = "bits") -> dict:
    """The standard metric table; ``mi_base`` "bits" (default) or "nats" for MI."""
    if mi_base not in ("bits", "nats"):
        raise ValueError(f"MI: base must be 'bits' or 'nats', got {mi_base!r}")
    return {
        "EN": en,
        "MI": partial(mi, base=mi_base),
        "SD": sd,
        "SF": sf,
        "AG": ag,
        "SCD": scd,
        "VIF": vif,
        "Qabf": partial(qabf, kit=False),
        "SSIM_a": ssim_a,
        "PSNR": psnr_fusion,
        "CC": cc,
        "Nabf": nabf,
        "CE": ce,
        "NMI": nmi,
        "QNCIE": qncie,
        "TE": te,
        "EI": ei,
        "Qy": qy,
        "Qcb": qcb_gray,
        "Qcv": qcv_gray,
        "Qp": qp,
        "Qw": qw,
        "Qe": qe,
        "FMI_pixel": fmi_pixel,
        "FMI_gradient": fmi_gradient,
        "FMI_edge": fmi_edge,
        "FMI_dct": fmi_dct,
        "FMI_w": fmi_w,
        "MEF_SSIM": mef_ssim,
        "MSE": mse_fusion,
        "RMSE": rmse_fusion,
    }


def make(mi_base: str = "bits") -> Convention:
    """The ``standard`` convention with MI in ``mi_base`` ("bits" or "nats")."""
    return Convention(
        name="standard",
        summary="each metric as its original paper defines it (MI in bits, Qabf with G = min/max)",
        functions=functions(mi_base),
        defaults=DEFAULTS,
        load=partial(load_image, gray=True),
        aliases={"MS_SSIM": "MEF_SSIM", "MI_real": "MI"},
        lower_is_better=LOWER_IS_BETTER,
        note="" if mi_base == "bits" else "MI in nats",
    )


CONVENTION = make()
