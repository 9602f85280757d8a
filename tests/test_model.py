"""The network: parameter counts, forward pass against NumPy, jit/vmap/grad."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numpy_reference as ref
from jaxfuse import model


def test_parameter_counts(params, params_separate):
    # SPEC / issue: the shared form has 89,617 parameters.
    assert model.count_params(params) == 89_617
    # Six 3×3 16→16 convs instead of one: 5 more × (9·16·16 + 16).
    assert model.count_params(params_separate) == 89_617 + 5 * (9 * 16 * 16 + 16)


def test_config_read_off_params(params, params_separate):
    assert model.config_from_params(params) == model.ModelConfig(shared=True)
    assert model.config_from_params(params_separate) == model.ModelConfig(shared=False)


@pytest.mark.parametrize("form", ["params", "params_separate"])
def test_forward_matches_numpy(form, request, rng):
    p = request.getfixturevalue(form)
    x = rng.uniform(0, 255, size=(2, 13, 17, 1)).astype(np.float32)
    feats = np.asarray(jax.jit(model.encode)(p, x))
    recon = np.asarray(jax.jit(model.reconstruct)(p, x))
    pn = jax.tree_util.tree_map(np.asarray, p)
    for n in range(2):
        f_ref = ref.encode(pn, x[n].astype(np.float64))
        np.testing.assert_allclose(feats[n], f_ref, rtol=1e-4, atol=1e-4 * np.abs(f_ref).max())
        r_ref = ref.decode(pn, f_ref)
        np.testing.assert_allclose(recon[n], r_ref, rtol=1e-4, atol=1e-4 * np.abs(r_ref).max())


def test_receptive_field_is_25(params):
    # One changed pixel moves outputs within 12 pixels of it and nowhere else.
    x = np.full((1, 41, 41, 1), 100.0, np.float32)
    y = x.copy()
    y[0, 20, 20, 0] = 200.0
    d = np.abs(np.asarray(model.reconstruct(params, y) - model.reconstruct(params, x)))[0, :, :, 0]
    rows, cols = np.nonzero(d > 0)
    assert rows.min() >= 20 - model.RECEPTIVE_RADIUS and rows.max() <= 20 + model.RECEPTIVE_RADIUS
    assert cols.min() >= 20 - model.RECEPTIVE_RADIUS and cols.max() <= 20 + model.RECEPTIVE_RADIUS
    assert d[20 - model.RECEPTIVE_RADIUS:, :].any() and rows.max() - rows.min() >= 20


def test_vmap_and_grad(params, rng):
    x = jnp.asarray(rng.uniform(0, 255, size=(3, 1, 12, 12, 1)).astype(np.float32))
    batched = jax.vmap(lambda im: model.reconstruct(params, im))(x)
    direct = model.reconstruct(params, x[:, 0])
    np.testing.assert_allclose(np.asarray(batched[:, 0]), np.asarray(direct), rtol=1e-5, atol=1e-3)
    g = jax.grad(lambda p: jnp.mean(model.reconstruct(p, x[0]) ** 2))(params)
    leaves = jax.tree_util.tree_leaves(g)
    assert all(np.all(np.isfinite(np.asarray(l))) for l in leaves)
    assert any(np.abs(np.asarray(l)).max() > 0 for l in leaves)


def test_shape_errors(params):
    with pytest.raises(ValueError, match="NHWC"):
        model.encode(params, jnp.zeros((8, 8)))
    with pytest.raises(ValueError, match="C=64"):
        model.decode(params, jnp.zeros((1, 8, 8, 3)))
    with pytest.raises(ValueError, match="unknown architecture"):
        model.init_params(jax.random.key(0), model.ModelConfig(arch="unet"))


def test_init_matches_pytorch_default_scale(params):
    # PyTorch's Conv2d default: kernel U(±1/sqrt(fan_in)) (kaiming a=√5), bias U(±1/sqrt(fan_in)).
    k = np.asarray(params["decoder"]["conv0"]["kernel"])
    bound = 1 / np.sqrt(9 * 64)
    assert np.abs(k).max() <= bound and np.abs(k).max() > 0.95 * bound
    b = np.asarray(params["decoder"]["conv0"]["bias"])
    assert np.abs(b).max() <= bound and np.abs(b).std() > 0


# ----------------------------------------------------------------------------- the architecture table

def test_architecture_table(params, params_separate):
    from jaxfuse.strategies import STRATEGIES
    assert model.ARCHS == tuple(model.ARCH_SPECS) == ("res2netfuse", "densefuse", "msdnet",
                                                       "fusiongan")
    markers = [s.marker for s in model.ARCH_SPECS.values()]
    assert len(set(markers)) == len(markers)
    for name, spec in model.ARCH_SPECS.items():
        assert spec.name == name
        assert model.arch_spec(name) is spec and model.arch_spec(spec.config()) is spec
        assert spec.config() == model.ModelConfig(arch=name)
        assert spec.default_strategy == spec.strategies[0]
        tree = jax.eval_shape(lambda: model.init_params(jax.random.key(0), spec.config()))
        if spec.fuse_sources is not None:  # an end-to-end network (FusionGAN; tests/test_fusiongan.py)
            assert spec.build is None and spec.init is not None and spec.marker in tree
            assert model.config_from_params(tree) == spec.config() and not spec.maskable
            continue
        assert set(spec.strategies) <= set(STRATEGIES)
        assert spec.marker in tree["encoder"]
        assert model.config_from_params(tree) == spec.config()
        feats = jax.eval_shape(model.encode, tree, jax.ShapeDtypeStruct((1, 8, 8, 1), jnp.float32))
        assert feats.shape[-1] == spec.feature_channels == model.feature_channels(spec.config())
        assert spec.feature_channels % spec.fusion_groups == 0
        assert set(spec.options) <= {f.name for f in dataclasses.fields(model.ModelConfig)} - {"arch"}
        assert set(spec.read_options(tree["encoder"]) if spec.read_options else ()) == set(spec.options)
    assert model.arch_spec(params) is model.arch_spec(params_separate) is model.ARCH_SPECS["res2netfuse"]
    assert [model.ARCH_SPECS[a].maskable for a in model.ARCHS] == [True, False, False, False]
    assert model.ARCH_SPECS["msdnet"].fusion_groups == model.MSD_SCALES
    with pytest.raises(ValueError, match="unknown architecture 'unet'"):
        model.arch_spec("unet")
    with pytest.raises(ValueError, match="not a jaxfuse parameter tree"):
        model.arch_spec({"encoder": {}})
    with pytest.raises(ValueError, match="not a jaxfuse parameter tree"):
        model.config_from_params({"decoder": {}})


@pytest.mark.parametrize("arch", ["res2netfuse", "densefuse", "msdnet"])
def test_receptive_radius_is_the_tables(arch):
    # One changed pixel in the middle moves outputs exactly receptive_radius around it.
    p = model.init_params(jax.random.key(7), model.ModelConfig(arch=arch))
    x = np.full((1, 41, 41, 1), 100.0, np.float32)
    y = x.copy()
    y[0, 20, 20, 0] = 200.0
    d = np.abs(np.asarray(model.reconstruct(p, y) - model.reconstruct(p, x)))[0, :, :, 0]
    rows, cols = np.nonzero(d > 0)
    r = model.arch_spec(arch).receptive_radius
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (20 - r, 20 + r, 20 - r, 20 + r)


class _ToyEncoder(nn.Module):
    """Two 3×3 convs, 1 → 8 channels, zero padding: maskable."""

    @nn.compact
    def __call__(self, x, mask=None):
        h = model._act(model._conv(1, 8, 3, "toy0")(x), mask)
        return model._act(model._conv(8, 8, 3, "toy1")(h), mask)


class _ToyDecoder(nn.Module):
    @nn.compact
    def __call__(self, f, mask=None):
        return model._conv(8, 1, 3, "out")(f) * 50.0


_TOY = model.ArchSpec(name="toy", title="Toy", marker="toy0",
                      build=lambda config: (_ToyEncoder(), _ToyDecoder()),
                      feature_channels=8, receptive_radius=3, strategies=("mean",), fusion_groups=2)


def test_a_new_architecture_is_one_entry(monkeypatch, rng):
    """Init, fusion per group, buckets, tiles and the colour path, from the table entry alone."""
    from jaxfuse import engine, fusion, strategies
    monkeypatch.setitem(model.ARCH_SPECS, "toy", _TOY)
    p = model.init_params(jax.random.key(5), model.ModelConfig(arch="toy"))
    assert model.arch_spec(p) is _TOY and model.config_from_params(p) == model.ModelConfig(arch="toy")
    src = rng.uniform(0, 255, (2, 1, 37, 45, 1)).astype(np.float32)
    want = np.asarray(fusion.fuse(p, src, strategy="mean"))
    feats = np.stack([np.asarray(model.encode(p, src[i])) for i in range(2)])
    fused = np.concatenate([np.asarray(strategies.mean_softmax(feats[..., :4])),
                            np.asarray(strategies.mean_softmax(feats[..., 4:]))], axis=-1)
    np.testing.assert_allclose(want, np.asarray(model.decode(p, fused)), rtol=1e-5, atol=1e-3)
    whole = np.asarray(model.decode(p, strategies.mean_softmax(feats)))
    assert np.abs(whole - want).max() > 1e-2  # the groups matter
    tol = 1e-5 * np.abs(want).max()
    np.testing.assert_allclose(engine.bucketed_fuse(p, src, strategy="mean"), want, rtol=0, atol=tol)
    np.testing.assert_allclose(engine.tiled_fuse(p, src, strategy="mean", tile=16), want, rtol=0, atol=tol)
    with pytest.raises(ValueError, match="receptive radius 3"):
        engine.tiled_fuse(p, src, strategy="mean", tile=16, halo=2)
    rgb = rng.uniform(0, 255, (37, 45, 3)).astype(np.float32)
    assert fusion.fuse_pair(p, src[0, 0, :, :, 0], rgb, strategy="mean").shape == (37, 45, 3)
