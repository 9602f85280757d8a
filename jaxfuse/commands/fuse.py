"""Fuse infrared/visible pairs with a trained network or a weight-free method: one pair, or a folder.

    jaxfuse fuse IR VIS --out fused.png                 # one pair, the shipped Res2NetFuse
    jaxfuse fuse --pairs dir/ --out fused/              # a folder, l1-norm strategy
    jaxfuse fuse --pairs dir/ --out fused/ --strategy mean --metrics
    jaxfuse fuse --pairs dir/ --out fused-jsr/ --method jsr        # a method with no weights
    jaxfuse fuse --pairs dir/ --checkpoint checkpoints/fusiongan   # another trained network

(``python fuse.py`` in a clone of the repository is the same command.)
Folder layouts: dir/ir/ + dir/vis/ (or dir/vi/) matched by file stem, or a
flat folder of IR<k>.* and VIS<k>.* files. A colour visible image goes
through the colour path. Existing outputs are never replaced without
``--overwrite``; every output is written atomically, so several processes
may fuse into one folder. The work happens in :mod:`jaxfuse.pipeline`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from jaxfuse.cli import EXIT_BAD_INPUT, EXIT_PARTIAL, ArgumentParser, run_main

PROG = "jaxfuse fuse"
DEFAULT_OUT = "fused"


def build_parser() -> ArgumentParser:
    from jaxfuse import model
    from jaxfuse.methods import METHOD_NAMES, METHODS
    from jaxfuse.metrics import CONVENTIONS
    from jaxfuse.strategies import STRATEGIES
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("ir", nargs="?", metavar="IR", help="one infrared image (with VIS and --out FILE)")
    p.add_argument("vis", nargs="?", metavar="VIS", help="its visible image, gray or colour")
    p.add_argument("--pairs", metavar="DIR", help="a folder of infrared/visible pairs")
    p.add_argument("--out", default=None,
                   help=f"with --pairs: the output folder (default: ./{DEFAULT_OUT}); with IR VIS: "
                        "the fused image file (.png, .jpg, .bmp, .tif)")
    p.add_argument("--strategy", default=None, choices=list(STRATEGIES),
                   help="fusion strategy (default: the network's own first one, l1 for "
                        "Res2NetFuse; FusionGAN takes none)")
    p.add_argument("--checkpoint", default=None,
                   help="Orbax checkpoint folder, step folder, training --workdir, or the authors' "
                        "PyTorch .model file (default: the shipped res2netfuse checkpoint)")
    p.add_argument("--method", choices=METHOD_NAMES, default=None,
                   help="fuse with a method that has no weights instead of a network: "
                        + ", ".join(f"{m.name} ({m.title})" for m in METHODS.values()))
    p.add_argument("--arch", choices=model.ARCHS, default=None,
                   help="expected architecture; the checkpoint records its own, and a "
                        "different one is an error (default: whatever the checkpoint holds)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    p.add_argument("--metrics", action="store_true",
                   help="score the fused images with the paper's metrics and print a table")
    p.add_argument("--convention", choices=CONVENTIONS, default="paper",
                   help="metric set for --metrics (default paper)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _load_model(args):
    """The network's parameters, or the weight-free method, that fuses.

    Sets ``args.strategy`` to the network's own default when none was given.
    """
    from jaxfuse import assets, checkpoint, model
    from jaxfuse.errors import JaxfuseError
    from jaxfuse.strategies import STRATEGIES
    if args.method is not None:
        from jaxfuse.methods import get_method
        return get_method(args.method)
    ckpt = args.checkpoint or assets.shipped_checkpoint()
    params, config = checkpoint.load_params(ckpt)
    if args.arch and config.arch != args.arch:
        raise JaxfuseError(ckpt, f"checkpoint holds a {config.arch} network, not {args.arch}")
    spec = model.arch_spec(config)
    if args.strategy is None:
        args.strategy = spec.default_strategy
    elif spec.default_strategy not in STRATEGIES:  # FusionGAN: the generator fuses the pair itself
        raise JaxfuseError(ckpt, f"holds a {spec.title} network, which fuses the pair itself and "
                           "takes no --strategy")
    return params


def main(argv: Sequence[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.ir is not None and args.pairs is not None:
        p.error("give IR VIS or --pairs DIR, not both")
    if args.ir is None and args.pairs is None:
        p.error("the following arguments are required: --pairs (or IR VIS)")
    if args.ir is not None and args.vis is None:
        p.error("the following arguments are required: VIS (after IR)")
    if args.ir is not None and args.out is None:
        p.error("with IR VIS, --out names the fused image file (e.g. --out fused.png)")
    if args.method is not None:
        given = [f for f, v in (("--checkpoint", args.checkpoint), ("--arch", args.arch),
                                ("--strategy", args.strategy)) if v is not None]
        if given:
            p.error(f"--method {args.method} has no weights and no strategy; drop {', '.join(given)}")
    from jaxfuse import xla
    xla.enable_compilation_cache()
    if args.ir is not None:
        return _fuse_one(args)
    return _fuse_folder(args)


def _fuse_one(args) -> int:
    from jaxfuse import io, pipeline
    # Unreadable inputs or an output in the way fail before the model loads.
    pipeline.check_out_file(args.ir, args.vis, args.out, overwrite=args.overwrite)
    pipeline.load_pair(io.Pair(Path(args.out).stem, Path(args.ir), Path(args.vis)))
    params = _load_model(args)
    out = pipeline.fuse_one(args.ir, args.vis, args.out, params, strategy=args.strategy,
                            overwrite=args.overwrite)
    print(f"fused {args.ir} + {args.vis} into {out}")
    if args.metrics:
        _score([io.Pair(out.stem, Path(args.ir), Path(args.vis))], out.parent, args)
    return 0


def _fuse_folder(args) -> int:
    from jaxfuse import io, pipeline
    out = args.out or DEFAULT_OUT
    # A missing or pair-less folder, or --out pointing at the inputs, fails before the model loads.
    pairs, _ = io.find_pairs(args.pairs)
    pipeline.check_out_dir(args.pairs, out, pairs)
    params = _load_model(args)
    report = pipeline.fuse_folder(args.pairs, out, params, strategy=args.strategy,
                                  overwrite=args.overwrite, progress=not args.no_progress)
    print(f"fused {len(report.written)} pair(s) into {out}"
          + (f"; {len(report.skipped_existing)} already there, skipped (--overwrite replaces them)"
             if report.skipped_existing else ""))
    if args.metrics:
        done = {n for n, _ in report.written + report.skipped_existing}
        _score([q for q in pairs if q.name in done], out, args)
    if report.failed:
        print(f"skipped {len(report.failed)} problem(s):", file=sys.stderr)
        for path, problem in report.failed:
            print(f"error: {path}: {problem}", file=sys.stderr)
        return EXIT_PARTIAL if report.written or report.skipped_existing else EXIT_BAD_INPUT
    return 0


def _score(pairs, fused_dir, args) -> None:
    from jaxfuse import evaluate
    result = evaluate.evaluate_pairs(pairs, fused_dir, convention=args.convention,
                                     progress=not args.no_progress)
    evaluate.print_table(result)


if __name__ == "__main__":
    sys.exit(run_main(main))
