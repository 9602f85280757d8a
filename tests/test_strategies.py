"""Fusion strategies against NumPy, zero-activity pixels, vmap over pairs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numpy_reference as ref
from jaxfuse import fusion, strategies


def _feats(rng, k=2, h=9, w=11, c=64):
    f = rng.normal(size=(k, h, w, c)).astype(np.float32)
    return np.maximum(f, 0) + 0.01  # post-ReLU-like, positive activity


@pytest.mark.parametrize("k", [2, 3])
def test_l1_matches_numpy(rng, k):
    f = _feats(rng, k)
    out = jax.jit(strategies.l1_norm)(f)
    np.testing.assert_allclose(np.asarray(out), ref.l1(f.astype(np.float64)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("k", [2, 3])
def test_mean_matches_numpy(rng, k):
    f = _feats(rng, k)
    out = jax.jit(strategies.mean_softmax)(f)
    np.testing.assert_allclose(np.asarray(out), ref.mean_softmax(f.astype(np.float64)), rtol=1e-5, atol=1e-6)


def test_simple_strategies(rng):
    f = rng.normal(size=(3, 5, 6, 4)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(strategies.addition(f)), f.sum(0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(strategies.average(f)), f.mean(0), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(strategies.maximum(f)), f.max(0))


def test_l1_zero_activity_is_defined(rng):
    f = _feats(rng)
    f[:, 2:4, 3:6, :] = 0.0  # both sources silent here: the authors' code divides 0/0
    out = np.asarray(strategies.l1_norm(f))
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[2:4, 3:6], 0.0)
    np.testing.assert_allclose(out, ref.l1(f.astype(np.float64)), rtol=1e-5, atol=1e-6)
    g = jax.grad(lambda x: jnp.sum(strategies.l1_norm(x)))(jnp.asarray(f))
    assert np.all(np.isfinite(np.asarray(g)))


def test_all_zero_and_constant_features_are_finite():
    for f in (np.zeros((2, 6, 6, 64), np.float32), np.full((2, 6, 6, 64), 7.0, np.float32)):
        for name, fn in strategies.STRATEGIES.items():
            assert np.all(np.isfinite(np.asarray(fn(f)))), name


@pytest.mark.parametrize("name", list(strategies.STRATEGIES))
def test_vmap_over_pairs_equals_per_pair(rng, name):
    fn = strategies.get_strategy(name)
    batch = rng.normal(size=(4, 2, 7, 8, 64)).astype(np.float32)  # 4 pairs of 2 sources
    vm = np.asarray(jax.vmap(fn)(batch))
    # The same batch as (k, N, H, W, C) without vmap: reductions are per image.
    direct = np.asarray(fn(np.moveaxis(batch, 1, 0)))
    for i in range(4):
        one = np.asarray(fn(batch[i]))
        np.testing.assert_allclose(vm[i], one, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(direct[i], one, rtol=1e-5, atol=1e-5)


def test_unknown_strategy_and_bad_shape():
    with pytest.raises(ValueError, match="unknown fusion strategy"):
        strategies.get_strategy("median")
    with pytest.raises(ValueError, match="k >= 2"):
        strategies.l1_norm(np.zeros((1, 4, 4, 64)))


def test_output_step_matches_authors_formula(rng):
    o = rng.normal(50, 80, size=(2, 6, 7, 1)).astype(np.float32)
    got = np.asarray(fusion.to_uint8(o))
    lo = o.min(axis=(1, 2, 3), keepdims=True)
    hi = o.max(axis=(1, 2, 3), keepdims=True)
    want = ((o - lo) / (hi - lo + 1e-5) * 255).astype(np.uint8)  # truncation, as the authors
    assert np.sum(got != want) <= 1  # float32 rounding at a truncation boundary at most
    # In float32 the 1e-5 vanishes next to a range of hundreds, so the max reaches 255.
    assert got.min() == 0 and got.max() >= 254


def test_fuse_pair_gray_and_colour(params, rng):
    ir = rng.uniform(0, 255, (20, 24)).astype(np.float32)
    vis = rng.uniform(0, 255, (20, 24)).astype(np.float32)
    out = fusion.fuse_pair(params, ir, vis)
    assert out.shape == (20, 24) and out.dtype == np.uint8
    # Matches the pure core plus the output step.
    core = fusion.to_uint8(fusion.fuse(params, np.stack([ir, vis])[:, None, :, :, None]))
    np.testing.assert_array_equal(out, np.asarray(core)[0, :, :, 0])
    rgb = rng.uniform(0, 255, (20, 24, 3)).astype(np.float32)
    col = fusion.fuse_pair(params, ir, rgb, strategy="mean")
    assert col.shape == (20, 24, 3) and col.dtype == np.uint8
    # The colour path keeps the visible chroma: fused Y with visible Cb, Cr.
    ycc_out = fusion.rgb_to_ycbcr(col.astype(np.float64))
    ycc_vis = fusion.rgb_to_ycbcr(rgb)
    inside = (col > 2).all(-1) & (col < 253).all(-1)  # away from RGB clipping
    np.testing.assert_allclose(ycc_out[inside, 1:], ycc_vis[inside, 1:], atol=1.5)


def test_ycbcr_round_trip(rng):
    rgb = rng.uniform(0, 255, (5, 5, 3))
    np.testing.assert_allclose(fusion.ycbcr_to_rgb(fusion.rgb_to_ycbcr(rgb)), rgb, atol=1e-3)
    # Full-range BT.601 against Pillow's own conversion (rounded to uint8 there).
    from PIL import Image
    u8 = rgb.astype(np.uint8)
    pil = np.asarray(Image.fromarray(u8).convert("YCbCr"), np.float64)
    np.testing.assert_allclose(fusion.rgb_to_ycbcr(u8.astype(np.float64)), pil, atol=1.0)


def test_fusion_works_on_tiny_images(params):
    out = fusion.fuse_pair(params, np.full((1, 1), 10.0, np.float32), np.full((1, 1), 200.0, np.float32))
    assert out.shape == (1, 1)

