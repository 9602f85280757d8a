"""Times the fusion metrics: the paper's eight on TNO, and every convention on the VIFB dev set.

    python benchmarks/bench_metrics.py [--method rfnnest] [--skip-memory] [--skip-tno]
        [--quick] [--conventions paper standard cddfuse vifb]

First part (skipped with ``--skip-tno``): per paper metric, the total time
over the 21 TNO pairs (fused images of ``--method`` from
``../shared/data/tno21_fused``), the total, and the CPU load while it ran
(the machine may be shared: compare timings only between runs on an idle
machine). Then, for one synthetic 1024×1280 pair (a TNO pair resized), each
default metric of every convention: its peak resident memory in a fresh
process, above the process's footprint after importing jaxfuse and a warm-up
(``--skip-memory`` skips it).

Second part: per convention (one whose module is not importable yet is
skipped with a note), the time :func:`jaxfuse.evaluate.evaluate_methods`
takes to score the VIFB dev set (``../shared/data/vifb_dev``: 6 pairs × 25
methods, reading the images included) with that convention's default
metrics, the seconds per fused image, and the projection to VIFB's whole
table (21 pairs × 25 methods) against the goal of 120 s. The VIFB pairs
differ in size, so compilations for new sizes are part of the time, as in a
real run; a warm-up on a small crop only keeps the first compilation out.
``--quick`` scores 2 methods instead of 25. Not a test.
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
VIFB_DEV = DATA / "vifb_dev"
VIFB_GOAL_S = 120.0
"""Goal: VIFB's whole table (21 pairs x 25 methods) scored in under two minutes."""
VIFB_FULL = (21, 25)


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


def memory_child(which: str) -> None:
    conv, metric = which.split(":", 1)
    a, b, f = _big_pair()
    M.score_pair(a[:64, :64], b[:64, :64], f[:64, :64], metrics=[metric], convention=conv)  # imports + JIT
    base = _rss_now_mb()
    t = time.perf_counter()
    with _PeakSampler() as s:
        v = M.score_pair(a, b, f, metrics=[metric], convention=conv)[metric]
    dt = time.perf_counter() - t
    print(json.dumps({"metric": metric, "base_mb": base, "peak_mb": s.peak, "seconds": dt,
                      "value": v}))


def time_vifb(conventions, quick: bool) -> None:
    """Prints, per convention, the time to score the VIFB dev set and its projection."""
    from jaxfuse import evaluate as E

    if not VIFB_DEV.is_dir():
        print(f"VIFB dev set absent ({VIFB_DEV}): conventions not timed")
        return
    pairs, _ = find_pairs(VIFB_DEV)
    methods = {d.name: d for d in sorted((VIFB_DEV / "fused").iterdir()) if d.is_dir()}
    if quick:
        methods = dict(list(methods.items())[:2])
    full = VIFB_FULL[0] * VIFB_FULL[1]
    print(f"\nVIFB dev set: {len(pairs)} pairs x {len(methods)} methods"
          f"{' (--quick)' if quick else ''}, each convention's default metrics; projection to "
          f"{VIFB_FULL[0]} pairs x {VIFB_FULL[1]} methods = {full} fused images, "
          f"goal: whole VIFB table under {VIFB_GOAL_S:.0f} s")
    if quick:
        print("(--quick: fewer methods share each pair's source-only work than in the full "
              "table, so the projections are pessimistic)")
    print(f"{os.cpu_count()} CPU(s); wall-clock times (on a shared machine compare the CPU "
          "times, which other processes disturb less; they count every thread)")
    print(f"  {'convention':10s} {'metrics':>7s} {'images':>6s} {'time':>8s} {'s/image':>8s} "
          f"{'projected':>10s} {'/ goal':>7s}")
    for name in conventions:
        try:
            conv = M.get_convention(name)
        except (ImportError, AttributeError) as e:  # not written yet, or half-written
            print(f"  {name:10s} skipped: its module is not importable yet ({e})")
            continue
        small = min(pairs, key=lambda p: load_image(p.ir).size)
        first = next(iter(methods.values()))
        fused = next(first.glob(f"{small.name}.*"))
        try:  # warm-up: imports and the first compilations
            crop = [conv.load(p)[:128, :128] for p in (small.ir, small.vis, fused)]
            M.score_pair(*crop, convention=conv)
        except ValueError:
            pass
        load0 = _loadavg()
        t, c = time.perf_counter(), time.process_time()
        ev = E.evaluate_methods(pairs, methods, convention=conv, progress=False)
        dt, cpu = time.perf_counter() - t, time.process_time() - c
        n = sum(len(r["per_pair"]) for r in ev.results.values())
        bad = sum(len(r["skipped"]) for r in ev.results.values())
        if not n:
            print(f"  {name:10s} nothing scored ({bad} problem(s))")
            continue
        per = dt / n
        proj = per * full
        verdict = "meets the goal" if proj <= VIFB_GOAL_S else "over the goal"
        print(f"  {name:10s} {len(conv.defaults):7d} {n:6d} {dt:7.1f}s {per:8.3f} {proj:9.0f}s "
              f"{proj / VIFB_GOAL_S:6.2f}x  {verdict}"
              + (f"; {bad} image(s) skipped" if bad else ""))
        print(f"  {'':10s} CPU time {cpu:.1f} s ({cpu / n:.3f} s/image, {cpu / n * full:.0f} s "
              f"projected); load average {load0} before, {_loadavg()} after")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="rfnnest")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-tno", action="store_true",
                    help="only the VIFB timings per convention")
    ap.add_argument("--quick", action="store_true", help="VIFB timings on 2 methods, not 25")
    ap.add_argument("--conventions", nargs="+", default=list(M.CONVENTIONS),
                    choices=M.CONVENTIONS, metavar="NAME",
                    help=f"conventions to time on VIFB (default: all: {' '.join(M.CONVENTIONS)})")
    ap.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    if not args.skip_tno:
        time_tno(args.method, args.skip_memory)
    time_vifb(args.conventions, args.quick)


def time_tno(method: str, skip_memory: bool) -> None:
    """The paper's eight metrics on TNO-21: time per metric, then peak memory per metric."""
    if not (DATA / "tno21").is_dir():
        print(f"TNO-21 absent ({DATA / 'tno21'}): paper metrics not timed")
        return

    print(f"jaxfuse metrics benchmark: 8 paper metrics x 21 TNO pairs ({method}), "
          f"{os.cpu_count()} CPU(s), load average before: {_loadavg()}")
    times = time_metrics(method)
    for name in M.PAPER_METRICS:
        print(f"  {name:8s} {times[name]:7.2f} s")
    print(f"  {'total':8s} {times['total']:7.2f} s   (CPU time {times['cpu']:.1f} s; "
          f"load average after: {_loadavg()})")

    if skip_memory:
        return
    print("memory, one 1024x1280 grey pair, fresh process per metric: peak resident set while "
          "computing, above the resident set after import and warm-up")
    worst = 0.0
    for conv in M.CONVENTIONS:
        for name in M.default_metrics(conv):
            r = subprocess.run([sys.executable, __file__, "--memory-child", f"{conv}:{name}"],
                               capture_output=True, text=True, check=True)
            d = json.loads(r.stdout.strip().splitlines()[-1])
            extra = d["peak_mb"] - d["base_mb"]
            worst = max(worst, d["peak_mb"])
            print(f"  {conv + ':' + name:26s} +{extra:6.0f} MB  (peak RSS {d['peak_mb']:.0f} MB, "
                  f"{d['seconds']:.2f} s)")
    print(f"  largest peak RSS: {worst:.0f} MB (the 1024x1280 float64 image itself is 10 MB)")


if __name__ == "__main__":
    main()
