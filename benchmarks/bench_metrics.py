"""Times the paper's eight metrics over the 21 TNO pairs and measures peak memory.

    python benchmarks/bench_metrics.py [--method rfnnest] [--skip-memory]

Prints, per metric, the total time over the 21 pairs (fused images of
``--method`` from ``../shared/data/tno21_fused``), the total, and the CPU
load while it ran (the machine may be shared: compare timings only between
runs on an idle machine). Then, for one synthetic 1024×1280 pair (a TNO pair
resized), each metric's peak resident memory in a fresh process, above the
process's footprint after importing jaxfuse and a warm-up. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jaxfuse import metrics as M  # noqa: E402
from jaxfuse.io import find_pairs, load_image  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def _load(method: str):
    pairs, _ = find_pairs(DATA / "tno21")
    out = []
    for p in pairs:
        fused = next((DATA / "tno21_fused" / method).glob(f"{p.name}.*"))
        out.append((p.name, load_image(p.ir, gray=True), load_image(p.vis, gray=True),
                    load_image(fused, gray=True)))
    return out


def _loadavg() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def time_metrics(method: str) -> dict[str, float]:
    data = _load(method)
    # Warm-up on one small pair: JIT compilation is not part of the timings.
    _, a, b, f = min(data, key=lambda t: t[1].size)
    M.score_pair(a[:64, :64], b[:64, :64], f[:64, :64], metrics=M.PAPER_METRICS)
    times = {}
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for name in M.PAPER_METRICS:
        _, fn = M.resolve_metric(name, "paper")
        t = time.perf_counter()
        for _, a, b, f in data:
            fn(a, b, f)
        times[name] = time.perf_counter() - t
    times["total"] = time.perf_counter() - wall0
    times["cpu"] = time.process_time() - cpu0
    return times


def _big_pair():
    from PIL import Image
    pairs, _ = find_pairs(DATA / "tno21")
    p = pairs[0]
    fused = next((DATA / "tno21_fused" / "rfnnest").glob(f"{p.name}.*"))
    out = []
    for path in (p.ir, p.vis, fused):
        img = Image.open(path).convert("L").resize((1280, 1024), Image.BILINEAR)
        out.append(np.asarray(img, dtype=np.uint8))
    return out


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


class _PeakSampler:
    """Samples this process's resident set every millisecond in a thread."""

    def __init__(self):
        import threading
        self.peak = _rss_now_mb()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_now_mb())
            self._stop.wait(0.001)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss_now_mb())


def memory_child(metric: str) -> None:
    a, b, f = _big_pair()
    M.score_pair(a[:64, :64], b[:64, :64], f[:64, :64], metrics=[metric])  # imports + JIT
    base = _rss_now_mb()
    t = time.perf_counter()
    with _PeakSampler() as s:
        v = M.score_pair(a, b, f, metrics=[metric])[metric]
    dt = time.perf_counter() - t
    print(json.dumps({"metric": metric, "base_mb": base, "peak_mb": s.peak, "seconds": dt,
                      "value": v}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="rfnnest")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    if not (DATA / "tno21").is_dir():
        sys.exit(f"error: {DATA / 'tno21'}: data absent (../shared/data beside the repo)")

    print(f"jaxfuse metrics benchmark: 8 paper metrics x 21 TNO pairs ({args.method}), "
          f"{os.cpu_count()} CPU(s), load average before: {_loadavg()}")
    times = time_metrics(args.method)
    for name in M.PAPER_METRICS:
        print(f"  {name:8s} {times[name]:7.2f} s")
    print(f"  {'total':8s} {times['total']:7.2f} s   (CPU time {times['cpu']:.1f} s; "
          f"load average after: {_loadavg()})")

    if args.skip_memory:
        return
    print("memory, one 1024x1280 pair, fresh process per metric: peak resident set while "
          "computing, above the resident set after import and warm-up")
    worst = 0.0
    for name in M.PAPER_METRICS:
        r = subprocess.run([sys.executable, __file__, "--memory-child", name],
                           capture_output=True, text=True, check=True)
        d = json.loads(r.stdout.strip().splitlines()[-1])
        extra = d["peak_mb"] - d["base_mb"]
        worst = max(worst, d["peak_mb"])
        print(f"  {name:8s} +{extra:6.0f} MB  (peak RSS {d['peak_mb']:.0f} MB, {d['seconds']:.2f} s)")
    print(f"  largest peak RSS: {worst:.0f} MB (the 1024x1280 float64 image itself is 10 MB)")


if __name__ == "__main__":
    main()
