"""Whole-process runs: a script in a fresh Python, its wall and CPU time, its peak memory."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from jaxfuse.bench.config import PROGRAMS, REPO

LAUNCHER = PROGRAMS / "launcher.py"


@dataclasses.dataclass
class ProcessRun:
    """One finished child process."""
    wall_s: float
    returncode: int
    rss: int | None  # peak resident set (VmHWM), bytes
    cpu_s: float     # user + system
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def error_tail(self, n: int) -> str:
        return (self.stderr or self.stdout).strip()[-n:]


def child_env(**extra) -> dict:
    """The environment of a child: this one, warnings off, the repository importable."""
    env = dict(os.environ)
    env.setdefault("PYTHONWARNINGS", "ignore")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.update(extra)
    return env


def run_script(script, args, *, tmp: Path, cwd=REPO, env=None, timeout=1800) -> ProcessRun:
    """Runs ``python script args...`` under ``programs/launcher.py``.

    The launcher writes the child's own peak resident set at exit
    (``ru_maxrss`` of a child is useless here: Linux carries the parent's size
    at fork into it). ``cpu_s`` comes from ``os.wait4``, a figure a busy
    machine disturbs much less than the wall time.
    """
    rss_file = Path(tempfile.mktemp(prefix="rss-", dir=tmp))
    cmd = [sys.executable, str(LAUNCHER), str(rss_file), str(script)] + [str(a) for a in args]
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fo, stderr=fe)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        try:
            rss = int(rss_file.read_text())
        except (OSError, ValueError):
            rss = None
        return ProcessRun(wall, p.returncode, rss, ru.ru_utime + ru.ru_stime,
                          fo.read().decode(errors="replace"), fe.read().decode(errors="replace"))


def torch_weights(model, tmp: Path) -> Path:
    """The benchmark's weights as a PyTorch state-dict file for the PyTorch programs (written once)."""
    weights = tmp / "weights.pt"
    if not weights.exists():
        from jaxfuse import torch_io
        torch_io.save_torch_checkpoint(model.params, weights)
    return weights
