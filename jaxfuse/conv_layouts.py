"""Which memory layout oneDNN's weight-gradient kernel uses for wide layers, per CPU.

:mod:`jaxfuse.conv_native` asks :func:`wide_weight_grad_layout` when it traces
the weight gradient of a layer with 32+ channels in and out. The answer is
measured once per CPU model and kernel library and kept beside the built
library (:data:`LAYOUTS_FILE`), so every later process and every resumed run
uses the same layout.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxfuse import conv_build

_state: dict = {}


LAYOUTS_FILE = "layouts.json"
"""Beside the built libraries (:func:`jaxfuse.conv_build.cache_dir`): the measured
layout per CPU model and library."""


def _layouts_path():
    return conv_build.cache_dir() / LAYOUTS_FILE


def _cpu_model() -> str:
    """The CPU as /proc/cpuinfo names it: vendor, family, model, stepping, name and
    a hash of its feature flags (virtual machines often give one generic name)."""
    import hashlib
    import platform
    fields = {}
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            k, _, v = line.partition(":")
            k = k.strip()
            if k in ("vendor_id", "cpu family", "model", "stepping", "model name", "flags"):
                fields.setdefault(k, v.strip())
            elif not k and fields:
                break
    except OSError:
        pass
    if not fields:
        return platform.processor() or platform.machine()
    flags = hashlib.sha256(fields.pop("flags", "").encode()).hexdigest()[:8]
    return " ".join(fields.get(k, "?") for k in ("vendor_id", "cpu family", "model", "stepping")) + \
        f" {fields.get('model name', '?')} flags:{flags}"


def wide_weight_grad_layout(max_threads: int = 0) -> int:
    """1 or 2: the layout of the weight gradient of wide layers (32+ channels in and out).

    Which is faster depends on the CPU: on one 2-core Intel Xeon layout 1 ran
    every such layer 4-40 % faster than layout 2 (3×3 64→64 at 256×256: 18.0
    against 20.1 ms, ``native/bench_layers.py``), on the machine the kernels
    were first tuned on layout 2 was the faster. So the 3×3 64→64 weight
    gradient at 256×256 is timed in both layouts once per CPU model and
    library, and the choice is kept in :data:`LAYOUTS_FILE`, so every later
    process on the machine (and every resumed run) uses the same one.
    ``JAXFUSE_CONV_LAYOUT=1`` or ``=2`` sets it instead. ``max_threads`` is
    the thread cap the measurement runs with (0: XLA's intra-op pool), where
    there is one to make.
    """
    if "wide_layout" not in _state:
        _state["wide_layout"] = _choose_wide_layout(max_threads)
    return _state["wide_layout"]


def _choose_wide_layout(max_threads: int) -> int:
    import json
    import os
    env = os.environ.get("JAXFUSE_CONV_LAYOUT", "")
    if env in ("1", "2"):
        return int(env)
    path = _layouts_path()
    key = f"{_cpu_model()} | {conv_build.library_path()}"
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    if known.get(key, {}).get("layout") in (1, 2):
        return known[key]["layout"]
    times = _time_layouts(max_threads=max_threads)
    choice = min(times, key=times.get)
    known[key] = {"layout": choice, "ms": {str(k): round(v * 1e3, 3) for k, v in times.items()}}
    try:  # atomically: processes starting together read a whole file or none
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass
    return choice


def _time_layouts(reps: int = 7, max_threads: int = 0) -> dict:
    """{layout: median seconds} of the 3×3 64→64 weight gradient at 256×256, interleaved."""
    import time
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 256, 256, 64), np.float32)
    dy = rng.standard_normal((1, 256, 256, 64), np.float32)
    out = (jax.ShapeDtypeStruct((3, 3, 64, 64), jnp.float32), jax.ShapeDtypeStruct((64,), jnp.float32))
    with jax.ensure_compile_time_eval():
        calls = {layout: jax.jit(functools.partial(
            jax.ffi.ffi_call("jaxfuse_onednn_conv_bwd_weights", out),
            pad_t=np.int64(1), pad_b=np.int64(1), pad_l=np.int64(1), pad_r=np.int64(1),
            blocked=np.int64(layout), max_threads=np.int64(max_threads)))
            for layout in (1, 2)}
        cpu = jax.devices("cpu")[0]  # committed inputs: the calls run there whatever the default backend
        x, dy = jax.device_put(x, cpu), jax.device_put(dy, cpu)
        times: dict = {1: [], 2: []}
        for r in range(reps + 1):
            for layout, f in calls.items():
                t = time.perf_counter()
                jax.block_until_ready(f(x, dy))
                if r:  # the first round builds the primitives
                    times[layout].append(time.perf_counter() - t)
    return {k: float(np.median(v)) for k, v in times.items()}
