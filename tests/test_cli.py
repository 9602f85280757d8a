"""train.py and fuse.py end to end, run as a user runs them."""

import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from conftest import REPO, SCRIPT_ENV, TNO21, needs_tno21


def run(*args, cwd=REPO):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env=SCRIPT_ENV)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    work = tmp_path_factory.mktemp("train")
    r = run("train.py", "--steps", "3", "--size", "24", "--workdir", str(work), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "reconstruction SSIM" in r.stdout
    for f in ("loss_curves.png", "reconstruction.png", "summary.json"):
        assert (work / f).is_file()
    return work / "checkpoints"


def _write_pairs(folder, sizes, rgb_vis=False, flat=False):
    rng = np.random.default_rng(1)
    for i, (h, w) in enumerate(sizes, 1):
        ir = rng.integers(0, 256, (h, w), dtype=np.uint8)
        vis = rng.integers(0, 256, (h, w, 3) if rgb_vis else (h, w), dtype=np.uint8)
        if flat:
            Image.fromarray(ir).save(folder / f"IR{i}.png")
            Image.fromarray(vis).save(folder / f"vis{i}.bmp")
        else:
            (folder / "ir").mkdir(exist_ok=True)
            (folder / "vis").mkdir(exist_ok=True)
            Image.fromarray(ir).save(folder / "ir" / f"{i:02d}.png")
            Image.fromarray(vis).save(folder / "vis" / f"{i:02d}.png")


def test_train_writes_loadable_checkpoint(tiny_ckpt):
    from jaxfuse.checkpoint import load_params
    params, config = load_params(tiny_ckpt)
    assert config.shared


def test_training_workdir_is_accepted_as_checkpoint(tiny_ckpt):
    from jaxfuse.checkpoint import latest_meta, load_params
    step_dir, _ = latest_meta(tiny_ckpt.parent)  # the --workdir, as train.py was given it
    assert step_dir == latest_meta(tiny_ckpt)[0] and step_dir.parent == tiny_ckpt
    a, _ = load_params(tiny_ckpt.parent)
    b, _ = load_params(tiny_ckpt)
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a),
                                                     jax.tree_util.tree_leaves(b)))


def test_fuse_subfolders_keeps_sizes(tiny_ckpt, tmp_path):
    _write_pairs(tmp_path, [(17, 23), (30, 20), (8, 9)])
    out = tmp_path / "out"
    r = run("fuse.py", "--pairs", str(tmp_path), "--out", str(out), "--checkpoint", str(tiny_ckpt),
            "--strategy", "mean", "--no-progress")
    assert r.returncode == 0, r.stderr
    for name, (h, w) in zip(("01", "02", "03"), [(17, 23), (30, 20), (8, 9)]):
        im = Image.open(out / f"{name}.png")
        assert im.mode == "L" and im.size == (w, h)
    assert (out / "_overview.png").is_file()


def test_fuse_flat_layout_colour(tiny_ckpt, tmp_path):
    _write_pairs(tmp_path, [(16, 16), (20, 12)], rgb_vis=True, flat=True)
    out = tmp_path / "out"
    r = run("fuse.py", "--pairs", str(tmp_path), "--out", str(out), "--checkpoint", str(tiny_ckpt),
            "--no-progress")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.glob("[!_]*.png")) == ["1.png", "2.png"]
    assert Image.open(out / "1.png").mode == "RGB"


def test_rerun_skips_and_overwrite_replaces(tiny_ckpt, tmp_path):
    _write_pairs(tmp_path, [(12, 12)])
    out = tmp_path / "out"
    args = ("fuse.py", "--pairs", str(tmp_path), "--out", str(out), "--checkpoint", str(tiny_ckpt),
            "--no-progress")
    assert run(*args).returncode == 0
    (out / "01.png").write_bytes(b"sentinel")
    r = run(*args)
    assert r.returncode == 0 and "already there" in r.stdout
    assert (out / "01.png").read_bytes() == b"sentinel"
    assert run(*args, "--overwrite").returncode == 0
    assert Image.open(out / "01.png").size == (12, 12)


@needs_tno21
def test_fuse_tno21_with_shipped_checkpoint(tmp_path):
    out = tmp_path / "tno"
    r = run("fuse.py", "--pairs", str(TNO21), "--out", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    for ir in sorted((TNO21 / "ir").glob("*.png")):
        fused = Image.open(out / ir.name)
        assert fused.size == Image.open(ir).size and fused.mode == "L"
        a = np.asarray(fused)
        assert a.min() == 0 and a.max() >= 254  # the output step's full range
    assert len(list(out.glob("[!_]*.png"))) == 21


def test_outputs_get_ordinary_file_permissions(tmp_path):
    import os
    import stat

    from jaxfuse import io
    p = io.save_image(tmp_path / "x.png", np.zeros((4, 4), np.uint8))
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask
