"""MATLAB semantics VIFB's files rely on: ``imread``, ``round``, ``rgb2gray``, ``normalize1``, ...

Also the small kernels the metrics share: an inner product without BLAS,
MATLAB's ``freqspace`` grid, ``blkproc`` block sums.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from PIL import Image

from jaxfuse.errors import JaxfuseError
from jaxfuse.io import load_image
from jaxfuse.metrics._common import to_gray64

# MATLAB's rgb2gray: the first row of inv([1 .956 .621; 1 -.272 -.647; 1 -1.106 1.703]).
_RGB2GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)

# Pillow modes read as colour: jaxfuse.io.load_image converts these to RGB too
# (palette images with transparency through RGBA, which leaves RGB unchanged).
_COLOUR_MODES = ("P", "CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa")


def load(path) -> np.ndarray:
    """Reads an image file as MATLAB's ``imread`` gives it to VIFB.

    One-channel files give ``(H, W)``, three-channel files ``(H, W, 3)``,
    **also when the three channels are equal** (VIFB's infrared JPEGs), as
    ``uint8``. JPEGs are decoded by Pillow (libjpeg-turbo, accurate integer
    IDCT, fancy upsampling), which reproduces VIFB's values. Alpha is dropped
    (``imread`` returns it separately); palette and other colour modes
    (CMYK, YCbCr, ...) are converted to RGB by Pillow, as
    :func:`jaxfuse.io.load_image` converts them but keeping equal channels;
    one-channel modes (1-bit, 16-bit, float) are read by
    :func:`jaxfuse.io.load_image` and rounded to grey levels.

    Raises:
      JaxfuseError: missing, unreadable or unsupported files.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                img.load()
                if img.mode in ("L", "RGB"):
                    return np.array(img, dtype=np.uint8)
                if img.mode == "RGBA" or img.mode in _COLOUR_MODES:
                    return np.array(img.convert("RGB"), dtype=np.uint8)
    except Exception:  # noqa: BLE001 - let load_image word the problem
        load_image(path)  # raises JaxfuseError for anything Pillow cannot read
        raise JaxfuseError(path, "unreadable image") from None
    # One-channel modes (1, LA, 16-bit, 32-bit, float): jaxfuse.io.load_image's
    # scaling, which gives these (H, W) as they are.
    a = load_image(path)
    return np.clip(np.floor(a.astype(np.float64) + 0.5), 0, 255).astype(np.uint8)


def _image(x, metric: str, name: str) -> np.ndarray:
    """``x`` as float64 grey levels, ``(H, W)`` or ``(H, W, 3)``, or ValueError."""
    try:
        a = np.asarray(x)
    except Exception as e:  # e.g. ragged lists
        raise ValueError(f"{metric}: {name} is not an array ({e})") from None
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{metric}: {name} must be a numeric image (uint8 or 0-255 values), "
                         f"got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] == 3)):
        raise ValueError(f"{metric}: {name} must be (H, W) grey or (H, W, 3) colour, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{metric}: {name} is empty (shape {a.shape})")
    if a.dtype == np.uint8:
        return a.astype(np.float64)
    # Finite and on the 0-255 scale, checked as for every other metric (on a
    # grey view: the channels side by side, not converted).
    a = to_gray64(a.reshape(a.shape[0], -1), metric=metric, name=name).reshape(a.shape)
    return _round_half_up(a)


def _round_half_up(x: np.ndarray) -> np.ndarray:
    """MATLAB's ``round`` for non-negative values (exact at every .5 tie)."""
    r = np.floor(x)
    return r + (x - r >= 0.5)


def _rgb2gray(x: np.ndarray, rounded: bool) -> np.ndarray:
    """MATLAB ``rgb2gray``: rounded for ``uint8`` input, unrounded for ``double``."""
    g = _RGB2GRAY[0] * x[..., 0] + _RGB2GRAY[1] * x[..., 1] + _RGB2GRAY[2] * x[..., 2]
    return np.clip(_round_half_up(g), 0, 255) if rounded else g


def _gray_u8(x):
    return _rgb2gray(x, rounded=True) if x.ndim == 3 else x


def _gray_double(x):
    return _rgb2gray(x, rounded=False) if x.ndim == 3 else x


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Inner product of two 1-D float64 arrays.

    ``einsum`` rather than BLAS: OpenBLAS threads spin up for long vectors and
    cost more than the product itself on a busy machine.
    """
    return float(np.einsum("i,i->", a, b))


def _normalize1(x: np.ndarray, levels: bool = False) -> np.ndarray:
    """Liu's ``normalize1`` (also ``mutinf``'s stretch): ``round((x − min)/(max − min)·255)``.

    A constant image becomes zeros (``normalize1``: NaN unless all 0;
    ``mutinf``: zeros). With ``levels`` (``x`` holds integer grey levels)
    and ``min = 0, max = 255`` the stretch is the identity (checked for all
    256 levels), so the arithmetic is skipped.
    """
    hi, lo = float(x.max()), float(x.min())
    if hi == lo:
        return np.zeros_like(x)
    if levels and lo == 0.0 and hi == 255.0:
        return x
    return _round_half_up((x - lo) / (hi - lo) * 255.0)


def _norm_levels(x: np.ndarray) -> np.ndarray:
    return _normalize1(x, levels=True)


def _freqspace(h: int, w: int):
    """``[u, v] = freqspace([h, w], 'meshgrid')``: column and row frequency grids."""
    f1 = (np.arange(w, dtype=np.float64) - math.floor(w / 2)) * (2.0 / w)
    f2 = (np.arange(h, dtype=np.float64) - math.floor(h / 2)) * (2.0 / h)
    return f1[None, :], f2[:, None]


def _half_spectrum(full_centred: np.ndarray) -> np.ndarray:
    """A centred (``fftshift``-ed) symmetric filter in ``rfft2`` layout.

    ``ifft2(ifftshift(fftshift(fft2(x)) .* S))`` equals
    ``irfft2(rfft2(x) * ifftshift(S)[:, :w//2+1])`` because ``S`` depends on
    ``|u|, |v|`` only, so the product stays conjugate-symmetric and MATLAB's
    result is real.
    """
    w = full_centred.shape[1]
    return np.ascontiguousarray(np.fft.ifftshift(full_centred)[:, : w // 2 + 1])


def _block_sum(x: np.ndarray, n: int) -> np.ndarray:
    """``blkproc(x, [n n], @(b) sum(b(:)))`` with blkproc's zero padding."""
    h, w = x.shape
    ph, pw = -(-h // n) * n, -(-w // n) * n
    if (ph, pw) != (h, w):
        x = np.pad(x, ((0, ph - h), (0, pw - w)))
    return x.reshape(ph // n, n, pw // n, n).sum(axis=(1, 3))
