"""Times every fusion method of the paper's Table IV, per pair, on the TNO pairs.

    python benchmarks/bench_methods.py [--pairs DIR] [--methods dchwt jsr ...] [--max-pairs N]

For each method (the weight-free ones of :mod:`jaxfuse.methods` and the
networks of the shipped checkpoints: Res2NetFuse with l1 and mean, FusionGAN;
DenseFuse and MSDNet when ``--checkpoint-dir`` holds trained ones, e.g. a
reproduction's ``train/`` folder), the seconds each pair takes to fuse
(colour path and output step included, reading and writing not), the first
pair separately (it pays the compiles), the median of the others, and the
total for the folder. Prints one table and the machine's load while it ran
(the machine may be shared: compare methods within one run, not across days).
Without ``--pairs`` it uses ``../shared/data/tno21`` beside the repository.
Not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jaxfuse import assets, checkpoint, io, methods  # noqa: E402
from jaxfuse.fusion import fuse_pair  # noqa: E402
from jaxfuse.pipeline import load_pair  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
NETWORKS = {"res2netfuse l1": ("res2netfuse", "l1"), "res2netfuse mean": ("res2netfuse", "mean"),
            "fusiongan": ("fusiongan", None)}


def _loadavg() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _fusers(names, checkpoint_dir):
    """``name -> (params or Method, strategy)`` for every method asked for that is available."""
    out, missing = {}, []
    for name in names:
        if name in methods.METHODS:
            out[name] = (methods.get_method(name), None)
            continue
        model, strategy = NETWORKS.get(name, (name.split()[0], (name.split() + [None])[1]))
        path = None
        if model in assets.shipped_models():
            path = assets.shipped_checkpoint(model)
        elif checkpoint_dir is not None:
            found = sorted(Path(checkpoint_dir).glob(f"{model}-single-*"))
            path = found[0] if found else None
        if path is None:
            missing.append(name)
            continue
        params, config = checkpoint.load_params(path)
        from jaxfuse import model as jmodel
        out[name] = (params, strategy or jmodel.arch_spec(config).default_strategy)
    return out, missing


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", default=str(DATA / "tno21"), help="the pairs folder")
    p.add_argument("--methods", nargs="+",
                   default=list(methods.METHODS) + list(NETWORKS) + ["densefuse", "msdnet l1"],
                   help="methods to time (default: all)")
    p.add_argument("--checkpoint-dir", default=None,
                   help="a folder of training workdirs (a reproduction's train/) for DenseFuse "
                        "and MSDNet")
    p.add_argument("--max-pairs", type=int, default=None, help="only the first N pairs")
    args = p.parse_args(argv)
    pairs, _ = io.find_pairs(args.pairs)
    pairs = pairs[:args.max_pairs] if args.max_pairs else pairs
    images = [load_pair(q) for q in pairs]
    fusers, missing = _fusers(args.methods, args.checkpoint_dir)
    print(f"{len(pairs)} pairs from {args.pairs}; load before: {_loadavg()}")
    rows = []
    for name, (what, strategy) in fusers.items():
        times = []
        for ir, vis in images:
            t = time.perf_counter()
            fuse_pair(what, ir, vis, strategy=strategy or "l1")
            times.append(time.perf_counter() - t)
        rest = times[1:] or times
        rows.append((name, times[0], statistics.median(rest), sum(times)))
        print(f"  {name}: {sum(times):.1f} s", flush=True)
    print()
    print(f"{'method':<20} {'first pair s':>12} {'median pair s':>14} {'total s':>9}")
    for name, first, med, total in rows:
        print(f"{name:<20} {first:>12.2f} {med:>14.3f} {total:>9.1f}")
    for name in missing:
        print(f"{name:<20} (no checkpoint: pass --checkpoint-dir)")
    print(f"load after: {_loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
