"""Shape buckets and tiles give the plain fusion's results, with few compiles."""

import jax
import numpy as np
import pytest

from jaxfuse import engine, fusion


@pytest.fixture(scope="module")
def trained_like(params):
    # Scale the random decoder so outputs span ~0-255 like a trained model's.
    p = jax.tree_util.tree_map(lambda x: x, params)
    p["decoder"]["conv3"]["kernel"] = p["decoder"]["conv3"]["kernel"] * 100.0
    return p


def _src(rng, h, w, n=1):
    return rng.uniform(0, 255, (2, n, h, w, 1)).astype(np.float32)


@pytest.mark.parametrize("strategy", ["l1", "mean", "max"])
def test_bucketed_equals_unpadded(trained_like, rng, strategy):
    for h, w in [(37, 50), (64, 64), (65, 30)]:
        src = _src(rng, h, w)
        want = np.asarray(fusion.fuse(trained_like, src, strategy=strategy))
        got = np.asarray(engine.bucketed_fuse(trained_like, src, strategy=strategy))
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
        np.testing.assert_array_equal(np.asarray(fusion.to_uint8(got)), np.asarray(fusion.to_uint8(want)))


def test_mean_range_ignores_padding(trained_like, rng):
    # Without the mask the padded zeros would enter the min-max; check it matters.
    src = _src(rng, 40, 40)
    padded = np.pad(src, ((0, 0), (0, 0), (0, 24), (0, 24), (0, 0)))
    unmasked = np.asarray(fusion.fuse(trained_like, padded, strategy="mean"))[:, :40, :40]
    want = np.asarray(fusion.fuse(trained_like, src, strategy="mean"))
    assert np.abs(unmasked - want).max() > 1e-3


def test_mixed_sizes_compile_a_bounded_number_of_times(trained_like, rng):
    sizes = [(270, 360), (280, 280), (300, 290), (310, 350), (320, 330), (256, 300)]
    before = fusion.fuse._cache_size()
    for h, w in sizes:
        engine.bucketed_fuse(trained_like, _src(rng, h, w), strategy="l1")
    buckets = {engine.bucket_shape(h, w) for h, w in sizes}
    assert len(buckets) < len(sizes)
    assert fusion.fuse._cache_size() - before <= len(buckets)


@pytest.mark.parametrize("strategy", ["l1", "mean", "addition"])
def test_tiled_equals_untiled(trained_like, rng, strategy):
    src = _src(rng, 75, 101)
    want = np.asarray(fusion.fuse(trained_like, src, strategy=strategy))
    got = engine.tiled_fuse(trained_like, src, strategy=strategy, tile=32)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_tiles_need_the_full_halo(trained_like, rng):
    src = _src(rng, 60, 60)
    want = np.asarray(fusion.fuse(trained_like, src, strategy="l1"))
    with pytest.raises(ValueError, match="receptive radius"):
        engine.tiled_fuse(trained_like, src, tile=32, halo=6)
    # The check guards something real: a smaller halo changes the result.
    short = engine._tiled_fuse(trained_like, src, "l1", 32, 6)
    assert np.abs(short - want).max() > 1e-3


def test_fuse_pair_uses_exact_engine(trained_like, rng):
    ir, vis = rng.uniform(0, 255, (2, 45, 61)).astype(np.float32)
    plain = fusion.fuse_pair(trained_like, ir, vis, fuse_fn=fusion.fuse)
    auto = fusion.fuse_pair(trained_like, ir, vis)
    np.testing.assert_array_equal(plain, auto)
