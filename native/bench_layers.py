"""Per-layer timings: XLA vs the oneDNN custom calls, each direction, both layouts.

For each distinct convolution of jaxfuse.networks at N=1, S×S: forward,
backward-data and backward-weights, XLA (jit of lax / its vjp, with the
options jaxfuse compiles with unless --xla-defaults) against
oneDNN with its own weight layout (layout 1) and with its own layouts for the
activations too (layout 2). Variants alternate call by call; medians of wall
and process-CPU milliseconds.

    python native/bench_layers.py [--size 256] [--reps 5] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

if "--threads" in sys.argv:
    _t = int(sys.argv[sys.argv.index("--threads") + 1])
    if _t == 1:
        os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"

import jax
import jax.numpy as jnp
from jax import lax

from jaxfuse import conv_native

DN = ("NHWC", "HWIO", "NHWC")
LAYERS = [(1, 32, 3), (32, 64, 3), (64, 64, 1), (16, 16, 3), (64, 64, 3), (64, 32, 3),
          (32, 16, 3), (16, 1, 3), (48, 16, 3), (64, 64, 5), (192, 64, 3)]


def attrs(k, layout, max_threads):
    lo = (k - 1) // 2
    return dict(pad_t=np.int64(lo), pad_b=np.int64(k - 1 - lo), pad_l=np.int64(lo),
                pad_r=np.int64(k - 1 - lo), blocked=np.int64(layout), max_threads=np.int64(max_threads))


def fns_for(ci, co, k, s, max_threads, xla_options):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((1, s, s, ci)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((k, k, ci, co)) * 0.1, jnp.float32)
    b = jnp.asarray(rng.standard_normal((co,)), jnp.float32)
    dy = jnp.asarray(rng.standard_normal((1, s, s, co)), jnp.float32)
    conv = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=DN)
    xla = {
        "fwd": jax.jit(lambda x, w, b: conv(x, w) + b, compiler_options=xla_options),
        "bwd_data": jax.jit(lambda dy, w: jax.vjp(lambda x_: conv(x_, w), x)[1](dy)[0],
                            compiler_options=xla_options),
        "bwd_weights": jax.jit(lambda x, dy: jax.vjp(lambda w_: conv(x, w_), w)[1](dy)[0],
                               compiler_options=xla_options),
    }
    out_y = jax.ShapeDtypeStruct((1, s, s, co), jnp.float32)
    out_x = jax.ShapeDtypeStruct((1, s, s, ci), jnp.float32)
    out_w = (jax.ShapeDtypeStruct((k, k, ci, co), jnp.float32), jax.ShapeDtypeStruct((co,), jnp.float32))

    def native(layout):
        a = attrs(k, layout, max_threads)
        return {
            "fwd": jax.jit(lambda x, w, b: jax.ffi.ffi_call("jaxfuse_onednn_conv_fwd", out_y)(x, w, b, **a)),
            "bwd_data": jax.jit(lambda dy, w: jax.ffi.ffi_call("jaxfuse_onednn_conv_bwd_data", out_x)(dy, w, **a)),
            "bwd_weights": jax.jit(lambda x, dy: jax.ffi.ffi_call("jaxfuse_onednn_conv_bwd_weights", out_w)(x, dy, **a)[0]),
        }

    args = {"fwd": (x, w, b), "bwd_data": (dy, w), "bwd_weights": (x, dy)}
    return {"xla": xla, "L1": native(1), "L2": native(2)}, args


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--xla-defaults", action="store_true",
                    help="XLA's own CPU options, not jaxfuse's (jaxfuse.xla: YNNPACK fusions off)")
    args = ap.parse_args()
    from jaxfuse import xla as jxla
    xla_options = None if args.xla_defaults else jxla.compiler_options()
    assert conv_native.available(), conv_native.unavailable_reason()
    max_threads = 0 if args.threads >= os.cpu_count() else args.threads
    print(f"oneDNN {conv_native.onednn_version()}, threads {args.threads}, size {args.size}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, XLA options {xla_options}, "
          f"load {os.getloadavg()}")
    print(f"{'layer':<14}{'op':<12}{'xla':>9}{'L1':>9}{'L2':>9}{'xla/L1':>8}{'xla/L2':>8}"
          f"   cpu:{'xla':>7}{'L1':>8}{'L2':>8}")
    totals = {v: 0.0 for v in ("xla", "L1", "L2")}
    for ci, co, k in LAYERS:
        variants, fargs = fns_for(ci, co, k, args.size, max_threads, xla_options)
        for op in ("fwd", "bwd_data", "bwd_weights"):
            wall = {v: [] for v in variants}
            cpu = {v: [] for v in variants}
            for v in variants:
                for _ in range(2):
                    jax.block_until_ready(variants[v][op](*fargs[op]))
            for _ in range(args.reps):
                for v in variants:
                    c, t = time.process_time(), time.perf_counter()
                    jax.block_until_ready(variants[v][op](*fargs[op]))
                    wall[v].append((time.perf_counter() - t) * 1e3)
                    cpu[v].append((time.process_time() - c) * 1e3)
            mw = {v: statistics.median(a) for v, a in wall.items()}
            mc = {v: statistics.median(a) for v, a in cpu.items()}
            for v in totals:
                totals[v] += mw[v]
            print(f"{f'{ci}->{co} k{k}':<14}{op:<12}{mw['xla']:>9.2f}{mw['L1']:>9.2f}{mw['L2']:>9.2f}"
                  f"{mw['xla'] / mw['L1']:>8.2f}{mw['xla'] / mw['L2']:>8.2f}"
                  f"   cpu:{mc['xla']:>7.2f}{mc['L1']:>8.2f}{mc['L2']:>8.2f}", flush=True)
    print(f"{'sum of medians':<26}{totals['xla']:>9.1f}{totals['L1']:>9.1f}{totals['L2']:>9.1f}"
          f"{totals['xla'] / totals['L1']:>8.2f}{totals['xla'] / totals['L2']:>8.2f}")
    print("load after", os.getloadavg())


if __name__ == "__main__":
    main()
