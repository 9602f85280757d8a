"""Folder training (``jaxfuse.data``, ``train.py --images``).

* the stream: its order is fixed by the seed, every image comes once per
  epoch and epochs are reshuffled, the batches hold exactly those images
  decoded and augmented, and a saved iterator state continues the stream;
* bad files (empty, truncated, not an image, tiny) are skipped with a
  one-line warning each and counted; a missing or empty folder is an error
  before anything starts;
* ``train.py --images`` end to end: a checkpoint ``fuse.py`` uses; killed
  with SIGKILL mid-epoch and resumed, bit-identical on CPU to a run that was
  not interrupted; on 4 forced host devices and as two ``jax.distributed``
  processes, equal to one device within float32 rounding.
"""

from __future__ import annotations

import collections
import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, SCRIPT_ENV
from jaxfuse import data, io
from jaxfuse.errors import JaxfuseError


def _photos(folder: Path, n: int = 7, seed: int = 0) -> list[Path]:
    """``n`` small images of varied sizes, modes and formats, some in a subfolder."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = 20 + 3 * i, 26 + 2 * i
        sub = folder / ("nested" if i % 2 else "")
        sub.mkdir(parents=True, exist_ok=True)
        y, x = np.mgrid[0:h, 0:w]
        base = 120 + 80 * np.sin(x / (2 + i)) * np.cos(y / 3) + rng.normal(0, 10, (h, w))
        if i % 3 == 0:
            img = Image.fromarray(np.clip(np.stack([base, base * 0.8, 255 - base], -1), 0, 255)
                                  .astype(np.uint8))
        else:
            img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
        p = sub / f"img{i}.{('png', 'jpg', 'bmp')[i % 3]}"
        img.save(p)
        out.append(p)
    return out


def _bad_files(folder: Path) -> dict[str, str]:
    """One file of each kind of problem; their names and a word of the expected warning."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.png").write_bytes(b"")
    good = folder / "_tmp.jpg"
    Image.fromarray(np.full((30, 30), 90, np.uint8)).save(good)
    (folder / "truncated.jpg").write_bytes(good.read_bytes()[:120])
    good.unlink()
    (folder / "notes.png").write_text("this is not an image")
    Image.fromarray(np.zeros((4, 40), np.uint8)).save(folder / "tiny.png")
    return {"empty.png": "empty", "truncated.jpg": "truncated", "notes.png": "",
            "tiny.png": "too small"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    f = tmp_path_factory.mktemp("photos")
    _photos(f)
    return f


# ---------------------------------------------------------------------------- the stream


def test_scan_finds_every_image_recursively_in_a_fixed_order(folder):
    ds = data.scan([str(folder)])
    assert len(ds) == 7 and list(ds.items) == sorted(ds.items)
    assert {Path(p).name for p in ds.items} == {f"img{i}.{('png', 'jpg', 'bmp')[i % 3]}"
                                               for i in range(7)}
    both = data.scan([str(folder), "bundled"])
    assert len(both) == 27 and both.items[:7] == ds.items
    assert both.items[7] == "bundled:astronaut" or both.items[7].startswith("bundled:")
    assert ds.fingerprint() == data.scan([str(folder)]).fingerprint() != both.fingerprint()


def test_the_resume_fingerprint_follows_the_bytes_not_the_file_times(tmp_path):
    import os
    import shutil
    for name, size in (("small.png", 1000), ("big.png", 300_000)):
        (tmp_path / name).write_bytes(bytes(range(256)) * (size // 256))
    ds = data.Dataset(("x",), tuple(str(tmp_path / n) for n in ("small.png", "big.png")))
    before = ds.fingerprint()
    for n in ("small.png", "big.png"):  # a copy, restore or remount: new times, same bytes
        os.utime(tmp_path / n, ns=(1, 1))
    assert ds.fingerprint() == before
    for n, at in (("small.png", 500), ("big.png", 300_000 - 1000), ("big.png", 10)):
        saved = (tmp_path / n).read_bytes()
        changed = bytearray(saved)
        changed[at] ^= 1
        (tmp_path / n).write_bytes(bytes(changed))
        assert ds.fingerprint() != before, (n, at)
        (tmp_path / n).write_bytes(saved)
    assert ds.fingerprint() == before
    shutil.copy(tmp_path / "small.png", tmp_path / "big.png")  # same name, other size
    assert ds.fingerprint() != before


def test_order_is_fixed_by_the_seed_and_each_epoch_is_a_permutation(folder):
    ds = data.scan([str(folder)])
    a = data.order(ds, seed=3, epochs=4)
    assert a == data.order(ds, seed=3, epochs=4)
    assert a != data.order(ds, seed=4, epochs=4)
    n = len(ds)
    epochs = [a[e * n:(e + 1) * n] for e in range(4)]
    for e in epochs:  # every image exactly once per epoch
        assert collections.Counter(e) == collections.Counter(ds.items)
    assert len({tuple(e) for e in epochs}) > 1, "epochs are not reshuffled"


def test_batches_hold_the_images_of_the_order_decoded_and_resized(folder):
    ds = data.scan([str(folder)])
    size, batch, steps = 16, 3, 6  # 18 elements: two full epochs and a half of 7
    pipe = data.pipeline(ds, batch=batch, size=size, augment="resize", seed=5, steps=steps)
    order = data.order(ds, seed=5, epochs=data.epochs_for(steps, batch, len(ds)))
    got = np.concatenate([b for b in data.iter_batches(pipe)][:steps])
    assert got.shape == (steps * batch, size, size, 1) and got.dtype == np.float32
    want = np.stack([data.resize(io.load_image(p, gray=True), size) for p in order[:steps * batch]])
    np.testing.assert_array_equal(got[..., 0], want)


def test_crops_are_a_pure_function_of_the_seed_and_index(folder):
    ds = data.scan([str(folder)])
    kw = dict(batch=2, size=12, augment="crops", steps=5)
    a = [b for b in data.iter_batches(data.pipeline(ds, seed=1, **kw))]
    b = [b for b in data.iter_batches(data.pipeline(ds, seed=1, **kw))]
    c = [b for b in data.iter_batches(data.pipeline(ds, seed=2, **kw))]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(a, c))
    assert all(x.min() >= 0 and x.max() <= 255 for x in a)


def test_a_saved_iterator_state_continues_the_stream_exactly(folder):
    ds = data.scan([str(folder)])
    pipe = data.pipeline(ds, batch=2, size=12, augment="crops", seed=0, steps=10)
    it = data.iterator(pipe, threads=2, prefetch=3)
    straight = [next(it) for _ in range(10)]
    it = data.iterator(pipe, threads=2, prefetch=3)
    [next(it) for _ in range(4)]  # four batches of 2: mid-epoch (7 images)
    state = json.loads(json.dumps(it.get_state()))  # as a checkpoint's JSON stores it
    rest = data.iterator(pipe, threads=2, state=state)
    for want in straight[4:]:
        np.testing.assert_array_equal(next(rest), want)


def test_process_shards_together_are_the_global_batch(folder):
    ds = data.scan([str(folder)])
    kw = dict(batch=4, size=12, augment="crops", seed=0, steps=4)
    whole = list(data.iter_batches(data.pipeline(ds, **kw)))
    parts = [list(data.iter_batches(data.pipeline(ds, process=p, processes=2, **kw)))
             for p in range(2)]
    for k, w in enumerate(whole[:4]):
        assert parts[0][k].shape == (2, 12, 12, 1)
        got = np.empty_like(w)
        got[0::2], got[1::2] = parts[0][k], parts[1][k]  # process p holds elements p, p + 2
        np.testing.assert_array_equal(got, w)


# ---------------------------------------------------------------------------- bad input


def test_bad_files_are_skipped_with_a_warning_each_and_counted(tmp_path):
    _photos(tmp_path, n=3)
    bad = _bad_files(tmp_path / "bad")
    warnings = []
    ds = data.scan([str(tmp_path)], warn=warnings.append)
    assert len(ds) == 3 and len(ds.skipped) == len(bad) == len(warnings)
    for name, word in bad.items():
        line = next(w for w in warnings if f"{name}:" in w)
        assert "\n" not in line and line.endswith("skipped") and word in line, line
    assert {Path(s["file"]).name for s in ds.summary()["skipped"]} == set(bad)


def test_missing_empty_or_unusable_folders_are_errors(tmp_path):
    with pytest.raises(JaxfuseError, match="no such folder"):
        data.scan([str(tmp_path / "nope")])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images")
    with pytest.raises(JaxfuseError, match="holds no image file"):
        data.scan([str(tmp_path / "empty")])
    _bad_files(tmp_path / "bad")
    with pytest.raises(JaxfuseError, match=r"no usable training image \(4 file"):
        data.scan([str(tmp_path / "bad")])
    with pytest.raises(JaxfuseError, match="not a folder"):
        data.scan([str(tmp_path / "bad" / "tiny.png")])


def _train(*args, env=None, timeout=600) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, str(REPO / "train.py"), *map(str, args)], cwd=REPO,
                       env=env or SCRIPT_ENV, capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    return r


@pytest.mark.parametrize("args, message", [
    (["--images", "{tmp}/nope"], "{tmp}/nope: no such folder"),
    (["--images", "{tmp}/bad"], "{tmp}/bad: no usable training image"),
    (["--epochs", "2"], "--epochs needs --images"),
    (["--images", "{tmp}/bad", "--image", "camera"], "--image and --images exclude each other"),
    (["--images", "{tmp}", "--steps", "3", "--epochs", "1"], "--steps and --epochs exclude"),
    (["--augment", "crops"], "--augment needs --images"),
    (["--images", "{tmp}", "--coordinator", "localhost:1"], "go together"),
])
def test_cli_refuses_bad_folders_and_flags_in_one_line(tmp_path, args, message):
    _bad_files(tmp_path / "bad")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = _train(*args, "--workdir", tmp_path / "w", "--no-progress", timeout=120)
    assert r.returncode != 0
    assert message.replace("{tmp}", str(tmp_path)) in r.stderr, r.stderr
    lines = [x for x in r.stderr.strip().splitlines() if not x.startswith("warning: ")]
    assert len(lines) <= 2, r.stderr  # usage line + message at most, beside the skipped files
    assert not (tmp_path / "w" / "checkpoints").exists()


# ---------------------------------------------------------------------------- train.py --images

ARGS = ("--size", "16", "--batch", "2", "--seed", "0", "--augment", "crops", "--no-progress")


def _final(workdir: Path):
    from jaxfuse import checkpoint, training
    params, meta, _ = checkpoint.restore(workdir / "checkpoints")
    _, _, opt = checkpoint.restore(workdir / "checkpoints",
                                   with_opt_like=training.make_optimizer(1e-4).init(params))
    return params, opt, meta


def _max_rel_diff(a, b) -> float:
    import jax
    return max(float(np.abs(np.asarray(x) - np.asarray(y)).max() / (np.abs(np.asarray(x)).max()
                                                                   + 1e-12))
               for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


@pytest.fixture(scope="module")
def straight(tmp_path_factory, folder):
    """An uninterrupted folder run: 2 epochs of 7 images at batch 2 (7 steps)."""
    w = tmp_path_factory.mktemp("straight") / "w"
    bad = _bad_files(folder.parent / "with-bad")
    for p in folder.rglob("*"):  # the good images plus one bad file of each kind
        if p.is_file():
            dst = folder.parent / "with-bad" / p.relative_to(folder)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(p.read_bytes())
    r = _train("--images", folder.parent / "with-bad", "--epochs", "2", "--workdir", w,
               "--checkpoint-every", "2", *ARGS)
    assert r.returncode == 0, r.stderr[-3000:]
    for name in bad:
        assert f"{name}:" in r.stderr and "skipped" in r.stderr
    return w, folder.parent / "with-bad", r


def test_folder_training_writes_a_checkpoint_fuse_uses(straight, tmp_path):
    w, src, r = straight
    s = json.loads((w / "summary.json").read_text())
    assert s["steps"] == 7 and s["config"]["images"] == [str(src)]
    assert s["dataset"]["images"] == 7 and len(s["dataset"]["skipped"]) == 4
    assert s["dataset"]["epochs_run"] == pytest.approx(2.0)
    assert (w / "loss_curves.png").is_file()
    assert "data: 7 image(s) (4 skipped)" in r.stdout
    pairs = tmp_path / "pairs"
    rng = np.random.default_rng(1)
    for sub in ("ir", "vis"):
        (pairs / sub).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (20, 24), dtype=np.uint8)).save(pairs / sub / "a.png")
    f = subprocess.run([sys.executable, str(REPO / "fuse.py"), "--pairs", pairs, "--out",
                        tmp_path / "out", "--checkpoint", w / "checkpoints", "--no-progress"],
                       cwd=REPO, env=SCRIPT_ENV, capture_output=True, text=True, timeout=300)
    assert f.returncode == 0, f.stderr
    assert np.asarray(Image.open(tmp_path / "out" / "a.png")).shape == (20, 24)


def test_an_existing_run_is_refused_before_the_folder_is_read(straight):
    # the folder holds four bad files: reading it would warn about each one first
    w, src, _ = straight
    r = _train("--images", src, "--epochs", "2", "--workdir", w, "--checkpoint-every", "2", *ARGS, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (f"error: {w / 'checkpoints'}: already holds a training run; "
                                "pass --resume to continue it or --overwrite to start again"), r.stderr


def test_sigkill_mid_epoch_then_resume_is_bit_identical(straight, tmp_path):
    from test_kill_resume import _assert_trees_equal, _steps, kill_when
    w0, src, _ = straight
    w = tmp_path / "killed"
    cmd = [sys.executable, str(REPO / "train.py"), "--images", str(src), "--epochs", "2",
           "--workdir", str(w), "--checkpoint-every", "2", *ARGS]
    # the checkpoint at step 2 is mid-epoch: 4 of the first epoch's 7 images seen
    proc = subprocess.Popen(cmd, cwd=REPO, env=SCRIPT_ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    kill_when(proc, lambda: bool(_steps(w)))
    assert not (w / "summary.json").exists()
    assert max(_steps(w)) < 7
    r = _train(*cmd[2:], "--resume")
    assert r.returncode == 0, r.stderr[-3000:]
    pa, oa, ma = _final(w0)
    pb, ob, mb = _final(w)
    _assert_trees_equal(pa, pb)
    _assert_trees_equal(oa, ob)
    assert ma["history"] == mb["history"] and ma["data_state"] == mb["data_state"]
    # a changed folder is not the same run: refused rather than silently mixed
    Image.fromarray(np.full((30, 30), 7, np.uint8)).save(src / "new.png")
    try:
        r = _train(*cmd[2:], "--resume", "--workdir", w0)
        assert r.returncode != 0 and "different settings" in r.stderr, r.stderr
    finally:
        (src / "new.png").unlink()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_four_devices_and_two_processes_equal_one_device(folder, tmp_path):
    """Global batch 4 for 3 steps: one device; 4 forced host devices; two processes of one
    device each (gloo collectives over loopback), each decoding only its share."""
    args = ("--images", folder, "--steps", "3", "--batch", "4", "--size", "16", "--augment",
            "crops", "--no-progress", "--checkpoint-every", "3")
    r = _train(*args, "--workdir", tmp_path / "one")
    assert r.returncode == 0, r.stderr[-3000:]
    four_env = {**SCRIPT_ENV, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    r = _train(*args, "--workdir", tmp_path / "four", env=four_env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "on 4 device(s)" in r.stdout

    port = _free_port()
    procs = [subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *map(str, args), "--workdir", str(tmp_path / "two"),
         "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
        cwd=REPO, env=SCRIPT_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0 and "Traceback" not in err, err[-3000:]
    assert "on 2 device(s)" in outs[0][0]
    s = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert s["dataset"]["processes"] == 2 and s["dataset"]["devices"] == 2

    p1, o1, m1 = _final(tmp_path / "one")
    for other in ("four", "two"):
        p, o, m = _final(tmp_path / other)
        assert _max_rel_diff(p1, p) < 1e-5, other
        assert _max_rel_diff(o1, o) < 1e-4, other
        np.testing.assert_allclose(m["history"]["total"], m1["history"]["total"], rtol=1e-5)
