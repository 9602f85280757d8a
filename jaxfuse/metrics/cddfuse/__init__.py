"""The ``cddfuse`` convention: CDDFuse's Python evaluator, quirks included.

Most recent infrared/visible fusion papers report numbers from
``utils/Evaluator.py`` of Zhaozixiang1228/MMIF-CDDFuse (read at commit
``40de0585034a57b33d3e293b6807b29f247921b6``, with ``test_IVF.py`` and
``utils/img_read_save.py`` of the same commit), called as its ``test_IVF.py``
calls it: every image read by ``image_read_cv2(path, 'GRAY')``, then
``Evaluator.EN(fi)``, ``SD``, ``SF``, ``MI(fi, ir, vi)``, ``SCD``, ``VIFF``,
``Qabf``, ``SSIM`` (the eight columns it prints, in that order), under the
versions its repository pins (NumPy 1.21, SciPy 1.7, scikit-image 0.19.2,
scikit-learn 1.1, OpenCV 4.5). ``AG``, ``CC``, ``PSNR`` and ``MSE`` are the
class's other methods. This module recomputes all twelve with NumPy alone
(no OpenCV, scikit-learn or scikit-image at run time), operation for
operation where the rounding matters.

Quirks reproduced (each function's docstring has the details):

* **Reading.** ``cv2.imread(path).astype('float32')`` (always three
  channels, BGR), then ``cv2.cvtColor(..., COLOR_BGR2GRAY)`` on *float32*
  data (OpenCV's float weights 0.299/0.587/0.114, not its fixed-point uint8
  path), then ``np.round`` (half to even). Grey files come back unchanged;
  see :func:`rgb_to_gray_cv2` for colour.
* **float32 arithmetic.** The images are float32, so NumPy keeps SD, SF, AG,
  SCD, CC, MSE, PSNR, Qabf and the SSIM maps in float32 (with float32
  accumulation in the sums and means); EN, MI, VIF and the SSIM mean are
  float64. The float32 rounding is reproduced; NumPy's float32 reductions
  changed summation order after 1.21, which moves those metrics by up to
  1e-6 relative against the pinned versions.
* **SSIM** is ``ssim(F, IR) + ssim(F, VIS)`` (a *sum*, in [-2, 2]) of
  scikit-image 0.19.2's ``structural_similarity`` with no ``data_range``: on
  float32 input the range is taken from the dtype as 2 (for values that are
  really 0-255), so ``C1 = 0.0004`` and ``C2 = 0.0036`` are nearly 0; 7x7
  uniform window, sample covariance (×49/48), reflected borders, a 3-pixel
  border cropped from the mean. In float32, the windowed variances of flat
  areas are mostly rounding, which is part of the value (float64 arithmetic
  would move TNO-21 values by up to 3e-4).
* **MI** is scikit-learn's ``mutual_info_score(F, IR) + ...(F, VIS)``, in
  **nats**, with each grey value a label.
* **VIF** is the sum of two ``vifp`` (one per source, 1 for a perfect
  copy), four scales, sigma_n² = 2; a 0/0 term counts 1.
* **Qabf** runs on 0-255 values with ``G = gF`` (not 1) where ``gX == gF``
  and orientation ``atan(Sy/Sx)`` (π/2 where ``Sx == 0``); the Sobel
  filter pads with zeros, so image borders count as edges.
* **EN** rounds with ``np.round`` (half to even) before its histogram.
* **AG** uses ``np.gradient``-style central differences (one-sided at the
  border) and ``sqrt((Gx² + Gy²)/2)``.
* **PSNR** is ``10·log10(max(F)² / MSE)``: the peak is the fused image's
  maximum, not 255, and ``MSE = (MSE(F, IR) + MSE(F, VIS))/2`` on 0-255
  values.
* **SCD, CC** are Pearson correlations over all pixels (SCD of the
  differences ``F - VIS`` with IR and ``F - IR`` with VIS).

Where CDDFuse's formula gives NaN or an infinity, this module returns a
finite value instead, documented per function: a correlation with a
constant image counts 0, a Qabf without source edges is 0, a zero MSE gives
PSNR = 100 dB (as :data:`jaxfuse.metrics.PSNR_MAX_DB`), a zero peak -100 dB.
Inputs are validated first (``ValueError`` naming the metric): 2-D grey
arrays (an RGB ``(H, W, 3)`` array is first converted with
:func:`rgb_to_gray_cv2`), values in [0, 255], equal shapes, and the minimum
size of each metric.

Layout: ``_read`` (reading and input checks), ``_stats`` (EN, SD, SF, AG,
MI, MSE, PSNR, CC, SCD, VIF) and ``_structural`` (Qabf, SSIM).
"""

from __future__ import annotations

from jaxfuse.metrics.conventions import Convention
from jaxfuse.metrics.cddfuse._read import load, rgb_to_gray_cv2
from jaxfuse.metrics.cddfuse._stats import ag, cc, en, mi, mse, psnr, scd, sd, sf, vif
from jaxfuse.metrics.cddfuse._structural import SSIM_WIN, _uniform, qabf, ssim  # noqa: F401 - _uniform: for tests

REFERENCE_COMMIT = "40de0585034a57b33d3e293b6807b29f247921b6"
"""The MMIF-CDDFuse commit whose ``utils/Evaluator.py`` this module follows."""


# ---------------------------------------------------------------------------
# The convention

DEFAULTS = ("EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM")
"""The eight columns ``test_IVF.py`` prints, in its order."""

FUNCTIONS = {
    "EN": en,
    "SD": sd,
    "SF": sf,
    "MI": mi,
    "SCD": scd,
    "VIF": vif,
    "Qabf": qabf,
    "SSIM": ssim,
    "AG": ag,
    "CC": cc,
    "PSNR": psnr,
    "MSE": mse,
}

ALIASES = {"VIFF": "VIF"}

LOWER_IS_BETTER = frozenset({"MSE"})

CONVENTION = Convention(
    name="cddfuse",
    summary="CDDFuse's utils/Evaluator.py as its test_IVF.py calls it (MI in nats, SSIM a sum)",
    functions=FUNCTIONS,
    defaults=DEFAULTS,
    load=load,
    aliases=ALIASES,
    lower_is_better=LOWER_IS_BETTER,
    note="SSIM is the sum of two SSIMs (data range 2 on 0-255 values); MI in nats; "
         "PSNR peak is max(F)",
)

__all__ = ["CONVENTION", "DEFAULTS", "FUNCTIONS", "ALIASES", "LOWER_IS_BETTER", "REFERENCE_COMMIT",
           "SSIM_WIN", "load", "rgb_to_gray_cv2", "en", "sd", "sf", "mi", "scd", "vif", "qabf", "ssim",
           "ag", "cc", "psnr", "mse"]
