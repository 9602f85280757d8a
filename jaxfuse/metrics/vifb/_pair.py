"""VIFB's channel loop and the per-pair caches: :class:`VifbPair` and the images it holds."""

from __future__ import annotations

from typing import Iterable

import numpy as np
from numpy.typing import ArrayLike

from jaxfuse.metrics._common import check_size
from jaxfuse.metrics.vifb._matlab import _image
from jaxfuse.metrics.vifb._metrics import _METRICS

DEFAULTS = ("Avg_gradient", "Cross_entropy", "Edge_intensity", "Entropy", "Mutinf", "Psnr", "Qabf",
            "Qcb", "Qcv", "Rmse", "Spatial_frequency", "Ssim", "Variance")
"""VIFB's 13 metrics, in the order of its ``metrics/`` folder."""

MIN_SIZE = {"Avg_gradient": (2, "pixel differences"), "Spatial_frequency": (2, "pixel differences"),
            "Edge_intensity": (3, "3x3 Sobel window"), "Qabf": (3, "3x3 Sobel window"),
            "Qcv": (3, "3x3 Sobel window"), "Ssim": (11, "11x11 Gaussian window")}
"""Smallest image side per metric (others: 1), with the reason."""

# Metrics whose file loops over the fused image's channels with img1(:,:,k).
_FUSED_ONLY = frozenset({"Avg_gradient", "Edge_intensity", "Spatial_frequency"})


def _check_shapes(metric: str, vis: "_Img", ir: "_Img", fused: "_Img") -> None:
    for name, a in (("vis", vis), ("ir", ir)):
        if a.shape[:2] != fused.shape[:2]:
            raise ValueError(f"{metric}: ir, vis and fused must have the same height and width, "
                             f"got {name} {a.shape} and fused {fused.shape}")
    size, why = MIN_SIZE.get(metric, (1, ""))
    check_size(fused.shape, size, metric, why)


def _units(metric: str, vis: "_Img", ir: "_Img", fused: "_Img"):
    """VIFB's channel loop: ``[(vis key, ir key, fused key), ...]``, key None = whole image."""
    if fused.ndim == 2:
        return [(None, None, None)]
    if vis.ndim == 2:
        raise ValueError(f"{metric}: VIFB's metrics{metric}.m takes channel k of the visible image for "
                         "each channel of a colour fused image; a grey visible image with a colour "
                         "fused image is an error there")
    if ir.ndim == 2:
        return [(k, None, k) for k in range(3)]
    return [(k, k, k) for k in range(3)]


class _Img:
    """One image: the whole array (for ``b == 1`` paths) and contiguous channel planes."""

    __slots__ = ("full", "planes", "_u8", "_f32")

    def __init__(self, a: np.ndarray):
        self.full = a
        self.planes = [a] if a.ndim == 2 else [np.ascontiguousarray(a[..., k]) for k in range(3)]
        self._u8 = None
        self._f32 = None

    @property
    def ndim(self) -> int:
        return self.full.ndim

    @property
    def shape(self):
        return self.full.shape

    def part(self, key):
        return self.full if key is None else self.planes[key]

    def u8(self):
        """Planes as uint8 (bincount input)."""
        if self._u8 is None:
            self._u8 = [p.astype(np.uint8) for p in self.planes]
        return self._u8

    def f32(self):
        """Planes as float32: exact for grey levels and their small integer combinations."""
        if self._f32 is None:
            self._f32 = [p.astype(np.float32) for p in self.planes]
        return self._f32


class VifbPair:
    """One infrared/visible pair, with VIFB's source-only work kept for many fused images.

    ``VifbPair(ir, vis).score(fused)`` gives what every function of
    :data:`CONVENTION` gives on ``(ir, vis, fused)``; scoring several fused
    images of the same pair reuses the sources' histograms, filtered images
    and gradients.

    Args:
      ir, vis: ``(H, W)`` or ``(H, W, 3)`` images of the same height and
        width, 0–255 grey levels (as :func:`load` returns them).
      metric: name used in error messages.
    """

    def __init__(self, ir: ArrayLike, vis: ArrayLike, *, metric: str = "vifb"):
        self.ir = _Img(_image(ir, metric, "ir"))
        self.vis = _Img(_image(vis, metric, "vis"))
        if self.ir.shape[:2] != self.vis.shape[:2]:
            raise ValueError(f"{metric}: ir, vis and fused must have the same height and width, "
                             f"got ir {self.ir.shape} and vis {self.vis.shape}")
        self._memo: dict = {}

    def _src(self, which: str, key) -> np.ndarray:
        return (self.vis if which == "vis" else self.ir).part(key)

    def _get(self, tag, which, key, fn):
        """Memoised ``fn(source part)`` for source ``which`` ("vis"/"ir"), channel ``key``."""
        k = (tag, which, key)
        if k not in self._memo:
            self._memo[k] = fn(self._src(which, key))
        return self._memo[k]

    def _get2(self, tag, unit, fn):
        """Memoised ``fn()`` depending on both sources' channels of ``unit``."""
        k = (tag, unit[0], unit[1])
        if k not in self._memo:
            self._memo[k] = fn()
        return self._memo[k]

    def score(self, fused: ArrayLike, metrics: Iterable[str] | None = None) -> dict[str, float]:
        """``{name: value}`` for ``metrics`` (VIFB names; default: all 13 in VIFB's order)."""
        names = list(DEFAULTS if metrics is None else metrics)
        for n in names:
            if n not in _METRICS:
                raise ValueError(f"unknown metric {n!r} for convention 'vifb' (known: {', '.join(DEFAULTS)})")
        ctx = _Fused(_image(fused, names[0] if len(names) == 1 else "vifb", "fused"))
        return {n: self._one(n, ctx) for n in names}

    def _one(self, name: str, ctx: "_Fused") -> float:
        _check_shapes(name, self.vis, self.ir, ctx.img)
        if name in _FUSED_ONLY:
            return float(_METRICS[name](self, ctx, None))
        units = _units(name, self.vis, self.ir, ctx.img)
        vals = [_METRICS[name](self, ctx, u) for u in units]
        return float(vals[0]) if len(vals) == 1 else float(sum(vals) / len(vals))


class _Fused:
    """One fused image and its memoised per-channel quantities."""

    def __init__(self, f: np.ndarray):
        self.img = _Img(f)
        self._memo: dict = {}

    def part(self, key) -> np.ndarray:
        return self.img.part(key)

    def get(self, tag, key, fn):
        k = (tag, key)
        if k not in self._memo:
            self._memo[k] = fn(self.part(key))
        return self._memo[k]
