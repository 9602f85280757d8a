"""jaxfuse's compile settings: CPU options, lazy jit, the CLIs' compilation cache."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO, SCRIPT_ENV
from jaxfuse import fusion, xla


def test_cpu_options_are_used_and_accepted():
    if jax.default_backend() != "cpu":
        pytest.skip("CPU-only options")
    try:  # jaxlib < 0.8.1 has no YNNPACK fusions and rejects the option: XLA's defaults then
        jax.jit(lambda x: x + 1, compiler_options=xla.CPU_OPTIONS).lower(1.0).compile()
    except Exception:  # noqa: BLE001
        assert xla.compiler_options() is None
        return
    assert xla.compiler_options() == xla.CPU_OPTIONS


def test_fuse_with_options_matches_xla_defaults(params, rng):
    src = rng.uniform(0, 255, (2, 1, 40, 56, 1)).astype(np.float32)
    got = np.asarray(fusion.fuse(params, src, strategy="l1"))
    plain = jax.jit(fusion.fuse.__wrapped__, static_argnames=("strategy",))
    want = np.asarray(plain(params, src, strategy="l1"))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * np.abs(want).max())


def test_lazy_jit_keeps_the_jit_api_and_composes():
    calls = []

    @xla.jit(static_argnames=("k",))
    def f(x, *, k=2):
        """doc"""
        calls.append(1)
        return jnp.sin(x) * k

    assert f.__doc__ == "doc" and f.__name__ == "f"
    x = jnp.arange(4.0)
    np.testing.assert_allclose(f(x, k=3), np.sin(np.arange(4.0)) * 3, rtol=1e-6)
    f(x + 1, k=3)
    assert len(calls) == 1 and f._cache_size() == 1  # traced once, cached
    assert "sin" in f.lower(x, k=3).as_text()
    np.testing.assert_allclose(jax.vmap(lambda v: f(v, k=2))(x[:, None])[:, 0], 2 * np.sin(np.arange(4.0)),
                               rtol=1e-6)
    np.testing.assert_allclose(jax.grad(lambda v: f(v).sum())(x), 2 * np.cos(np.arange(4.0)), rtol=1e-6)
    np.testing.assert_allclose(jax.jit(lambda v: f(v) + 1)(x), 2 * np.sin(np.arange(4.0)) + 1, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(lambda: f(jnp.ones(2)))(), 2 * np.sin(np.ones(2)), rtol=1e-6)


def _cache_dir_seen(env_extra):
    code = ("import jax; from jaxfuse import xla; xla.enable_compilation_cache(); "
            "print(jax.config.jax_compilation_cache_dir)")
    env = {k: v for k, v in SCRIPT_ENV.items()
           if k not in ("JAX_COMPILATION_CACHE_DIR", "JAXFUSE_NO_CACHE", "XDG_CACHE_HOME")}
    env.update(env_extra)
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()[-1]


def test_compilation_cache_location(tmp_path):
    assert _cache_dir_seen({"XDG_CACHE_HOME": str(tmp_path)}) == str(tmp_path / "jaxfuse" / "xla")
    assert (tmp_path / "jaxfuse" / "xla").is_dir()
    assert _cache_dir_seen({"JAX_COMPILATION_CACHE_DIR": str(tmp_path / "own"),
                            "XDG_CACHE_HOME": str(tmp_path)}) == str(tmp_path / "own")
    assert _cache_dir_seen({"JAXFUSE_NO_CACHE": "1", "XDG_CACHE_HOME": str(tmp_path / "x")}) in ("None", "")
    assert not (tmp_path / "x").exists()
