"""Fusion engines for real folders: shape buckets and tiles, both exact.

:func:`jaxfuse.fusion.fuse` compiles once per image shape. A folder of mixed
sizes (the 21 TNO pairs have 12) would compile once per size, and a very
large image would need memory in proportion to its area times 64 channels.

* :func:`bucketed_fuse` pads each image with zeros up to a multiple of
  ``bucket`` pixels and masks every layer to the true image, which emulates
  the network's zero "same" padding exactly (and the mean strategy's min–max
  is taken over the true image only). Compiles are bounded by the number of
  distinct padded shapes.
* :func:`tiled_fuse` fuses tiles of a fixed size with a halo of at least the
  receptive radius (12 pixels for Res2NetFuse), so every output pixel sees
  exactly the input it would see untiled. The mean strategy's whole-image feature range is
  found in a first encoder-only pass; the output step's min–max is applied
  to the assembled image. Memory is bounded by the tile size.

Both have the signature of :func:`jaxfuse.fusion.fuse` (sources
``(k, N, H, W, 1)``), so they plug into :func:`jaxfuse.fusion.fuse_pair`.
Both need an architecture whose layers can be masked
(:attr:`jaxfuse.model.ArchSpec.maskable`); :func:`auto_fuse` fuses the others
at their true size.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from jaxfuse import model, xla
from jaxfuse.model import fuse

DEFAULT_BUCKET = 32  # TNO-21: 9 shapes, 3.6 % padding (64: 8 shapes, 7.1 %); 480×640 is unpadded
DEFAULT_TILE = 512
TILE_ABOVE_PIXELS = 1536 * 1536  # images larger than this are fused by tiles


def _padded(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """Zero-pads the H, W axes (-3, -2) of ``x`` at the bottom/right to ``h × w``."""
    pad = [(0, 0)] * x.ndim
    pad[-3] = (0, h - x.shape[-3])
    pad[-2] = (0, w - x.shape[-2])
    return np.pad(x, pad)


def _mask(n: int, h: int, w: int, vh: int, vw: int) -> np.ndarray:
    m = np.zeros((n, h, w, 1), np.float32)
    m[:, :vh, :vw] = 1.0
    return m


def bucket_shape(h: int, w: int, bucket: int = DEFAULT_BUCKET) -> tuple[int, int]:
    """The padded shape an ``h × w`` image is fused at."""
    return bucket * math.ceil(h / bucket), bucket * math.ceil(w / bucket)


def bucketed_fuse(params, sources, *, strategy: str = "l1", bucket: int = DEFAULT_BUCKET):
    """:func:`jaxfuse.fusion.fuse` on zero-padded, masked images; exact, fewer compiles."""
    sources = np.asarray(sources, np.float32)
    k, n, h, w, _ = sources.shape
    ph, pw = bucket_shape(h, w, bucket)
    if (ph, pw) == (h, w):
        return fuse(params, sources, strategy=strategy)
    out = fuse(params, _padded(sources, ph, pw), strategy=strategy, mask=_mask(n, ph, pw, h, w))
    return out[:, :h, :w]


def _tiles(h: int, w: int, tile: int):
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            yield y0, min(y0 + tile, h), x0, min(x0 + tile, w)


def _tile_input(sources, y0, y1, x0, x1, halo, size):
    """The input window of one tile, zero-padded to ``size``, and two masks.

    ``net_mask`` marks the true image (not the window): zeros beyond the
    image border act as the network's "same" padding, while the window's cut
    inside the image only disturbs pixels farther than ``halo`` from the
    tile's output region. ``out_mask`` marks the output region itself, where
    features are exact (for whole-image statistics). ``offset`` is where the
    output region starts in the window.
    """
    k, n, h, w, _ = sources.shape
    a0, a1 = max(0, y0 - halo), min(h, y1 + halo)
    b0, b1 = max(0, x0 - halo), min(w, x1 + halo)
    win = _padded(sources[:, :, a0:a1, b0:b1], size, size)
    net_mask = np.zeros((n, size, size, 1), np.float32)
    net_mask[:, : a1 - a0, : b1 - b0] = 1.0
    out_mask = np.zeros_like(net_mask)
    out_mask[:, y0 - a0:y1 - a0, x0 - b0:x1 - b0] = 1.0
    return win, net_mask, out_mask, (y0 - a0, x0 - b0)


def tiled_fuse(params, sources, *, strategy: str = "l1", tile: int = DEFAULT_TILE,
               halo: int | None = None):
    """:func:`jaxfuse.fusion.fuse` by tiles: exact, memory bounded by ``tile``.

    Args:
      sources: ``(k, N, H, W, 1)``, any H, W.
      tile: output tile side; each tile is computed on ``tile + 2·halo``
        pixels, one compiled shape for the whole image.
      halo: context on each side; at least the architecture's receptive
        radius (:attr:`jaxfuse.model.ArchSpec.receptive_radius`, 12 for
        Res2NetFuse; the default) for an exact result.

    Returns:
      ``(N, H, W, 1)`` float32 NumPy array, equal to the untiled result up
      to float rounding.
    """
    spec = model.arch_spec(params)
    if not spec.maskable:
        raise ValueError(f"{spec.title} is reflection-padded and cannot be fused by tiles; "
                         "use jaxfuse.fusion.fuse on the true size")
    radius = spec.receptive_radius
    if halo is None:
        halo = radius
    if halo < radius:
        raise ValueError(f"halo {halo} is below the receptive radius {radius}")
    return _tiled_fuse(params, sources, strategy, tile, halo)


def _tiled_fuse(params, sources, strategy, tile, halo):
    sources = np.asarray(sources, np.float32)
    k, n, h, w, _ = sources.shape
    size = tile + 2 * halo
    value_range = None
    if strategy == "mean":
        groups = model.arch_spec(params).fusion_groups
        lo = [np.full((k, n, 1, 1, 1), np.inf, np.float32) for _ in range(groups)]
        hi = [np.full((k, n, 1, 1, 1), -np.inf, np.float32) for _ in range(groups)]
        for y0, y1, x0, x1 in _tiles(h, w, tile):
            win, net_mask, out_mask, _ = _tile_input(sources, y0, y1, x0, x1, halo, size)
            # Features inside the output region are exact, so their min/max is too.
            ranges = _tile_range_masked(params, win, net_mask, out_mask)
            for g, (t_lo, t_hi) in enumerate([ranges] if groups == 1 else ranges):
                lo[g], hi[g] = np.minimum(lo[g], t_lo), np.maximum(hi[g], t_hi)
        pairs = [(jnp.asarray(a), jnp.asarray(b)) for a, b in zip(lo, hi)]
        value_range = pairs[0] if groups == 1 else tuple(pairs)
    out = np.empty((n, h, w, 1), np.float32)
    for y0, y1, x0, x1 in _tiles(h, w, tile):
        win, net_mask, _, (oy, ox) = _tile_input(sources, y0, y1, x0, x1, halo, size)
        res = fuse(params, win, strategy=strategy, mask=net_mask, value_range=value_range)
        out[:, y0:y1, x0:x1] = np.asarray(res)[:, oy:oy + y1 - y0, ox:ox + x1 - x0]
    return out


@xla.jit
def _tile_range_masked(params, win, net_mask, stat_mask):
    """Feature-mean range over ``stat_mask`` of a window encoded under ``net_mask``.

    As :func:`jaxfuse.model.feature_range`: ``(lo, hi)``, or one pair per fusion group.
    """
    k, n = win.shape[:2]
    feats = model.encode(params, win.reshape((k * n,) + win.shape[2:]),
                         mask=jnp.tile(net_mask, (k, 1, 1, 1)))
    return model.feature_range(params, feats.reshape((k, n) + feats.shape[1:]), mask=stat_mask)


def auto_fuse(params, sources, *, strategy: str = "l1"):
    """Buckets for ordinary images, tiles above :data:`TILE_ABOVE_PIXELS`.

    Architectures that cannot be masked exactly (reflection padding: DenseFuse,
    MSDNet; :attr:`jaxfuse.model.ArchSpec.maskable`) are fused at their true
    size, one compile per image size.
    """
    if not model.arch_spec(params).maskable:
        return fuse(params, sources, strategy=strategy)
    h, w = np.shape(sources)[2:4]
    if h * w > TILE_ABOVE_PIXELS:
        return tiled_fuse(params, sources, strategy=strategy)
    return bucketed_fuse(params, sources, strategy=strategy)
