"""Small helpers of the benchmark: timing, formatting, the machine."""

from __future__ import annotations

import importlib.util
import os
import platform
import statistics
import time
from pathlib import Path


def med(xs) -> float:
    return float(statistics.median(xs))


def fmt_s(t) -> str:
    return "n/a" if t is None else (f"{t * 1e3:.0f} ms" if t < 10 else f"{t:.1f} s")


def fmt_ms(t) -> str:
    return "n/a" if t is None else f"{t * 1e3:.1f} ms"


def fmt_mb(b) -> str:
    return "n/a" if b is None else f"{b / 2**20:.0f} MiB"


def spread(xs) -> str:
    return f"median {fmt_ms(med(xs))} (min {fmt_ms(min(xs))}, max {fmt_ms(max(xs))}, n={len(xs)})"


def timed(fn):
    """``(seconds, fn())``."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def interleaved(fns: dict, reps: int, warmup: int = 1) -> dict:
    """Times each callable ``reps`` times, round-robin, after ``warmup`` untimed calls.

    Round-robin, so a busy machine slows every contender alike.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            times[name].append(timed(fn)[0])
    return times


def section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 72 - len(title)), flush=True)


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _cpuinfo_field(name: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_flags() -> str:
    flags = _cpuinfo_field("flags")
    if flags is None:
        return "?"
    have = set(flags.split())
    return " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in have)


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def xla_cost_flops(compiled) -> float:
    """FLOPs of a compiled executable by XLA's ``cost_analysis`` (NaN where it has none)."""
    ca = compiled.cost_analysis()
    ca = ca[0] if isinstance(ca, (list, tuple)) else ca
    return float(ca.get("flops", float("nan"))) if ca else float("nan")
