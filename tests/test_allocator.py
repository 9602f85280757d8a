"""jaxfuse.allocator: the glibc malloc settings training runs with.

Not a timing test: it counts page faults, which the settings are there to
remove. A train step's temporary buffer is allocated by one of XLA's worker
threads; with glibc's defaults it is mapped fresh every step (thousands of
minor faults per step), with jaxfuse's settings it is reused (next to none in
the median step). Each case runs in a process of its own: the settings are
per process and count only before JAX starts its threads.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                           reason="the settings exist only in glibc's malloc")

CONFIGURED = "one heap, no mmap for large blocks, trim past 1 GiB"

STEP_FAULTS = """
import resource
import jaxfuse
from jaxfuse import allocator
allocator.configure()  # what train.py does first
import jax, jax.numpy as jnp
from jaxfuse import training
cfg = training.TrainConfig(size=128)
img = jnp.asarray(training.load_training_image(None, 128))
state = training.init_state(cfg)
step = training.make_train_step(cfg)
for _ in range(3):
    state, _ = step(state, img)
jax.block_until_ready(state)
faults = []
for _ in range(7):
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    state, _ = step(state, img)
    jax.block_until_ready(state)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)
print(sorted(faults)[3])  # the median step: the heap may still grow once or twice early on
print(allocator.describe())
"""


def _env(mode):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("JAXFUSE_MALLOC", None)
    return {**env, "JAXFUSE_MALLOC": mode} if mode is not None else env


@glibc
def test_train_steps_stop_faulting_in_their_buffers_and_the_switch_restores_glibc():
    procs = {mode: subprocess.Popen([sys.executable, "-c", STEP_FAULTS], text=True, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=_env(mode))
             for mode in (None, "default")}
    out = {}
    for mode, p in procs.items():
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr[-2000:]
        faults, how = stdout.strip().splitlines()[-2:]
        out[mode] = float(faults), how
    assert out["default"][1] == "glibc defaults (JAXFUSE_MALLOC=default)"
    assert out[None][1] == CONFIGURED
    # glibc's defaults: the step's ~58 MB buffer faults in afresh each step (~14 000 pages)
    assert out["default"][0] > 5000, out
    assert out[None][0] < out["default"][0] / 20, out


@glibc
@pytest.mark.parametrize("mode,want", [(None, "glibc defaults (not configured)"), ("on", CONFIGURED)])
def test_import_leaves_fusion_processes_alone_unless_asked(mode, want):
    code = "import jaxfuse, jaxfuse.fusion; from jaxfuse import allocator; print(allocator.describe())"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(mode), timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip().splitlines()[-1] == want


@glibc
def test_the_training_command_runs_with_the_settings(tmp_path):
    p = subprocess.run([sys.executable, "train.py", "--steps", "2", "--size", "64", "--workdir", str(tmp_path / "run"),
                        "--no-progress"], capture_output=True, text=True, env=_env(None), timeout=300,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["malloc"] == CONFIGURED
