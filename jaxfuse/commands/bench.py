"""Performance benchmark: jaxfuse against the PyTorch Res2NetFuse, one run, one machine.

    python -m jaxfuse.bench                  # full run (several minutes on 2 cores)
    python -m jaxfuse.bench --quick          # fewer repeats, smaller sizes (about 2 minutes)
    python -m jaxfuse.bench --no-torch       # JAX figures only
    python -m jaxfuse.bench --json out.json  # also write every figure as JSON

The flags become a :class:`jaxfuse.bench.BenchConfig`; :func:`jaxfuse.bench.run`
does the work (what is measured: :mod:`jaxfuse.bench`).
"""

from __future__ import annotations

import sys
from typing import Sequence

from jaxfuse.cli import ArgumentParser, run_main

PROG = "python -m jaxfuse.bench"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="jaxfuse performance benchmark against the PyTorch network")
    p.add_argument("--quick", action="store_true",
                   help="fewer repeats, a 240×320 pair, the 4 smallest TNO pairs and a 768×512 tiled "
                        "image (about 2 minutes)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch baseline")
    p.add_argument("--json", metavar="OUT", help="also write all figures to this JSON file")
    p.add_argument("--tno", metavar="DIR", help="the TNO-21 pairs (ir/ and vis/ PNGs): the folder stage fuses them and the pair "
                        "stages use its 640×480 pair (without it: no folder stage, a synthetic pair)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from jaxfuse import allocator
    allocator.configure()  # the train stage's malloc settings, before JAX starts (jaxfuse.allocator)
    from jaxfuse.bench import BenchConfig, run
    cfg = BenchConfig.from_flags(quick=args.quick, no_torch=args.no_torch, tno=args.tno, json=args.json)
    if not args.no_torch and not cfg.use_torch:
        print("PyTorch baseline skipped: torch not installed")
    run(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
