"""DenseFuse as a jaxfuse architecture: forward pass and its l1 block strategy."""

import jax
import numpy as np
import pytest

import numpy_reference as ref
from jaxfuse import engine, fusion, model, strategies


@pytest.fixture(scope="module")
def dense_params():
    return model.init_params(jax.random.key(3), model.ModelConfig(arch="densefuse"))


def test_structure(dense_params):
    assert model.config_from_params(dense_params).arch == "densefuse"
    enc = dense_params["encoder"]
    assert [enc[f"dense{i}"]["kernel"].shape[2] for i in range(3)] == [16, 32, 48]
    # conv0 + dense block + the shared decoder: 160 + 2320 + 4624 + 6928 + 60161.
    assert model.count_params(dense_params) == 74_193


def test_forward_matches_numpy_with_reflection(dense_params, rng):
    x = rng.uniform(0, 255, (1, 9, 12, 1)).astype(np.float32)
    pn = jax.tree_util.tree_map(np.asarray, dense_params)
    _, want = ref.densefuse_reconstruct(pn, x[0].astype(np.float64))
    got = np.asarray(jax.jit(model.reconstruct)(dense_params, x))[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    feats = np.asarray(model.encode(dense_params, x))
    assert feats.shape == (1, 9, 12, 64)


def test_l1_block_matches_numpy(rng):
    f = np.maximum(rng.normal(size=(2, 8, 10, 64)), 0).astype(np.float32)
    f[:, :3, :3] = 0.0  # silent corner: defined, not NaN
    got = np.asarray(jax.jit(strategies.l1_block)(f))
    np.testing.assert_allclose(got, ref.l1_block(f.astype(np.float64)), rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(got))


def test_densefuse_fuses_at_true_size(dense_params, rng):
    ir, vis = rng.uniform(0, 255, (2, 30, 41)).astype(np.float32)
    a = fusion.fuse_pair(dense_params, ir, vis, strategy="addition")
    b = fusion.fuse_pair(dense_params, ir, vis, strategy="addition", fuse_fn=fusion.fuse)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="reflection"):
        engine.bucketed_fuse(dense_params, np.stack([ir, vis])[:, None, :, :, None])


@pytest.fixture(scope="module")
def msd_params():
    return model.init_params(jax.random.key(4), model.ModelConfig(arch="msdnet"))


def test_msdnet_structure_and_forward(msd_params, rng):
    assert model.config_from_params(msd_params).arch == "msdnet"
    enc = msd_params["encoder"]
    assert [enc[f"scale{k}"]["kernel"].shape for k in (1, 3, 5)] == [(1, 1, 64, 64), (3, 3, 64, 64), (5, 5, 64, 64)]
    assert msd_params["decoder"]["conv0"]["kernel"].shape == (3, 3, 192, 64)
    x = rng.uniform(0, 255, (1, 9, 11, 1)).astype(np.float32)
    pn = jax.tree_util.tree_map(np.asarray, msd_params)
    f_ref = ref.msdnet_encode(pn, x[0].astype(np.float64))
    f = np.asarray(jax.jit(model.encode)(msd_params, x))[0]
    np.testing.assert_allclose(f, f_ref, rtol=1e-4, atol=1e-4 * np.abs(f_ref).max())
    r_ref = ref.reflect_decode(pn, f_ref)
    r = np.asarray(jax.jit(model.reconstruct)(msd_params, x))[0]
    np.testing.assert_allclose(r, r_ref, rtol=1e-4, atol=1e-4 * np.abs(r_ref).max())


def test_msdnet_fuses_each_scale_on_its_own(msd_params, rng):
    src = rng.uniform(0, 255, (2, 1, 10, 12, 1)).astype(np.float32)
    got = np.asarray(fusion.fuse(msd_params, src, strategy="l1"))[0]
    pn = jax.tree_util.tree_map(np.asarray, msd_params)
    feats = np.stack([ref.msdnet_encode(pn, src[i, 0].astype(np.float64)) for i in range(2)])
    fused = np.concatenate([ref.l1(feats[..., 64 * s:64 * (s + 1)]) for s in range(3)], axis=-1)
    want = ref.reflect_decode(pn, fused)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    # Fusing all 192 channels at once would differ: the per-scale split matters.
    whole = ref.reflect_decode(pn, ref.l1(feats))
    assert np.abs(whole - want).max() > 1e-4 * np.abs(want).max()


@pytest.mark.parametrize("arch,strategy", [("densefuse", "l1_block"), ("msdnet", "mean")])
def test_arch_trains_and_fuses_end_to_end(tmp_path, arch, strategy):
    import subprocess
    import sys

    from PIL import Image

    from conftest import REPO
    work = tmp_path / "w"
    r = subprocess.run([sys.executable, "train.py", "--arch", arch, "--ssim-weight", "100", "--steps", "2",
                        "--size", "24", "--workdir", str(work), "--no-progress"],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    from jaxfuse.checkpoint import load_params, read_meta
    _, config = load_params(work / "checkpoints")
    assert config.arch == arch
    assert read_meta(work / "checkpoints" / "2")["train"]["ssim_weight"] == 100
    pairs = tmp_path / "pairs"
    rng = np.random.default_rng(0)
    for sub in ("ir", "vis"):
        (pairs / sub).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (19, 26), dtype=np.uint8)).save(pairs / sub / "a.png")
    out = tmp_path / "out"
    args = [sys.executable, "fuse.py", "--pairs", str(pairs), "--out", str(out), "--checkpoint",
            str(work / "checkpoints"), "--strategy", strategy, "--no-progress"]
    r = subprocess.run(args + ["--arch", arch], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert Image.open(out / "a.png").size == (26, 19)
    other = "res2netfuse"
    r = subprocess.run(args + ["--arch", other, "--overwrite"], cwd=REPO, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 2 and f"holds a {arch} network, not {other}" in r.stderr


@pytest.mark.parametrize("arch", ["densefuse", "msdnet"])
def test_reflection_padded_archs_fuse_at_true_size(arch, dense_params, msd_params, rng):
    # The table says they cannot be masked: auto_fuse fuses the true size, tiles refuse.
    p = dense_params if arch == "densefuse" else msd_params
    assert not model.arch_spec(p).maskable
    src = rng.uniform(0, 255, (2, 1, 19, 26, 1)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(engine.auto_fuse(p, src, strategy="l1")),
                                  np.asarray(fusion.fuse(p, src, strategy="l1")))
    with pytest.raises(ValueError, match="reflection-padded"):
        engine.tiled_fuse(p, src, tile=16)
