"""Input conversion, validation and small filtering helpers shared by the metrics.

Every public metric calls :func:`prepare` (or :func:`prepare_one` /
:func:`prepare_two`) first, so all metrics agree on what they accept:

* 2-D grayscale arrays, ``(H, W)`` or ``(H, W, 1)``, of any real dtype
  (uint8, integer, float), with values in ``[0, 255]``;
* RGB ``(H, W, 3)`` arrays, converted to gray with the ITU-R BT.601 luma
  weights ``0.299 R + 0.587 G + 0.114 B`` (the formula of
  :func:`jaxfuse.io.rgb_to_gray`, here in float64 and without rounding).

Everything is converted to float64 before any arithmetic.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from jaxfuse import color


def to_gray64(x, *, metric: str, name: str) -> np.ndarray:
    """Returns ``x`` as a float64 ``(H, W)`` array in [0, 255], or raises ValueError."""
    try:
        a = np.asarray(x)
    except Exception as e:  # e.g. ragged lists
        raise ValueError(f"{metric}: {name} is not an array ({e})") from None
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{metric}: {name} must be a numeric image (uint8 or float in [0, 255]), "
                         f"got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 3 and a.shape[-1] == 3:
        # BT.601 luma, as jaxfuse.io.rgb_to_gray but in float64. MATLAB's rgb2gray
        # uses 0.2989/0.5870/0.1140 and rounds to uint8; see the package docstring.
        a = color.luma_dot(a, np.float64)
    elif a.ndim != 2:
        raise ValueError(f"{metric}: {name} must be a 2-D grayscale (H, W) or RGB (H, W, 3) image, "
                         f"got shape {a.shape}")
    a = a.astype(np.float64, copy=False)
    if a.size == 0:
        raise ValueError(f"{metric}: {name} is empty (shape {a.shape})")
    lo, hi = float(a.min()), float(a.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{metric}: {name} contains NaN or Inf")
    if lo < 0.0 or hi > 255.0:
        raise ValueError(f"{metric}: {name} has values in [{lo:g}, {hi:g}]; expected the 0-255 scale "
                         "(multiply [0, 1] images by 255)")
    return a


def check_size(shape, min_size: int, metric: str, why: str = "window") -> None:
    if shape[0] < min_size or shape[1] < min_size:
        raise ValueError(f"{metric}: images must be at least {min_size}x{min_size} pixels "
                         f"({why}), got {shape[0]}x{shape[1]}")


def prepare(ir, vis, fused, *, metric: str, min_size: int = 1, why: str = "window",
            need_sources: bool = True, convert=None):
    """Converts and validates a fusion triple; returns float64 ``(ir, vis, fused)``.

    With ``need_sources=False`` (no-reference metrics such as EN), ``ir`` and
    ``vis`` may be None; when given they are still checked against ``fused``.
    ``convert(x, metric, name)`` replaces :func:`to_gray64` for a convention
    that reads images its own way (e.g. CDDFuse's float32 grey).
    """
    if convert is None:
        def convert(x, metric, name):
            return to_gray64(x, metric=metric, name=name)
    f = convert(fused, metric, "fused")
    out = []
    for name, x in (("ir", ir), ("vis", vis)):
        if x is None:
            if need_sources:
                raise ValueError(f"{metric}: {name} image is required")
            out.append(None)
            continue
        a = convert(x, metric, name)
        if a.shape != f.shape:
            raise ValueError(f"{metric}: ir, vis and fused must have the same shape, "
                             f"got {name} {a.shape} and fused {f.shape}")
        out.append(a)
    check_size(f.shape, min_size, metric, why)
    return out[0], out[1], f


def prepare_two(x, y, *, metric: str, names=("image", "reconstruction"), min_size: int = 1,
                why: str = "window"):
    a = to_gray64(x, metric=metric, name=names[0])
    b = to_gray64(y, metric=metric, name=names[1])
    if a.shape != b.shape:
        raise ValueError(f"{metric}: {names[0]} and {names[1]} must have the same shape, "
                         f"got {a.shape} and {b.shape}")
    check_size(a.shape, min_size, metric, why)
    return a, b


def to_uint8_levels(x: np.ndarray) -> np.ndarray:
    """Rounds 0-255 values to integer grey levels (half away from zero, as MATLAB)."""
    return np.floor(x + 0.5).astype(np.int64)


def matlab_gaussian(size: int, sigma: float) -> np.ndarray:
    """MATLAB's ``fspecial('gaussian', size, sigma)``: 2-D, entries < eps·max zeroed, sum 1."""
    r = (size - 1) / 2.0
    t = np.arange(size, dtype=np.float64) - r
    h = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2.0 * sigma * sigma))
    h[h < np.finfo(np.float64).eps * h.max()] = 0.0
    return h / h.sum()


def separable_factor(h2: np.ndarray) -> np.ndarray | None:
    """The 1-D factor ``g`` with ``outer(g, g) == h2`` (to 1e-15), or None."""
    g = h2.sum(axis=1)
    if np.allclose(np.outer(g, g), h2, rtol=0, atol=1e-15 * h2.max()):
        return g
    return None


def correlate_valid(x: np.ndarray, h2: np.ndarray) -> np.ndarray:
    """``filter2(h2, x, 'valid')``: correlation over windows fully inside ``x``."""
    k = h2.shape[0]
    r = (k - 1) // 2
    g = separable_factor(h2)
    if g is not None and k % 2 == 1:
        # Two 1-D passes; the border values are computed and cropped away.
        y = ndimage.correlate1d(x, g, axis=0, mode="constant")[r:x.shape[0] - r]
        return ndimage.correlate1d(y, g, axis=1, mode="constant")[:, r:x.shape[1] - r]
    win = np.lib.stride_tricks.sliding_window_view(x, h2.shape)
    return np.einsum("ijkl,kl->ij", win, h2)


def box_sum_valid(x: np.ndarray, k: int) -> np.ndarray:
    """Sum over every ``k``×``k`` window inside ``x`` (summed-area table).

    For integer-valued (or dyadic) images the result is exact in float64.
    """
    c = np.zeros((x.shape[0] + 1, x.shape[1] + 1), dtype=np.float64)
    np.cumsum(np.cumsum(x, axis=0), axis=1, out=c[1:, 1:])
    return c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """MATLAB ``corr2``; 0 (not NaN) when either image is constant."""
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt(np.sum(a * a) * np.sum(b * b))
    if den == 0.0:
        return 0.0
    return float(np.sum(a * b) / den)
