"""Gate measurement: oneDNN convolution through XLA FFI vs XLA's own vs PyTorch.

Checks the oneDNN weight gradient against ``jax.vjp`` of
``lax.conv_general_dilated``, then times, interleaved in one process (A, B, C,
A, B, C, ... and medians), the 3×3 weight gradient for 64→64 and 16→16 at
N=1, 256×256, and the 64→64 forward.

    python native/bench_gate.py LIBRARY.so [--reps 25]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import time

import sys

import numpy as np

if "--threads" in sys.argv:  # before jax is imported: XLA's intra-op pool size
    _t = int(sys.argv[sys.argv.index("--threads") + 1])
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_force_host_platform_device_count=1"
                               + (" --xla_cpu_multi_thread_eigen=false" if _t == 1 else ""))

import jax
import jax.numpy as jnp
from jax import lax

DN = ("NHWC", "HWIO", "NHWC")
MAX_THREADS = 0  # 0: as many as XLA's intra-op pool
# the XLA options jaxfuse compiles with on the CPU (jaxfuse.xla: YNNPACK fusions off)
JAXFUSE_XLA = {"xla_cpu_experimental_ynn_fusion_type": ""}


def load(path):
    lib = ctypes.CDLL(os.path.abspath(path))
    for name in ("fwd", "bwd_data", "bwd_weights"):
        sym = f"jaxfuse_onednn_conv_{name}"
        jax.ffi.register_ffi_target(sym, jax.ffi.pycapsule(getattr(lib, sym)), platform="cpu")
    lib.jaxfuse_onednn_version.restype = ctypes.c_char_p
    return lib


def pads(k):
    lo = (k - 1) // 2
    return dict(pad_t=np.int64(lo), pad_b=np.int64(k - 1 - lo),
                pad_l=np.int64(lo), pad_r=np.int64(k - 1 - lo))


def dnn_bwd_weights(x, dy, k, blocked):
    co = dy.shape[-1]
    out = (jax.ShapeDtypeStruct((k, k, x.shape[-1], co), jnp.float32),
           jax.ShapeDtypeStruct((co,), jnp.float32))
    return jax.ffi.ffi_call("jaxfuse_onednn_conv_bwd_weights", out)(
        x, dy, blocked=np.int64(blocked), max_threads=np.int64(MAX_THREADS), **pads(k))


def dnn_fwd(x, w, b, blocked):
    out = jax.ShapeDtypeStruct(x.shape[:-1] + (w.shape[-1],), jnp.float32)
    return jax.ffi.ffi_call("jaxfuse_onednn_conv_fwd", out)(
        x, w, b, blocked=np.int64(blocked), max_threads=np.int64(MAX_THREADS), **pads(w.shape[0]))


def xla_fwd(x, w, b):
    return lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=DN) + b


def xla_bwd_weights(x, w, dy):
    _, vjp = jax.vjp(lambda w_: lax.conv_general_dilated(x, w_, (1, 1), "SAME",
                                                         dimension_numbers=DN), w)
    return vjp(dy)[0]


def f64_bwd_weights(x, dy, k):
    x, dy = np.asarray(x, np.float64), np.asarray(dy, np.float64)
    lo = (k - 1) // 2
    xp = np.pad(x, ((0, 0), (lo, k - 1 - lo), (lo, k - 1 - lo), (0, 0)))
    n, h, w, ci = x.shape
    d = dy.reshape(-1, dy.shape[-1])
    return np.stack([np.stack([xp[:, i:i + h, j:j + w, :].reshape(-1, ci).T @ d
                               for j in range(k)]) for i in range(k)])


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def timeit_interleaved(fns, reps, inner=1):
    """Median wall and process-CPU milliseconds per call, variants alternated."""
    wall = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    for name, f in fns.items():  # warm up (compile, primitive creation)
        for _ in range(3):
            f()
    for _ in range(reps):
        for name, f in fns.items():
            for _ in range(inner):
                c, t = time.process_time(), time.perf_counter()
                f()
                wall[name].append((time.perf_counter() - t) * 1e3)
                cpu[name].append((time.process_time() - c) * 1e3)
    return ({name: statistics.median(v) for name, v in wall.items()},
            {name: statistics.median(v) for name, v in cpu.items()})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib")
    ap.add_argument("--reps", type=int, default=25)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--hwio", action="store_true", help="also time oneDNN on plain HWIO weights")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    lib = load(args.lib)
    import torch
    ncpu = args.threads
    global MAX_THREADS
    MAX_THREADS = 0 if ncpu >= os.cpu_count() else ncpu
    torch.set_num_threads(ncpu)
    print(f"jax {jax.__version__}, torch {torch.__version__} (threads {torch.get_num_threads()}), "
          f"oneDNN {lib.jaxfuse_onednn_version().decode()}, threads {ncpu} of {os.cpu_count()} cpus")
    print("load before:", os.getloadavg())

    rng = np.random.default_rng(0)
    S = args.size
    results, cpu_results = {}, {}
    for ci, co in ((64, 64), (16, 16)):
        x = jnp.asarray(rng.standard_normal((1, S, S, ci), np.float32))
        dy = jnp.asarray(rng.standard_normal((1, S, S, co), np.float32))
        w = jnp.asarray(rng.standard_normal((3, 3, ci, co), np.float32) * 0.1)
        f_xla = jax.jit(xla_bwd_weights)
        f_xlaj = jax.jit(xla_bwd_weights, compiler_options=JAXFUSE_XLA)
        f_d0 = jax.jit(lambda x, dy: dnn_bwd_weights(x, dy, 3, 0))
        f_d1 = jax.jit(lambda x, dy: dnn_bwd_weights(x, dy, 3, 1))
        f_d2 = jax.jit(lambda x, dy: dnn_bwd_weights(x, dy, 3, 2))
        ref = f_xla(x, w, dy)
        ref64 = f64_bwd_weights(x, dy, 3)
        print(f"{ci}->{co} bwd_weights [xla] rel err vs float64 {rel_err(ref, ref64):.2e}, "
              f"[xla_jaxfuse] {rel_err(f_xlaj(x, w, dy), ref64):.2e}")
        for tag, f in (("hwio", f_d0), ("blocked", f_d1), ("all-blocked", f_d2)):
            dw, db = f(x, dy)
            print(f"{ci}->{co} bwd_weights [{tag}] rel err dw vs xla {rel_err(dw, ref):.2e}, "
                  f"vs float64 {rel_err(dw, ref64):.2e}, "
                  f"db {rel_err(db, dy.sum((0, 1, 2))):.2e}, threads {lib.jaxfuse_onednn_last_threads()}")
        tx = torch.from_numpy(np.array(x)).permute(0, 3, 1, 2)   # NCHW view of NHWC = channels_last
        tdy = torch.from_numpy(np.array(dy)).permute(0, 3, 1, 2)
        assert tx.is_contiguous(memory_format=torch.channels_last)
        wshape = (co, ci, 3, 3)
        tref = torch.nn.grad.conv2d_weight(tx, wshape, tdy, padding=1)
        print(f"{ci}->{co} torch rel err vs xla {rel_err(tref.permute(2, 3, 1, 0).numpy(), ref):.2e}, "
              f"vs float64 {rel_err(tref.permute(2, 3, 1, 0).numpy(), ref64):.2e}")
        fns = {
            "xla": lambda: f_xla(x, w, dy).block_until_ready(),
            "xla_jaxfuse": lambda: f_xlaj(x, w, dy).block_until_ready(),
            **({"onednn_hwio": lambda: f_d0(x, dy)[0].block_until_ready()} if args.hwio else {}),
            "onednn_blocked": lambda: f_d1(x, dy)[0].block_until_ready(),
            "onednn_allblk": lambda: f_d2(x, dy)[0].block_until_ready(),
            "torch": lambda: torch.nn.grad.conv2d_weight(tx, wshape, tdy, padding=1),
        }
        results[f"bwd_weights {ci}->{co}"], cpu_results[f"bwd_weights {ci}->{co}"] = \
            timeit_interleaved(fns, args.reps)

    # forward 64 -> 64
    x = jnp.asarray(rng.standard_normal((1, S, S, 64), np.float32))
    w = jnp.asarray(rng.standard_normal((3, 3, 64, 64), np.float32) * 0.1)
    b = jnp.asarray(rng.standard_normal((64,), np.float32))
    f_xla = jax.jit(xla_fwd)
    f_xlaj = jax.jit(xla_fwd, compiler_options=JAXFUSE_XLA)
    f_d0 = jax.jit(lambda x, w, b: dnn_fwd(x, w, b, 0))
    f_d1 = jax.jit(lambda x, w, b: dnn_fwd(x, w, b, 1))
    f_d2 = jax.jit(lambda x, w, b: dnn_fwd(x, w, b, 2))
    ref = f_xla(x, w, b)
    for tag, f in (("hwio", f_d0), ("blocked", f_d1), ("all-blocked", f_d2)):
        print(f"64->64 fwd [{tag}] rel err {rel_err(f(x, w, b), ref):.2e}")
    tx = torch.from_numpy(np.array(x)).permute(0, 3, 1, 2)
    tw = torch.from_numpy(np.array(w)).permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
    tb = torch.from_numpy(np.array(b))
    with torch.no_grad():
        fns = {
            "xla": lambda: f_xla(x, w, b).block_until_ready(),
            "xla_jaxfuse": lambda: f_xlaj(x, w, b).block_until_ready(),
            **({"onednn_hwio": lambda: f_d0(x, w, b).block_until_ready()} if args.hwio else {}),
            "onednn_blocked": lambda: f_d1(x, w, b).block_until_ready(),
            "onednn_allblk": lambda: f_d2(x, w, b).block_until_ready(),
            "torch": lambda: torch.nn.functional.conv2d(tx, tw, tb, padding=1),
        }
        results["fwd 64->64"], cpu_results["fwd 64->64"] = timeit_interleaved(fns, args.reps)

    print("load after:", os.getloadavg())
    cols = list(results["fwd 64->64"])
    for title, table in (("wall ms (median)", results), ("process CPU ms (median, all threads)", cpu_results)):
        print(f"\n{title}\n{'op':<22}" + "".join(f"{k:>16}" for k in cols)
              + "   xla/best xla_jf/best best/torch")
        for op, r in table.items():
            best = min(v for k, v in r.items() if k.startswith("onednn"))
            print(f"{op:<22}" + "".join(f"{r[k]:>16.2f}" for k in cols)
                  + f"   {r['xla'] / best:>7.2f}x {r['xla_jaxfuse'] / best:>9.2f}x {best / r['torch']:>9.2f}x")


if __name__ == "__main__":
    main()
