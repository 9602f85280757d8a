"""How CDDFuse reads and checks its images: ``image_read_cv2(path, 'GRAY')`` as float32 ``(H, W)``."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from jaxfuse.color import LUMA
from jaxfuse.io import load_image
from jaxfuse.metrics._common import prepare, to_gray64

_F32 = np.float32
# OpenCV's float BGR->GRAY weights (R2YF, G2YF, B2YF in its color.hpp), as float32.
_CV_R, _CV_G, _CV_B = (_F32(w) for w in LUMA)  # OpenCV's float weights are BT.601's


def rgb_to_gray_cv2(image: ArrayLike) -> np.ndarray:
    """CDDFuse's grey conversion: OpenCV's float32 ``BGR2GRAY``, then ``np.round``.

    ``image_read_cv2(path, 'GRAY')`` converts the decoded 8-bit BGR image to
    float32 *before* ``cv2.cvtColor``, so OpenCV's float formula applies,
    ``0.114·B + 0.587·G + 0.299·R`` with float32 weights and float32
    products and sums, summed blue, green, red (the order of OpenCV's
    generic C++ loop), and the result is rounded half to even. A grey image
    (OpenCV reads it as three equal channels) comes back unchanged.

    On colour images this equals ``round((299·R + 587·G + 114·B) / 1000)``
    except where that value is exactly ``k + 0.5`` (about 0.1% of the pixels
    of a random colour image): there the float32 rounding decides between
    ``k`` and ``k + 1``, and OpenCV's own builds disagree among themselves
    (Intel IPP, SIMD width and FMA contraction each round such ties their
    way; opencv-python-headless 5.0 on x86-64 differs from this function on
    about 2% of the ties, 2e-5 of all pixels). OpenCV's integer path for
    uint8 input (``cv2.cvtColor(cv2.imread(path), COLOR_BGR2GRAY)``, 14-bit
    fixed-point weights), used by some other evaluators, differs on about
    0.1% of colour pixels by one level; CDDFuse does not use it.

    Args:
      image: ``(H, W, 3)`` RGB (the channel order :func:`jaxfuse.io.load_image`
        returns) or ``(H, W)`` grey, values on the 0–255 scale.

    Returns:
      float32 ``(H, W)`` with integer values in [0, 255].
    """
    a = np.asarray(image)
    if a.ndim == 2:
        r = g = b = a.astype(_F32)
    elif a.ndim == 3 and a.shape[-1] in (3, 4):
        r, g, b = (a[..., i].astype(_F32) for i in range(3))  # alpha is dropped, as cv2.imread does
    elif a.ndim == 3 and a.shape[-1] == 1:
        r = g = b = a[..., 0].astype(_F32)
    else:
        raise ValueError(f"rgb_to_gray_cv2: expected an (H, W) or (H, W, 3) image, got shape {a.shape}")
    # float32 throughout: each product and each sum rounds to float32 as OpenCV's loop does.
    gray = (b * _CV_B + g * _CV_G) + r * _CV_R
    return np.round(gray)


def load(path) -> np.ndarray:
    """Reads an image as CDDFuse's ``image_read_cv2(path, 'GRAY')`` does.

    The file is decoded by Pillow (:func:`jaxfuse.io.load_image`; for 8-bit
    PNG, BMP and TIFF files the same pixels as ``cv2.imread``), then
    converted by :func:`rgb_to_gray_cv2`. Two decoding differences from
    OpenCV remain: 16-bit files are scaled by 1/257 here and by 1/256 in
    OpenCV (one grey level apart at most), and JPEG decoders may differ by
    a level on some pixels; and ``cv2.imread`` applies a JPEG's EXIF
    orientation, which Pillow's decoding here does not.

    Args:
      path: the image file.

    Returns:
      float32 ``(H, W)`` with integer values in [0, 255], the array every
      metric of this convention takes.

    Raises:
      JaxfuseError: missing or unreadable files.
    """
    return rgb_to_gray_cv2(load_image(path))


# ---------------------------------------------------------------------------
# Validation

def _image(x, metric: str, name: str) -> np.ndarray:
    """One input as CDDFuse's float32 ``(H, W)`` array, validated."""
    if x is None:
        raise ValueError(f"{metric}: {name} image is required")
    try:
        a = np.asarray(x)
    except Exception as e:  # e.g. ragged lists
        raise ValueError(f"{metric}: {name} is not an array ({e})") from None
    if a.ndim == 3 and a.shape[-1] == 3:
        # Validate the colour values themselves (as N x 3), then convert as CDDFuse reads colour.
        to_gray64(a.reshape(-1, 3), metric=metric, name=name)
        return rgb_to_gray_cv2(a)
    return to_gray64(a, metric=metric, name=name).astype(_F32)


def _prepare(ir, vis, fused, *, metric: str, min_size: int = 1, why: str = "window",
             need_sources: bool = True):
    """Validated float32 ``(ir, vis, fused)``; ``ir``/``vis`` may be None if not needed."""
    return prepare(ir, vis, fused, metric=metric, min_size=min_size, why=why,
                   need_sources=need_sources, convert=_image)


def _quiet():
    # 0/0 and x/0 are handled explicitly by the metrics; NumPy should not warn about them.
    return np.errstate(divide="ignore", invalid="ignore", over="ignore")
