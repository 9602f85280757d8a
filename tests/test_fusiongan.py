"""FusionGAN: the networks against the paper's layers, the losses against NumPy, training,
resume after an interruption, and train.py / fuse.py end to end.

Training runs use 44-pixel patches (the smallest the discriminator's four stride-2
convolutions take; 132 is the authors') on a tiny synthetic pairs folder, and
all share one compiled train step (one batch size, one patch size).
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxfuse import checkpoint, engine, fusiongan, model
from jaxfuse.errors import Interrupted, JaxfuseError
from jaxfuse.fusiongan import training as gan_training

PATCH, BATCH = 44, 2  # every training run here: one compiled step
H, W = 58, 63  # the synthetic pairs' size: 2 × 2 patches each at stride 14; W odd


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    """Two registered pairs with structure (stripes, a warm block), the second visible in colour."""
    root = tmp_path_factory.mktemp("pairs")
    (root / "ir").mkdir()
    (root / "vis").mkdir()
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:H, :W]
    for i in (1, 2):
        ir = 60 + 40 * (xx // 9 % 2) + 120 * ((yy > 20) & (yy < 40) & (xx > 10 * i) & (xx < 10 * i + 15))
        vis = 110 + 70 * np.sin(yy / (2.0 + i)) * np.cos(xx / 4.0) + rng.normal(0, 8, (H, W))
        vis = np.clip(vis, 0, 255).astype(np.uint8)
        if i == 2:
            vis = np.stack([vis, vis // 2 + 60, 255 - vis], axis=-1)
        Image.fromarray(ir.astype(np.uint8)).save(root / "ir" / f"{i:02d}.png")
        Image.fromarray(vis).save(root / "vis" / f"{i:02d}.png")
    return root


def _config(pairs_dir, **kw):
    return fusiongan.GANConfig(pairs_dataset=str(pairs_dir), **{"patch": PATCH, "batch": BATCH, **kw})


# ----------------------------------------------------------------------------- the networks

def test_layers_are_the_papers():
    """Kernel sizes and channels of FusionGAN Sec. 3.3 / the authors' model.py, at 132-pixel patches."""
    g, d = jax.eval_shape(lambda: fusiongan.init_variables(jax.random.key(0)))
    gp, dp = g["params"], d["params"]
    assert [gp[f"conv{i}"]["kernel"].shape for i in range(1, 6)] == [
        (5, 5, 2, 256), (5, 5, 256, 128), (3, 3, 128, 64), (3, 3, 64, 32), (1, 1, 32, 1)]
    assert [gp[f"bn{i}"]["scale"].shape for i in range(1, 5)] == [(256,), (128,), (64,), (32,)]
    assert "bn5" not in gp
    assert [dp[f"conv{i}"]["kernel"].shape for i in range(1, 5)] == [
        (3, 3, 1, 32), (3, 3, 32, 64), (3, 3, 64, 128), (3, 3, 128, 256)]
    assert "bn1" not in dp and sorted(k for k in dp if k.startswith("bn")) == ["bn2", "bn3", "bn4"]
    assert dp["linear5"]["kernel"].shape == (6 * 6 * 256, 1)  # 120 → 59 → 29 → 14 → 6
    # Counted by hand from the table: convs with bias, batch-norm scale and offset.
    assert model.count_params(gp) == 925_633 and model.count_params(dp) == 397_953
    # Spectral-norm vectors for every kernel, moving averages for every batch norm.
    assert set(g["batch_stats"]) == set(gp) and set(d["batch_stats"]) == set(dp)
    assert fusiongan.disc_size(120) == 6 and fusiongan.MIN_PATCH == 43
    assert model.arch_spec("fusiongan").receptive_radius == fusiongan.RECEPTIVE_RADIUS == 6


def test_generator_shapes_odd_sizes_and_per_image_statistics(rng):
    p = model.init_params(jax.random.key(0), model.ModelConfig(arch="fusiongan"))
    assert model.config_from_params(p) == model.ModelConfig(arch="fusiongan")
    src = rng.uniform(0, 255, (2, 2, H, W, 1)).astype(np.float32)
    out = np.asarray(model.fuse(p, src, strategy="generator"))
    assert out.shape == (2, H, W, 1) and np.all(np.isfinite(out))
    assert np.all((out >= 0) & (out <= 255))  # tanh · 127.5 + 127.5
    alone = np.asarray(model.fuse(p, src[:, 1:], strategy="generator"))
    np.testing.assert_allclose(out[1:], alone, rtol=1e-5, atol=1e-3)  # each image its own statistics
    for mode in fusiongan.GENERATOR_MODES[1:]:
        raw = jax.eval_shape(lambda x: fusiongan.Generator().apply(
            {"params": p["generator"]}, x, mode=mode), jax.ShapeDtypeStruct((1, 17, 21, 2), jnp.float32))
        assert raw.shape == (1, 17 - 12, 21 - 12, 1)  # five VALID convolutions
    np.testing.assert_array_equal(np.asarray(engine.auto_fuse(p, src, strategy="generator")), out)
    with pytest.raises(ValueError, match="strategy must be 'generator', got 'l1'"):
        model.fuse(p, src)
    with pytest.raises(ValueError, match=r"sources must be \(2, N, H, W, 1\)"):
        model.fuse(p, np.concatenate([src, src[:1]]), strategy="generator")
    with pytest.raises(ValueError, match="no encoder or decoder"):
        model.encode(p, src[0])


def test_initialisation_is_deterministic_and_the_authors():
    a = model.init_params(jax.random.key(4), model.ModelConfig(arch="fusiongan"))
    b = model.init_params(jax.random.key(4), model.ModelConfig(arch="fusiongan"))
    c = model.init_params(jax.random.key(5), model.ModelConfig(arch="fusiongan"))
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    k = np.asarray(a["generator"]["conv2"]["kernel"])
    assert not np.array_equal(k, np.asarray(c["generator"]["conv2"]["kernel"]))
    # truncated normal, σ 1e-3 before truncation at 2σ; zero biases
    assert np.abs(k).max() <= 2e-3 and 0.8e-3 < k.std() < 0.9e-3
    assert not np.any(np.asarray(a["generator"]["conv2"]["bias"]))
    # the generator model.init_params makes is the one training starts from
    g, _ = fusiongan.init_variables(jax.random.key(4), patch=PATCH)
    np.testing.assert_array_equal(np.asarray(g["params"]["conv2"]["kernel"]), k)


def test_spectral_normalisation_converges_to_the_largest_singular_value(rng):
    kernel = jnp.asarray(rng.normal(size=(3, 3, 4, 5)), jnp.float32)
    u = jnp.asarray(rng.normal(size=(1, 5)), jnp.float32)
    normed, u_new = jax.jit(lambda k, u: fusiongan.spectral_normalize(k, u, n_power=60))(kernel, u)
    assert u_new.shape == (1, 5)
    s = np.linalg.svd(np.asarray(normed).reshape(-1, 5), compute_uv=False)
    np.testing.assert_allclose(s[0], 1.0, rtol=1e-4)


# ----------------------------------------------------------------------------- the losses

def _np_laplacian(x):
    """Zero-padded 4-neighbour Laplacian of (N, H, W) (the authors' kernel [[0,1,0],[1,-4,1],[0,1,0]])."""
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    return p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:] - 4 * x


def test_content_loss_against_numpy(rng):
    f, ir, vis = (rng.uniform(-1, 1, (3, 5, 6)).astype(np.float64) for _ in range(3))
    grad = ((_np_laplacian(f) - _np_laplacian(vis)) ** 2).mean(axis=(1, 2))
    want = ((f - ir) ** 2).mean(axis=(1, 2)) + 5 * grad
    got = jax.jit(fusiongan.content_loss)(*(jnp.asarray(a[..., None], jnp.float32) for a in (f, ir, vis)))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)
    lap = jax.jit(fusiongan.laplacian)(jnp.asarray(f[..., None], jnp.float32))
    np.testing.assert_allclose(np.asarray(lap)[..., 0], _np_laplacian(f), rtol=1e-5, atol=1e-6)
    xi2 = fusiongan.content_loss(*(jnp.asarray(a[..., None], jnp.float32) for a in (f, ir, vis)), xi=2.0)
    np.testing.assert_allclose(np.asarray(xi2), want - 3 * grad, rtol=1e-5)
    assert float(fusiongan.content_loss(*(jnp.asarray(ir[..., None]),) * 3)[0]) == 0.0
    with pytest.raises(ValueError, match="must have one shape"):
        fusiongan.content_loss(jnp.zeros((1, 4, 4, 1)), jnp.zeros((1, 4, 4, 1)), jnp.zeros((1, 5, 4, 1)))


def test_discriminator_and_adversarial_losses_against_numpy(rng):
    d_real, d_fake = rng.normal(size=(4, 1)), rng.normal(size=(4, 1))
    a = rng.uniform(0.7, 1.2, (4, 1))
    b = rng.uniform(0.0, 0.3, (4, 1))
    want = np.mean((d_real - a) ** 2) + np.mean((d_fake - b) ** 2)  # the authors' d_loss
    args = (jnp.asarray(x, jnp.float32) for x in (d_real, d_fake, a, b))
    got = jax.jit(fusiongan.discriminator_loss)(*args)
    np.testing.assert_allclose(float(jnp.mean(got)), want, rtol=1e-5)
    adv = jax.jit(fusiongan.adversarial_loss)(jnp.asarray(d_fake, jnp.float32), jnp.asarray(a, jnp.float32))
    np.testing.assert_allclose(np.asarray(adv), ((d_fake - a) ** 2)[:, 0], rtol=1e-5)
    labels = np.asarray(fusiongan.soft_labels(jax.random.key(0), 1000, fusiongan.REAL_LABELS))
    assert labels.shape == (1000, 1) and 0.7 <= labels.min() and labels.max() < 1.2


# ----------------------------------------------------------------------------- the data and training

def test_patches_follow_the_authors_cut(pairs_dir):
    data = fusiongan.load_pair_patches(pairs_dir, patch=PATCH)
    assert data.names == ["01", "02"] and len(data) == 2 * 2 * 2  # ys 0, 14; xs 0, 14 per pair
    ir, vis = data.batch(np.array([0, 7]))
    assert ir.shape == vis.shape == (2, PATCH, PATCH, 1)
    src_ir = np.asarray(Image.open(pairs_dir / "ir" / "02.png"), np.float32)
    np.testing.assert_allclose(ir[1, :, :, 0], (src_ir[14:14 + PATCH, 14:14 + PATCH] - 127.5) / 127.5)
    rgb = np.asarray(Image.open(pairs_dir / "vis" / "02.png"), np.float64)
    luma = rgb @ np.array([0.299, 0.587, 0.114])  # the colour path's Y
    np.testing.assert_allclose(vis[1, :, :, 0], (luma[14:14 + PATCH, 14:14 + PATCH] - 127.5) / 127.5,
                               atol=1e-5)
    assert sorted(fusiongan.epoch_order(8, 0, 1)) == list(range(8))
    with pytest.raises(JaxfuseError, match="no pair is as large as one 64×64"):
        fusiongan.load_pair_patches(pairs_dir, patch=64)


def test_train_steps_lower_the_loss(pairs_dir):
    config = _config(pairs_dir)
    data = fusiongan.load_pair_patches(pairs_dir, patch=PATCH)
    ir, vis = data.batch(np.array([1, 6]))
    state = fusiongan.init_state(config)
    step = fusiongan.make_train_step(config.lr, config.d_steps)
    content, d_before = [], jax.tree_util.tree_leaves(state["d"])[0].copy()
    for i in range(5):
        state, terms = step(state, ir, vis, jax.random.key(i))
        content.append(float(terms["content"]))
    assert all(np.isfinite(content)) and content[-1] < 0.7 * content[0]
    assert int(state["step"]) == 5
    assert not np.array_equal(np.asarray(jax.tree_util.tree_leaves(state["d"])[0]), np.asarray(d_before))


def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path, pairs_dir, monkeypatch):
    config = _config(pairs_dir, steps=3, checkpoint_every=1)
    full = fusiongan.train_and_evaluate(config, tmp_path / "full", progress=False)
    assert full["steps"] == 3 and full["dataset"]["steps_per_epoch"] == 4

    real = fusiongan.make_train_step

    def interrupting(lr, d_steps):  # Ctrl-C during the second step
        step, calls = real(lr, d_steps), []

        def wrapped(*args):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return step(*args)
        return wrapped

    monkeypatch.setattr(gan_training, "make_train_step", interrupting)
    with pytest.raises(Interrupted, match="interrupted at step 1; the checkpoint at 1 holds"):
        fusiongan.train_and_evaluate(config, tmp_path / "split", progress=False)
    monkeypatch.setattr(gan_training, "make_train_step", real)
    with pytest.raises(JaxfuseError, match="already holds a training run"):
        fusiongan.train_and_evaluate(config, tmp_path / "split", progress=False)
    lines = []
    fusiongan.train_and_evaluate(config, tmp_path / "split", resume=True, progress=False,
                                 log=lines.append)
    assert lines == [f"resuming at step 1 of 3 from {tmp_path / 'split' / 'checkpoints' / '1'}"]

    state = fusiongan.init_state(config)
    like = gan_training._opt_item(state)
    a, meta_a, opt_a = checkpoint.restore(tmp_path / "full", with_opt_like=like)
    b, meta_b, opt_b = checkpoint.restore(tmp_path / "split", with_opt_like=like)
    for x, y in zip(jax.tree_util.tree_leaves((a, opt_a)), jax.tree_util.tree_leaves((b, opt_b))):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert meta_a["history"] == meta_b["history"] and meta_a["step"] == 3
    assert set(meta_a["history"]) == set(fusiongan.HISTORY_KEYS)
    with pytest.raises(JaxfuseError, match="cannot resume.*lr=0.0001, now 0.0002"):
        fusiongan.train_and_evaluate(_config(pairs_dir, steps=3, lr=2e-4), tmp_path / "split",
                                     resume=True, progress=False)


# ----------------------------------------------------------------------------- the commands

@pytest.fixture(scope="module")
def trained_workdir(tmp_path_factory, pairs_dir):
    from jaxfuse.commands import main
    work = tmp_path_factory.mktemp("gan") / "run"
    rc = main(["train", "--arch", "fusiongan", "--pairs-dataset", str(pairs_dir), "--steps", "2",
               "--patch", str(PATCH), "--batch", str(BATCH), "--workdir", str(work), "--no-progress"])
    assert rc == 0
    return work


def test_train_py_then_fuse_py(trained_workdir, pairs_dir, tmp_path):
    from jaxfuse.commands import main
    for f in ("loss_curves.png", "sample.png", "summary.json"):
        assert (trained_workdir / f).stat().st_size > 0
    s = json.loads((trained_workdir / "summary.json").read_text())
    assert s["arch"] == "fusiongan" and s["steps"] == 2 and s["config"]["batch"] == BATCH
    assert s["recipe"]["xi"] == 5.0 and s["recipe"]["lambda"] == 100.0
    params, config = checkpoint.load_params(trained_workdir)
    assert config.arch == "fusiongan" and set(params) == {"generator"}
    assert model.count_params(params) == 925_633

    out = tmp_path / "fused"
    assert main(["fuse", "--pairs", str(pairs_dir), "--checkpoint", str(trained_workdir),
                 "--out", str(out), "--no-progress"]) == 0
    gray = np.asarray(Image.open(out / "01.png"))
    colour = np.asarray(Image.open(out / "02.png"))
    assert gray.shape == (H, W) and colour.shape == (H, W, 3)  # the colour path
    assert gray.max() == 254 and gray.min() == 0  # the min–max output step (truncating)
    p = {"generator": params["generator"]}
    from jaxfuse import fusion, io
    ir = io.load_image(pairs_dir / "ir" / "01.png", gray=True)
    vis = io.load_image(pairs_dir / "vis" / "01.png")
    np.testing.assert_array_equal(fusion.fuse_pair(p, ir, vis, strategy="generator"), gray)


@pytest.mark.parametrize("args, words", [
    (["--arch", "fusiongan"], "give --pairs-dataset DIR"),
    (["--pairs-dataset", "x"], "--pairs-dataset is for --arch fusiongan, not res2netfuse"),
    (["--arch", "densefuse", "--epochs", "3"], "--epochs needs --images (or --arch fusiongan)"),
    (["--arch", "fusiongan", "--pairs-dataset", "x", "--image", "y.png"], "--image trains an autoencoder"),
])
def test_train_py_flag_errors_are_one_line(args, words, capsys):
    from jaxfuse.commands import main
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and words in err


def test_bad_settings_name_the_setting(pairs_dir, tmp_path):
    with pytest.raises(JaxfuseError, match="patch 40 is below the 43 pixels"):
        fusiongan.train_and_evaluate(_config(pairs_dir, patch=40), tmp_path / "w", progress=False)
    with pytest.raises(JaxfuseError, match="has 8 patches, fewer than one batch of 9"):
        fusiongan.train_and_evaluate(_config(pairs_dir, batch=9), tmp_path / "w", progress=False)
    from jaxfuse.training import TrainConfig
    with pytest.raises(JaxfuseError, match="fusiongan is no autoencoder"):
        TrainConfig(arch="fusiongan").validate()
