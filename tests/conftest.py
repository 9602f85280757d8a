"""Shared fixtures. Building a model costs a compile, so tests share one."""

import os
from pathlib import Path

import jax
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TNO21 = SHARED_DATA / "tno21"

needs_tno21 = pytest.mark.skipif(
    not TNO21.is_dir(),
    reason=f"needs the TNO-21 test pairs at {TNO21} (development/CI data, absent here)")


@pytest.fixture(scope="session")
def params():
    from jaxfuse.model import init_params
    return init_params(jax.random.key(0))


@pytest.fixture(scope="session")
def params_separate():
    from jaxfuse.model import ModelConfig, init_params
    return init_params(jax.random.key(1), ModelConfig(shared=False))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# Environment for the scripts tests run as subprocesses: CPU (the bit-identity
# promise of resume is for CPU), and one persistent compilation cache for all
# of a session's script runs: each would otherwise compile the same model
# afresh, which is most of its time. A cached executable is the one a fresh
# compile makes, so results are unchanged.
SCRIPT_ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
              "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
# Command-line mains called in-process must not turn on a cache in the user's home.
os.environ.setdefault("JAXFUSE_NO_CACHE", "1")


@pytest.fixture(scope="session", autouse=True)
def _script_compile_cache(tmp_path_factory):
    SCRIPT_ENV["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path_factory.getbasetemp() / "jax-cache")
