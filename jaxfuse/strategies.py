"""Fusion strategies: how the features of k ≥ 2 sources become one feature map.

Every strategy is a pure function ``f(features, *, mask=None) -> fused`` where ``features``
has shape ``(k, ..., H, W, C)`` (k sources first, then any batch dimensions,
then one NHWC-style feature map per image) and ``fused`` has shape
``(..., H, W, C)``. Reductions that the paper does "over the image" use the
``H, W`` axes only, so the functions work unchanged on one image, on a batch,
and under ``jax.vmap`` over any leading axis. ``mask`` (``(..., H, W, 1)``,
1 on the true image) restricts those reductions to the valid region of a
padded image; per-pixel strategies ignore it.

Paper references: Eq. 5–6 (l1-norm), Eq. 7–8 (mean, "soft-max"); ``l1_block``
is DenseFuse's l1-norm with a 3×3 block average (its paper, Eq. 5–7).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

EPS = 1e-5  # the authors' constant in the mean strategy


def _check(features) -> jax.Array:
    features = jnp.asarray(features)
    if features.ndim < 4 or features.shape[0] < 2:
        raise ValueError("features must have shape (k, ..., H, W, C) with k >= 2 sources, "
                         f"got {features.shape}")
    return features


def l1_norm(features: jax.Array, *, mask=None) -> jax.Array:
    """l1-norm strategy (paper Eq. 5–6), per pixel, no window (as the authors' code).

    a_i(x, y) = Σ_c |φ_i(x, y, c)|; w_i = a_i / Σ_j a_j; f = Σ_i w_i φ_i.

    Departure from the authors' code: where every source has zero activity
    (Σ_j a_j = 0, a 0/0 there) each source gets weight 1/k instead of NaN. The
    features are then all zero at that pixel, so the fused value is 0 either
    way; gradients stay finite.
    """
    features = _check(features)
    k = features.shape[0]
    activity = jnp.sum(jnp.abs(features), axis=-1, keepdims=True)
    total = jnp.sum(activity, axis=0)
    zero = total == 0
    weights = jnp.where(zero, 1.0 / k, activity / jnp.where(zero, 1.0, total))
    return jnp.sum(weights * features, axis=0)


def mean_range(features: jax.Array, *, mask=None) -> tuple[jax.Array, jax.Array]:
    """Per-source min and max of the channel-mean map over ``H, W`` (valid region)."""
    m = jnp.mean(features, axis=-1, keepdims=True)
    if mask is None:
        return jnp.min(m, axis=(-3, -2), keepdims=True), jnp.max(m, axis=(-3, -2), keepdims=True)
    inside = mask > 0
    lo = jnp.min(jnp.where(inside, m, jnp.inf), axis=(-3, -2), keepdims=True)
    hi = jnp.max(jnp.where(inside, m, -jnp.inf), axis=(-3, -2), keepdims=True)
    return lo, hi


def mean_softmax(features: jax.Array, *, mask=None, value_range=None) -> jax.Array:
    """Mean ("soft-max") strategy (paper Eq. 7–8, authors' code).

    m_i = channel mean of φ_i; each m_i min–max normalised over its whole image,
    m_i ← (m_i − min)/(max − min + 1e-5); w_i = exp(m_i)/(Σ_j exp(m_j) + 1e-5);
    f = Σ_i w_i φ_i. The weights sum to slightly less than 1 (the 1e-5), as in
    the authors' code. A constant map normalises to 0 (never NaN).

    ``value_range``: the ``(min, max)`` of :func:`mean_range` taken over the
    whole image, for fusing one tile of a larger image exactly.
    """
    features = _check(features)
    m = jnp.mean(features, axis=-1, keepdims=True)
    lo, hi = value_range if value_range is not None else mean_range(features, mask=mask)
    m = (m - lo) / (hi - lo + EPS)
    e = jnp.exp(m)
    weights = e / (jnp.sum(e, axis=0) + EPS)
    return jnp.sum(weights * features, axis=0)


def l1_block(features: jax.Array, *, mask=None, radius: int = 1) -> jax.Array:
    """DenseFuse's l1-norm strategy (Li and Wu 2019, Eq. 5–7): block-averaged activity.

    C_i = Σ_c |φ_i|; Ĉ_i = mean of C_i over the (2r+1)×(2r+1) block around
    each pixel (r = 1; zero beyond the border, divided by the full block
    size: the paper does not say how borders are handled); w_i = Ĉ_i / Σ_j Ĉ_j;
    f = Σ_i w_i φ_i. 0/0 gets weight 1/k as in :func:`l1_norm`.
    """
    features = _check(features)
    k = features.shape[0]
    activity = jnp.sum(jnp.abs(features), axis=-1, keepdims=True)
    if mask is not None:
        activity = activity * mask
    size = 2 * radius + 1
    lead = activity.shape[:-3]
    flat = activity.reshape((-1,) + activity.shape[-3:])
    summed = jax.lax.reduce_window(flat, 0.0, jax.lax.add, (1, size, size, 1), (1, 1, 1, 1), "SAME")
    block = (summed / (size * size)).reshape(lead + activity.shape[-3:])
    total = jnp.sum(block, axis=0)
    zero = total == 0
    weights = jnp.where(zero, 1.0 / k, block / jnp.where(zero, 1.0, total))
    return jnp.sum(weights * features, axis=0)


def addition(features: jax.Array, *, mask=None) -> jax.Array:
    """Sum of the sources' features (in the authors' code; DenseFuse's strategy)."""
    return jnp.sum(_check(features), axis=0)


def average(features: jax.Array, *, mask=None) -> jax.Array:
    """Mean of the sources' features."""
    return jnp.mean(_check(features), axis=0)


def maximum(features: jax.Array, *, mask=None) -> jax.Array:
    """Element-wise maximum of the sources' features."""
    return jnp.max(_check(features), axis=0)


STRATEGIES: dict[str, Callable[[jax.Array], jax.Array]] = {
    "l1": l1_norm,
    "mean": mean_softmax,
    "addition": addition,
    "l1_block": l1_block,
    "average": average,
    "max": maximum,
}


def get_strategy(name: str) -> Callable[[jax.Array], jax.Array]:
    """The strategy called ``name`` (one of :data:`STRATEGIES`)."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown fusion strategy {name!r}; choose from {', '.join(STRATEGIES)}") from None
