"""jaxfuse.conv_native: oneDNN convolutions through XLA FFI, against lax.

Every layer shape the networks use (jaxfuse.networks: Res2NetFuse, DenseFuse,
MSDNet encoders and the decoders), at small image sizes: the forward pass and
the gradients with respect to the input, the kernel and the bias, within
float32 tolerance (1e-5 of the largest magnitude) of
``lax.conv_general_dilated`` and its XLA gradients; odd and rectangular
sizes, batches, explicit padding, ``jax.vmap`` (folded into the batch, per
example, batched kernels) and flax's ``nn.Conv``; the networks wired through
it (the same initial parameters, a whole train step of each architecture, 4
devices). The tests that need the kernels skip, saying why, when they are not
installed (``pip install 'jaxfuse[cpu-kernels]'``); the rest check the
pure-XLA fallback.
"""

from __future__ import annotations

import contextlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxfuse import conv_layouts, conv_native

needs_native = pytest.mark.skipif(not conv_native.available(),
                                  reason=f"{conv_native.unavailable_reason()}")

TOL = 1e-5
DN = ("NHWC", "HWIO", "NHWC")


@pytest.fixture(autouse=True)
def all_directions_native():
    """Every direction on oneDNN (the default, set again here in case a test
    changed it), so that the tests check all three custom calls."""
    before = conv_native.native_ops()
    conv_native.set_native_ops(conv_native.OPS)
    yield
    conv_native.set_native_ops(before)


def ref_conv(x, w, b, padding):
    """What flax's nn.Conv computes, written with lax directly."""
    if padding == "REFLECT":
        kh, kw = w.shape[:2]
        x = jnp.pad(x, ((0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0)),
                    mode="reflect")
        padding = "VALID"
    elif not isinstance(padding, str):
        padding = [(p, p) if isinstance(p, int) else tuple(p) for p in
                   ((padding, padding) if isinstance(padding, int) else padding)]
    y = lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=DN)
    return y if b is None else y + b


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))


def make(rng, n, h, w, ci, co, k):
    x = jnp.asarray(rng.standard_normal((n, h, w, ci)), jnp.float32)
    kern = jnp.asarray(rng.standard_normal((k, k, ci, co)) / np.sqrt(k * k * ci), jnp.float32)
    bias = jnp.asarray(rng.standard_normal((co,)), jnp.float32)
    return x, kern, bias


def weighted_sum(f, padding):
    """A scalar loss whose cotangent varies (so every gradient entry differs) but
    stays positive (so the bias gradient, a sum over pixels, does not cancel
    down to float32 rounding)."""
    def loss(x, w, b):
        y = f(x, w, b, padding)
        return jnp.sum(y * (1.5 + jnp.cos(jnp.arange(y.size, dtype=jnp.float32).reshape(y.shape) * 0.37)))
    return loss


def check_all(x, w, b, padding):
    y = jax.jit(conv_native.conv, static_argnums=3)(x, w, b, padding)
    assert rel_err(y, ref_conv(x, w, b, padding)) < TOL
    got = jax.jit(jax.grad(weighted_sum(conv_native.conv, padding), argnums=(0, 1, 2)))(x, w, b)
    want = jax.grad(weighted_sum(ref_conv, padding), argnums=(0, 1, 2))(x, w, b)
    for name, g, r in zip(("dx", "dw", "db"), got, want):
        assert rel_err(g, r) < TOL, name


# (C_in, C_out, kernel, padding) of every convolution in jaxfuse.networks
LAYERS = [
    # Res2NetFuse encoder, Res2Net block, decoder (zero "same" padding)
    (1, 32, 3, "SAME"), (32, 64, 3, "SAME"), (64, 64, 1, "SAME"), (16, 16, 3, "SAME"),
    (64, 64, 3, "SAME"), (64, 32, 3, "SAME"), (32, 16, 3, "SAME"), (16, 1, 3, "SAME"),
    # DenseFuse encoder (reflection padding), its decoder
    (1, 16, 3, "REFLECT"), (16, 16, 3, "REFLECT"), (32, 16, 3, "REFLECT"), (48, 16, 3, "REFLECT"),
    (64, 64, 3, "REFLECT"), (64, 32, 3, "REFLECT"), (32, 16, 3, "REFLECT"), (16, 1, 3, "REFLECT"),
    # MSDNet's multi-scale layer and its decoder's first conv
    (64, 64, 1, "REFLECT"), (64, 64, 5, "REFLECT"), (192, 64, 3, "REFLECT"),
]


@needs_native
@pytest.mark.parametrize("ci,co,k,padding", LAYERS, ids=lambda v: str(v))
def test_network_layers_match_lax(rng, ci, co, k, padding):
    check_all(*make(rng, 1, 24, 20, ci, co, k), padding)


@needs_native
@pytest.mark.parametrize("n,h,w", [(1, 1, 1), (1, 2, 3), (1, 7, 5), (2, 13, 1), (3, 31, 17), (4, 9, 9)])
@pytest.mark.parametrize("padding", ["SAME", "VALID", "REFLECT"])
def test_odd_sizes_and_batches(rng, n, h, w, padding):
    k = 3
    if padding == "VALID" and min(h, w) < k:
        pytest.skip("VALID needs the image at least as large as the kernel")
    if padding == "REFLECT" and min(h, w) < 2:
        pytest.skip("reflection needs two pixels per axis")
    check_all(*make(rng, n, h, w, 8, 12, k), padding)


@needs_native
@pytest.mark.parametrize("padding", [0, 2, ((0, 2), (1, 0)), ((2, 1), (0, 3))], ids=str)
def test_explicit_padding(rng, padding):
    check_all(*make(rng, 2, 11, 14, 16, 16, 3), padding)


@needs_native
def test_even_kernel_same_padding(rng):
    # SAME with an even kernel pads more after than before, as lax does
    check_all(*make(rng, 1, 10, 9, 4, 6, 2), "SAME")


@needs_native
def test_no_bias_and_leading_axes(rng):
    x, w, b = make(rng, 6, 10, 12, 16, 8, 3)
    y = conv_native.conv(x[0], w)  # (H, W, C): one image
    assert y.shape == (10, 12, 8)
    assert rel_err(y, ref_conv(x[:1], w, None, "SAME")[0]) < TOL
    x5 = x.reshape(2, 3, 10, 12, 16)  # two leading axes: one batch of six
    y5 = conv_native.conv(x5, w, b)
    assert y5.shape == (2, 3, 10, 12, 8)
    assert rel_err(y5.reshape(6, 10, 12, 8), ref_conv(x, w, b, "SAME")) < TOL


@needs_native
def test_vmap_folds_into_the_batch(rng):
    x, w, b = make(rng, 6, 12, 13, 16, 16, 3)
    xs = x.reshape(3, 2, 12, 13, 16)
    f = jax.jit(jax.vmap(lambda x: conv_native.conv(x, w, b)))
    assert rel_err(f(xs), jax.vmap(lambda x: ref_conv(x, w, b, "SAME"))(xs)) < TOL
    # one forward custom call on all six images, not one per example
    hlo = jax.jit(jax.vmap(lambda x: conv_native.conv(x, w, b))).lower(xs).compile().as_text()
    calls = [ln for ln in hlo.splitlines() if 'custom_call_target="jaxfuse_onednn_conv_fwd"' in ln]
    assert len(calls) == 1 and "f32[6,12,13,16]" in calls[0], calls

    def shared_grad(conv):  # grad of a vmapped loss: the kernel is shared
        return jax.grad(lambda w, b: jax.vmap(lambda x: (conv(x, w, b, "SAME") ** 2).sum())(xs).sum(),
                        argnums=(0, 1))(w, b)

    for g, r in zip(jax.jit(lambda: shared_grad(conv_native.conv))(), shared_grad(ref_conv)):
        assert rel_err(g, r) < TOL


@needs_native
def test_vmap_of_grad_is_per_example(rng):
    x, w, b = make(rng, 3, 9, 10, 16, 8, 3)
    xs = x[:, None]

    def per_example(conv):
        return jax.vmap(lambda x: jax.grad(lambda w, b, x: (conv(x, w, b, "REFLECT") ** 2).sum(),
                                           argnums=(0, 1, 2))(w, b, x))(xs)

    got, want = jax.jit(lambda: per_example(conv_native.conv))(), per_example(ref_conv)
    assert got[0].shape == (3,) + w.shape
    for g, r in zip(got, want):
        assert rel_err(g, r) < TOL


@needs_native
def test_vmap_with_batched_kernels(rng):
    x, _, b = make(rng, 3, 8, 11, 16, 8, 3)
    ws = jnp.asarray(rng.standard_normal((3, 3, 3, 16, 8)) * 0.1, jnp.float32)
    got = jax.jit(jax.vmap(lambda x, w: conv_native.conv(x[None], w, b)))(x, ws)
    want = jax.vmap(lambda x, w: ref_conv(x[None], w, b, "SAME"))(x, ws)
    assert rel_err(got, want) < TOL
    gw = jax.grad(lambda ws, f: jax.vmap(lambda x, w: (f(x[None], w, b, "SAME") ** 2).sum())(x, ws).sum())
    assert rel_err(jax.jit(gw, static_argnums=1)(ws, conv_native.conv), gw(ws, ref_conv)) < TOL


@needs_native
def test_matches_flax_conv(rng):
    x, _, _ = make(rng, 2, 15, 12, 16, 16, 3)
    for padding in ("SAME", "REFLECT"):
        layer = nn.Conv(16, (3, 3), padding=padding)
        params = layer.init(jax.random.key(0), x)["params"]
        want = layer.apply({"params": params}, x)
        got = conv_native.conv(x, params["kernel"], params["bias"], padding)
        assert rel_err(got, want) < TOL


@needs_native
def test_uses_the_custom_calls_on_cpu(rng):
    x, w, b = make(rng, 1, 8, 8, 16, 16, 3)
    hlo = jax.jit(jax.grad(lambda x, w, b: (conv_native.conv(x, w, b) ** 2).sum(),
                           argnums=(0, 1, 2))).lower(x, w, b).compile().as_text()
    for op in ("fwd", "bwd_data", "bwd_weights"):
        assert f'custom_call_target="jaxfuse_onednn_conv_{op}"' in hlo, op
    assert " convolution(" not in hlo


@needs_native
def test_choosing_the_native_directions(rng):
    assert conv_native.DEFAULT_NATIVE_OPS == conv_native.OPS
    conv_native.set_native_ops(["bwd_weights"])
    assert conv_native.native_ops() == ("bwd_weights",)
    x, w, b = make(rng, 1, 8, 8, 16, 16, 3)
    loss = lambda x, w, b: (conv_native.conv(x, w, b) ** 2).sum()
    hlo = jax.jit(jax.grad(loss, argnums=(0, 1, 2))).lower(x, w, b).compile().as_text()
    assert 'custom_call_target="jaxfuse_onednn_conv_bwd_weights"' in hlo
    assert "jaxfuse_onednn_conv_fwd" not in hlo and "jaxfuse_onednn_conv_bwd_data" not in hlo
    got = jax.grad(loss, argnums=(0, 1, 2))(x, w, b)
    want = jax.grad(lambda x, w, b: (ref_conv(x, w, b, "SAME") ** 2).sum(), argnums=(0, 1, 2))(x, w, b)
    for g, r in zip(got, want):
        assert rel_err(g, r) < TOL
    conv_native.set_native_ops(())
    assert "jaxfuse_onednn" not in jax.jit(jax.grad(loss, argnums=1)).lower(x, w, b).as_text()
    with pytest.raises(ValueError):
        conv_native.set_native_ops(["backward"])


@needs_native
def test_one_input_channel_keeps_xla_kernel_gradient(rng):
    x1, w1, b1 = make(rng, 1, 8, 8, 1, 16, 3)
    loss = lambda x, w, b: (conv_native.conv(x, w, b) ** 2).sum()
    hlo = jax.jit(jax.grad(loss, argnums=(1, 2))).lower(x1, w1, b1).compile().as_text()
    assert 'custom_call_target="jaxfuse_onednn_conv_fwd"' in hlo
    assert "jaxfuse_onednn_conv_bwd_weights" not in hlo


@needs_native
def test_threads_follow_xla_pool_and_cap(rng):
    x, w, b = make(rng, 1, 8, 8, 16, 16, 3)
    jax.block_until_ready(jax.jit(conv_native.conv)(x, w, b))
    assert conv_native.last_call_threads() >= 1
    try:
        conv_native.set_max_threads(1)
        jax.block_until_ready(jax.jit(lambda x: conv_native.conv(x, w, b))(x + 1))  # a new trace
        assert conv_native.last_call_threads() == 1
    finally:
        conv_native.set_max_threads(0)
    with pytest.raises(ValueError):
        conv_native.set_max_threads(-1)


@needs_native
def test_concurrent_calls_agree(rng):
    # the same shapes (one cached primitive each) from several Python threads
    # at once, and independent convolutions XLA may run side by side
    import concurrent.futures

    x, w, b = make(rng, 2, 20, 18, 64, 64, 3)
    xs = [x * (i + 1) for i in range(4)]
    step = jax.jit(jax.grad(lambda x, w, b: (conv_native.conv(x, w, b, "REFLECT") ** 2).sum(),
                            argnums=(0, 1, 2)))
    want = [step(xi, w, b) for xi in xs]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            got = list(pool.map(lambda xi: jax.block_until_ready(step(xi, w, b)), xs))
            for g, r in zip(got, want):
                for a, c in zip(g, r):
                    np.testing.assert_array_equal(np.asarray(a), np.asarray(c))
    many = jax.jit(lambda xs: [conv_native.conv(xi, w, b) for xi in xs])(xs)
    for y, xi in zip(many, xs):
        assert rel_err(y, ref_conv(xi, w, b, "SAME")) < TOL


@needs_native
def test_reports_its_onednn():
    assert conv_native.onednn_version().count(".") == 2
    assert conv_native.unavailable_reason() == ""


# --- without the extension too: the fallback and the argument checks


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_other_dtypes_fall_back_to_lax(rng, dtype):
    x, w, b = (a.astype(dtype) for a in make(rng, 1, 9, 7, 8, 8, 3))
    y = conv_native.conv(x, w, b)
    assert y.dtype == dtype
    assert rel_err(y, ref_conv(x, w, b, "SAME")) == 0
    hlo = jax.jit(conv_native.conv).lower(x, w, b).as_text()
    assert "jaxfuse_onednn" not in hlo


def test_rejects_bad_arguments(rng):
    x, w, b = make(rng, 1, 9, 7, 8, 8, 3)
    with pytest.raises(ValueError):
        conv_native.conv(x, w[:, :, :4], b)
    with pytest.raises(ValueError):
        conv_native.conv(x, w, b, padding="CIRCULAR")
    with pytest.raises(ValueError):
        conv_native.conv(x, w, b, padding=((1, 1), (1, -1)))
    with pytest.raises(ValueError):
        conv_native.conv(x[0, 0], w, b)


def test_unavailable_reason_is_plain():
    reason = conv_native.unavailable_reason()
    assert (reason == "") == conv_native.available()


# ---------------------------------------------------------------------------
# the networks wired through conv_native (jaxfuse.networks._conv)

def _train_once(arch, images, native):
    """(initial params, loss, Adam's first moment after one step) on one path."""
    from jaxfuse import training
    with contextlib.nullcontext() if native else conv_native.xla_convolutions():
        cfg = training.TrainConfig(arch=arch, size=images.shape[1], steps=1)
        state = training.init_state(cfg)
        init = jax.tree_util.tree_map(np.asarray, state["params"])
        state, terms = training.make_train_step(cfg)(state, images)
        mu = state["opt"][0].mu
        return init, float(terms["total"]), jax.tree_util.tree_map(np.asarray, mu)


def _worst_rel(a, b):
    return max(rel_err(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


@needs_native
@pytest.mark.parametrize("arch", ["res2netfuse", "densefuse", "msdnet"])
def test_train_step_equals_the_lax_path(rng, arch):
    images = rng.uniform(0, 255, (2, 21, 19, 1)).astype(np.float32)  # odd sizes, batch 2
    init_n, loss_n, mu_n = _train_once(arch, images, True)
    init_x, loss_x, mu_x = _train_once(arch, images, False)
    # the same parameters to start from: NativeConv creates nn.Conv's, name for name
    assert jax.tree_util.tree_structure(init_n) == jax.tree_util.tree_structure(init_x)
    for a, b in zip(jax.tree_util.tree_leaves(init_n), jax.tree_util.tree_leaves(init_x)):
        np.testing.assert_array_equal(a, b)
    assert abs(loss_n - loss_x) <= TOL * abs(loss_x)
    assert _worst_rel(mu_n, mu_x) <= TOL  # the gradients, leaf by leaf
    # (the updated weights are not compared: Adam moves each by about lr·sign(g), so an entry
    # whose gradient is near zero can move either way on either path; the moments carry g)


@needs_native
def test_networks_use_the_kernels_only_when_enabled(rng):
    from jaxfuse import model
    p = model.init_params(jax.random.key(0))
    x = jnp.asarray(rng.uniform(0, 255, (1, 17, 23, 1)), jnp.float32)
    outs = {}
    for flag in (True, False):
        conv_native.set_enabled(flag)
        try:
            # a fresh function: jax reuses a traced function's program, whatever the switch
            fn = jax.jit(lambda p_, x_: model.reconstruct(p_, x_))
            hlo = fn.lower(p, x).as_text()
            outs[flag] = np.asarray(fn(p, x))
        finally:
            conv_native.set_enabled(True)
        assert ("jaxfuse_onednn_conv_fwd" in hlo) == flag
    assert rel_err(outs[True], outs[False]) <= TOL


def test_switched_off_networks_are_flax_convs(monkeypatch):
    """JAXFUSE_NATIVE_CONV=0 or set_enabled(False): flax's nn.Conv, as without the kernels."""
    from jaxfuse import networks
    with conv_native.xla_convolutions():
        assert type(networks._conv(4, 8, 3, "c")) is nn.Conv
    assert type(networks._conv(4, 8, 3, "c")) is (networks.NativeConv if conv_native.available()
                                                  else nn.Conv)


FOUR_DEVICES = """
import json, jax, numpy as np
from jaxfuse import conv_native, parallel, training
assert jax.device_count() == 4 and conv_native.enabled(), conv_native.unavailable_reason()
cfg = training.TrainConfig(size=20, steps=2)
images = np.random.default_rng(0).uniform(0, 255, (4, 20, 20, 1)).astype(np.float32)
step = training.make_train_step(cfg)
s1, s4 = training.init_state(cfg), training.init_state(cfg)
sharded = parallel.sharded_train_step(step)
for _ in range(2):
    s1, t1 = step(s1, images)
    s4, t4 = sharded(s4, images)
mu = [float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(a)).max())
      for a, b in zip(jax.tree_util.tree_leaves(s1["opt"][0].mu), jax.tree_util.tree_leaves(s4["opt"][0].mu))]
print("RESULT" + json.dumps({"loss": abs(float(t1["total"]) - float(t4["total"])) / float(t1["total"]),
                             "mu": max(mu)}))
"""


@needs_native
def test_sharded_training_on_four_devices_with_the_kernels():
    import json
    import os
    import subprocess
    import sys
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", FOUR_DEVICES], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.split("RESULT", 1)[1])
    assert res["loss"] <= TOL and res["mu"] <= 1e-4, res


# ---------------------------------------------------------------------------
# building the kernels (jaxfuse.conv_build)

def test_build_errors_are_one_line(tmp_path, monkeypatch):
    from jaxfuse import conv_build
    with pytest.raises(conv_build.BuildError, match=r"no C\+\+ compiler 'no-such-c\+\+'"):
        conv_build.build(tmp_path / "x.so", cxx="no-such-c++")
    monkeypatch.setenv("DNNL_ROOT", str(tmp_path))
    with pytest.raises(conv_build.BuildError, match="no oneDNN under") as e:
        conv_build.find_dnnl()
    assert "\n" not in str(e.value)


FIRST_USE = """
import warnings, jax
from jaxfuse import conv_native, networks
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    ok = conv_native.available()
print("RESULT", ok, type(networks._conv(4, 8, 3, "c")).__name__, conv_native.library_path().is_file(),
      "|".join(str(x.message) for x in w))
"""


@pytest.mark.skipif(not __import__("jaxfuse.conv_build").conv_build.dnnl_installed(),
                    reason="oneDNN is not installed (pip install 'jaxfuse[cpu-kernels]')")
@pytest.mark.parametrize("cxx", ["g++", "no-such-c++"])
def test_first_use_builds_or_falls_back(tmp_path, cxx):
    import os
    import shutil
    import subprocess
    import sys
    if cxx == "g++" and shutil.which("g++") is None:
        pytest.skip("no g++ here")
    env = dict(os.environ, JAXFUSE_KERNEL_CACHE=str(tmp_path / "cache"), CXX=cxx)
    env.pop("JAXFUSE_ONEDNN_LIB", None)
    r = subprocess.run([sys.executable, "-c", FIRST_USE], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    _, ok, conv, built, warned = r.stdout.split("RESULT", 1)[1].split(" ", 4)
    if cxx == "g++":  # built once into the fresh cache, saying so, then used
        assert (ok, conv, built) == ("True", "NativeConv", "True")
        assert "building the oneDNN convolution kernels" in r.stderr
    else:  # no compiler: one warning, and the networks keep flax's convolutions
        assert (ok, conv, built) == ("False", "Conv", "False")
        assert "no C++ compiler 'no-such-c++'" in warned and "use XLA" in warned


@needs_native
def test_fusiongan_generator_equals_the_lax_path(rng):
    """FusionGAN's generator (stride-1 SNConvs) on the kernels; its discriminator stays on XLA.

    Compared: the generator's output and the gradient of its content loss, each leaf
    against XLA's path within 1e-4, or, for leaves that XLA's path itself cannot
    pin down that well, within 10x of how far they move on XLA's path when the input
    changes by 1e-6 (at initialisation the gradients of the first two layers and of
    the conv biases before batch norm move by 20-200 % then, measured). Not a whole
    step: the adversarial game at initialisation is chaotic in the same way.
    """
    from jaxfuse import fusiongan
    from jaxfuse.fusiongan import networks as gan_nets
    patch = gan_nets.MIN_PATCH + 2
    # patches on the networks' scale, [-1, 1] (fusiongan.normalize)
    ir = rng.uniform(-1, 1, (2, patch, patch, 1)).astype(np.float32)
    vis = rng.uniform(-1, 1, (2, patch, patch, 1)).astype(np.float32)
    pad = gan_nets.PAD
    cfg = fusiongan.GANConfig(pairs_dataset="unused", patch=patch, batch=2, steps=1)

    def run(native, eps=0.0):
        with contextlib.nullcontext() if native else conv_native.xla_convolutions():
            state = fusiongan.init_state(cfg)
            x = np.concatenate([ir * (1 + eps), vis], axis=-1)

            def content(g):
                out, _ = gan_nets.Generator().apply({"params": g, "batch_stats": state["g_stats"]},
                                                    x, mode="train", mutable=["batch_stats"])
                crop = lambda a: a[:, pad:-pad, pad:-pad]  # noqa: E731
                return jnp.mean(fusiongan.content_loss(out, crop(ir), crop(vis))), out

            fn = jax.jit(jax.value_and_grad(content, has_aux=True))
            assert ("jaxfuse_onednn_conv" in fn.lower(state["g"]).as_text()) == native
            (loss, out), grads = fn(state["g"])
            if eps == 0.0:  # the whole step traces on the kernels too (uncached: make_train_step
                # keeps one traced step per (lr, d_steps) and process)
                step = fusiongan.make_train_step.__wrapped__(cfg.lr, cfg.d_steps)
                hlo = jax.jit(step).lower(state, ir, vis, jax.random.key(0)).as_text()
                assert ("jaxfuse_onednn_conv" in hlo) == native
            return float(loss), np.asarray(out), jax.tree_util.tree_leaves_with_path(grads)

    (ln, on, gn), (lx, ox, gx), (_, _, gp) = run(True), run(False), run(False, 1e-6)
    assert abs(ln - lx) <= TOL * abs(lx) and rel_err(on, ox) <= TOL
    bad, firm = [], 0
    for (key, a), (_, b), (_, c) in zip(gn, gx, gp):
        own = rel_err(c, b)  # XLA's path against itself, input moved by 1e-6
        firm += own < 1e-4
        if rel_err(a, b) > max(1e-4, 10 * own):
            bad.append((jax.tree_util.keystr(key), rel_err(a, b), own))
    assert not bad, bad
    assert firm >= 8  # conv3-5 kernels, conv5 bias, bn3 and bn4 held to 1e-4


@needs_native
@pytest.mark.parametrize("layout", [1, 2])
def test_both_wide_weight_gradient_layouts_match_lax(rng, layout, monkeypatch, request):
    """Whichever layout the machine picks for wide layers' weight gradients, the
    numbers are lax's; and the call really carries that layout."""
    monkeypatch.setitem(conv_layouts._state, "wide_layout", layout)
    conv_native._native_bwd_weights.cache_clear()  # its traced calls keep their attributes
    request.addfinalizer(conv_native._native_bwd_weights.cache_clear)
    for ci, co, k, padding in [(64, 64, 3, "SAME"), (192, 64, 3, "REFLECT"), (64, 32, 3, "SAME")]:
        check_all(*make(rng, 2, 13, 11, ci, co, k), padding)
    x, w, b = make(rng, 1, 8, 8, 64, 64, 3)
    hlo = jax.jit(jax.grad(weighted_sum(conv_native.conv, "SAME"), argnums=1)).lower(x, w, b).as_text()
    line = next(ln for ln in hlo.splitlines() if "jaxfuse_onednn_conv_bwd_weights" in ln)
    assert f"blocked = {layout} : i64" in line


@needs_native
def test_wide_layout_is_measured_once_per_machine_then_kept(tmp_path, monkeypatch):
    import json
    path = tmp_path / "layouts.json"
    monkeypatch.setattr(conv_layouts, "_layouts_path", lambda: path)
    monkeypatch.delenv("JAXFUSE_CONV_LAYOUT", raising=False)
    monkeypatch.delitem(conv_layouts._state, "wide_layout", raising=False)
    measured = []
    real = conv_layouts._time_layouts
    monkeypatch.setattr(conv_layouts, "_time_layouts", lambda **kw: measured.append(1) or real(reps=2, **kw))
    first = conv_native.wide_weight_grad_layout()
    assert first in (1, 2) and measured == [1]
    (entry,) = json.loads(path.read_text()).values()
    assert entry["layout"] == first and set(entry["ms"]) == {"1", "2"}
    assert min(entry["ms"], key=entry["ms"].get) == str(first)
    # a later process reads the file and measures nothing; the file decides
    other = 3 - first
    path.write_text(json.dumps({k: {**v, "layout": other} for k, v in json.loads(path.read_text()).items()}))
    monkeypatch.delitem(conv_layouts._state, "wide_layout")
    assert conv_native.wide_weight_grad_layout() == other and measured == [1]
    # the environment overrides both
    monkeypatch.delitem(conv_layouts._state, "wide_layout")
    monkeypatch.setenv("JAXFUSE_CONV_LAYOUT", str(first))
    assert conv_native.wide_weight_grad_layout() == first and measured == [1]
