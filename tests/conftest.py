"""Shared fixtures. Building a model costs a compile, so tests share one."""

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
