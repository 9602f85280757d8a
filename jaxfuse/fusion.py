"""Fusion: encode each source, fuse the features, decode, and the output step.

* :func:`fuse` is the pure, jittable core over a stack of k sources (defined
  in :mod:`jaxfuse.model`, beside the architectures it asks about).
* :func:`to_uint8` is the authors' output step (min–max to 0–255, truncate).
* :func:`fuse_pair` takes one infrared/visible pair as NumPy arrays in any of
  the forms :func:`jaxfuse.io.load_image` returns and applies the colour path
  of paper Sec. IV-D when the visible image is RGB (:mod:`jaxfuse.color`); it
  fuses with a network's parameters or with a weight-free method
  (:class:`jaxfuse.methods.Method`) alike.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxfuse import color, xla
from jaxfuse.color import rgb_to_ycbcr, ycbcr_to_rgb  # the colour path's conversions
from jaxfuse.engine import auto_fuse
from jaxfuse.methods import Method
from jaxfuse.model import Params, fuse

__all__ = ["OUTPUT_EPS", "fuse", "fuse_pair", "rgb_to_ycbcr", "to_uint8", "ycbcr_to_rgb"]

OUTPUT_EPS = 1e-5  # the authors' constant in the output min–max step


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


def fuse_pair(params: Params, ir: np.ndarray, vis: np.ndarray, *,
              strategy: str = "l1", fuse_fn=None) -> np.ndarray:
    """Fuses one infrared/visible pair into a uint8 image of the same size.

    Args:
      params: model parameters (any architecture), or a weight-free method
        (:func:`jaxfuse.methods.get_method`), which fuses the two gray images
        with its own output step; ``strategy`` and ``fuse_fn`` are then unused.
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
        fuse_fn = auto_fuse
    ir = np.asarray(ir, np.float32)
    vis = np.asarray(vis, np.float32)
    if ir.ndim == 3:
        ir = color.luma_dot(ir, np.float32)
    if ir.shape[:2] != vis.shape[:2]:
        raise ValueError(f"infrared {ir.shape[:2]} and visible {vis.shape[:2]} sizes differ")
    in_colour = vis.ndim == 3
    ycc = rgb_to_ycbcr(vis) if in_colour else None
    y = ycc[..., 0].astype(np.float32) if in_colour else vis
    if isinstance(params, Method):
        fused = params.fuse_gray(ir, y)
    else:
        sources = np.stack([ir, y])[:, None, :, :, None]
        fused = np.asarray(to_uint8(fuse_fn(params, sources, strategy=strategy)))[0, :, :, 0]
    if not in_colour:
        return fused
    ycc[..., 0] = fused
    return np.clip(np.rint(ycbcr_to_rgb(ycc)), 0, 255).astype(np.uint8)
