"""jaxfuse.allocator: the glibc malloc settings ``import jaxfuse`` applies.

Not a timing test: it counts page faults, which the settings are there to
remove. A train step's temporary buffer is allocated by one of XLA's worker
threads; with glibc's defaults it is mapped fresh every step (thousands of
minor faults per step), with jaxfuse's settings it is reused (next to none in
the median step).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from jaxfuse import allocator

glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                           reason="the settings exist only in glibc's malloc")

STEP_FAULTS = """
import resource
import jaxfuse, jax, jax.numpy as jnp
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
print(jaxfuse.allocator.describe())
"""


@glibc
def test_import_applies_the_settings():
    assert allocator.describe() == allocator.configure() == "one heap, no mmap for large blocks, trim past 1 GiB"


@glibc
def test_train_steps_stop_faulting_in_their_buffers_and_the_switch_restores_glibc():
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = {mode: subprocess.Popen([sys.executable, "-c", STEP_FAULTS], text=True, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env={**env, "JAXFUSE_MALLOC": mode})
             for mode in ("", "default")}
    out = {}
    for mode, p in procs.items():
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr[-2000:]
        faults, how = stdout.strip().splitlines()[-2:]
        out[mode] = float(faults), how
    assert out["default"][1] == "glibc defaults (JAXFUSE_MALLOC=default)"
    assert out[""][1].startswith("one heap")
    # glibc's defaults: the step's ~58 MB buffer faults in afresh each step (~14 000 pages)
    assert out["default"][0] > 5000, out
    assert out[""][0] < out["default"][0] / 20, out
