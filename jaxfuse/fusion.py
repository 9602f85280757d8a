"""Fusion: encode each source, fuse the features, decode, and the output step.

* :func:`fuse` is the pure, jittable core over a stack of k sources.
* :func:`to_uint8` is the authors' output step (min–max to 0–255, truncate).
* :func:`fuse_pair` takes one infrared/visible pair as NumPy arrays in any of
  the forms :func:`jaxfuse.io.load_image` returns and applies the colour path
  of paper Sec. IV-D when the visible image is RGB.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxfuse import model, xla
from jaxfuse.strategies import get_strategy

OUTPUT_EPS = 1e-5  # the authors' constant in the output min–max step


@xla.jit(static_argnames=("strategy",))
def fuse(params: model.Params, sources: jax.Array, *, strategy: str = "l1",
         mask: jax.Array | None = None, value_range=None) -> jax.Array:
    """Fuses k registered grayscale sources.

    Args:
      params: Res2NetFuse parameters.
      sources: ``(k, N, H, W, 1)`` float, 0–255; ``k ≥ 2`` sources of N images.
      strategy: a name in :data:`jaxfuse.strategies.STRATEGIES`.
      mask: optional ``(N, H, W, 1)``, 1 on the true image and 0 on padding
        (where ``sources`` must be 0): padded images then fuse exactly as
        unpadded ones inside the mask (see :mod:`jaxfuse.engine`).
      value_range: for ``strategy="mean"`` on a tile, the whole image's
        feature-mean range (:func:`jaxfuse.strategies.mean_range`).

    Returns:
      The decoded fused images ``(N, H, W, 1)``, float, before the output step.
    """
    sources = jnp.asarray(sources, jnp.float32)
    if sources.ndim != 5 or sources.shape[-1] != 1 or sources.shape[0] < 2:
        raise ValueError(f"sources must be (k>=2, N, H, W, 1), got {sources.shape}")
    k, n = sources.shape[:2]
    flat_mask = None if mask is None else jnp.tile(mask, (k, 1, 1, 1))
    feats = model.encode(params, sources.reshape((k * n,) + sources.shape[2:]), mask=flat_mask)
    feats = feats.reshape((k, n) + feats.shape[1:])
    kw = {"value_range": value_range} if value_range is not None else {}
    fn = get_strategy(strategy)
    if model.config_from_params(params).arch == "msdnet":
        # MSDNet fuses each scale's 64 channels on its own (its paper, Sec. 3).
        fused = jnp.concatenate([fn(f, mask=mask) for f in jnp.split(feats, model.MSD_SCALES, -1)], -1)
    else:
        fused = fn(feats, mask=mask, **kw)
    return model.decode(params, fused, mask=mask)


@xla.jit
def to_uint8(images: jax.Array) -> jax.Array:
    """The authors' output step, per image: (o − min)/(max − min + 1e-5)·255, truncated.

    Args:
      images: ``(..., H, W, C)``; min and max are taken over ``H, W, C``.
    """
    images = jnp.asarray(images, jnp.float32)
    lo = jnp.min(images, axis=(-3, -2, -1), keepdims=True)
    hi = jnp.max(images, axis=(-3, -2, -1), keepdims=True)
    scaled = (images - lo) / (hi - lo + OUTPUT_EPS) * 255.0
    return jnp.clip(jnp.floor(scaled), 0, 255).astype(jnp.uint8)


# Full-range ITU-R BT.601 YCbCr (JPEG / ITU-T T.871), on 0-255 values.
_RGB2YCC = np.array([[0.299, 0.587, 0.114],
                     [-0.168736, -0.331264, 0.5],
                     [0.5, -0.418688, -0.081312]], np.float64)
_YCC2RGB = np.array([[1.0, 0.0, 1.402],
                     [1.0, -0.344136, -0.714136],
                     [1.0, 1.772, 0.0]], np.float64)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """Full-range BT.601 YCbCr of an ``(..., 3)`` 0–255 RGB array (Cb, Cr offset 128)."""
    ycc = np.asarray(rgb, np.float64) @ _RGB2YCC.T
    ycc[..., 1:] += 128.0
    return ycc


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr` (unclipped)."""
    ycc = np.array(ycc, np.float64)
    ycc[..., 1:] -= 128.0
    return ycc @ _YCC2RGB.T


def fuse_pair(params: model.Params, ir: np.ndarray, vis: np.ndarray, *,
              strategy: str = "l1", fuse_fn=None) -> np.ndarray:
    """Fuses one infrared/visible pair into a uint8 image of the same size.

    Args:
      params: Res2NetFuse parameters.
      ir: ``(H, W)`` or ``(H, W, 3)`` float, 0–255 (RGB is reduced to its
        BT.601 luma).
      vis: ``(H, W)`` grayscale or ``(H, W, 3)`` RGB, 0–255.
      strategy: fusion strategy name.
      fuse_fn: the engine, a function with the signature of :func:`fuse`;
        default :func:`jaxfuse.engine.auto_fuse` (exact shape buckets, tiles
        for very large images).

    Returns:
      ``(H, W)`` uint8 for a grayscale visible image; ``(H, W, 3)`` uint8 RGB
      for an RGB one, by the paper's colour path: visible RGB → YCbCr, fuse Y
      with the infrared image, recombine the fused Y with the visible Cb and
      Cr, back to RGB (rounded and clipped to 0–255).
    """
    if fuse_fn is None:
        from jaxfuse.engine import auto_fuse as fuse_fn
    ir = np.asarray(ir, np.float32)
    vis = np.asarray(vis, np.float32)
    if ir.ndim == 3:
        ir = (ir @ _RGB2YCC[0].astype(np.float32)).astype(np.float32)
    if ir.shape[:2] != vis.shape[:2]:
        raise ValueError(f"infrared {ir.shape[:2]} and visible {vis.shape[:2]} sizes differ")
    color = vis.ndim == 3
    ycc = rgb_to_ycbcr(vis) if color else None
    y = ycc[..., 0].astype(np.float32) if color else vis
    sources = np.stack([ir, y])[:, None, :, :, None]
    out = to_uint8(fuse_fn(params, sources, strategy=strategy))
    fused = np.asarray(out)[0, :, :, 0]
    if not color:
        return fused
    ycc[..., 0] = fused
    return np.clip(np.rint(ycbcr_to_rgb(ycc)), 0, 255).astype(np.uint8)
