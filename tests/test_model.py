"""The network: parameter counts, forward pass against NumPy, jit/vmap/grad."""

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
