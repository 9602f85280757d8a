"""Nothing lost: ``fuse.py`` and ``train.py`` killed with SIGKILL, then run again.

* ``fuse.py`` writes each output to a hidden temporary and renames it, so a
  kill never leaves a truncated image under an output name; rerunning the same
  command deletes the dead run's temporaries, skips the finished outputs and
  fuses the rest; an existing file is never overwritten without --overwrite.
* ``train.py`` killed at any point continues from its latest checkpoint with
  ``--resume`` and ends, on CPU, bit for bit where an uninterrupted run of the
  same seed ends: parameters, optimizer state and loss history.

Real processes, real SIGKILL, tiny sizes (16×16 pairs; ``--size 16``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image

from jaxfuse import checkpoint, training

REPO = Path(__file__).resolve().parents[1]
from conftest import SCRIPT_ENV as ENV  # noqa: E402  (CPU, shared compile cache)


TEMP = re.compile(r"^\.(.+)\.(\d+)\.[a-z0-9_]{8}\.tmp$")  # jaxfuse.io.atomic_write's temporaries


def popen(script: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / script), *map(str, args)], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(script: str, *args, timeout: float = 300) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, str(REPO / script), *map(str, args)], cwd=REPO, env=ENV,
                       capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def kill_when(proc: subprocess.Popen, ready, timeout: float = 240) -> None:
    """SIGKILLs ``proc`` as soon as ``ready()`` is true (polled every 5 ms)."""
    t0 = time.monotonic()
    while not ready():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"finished (rc {proc.returncode}) before it could be killed:\n{out}\n{err}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail("timed out waiting for the moment to kill")
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


# ------------------------------------------------------------------------------- fuse.py


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """The 2-step ``--size 16`` run test_robustness.py also uses (trained once per session)."""
    root = tmp_path_factory.getbasetemp() / "jaxfuse-tiny-run"
    if not (root / "summary.json").is_file():
        r = run("train.py", "--workdir", root, "--size", "16", "--steps", "2", "--checkpoint-every", "1",
                "--no-progress", "--overwrite")
        assert r.returncode == 0, r.stderr
    return root / "checkpoints"


def _valid_png(path: Path, shape) -> None:
    with Image.open(path) as img:
        img.load()  # raises on a truncated file
        assert img.format == "PNG" and np.asarray(img).shape == shape, path


def test_fuse_killed_then_rerun_completes(tmp_path, ckpt):
    n = 60
    rng = np.random.default_rng(0)
    pairs = tmp_path / "pairs"
    for sub in ("ir", "vis"):
        (pairs / sub).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(pairs / sub / f"{i:03d}.png")
    out = tmp_path / "out"
    out.mkdir()
    # A file already there under an output name: never overwritten without --overwrite.
    mine = np.full((5, 7), 42, np.uint8)
    Image.fromarray(mine).save(out / "057.png")
    cmd = ("fuse.py", "--pairs", pairs, "--out", out, "--checkpoint", ckpt, "--no-progress")

    def outputs():
        return [p for p in out.iterdir() if p.suffix == ".png" and not p.name.startswith(".")]

    proc = popen(*cmd)
    kill_when(proc, lambda: len(outputs()) >= 4)
    done = outputs()
    assert 4 <= len(done) < n, "the kill should land mid-folder"
    for p in out.iterdir():  # every visible file is a complete image; the rest are hidden temporaries
        if p.name.startswith("."):
            assert TEMP.match(p.name), p.name
        elif p.name != "057.png":
            _valid_png(p, (16, 16))

    # Whatever the kill left, add a temporary as a killed writer leaves it (its pid is gone).
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (out / f".{n - 1:03d}.png.{dead}.k1ll3d_x.tmp").write_bytes(b"\x89PNG half")

    r = run(*cmd)
    assert r.returncode == 0, r.stderr
    # skipped: the killed run's outputs and 057.png, which was there before either run
    assert f"fused {n - len(done)} pair(s) into {out}; {len(done)} already there, skipped " \
           "(--overwrite replaces them)" in r.stdout
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"{i:03d}.png" for i in range(n)] + ["_overview.png"]), \
        [x for x in names if x.startswith(".")]  # no temporaries left, the dead run's included
    for i in range(n):
        if i != 57:
            _valid_png(out / f"{i:03d}.png", (16, 16))
    np.testing.assert_array_equal(np.asarray(Image.open(out / "057.png")), mine)

    # A third run has nothing to do and changes nothing, the overview included.
    overview = (out / "_overview.png").read_bytes()
    r = run(*cmd)
    assert r.returncode == 0 and f"fused 0 pair(s) into {out}; {n} already there" in r.stdout
    assert (out / "_overview.png").read_bytes() == overview
    np.testing.assert_array_equal(np.asarray(Image.open(out / "057.png")), mine)


# ------------------------------------------------------------------------------ train.py

TRAIN = ("--size", "16", "--steps", "40", "--checkpoint-every", "5", "--seed", "0", "--no-progress")


def _steps(workdir: Path) -> list[int]:
    ck = workdir / "checkpoints"
    if not ck.is_dir():
        return []
    return sorted(int(p.name) for p in ck.iterdir() if p.name.isdigit() and (p / "meta").is_dir())


def _final(workdir: Path):
    params, _, _ = checkpoint.restore(workdir / "checkpoints")
    _, meta, opt = checkpoint.restore(workdir / "checkpoints",
                                      with_opt_like=training.make_optimizer(5e-4).init(params))
    summary = json.loads((workdir / "summary.json").read_text())
    return params, opt, meta, summary


def _assert_trees_equal(a, b) -> None:
    la, ta = jax.tree_util.tree_flatten_with_path(a)
    lb, tb = jax.tree_util.tree_flatten_with_path(b)
    assert ta == tb
    for (path, x), (_, y) in zip(la, lb):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape, path
        assert np.array_equal(x, y), f"{jax.tree_util.keystr(path)} differs"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    w = tmp_path_factory.mktemp("train") / "straight"
    r = run("train.py", "--workdir", w, *TRAIN)
    assert r.returncode == 0, r.stderr
    return w


def test_train_killed_twice_resumes_bit_identical(tmp_path, uninterrupted):
    w = tmp_path / "killed"
    # 1: killed as soon as the first checkpoint is complete (usually mid-step or mid-save)
    kill_when(popen("train.py", "--workdir", w, *TRAIN), lambda: bool(_steps(w)))
    assert not (w / "summary.json").exists()
    first = _steps(w)
    # 2: resumed, then killed again once it has saved past where it resumed
    proc = popen("train.py", "--workdir", w, *TRAIN, "--resume")
    kill_when(proc, lambda: max(_steps(w) or [0]) >= first[-1] + 10)
    assert not (w / "summary.json").exists()
    # 3: resumed to the end
    r = run("train.py", "--workdir", w, *TRAIN, "--resume")
    assert r.returncode == 0, r.stderr

    params_a, opt_a, meta_a, summary_a = _final(uninterrupted)
    params_b, opt_b, meta_b, summary_b = _final(w)
    assert meta_a["step"] == meta_b["step"] == 40
    _assert_trees_equal(params_a, params_b)
    _assert_trees_equal(opt_a, opt_b)
    assert meta_a["history"] == meta_b["history"] and len(meta_b["history"]["total"]) == 40
    for key in ("final_loss", "reconstruction", "config", "steps", "jaxfuse_version"):
        assert summary_a[key] == summary_b[key], key
    assert not [p.name for p in (w / "checkpoints").iterdir() if not p.name.isdigit()], \
        "a temporary checkpoint folder was left behind"


def test_resume_with_a_leftover_partial_checkpoint(tmp_path, uninterrupted):
    """Orbax writes a step under a temporary name; a kill mid-save leaves it. Resume ignores it."""
    import shutil
    w = tmp_path / "w"
    shutil.copytree(uninterrupted, w)
    ck = w / "checkpoints"
    for p in ck.iterdir():
        if p.name != "35":
            shutil.rmtree(p)
    (w / "summary.json").unlink()
    partial = ck / "40.orbax-checkpoint-tmp"  # Orbax's name for step 40 while it is written
    shutil.copytree(ck / "35", partial)
    shutil.rmtree(partial / "params")
    r = run("train.py", "--workdir", w, *TRAIN, "--resume")
    assert r.returncode == 0, r.stderr
    params_a, _, meta_a, _ = _final(uninterrupted)
    params_b, _, meta_b, _ = _final(w)
    _assert_trees_equal(params_a, params_b)
    assert meta_a["history"] == meta_b["history"]


def test_ctrl_c_during_a_save_arrives_after_it(tmp_path):
    """SIGINT while Orbax writes a step: the step is finished, then KeyboardInterrupt."""
    from jaxfuse import model

    class Manager:  # records what the save did; the signal arrives in the middle of it
        done = []

        def save(self, step, args, force):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler has run by now
            self.done.append(("save", step))

        def wait_until_finished(self):
            self.done.append(("finished",))

    mngr = Manager()
    params = model.init_params(jax.random.key(0))
    # Python's own handler, whatever the process that runs the tests was started with
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            checkpoint.save(mngr, 3, params, {"step": 3})
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)
    assert mngr.done == [("save", 3), ("finished",)]
