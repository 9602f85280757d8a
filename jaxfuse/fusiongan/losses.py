"""FusionGAN's losses: the content loss (intensity + ξ·Laplacian), the least-squares
adversarial terms and their soft labels.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
from jax import lax

from jaxfuse.fusiongan.networks import LAPLACIAN, XI, _check

def laplacian(images: jax.Array) -> jax.Array:
    """The authors' ``gradient``: the 4-neighbour Laplacian with zero "same" padding, NHWC, C=1."""
    images = _check(images, "images", 1)
    kernel = jnp.asarray(LAPLACIAN, jnp.float32)[:, :, None, None]
    return lax.conv_general_dilated(images, kernel, (1, 1), "SAME",
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))


def content_loss(fused: jax.Array, ir: jax.Array, vis: jax.Array, *, xi: float = XI) -> jax.Array:
    """L_content per image: mean (I_f − I_r)² + ξ · mean (∇I_f − ∇I_v)², ``(N,)``.

    All three ``(N, H, W, 1)`` on the networks' scale (:func:`normalize`).
    The authors' scalar is the mean over the batch.
    """
    fused, ir, vis = (_check(a, n, 1) for a, n in ((fused, "fused"), (ir, "ir"), (vis, "vis")))
    if not fused.shape == ir.shape == vis.shape:
        raise ValueError(f"fused {fused.shape}, ir {ir.shape} and vis {vis.shape} must have one shape")
    intensity = jnp.mean(jnp.square(fused - ir), axis=(1, 2, 3))
    grad = jnp.mean(jnp.square(laplacian(fused) - laplacian(vis)), axis=(1, 2, 3))
    return intensity + xi * grad


def discriminator_loss(d_real: jax.Array, d_fake: jax.Array, real_labels: jax.Array,
                       fake_labels: jax.Array) -> jax.Array:
    """The discriminator's least-squares loss per image: (D(I_v) − a)² + (D(I_f) − b)², ``(N,)``.

    All four ``(N, 1)``; the authors' scalar is the mean over the batch.
    """
    return jnp.square(d_real - real_labels)[:, 0] + jnp.square(d_fake - fake_labels)[:, 0]


def adversarial_loss(d_fake: jax.Array, labels: jax.Array) -> jax.Array:
    """The generator's adversarial term per image: (D(I_f) − c)², ``(N,)``."""
    return jnp.square(d_fake - labels)[:, 0]


def soft_labels(key: jax.Array, n: int, which: tuple[float, float]) -> jax.Array:
    """``(n, 1)`` labels uniform in ``[lo, hi)`` (:data:`REAL_LABELS`, :data:`FAKE_LABELS`)."""
    return jax.random.uniform(key, (n, 1), jnp.float32, *which)
