"""Under load: one ``fuse.py`` run over a folder of 1000 small pairs.

Checks that every output is there and valid, that the process's memory is
flat (resident set size sampled from outside through ``/proc`` while it runs,
compared between the 200th output and the end), and that the progress bar is
drawn on stderr when ``--no-progress`` is not given.

About 40 s on two busy CPU cores (the 16×16 pairs are fused in 64×64 shape
buckets), so it is in the default suite, not marked slow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
N = 1000
SIZE = 16
# Growth allowed between the 200th output and the end. After the first pair
# (the compile) the loop holds nothing per pair but two report entries, so any
# leak of the per-pair arrays, buffers or compiled executables would show as
# tens of MB over 800 pairs; allocator noise is a few MB.
MAX_GROWTH_MB = 24
# CPU, and the compilation cache the other script tests of the session fill.
ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
       "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    ENV["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path_factory.getbasetemp() / "jax-cache")
    root = tmp_path_factory.getbasetemp() / "jaxfuse-tiny-run"  # shared with the other robustness tests
    if not (root / "summary.json").is_file():
        r = subprocess.run([sys.executable, str(REPO / "train.py"), "--workdir", str(root), "--size", "16",
                            "--steps", "2", "--checkpoint-every", "1", "--no-progress", "--overwrite"],
                           cwd=REPO, env=ENV, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    return root / "checkpoints"


def _rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return None  # gone, or a zombie without memory


def _count_outputs(out: Path) -> int:
    try:
        with os.scandir(out) as it:
            return sum(1 for e in it if e.name.endswith(".png") and not e.name.startswith((".", "_")))
    except FileNotFoundError:
        return 0


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc (Linux)")
def test_thousand_pairs_one_run_flat_memory_progress_bar(tmp_path, ckpt):
    rng = np.random.default_rng(0)
    pairs, out = tmp_path / "pairs", tmp_path / "out"
    (pairs / "ir").mkdir(parents=True)
    (pairs / "vis").mkdir()
    for i in range(N):
        Image.fromarray(rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8)).save(pairs / "ir" / f"{i:04d}.png")
        vis = rng.integers(0, 256, (SIZE, SIZE, 3) if i % 10 == 0 else (SIZE, SIZE), dtype=np.uint8)
        Image.fromarray(vis).save(pairs / "vis" / f"{i:04d}.png")

    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with open(stdout, "w") as so, open(stderr, "w") as se:  # files: a pipe could fill and stall it
        proc = subprocess.Popen([sys.executable, str(REPO / "fuse.py"), "--pairs", pairs, "--out", out,
                                 "--checkpoint", ckpt], cwd=REPO, env=ENV, stdout=so, stderr=se)
        samples = []  # (outputs so far, RSS)
        t0 = time.monotonic()
        while proc.poll() is None:
            n, rss = _count_outputs(out), _rss_bytes(proc.pid)
            if rss is not None:
                samples.append((n, rss))
            if time.monotonic() - t0 > 540:
                proc.kill()
                pytest.fail("fuse.py took more than 9 minutes for 1000 tiny pairs")
            time.sleep(0.05)
    err = stderr.read_text()
    assert proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    assert f"fused {N} pair(s) into {out}" in stdout.read_text()

    # the progress bar: tqdm's lines on stderr, ending at N/N
    bar = err.replace("\r", "\n")
    assert "fuse (l1):" in bar and f"{N}/{N}" in bar and "pair/s" in bar

    # every output present and a valid image of the input's size and kind
    for i in range(N):
        with Image.open(out / f"{i:04d}.png") as img:
            img.load()
            assert img.format == "PNG" and img.size == (SIZE, SIZE)
            assert img.mode == ("RGB" if i % 10 == 0 else "L"), i
    assert sorted(os.listdir(out)) == sorted([f"{i:04d}.png" for i in range(N)] + ["_overview.png"])

    # memory: flat between the 200th output and the end
    window = [(n, rss) for n, rss in samples if n >= 200]
    assert window and window[-1][0] >= 800, f"too few samples to judge: {samples[-5:]}"
    base = window[0][1]
    peak = max(rss for _, rss in window)
    growth_mb = (peak - base) / 2**20
    assert growth_mb < MAX_GROWTH_MB, (
        f"RSS grew {growth_mb:.1f} MB between output {window[0][0]} ({base / 2**20:.0f} MB) and the end")
