"""The matmul peak and the fusion of one pair, JAX against PyTorch, interleaved call by call."""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxfuse.bench.config import BenchConfig
from jaxfuse.bench.inputs import bench_pair
from jaxfuse.bench.util import interleaved, med, timed, xla_cost_flops


@dataclasses.dataclass
class MatmulPeak:
    """Median float32 ``n³`` matmul: the peak the GFLOP/s figures are compared with."""
    n: int
    jax_times_s: list
    jax_s: float
    peak_gflops: float
    torch_times_s: list | None = None
    torch_gflops: float | None = None


def matmul_peak(cfg: BenchConfig, torch_side=None) -> MatmulPeak:
    import jax
    import jax.numpy as jnp
    n = cfg.matmul_n
    ka, kb = jax.random.split(jax.random.key(0))
    a = jax.random.normal(ka, (n, n), jnp.float32)
    b = jax.random.normal(kb, (n, n), jnp.float32)
    dot = jax.jit(jnp.dot)
    fns = {"jax": lambda: dot(a, b).block_until_ready()}
    if torch_side is not None:
        fns["torch"] = torch_side.matmul_fn(n)
    t = interleaved(fns, cfg.reps_mm, warmup=2)
    flops = 2.0 * n ** 3
    out = MatmulPeak(n=n, jax_times_s=t["jax"], jax_s=med(t["jax"]), peak_gflops=flops / med(t["jax"]) / 1e9)
    if torch_side is not None:
        out.torch_times_s = t["torch"]
        out.torch_gflops = flops / med(t["torch"]) / 1e9
    return out


@dataclasses.dataclass
class TorchTiming:
    """One PyTorch memory format: median seconds, GFLOP/s, every timed call."""
    s: float
    gflops: float
    times_s: list


@dataclasses.dataclass
class PairTiming:
    """One pair fused, steady state and compilation; PyTorch per memory format."""
    hw: tuple[int, int]
    source: str                  # where the pair comes from
    bucket: tuple[int, int]      # auto_fuse's shape bucket for ``hw``
    flops: float                 # analytic conv FLOPs of the fusion
    first_call_s: float
    steady_s: float              # fuse_pair: NumPy in, uint8 out
    network_s: float             # jitted fuse() on a device array
    compile_est_s: float         # first call − steady
    trace_lower_s: float
    xla_compile_s: float
    gflops: float
    network_gflops: float
    xla_cost_analysis_gflop: float
    times_s: list
    network_times_s: list
    torch: dict = dataclasses.field(default_factory=dict)         # fmt → TorchTiming
    output_max_abs_diff: int | None = None                        # uint8 JAX vs PyTorch
    output_frac_diff_gt1: float | None = None
    speedup: dict = dataclasses.field(default_factory=dict)       # fmt → PyTorch / JAX, medians
    speedup_best: dict = dataclasses.field(default_factory=dict)  # fmt → the same, minima


def time_pair(cfg: BenchConfig, model, torch_side=None) -> PairTiming:
    """Times :func:`jaxfuse.fusion.fuse_pair` and the network alone on ``cfg.pair_hw``."""
    import jax
    import jax.numpy as jnp

    from jaxfuse import fusion
    from jaxfuse.engine import bucket_shape
    h, w = cfg.pair_hw
    ir, vis, src = bench_pair(cfg.tno, cfg.pair_hw)
    params = model.params
    sources = np.stack([ir, vis])[:, None, :, :, None]

    # Compilation: the user path's first call on cleared caches, minus steady state;
    # then trace+lower and XLA compile of the network alone, also on cleared caches.
    jax.clear_caches()
    t_first, _ = timed(lambda: fusion.fuse_pair(params, ir, vis))
    jax.clear_caches()
    src_dev = jnp.asarray(sources)
    t_lower, lowered = timed(lambda: fusion.fuse.lower(params, src_dev, strategy="l1"))
    t_compile, compiled = timed(lambda: lowered.compile())
    xla_flops = xla_cost_flops(compiled)

    fns = {
        "jax_fuse_pair": lambda: fusion.fuse_pair(params, ir, vis),
        "jax_network": lambda: fusion.fuse(params, src_dev, strategy="l1").block_until_ready(),
    }
    if torch_side is not None:
        for fmt in cfg.fmts:
            fns[f"torch_{fmt}"] = torch_side.fuse_fn(fmt, ir, vis)
    t = interleaved(fns, cfg.reps_pair, warmup=1)
    m = {k: med(v) for k, v in t.items()}
    flops = model.flops.fusion(h, w)
    out_jax = fusion.fuse_pair(params, ir, vis)
    res = PairTiming(
        hw=(h, w), source=src, bucket=tuple(bucket_shape(h, w)), flops=flops, first_call_s=t_first,
        steady_s=m["jax_fuse_pair"], network_s=m["jax_network"],
        compile_est_s=t_first - m["jax_fuse_pair"], trace_lower_s=t_lower, xla_compile_s=t_compile,
        gflops=flops / m["jax_fuse_pair"] / 1e9, network_gflops=flops / m["jax_network"] / 1e9,
        xla_cost_analysis_gflop=xla_flops / 1e9, times_s=t["jax_fuse_pair"],
        network_times_s=t["jax_network"])
    if torch_side is None:
        return res
    for fmt in cfg.fmts:
        tm = m[f"torch_{fmt}"]
        res.torch[fmt] = TorchTiming(s=tm, gflops=flops / tm / 1e9, times_s=t[f"torch_{fmt}"])
        res.speedup[fmt] = tm / m["jax_fuse_pair"]
        res.speedup_best[fmt] = min(t[f"torch_{fmt}"]) / min(t["jax_fuse_pair"])
    ref = torch_side.fuse_fn("channels_last", ir, vis)()[0, 0].numpy()
    diff = np.abs(ref.astype(int) - out_jax.astype(int))
    res.output_max_abs_diff = int(diff.max())
    res.output_frac_diff_gt1 = float(np.mean(diff > 1))
    return res
