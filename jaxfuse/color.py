"""ITU-R BT.601 colour conversions on 0–255 values: the one home of their constants.

* :func:`luma` — ``0.299 R + 0.587 G + 0.114 B`` in float32, channel by channel
  (:func:`jaxfuse.io.rgb_to_gray`, image loading with ``gray=True``).
* :func:`luma_dot` — the same weights as a dot product over the channel axis
  in a chosen precision: float32 for the infrared image of the colour path
  (:func:`jaxfuse.fusion.fuse_pair`), float64 for the metrics' input
  conversion (:func:`jaxfuse.metrics._common.to_gray64`).
* :func:`rgb_to_ycbcr` / :func:`ycbcr_to_rgb` — full-range BT.601 YCbCr
  (JPEG / ITU-T T.871), float64, Cb and Cr offset by 128: the paper's colour
  path (Sec. IV-D).

The two luma forms can differ in the last bit (a left-to-right float32 sum
against a dot product whose summation order NumPy chooses), so each caller
keeps the form and precision it has always used.

Deliberately different conversions live with the evaluation kits they mimic:
MATLAB's ``rgb2gray`` (0.2989/0.5870/0.1140, rounded to uint8) in
:mod:`jaxfuse.metrics.vifb`, OpenCV's fixed-point ``cvtColor`` in
:mod:`jaxfuse.metrics.cddfuse`.
"""

from __future__ import annotations

import numpy as np

LUMA = (0.299, 0.587, 0.114)  # BT.601 weights of R, G, B
CHROMA_OFFSET = 128.0  # Cb and Cr are stored offset by 128 on the 0-255 scale

# Rows Y, Cb, Cr (before the offset) from R, G, B; and its inverse.
RGB_TO_YCBCR = np.array([LUMA,
                         [-0.168736, -0.331264, 0.5],
                         [0.5, -0.418688, -0.081312]], np.float64)
YCBCR_TO_RGB = np.array([[1.0, 0.0, 1.402],
                         [1.0, -0.344136, -0.714136],
                         [1.0, 1.772, 0.0]], np.float64)
for _table in (RGB_TO_YCBCR, YCBCR_TO_RGB):
    _table.flags.writeable = False

_LUMA_DOT = {np.dtype(np.float64): np.array(LUMA, np.float64),
             np.dtype(np.float32): np.array(LUMA, np.float64).astype(np.float32)}


def luma(rgb) -> np.ndarray:
    """BT.601 luma of an ``(..., 3)`` array as float32, same scale as the input.

    Evaluated as ``R·0.299 + G·0.587 + B·0.114``, left to right, in float32.
    """
    rgb = np.asarray(rgb, dtype=np.float32)
    wr, wg, wb = LUMA
    return (rgb[..., 0] * wr + rgb[..., 1] * wg + rgb[..., 2] * wb).astype(np.float32)


def luma_dot(rgb, dtype=np.float64) -> np.ndarray:
    """BT.601 luma of an ``(..., 3)`` array as ``rgb @ weights`` in ``dtype``.

    Args:
      rgb: any real dtype; converted to ``dtype`` (float32 or float64) first.
      dtype: the precision of the product and of the result.
    """
    dtype = np.dtype(dtype)
    try:
        weights = _LUMA_DOT[dtype]
    except KeyError:
        raise ValueError(f"luma_dot computes in float32 or float64, not {dtype}") from None
    return (np.asarray(rgb).astype(dtype) @ weights).astype(dtype, copy=False)


def rgb_to_ycbcr(rgb) -> np.ndarray:
    """Full-range BT.601 YCbCr of an ``(..., 3)`` 0–255 RGB array (float64; Cb, Cr offset 128)."""
    ycc = np.asarray(rgb, np.float64) @ RGB_TO_YCBCR.T
    ycc[..., 1:] += CHROMA_OFFSET
    return ycc


def ycbcr_to_rgb(ycc) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr` (float64, unclipped)."""
    ycc = np.array(ycc, np.float64)
    ycc[..., 1:] -= CHROMA_OFFSET
    return ycc @ YCBCR_TO_RGB.T
