"""Fuse every infrared/visible pair in a folder with a trained Res2NetFuse model.

    python fuse.py --pairs dir/ --out fused/            # l1-norm strategy
    python fuse.py --pairs dir/ --out fused/ --strategy mean --metrics

Layouts: dir/ir/ + dir/vis/ (or dir/vi/) matched by file stem, or a flat
folder of IR<k>.* and VIS<k>.* files. The work happens in jaxfuse.pipeline.
"""

from __future__ import annotations

import sys

from jaxfuse.cli import EXIT_BAD_INPUT, EXIT_PARTIAL, ArgumentParser, run_main


def main(argv=None) -> int:
    from jaxfuse.metrics import CONVENTIONS
    from jaxfuse.strategies import STRATEGIES
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", required=True, help="folder of infrared/visible pairs")
    p.add_argument("--out", default="fused", help="output folder (default: ./fused)")
    p.add_argument("--strategy", default="l1", choices=list(STRATEGIES),
                   help="fusion strategy (default l1)")
    p.add_argument("--checkpoint", default=None,
                   help="Orbax checkpoint folder, step folder, or the authors' PyTorch .model "
                        "file (default: the checkpoint shipped in checkpoints/res2netfuse)")
    p.add_argument("--arch", choices=("res2netfuse", "densefuse", "msdnet"), default=None,
                   help="expected architecture; the checkpoint records its own, and a "
                        "different one is an error (default: whatever the checkpoint holds)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    p.add_argument("--metrics", action="store_true",
                   help="score the fused images with the paper's metrics and print a table")
    p.add_argument("--convention", choices=CONVENTIONS, default="paper",
                   help="metric set for --metrics (default paper)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    from jaxfuse import xla
    xla.enable_compilation_cache()

    from jaxfuse import checkpoint, io, pipeline
    from jaxfuse.errors import JaxfuseError
    # A missing or pair-less folder, or --out pointing at the inputs, fails before the model loads.
    pairs, _ = io.find_pairs(args.pairs)
    pipeline.check_out_dir(args.pairs, args.out, pairs)
    ckpt = args.checkpoint or pipeline.DEFAULT_CHECKPOINT
    if args.checkpoint is None and not pipeline.DEFAULT_CHECKPOINT.exists():
        raise JaxfuseError(ckpt, "the shipped checkpoint is missing; train one with train.py "
                           "and pass --checkpoint")
    params, config = checkpoint.load_params(ckpt)
    if args.arch and config.arch != args.arch:
        raise JaxfuseError(ckpt, f"checkpoint holds a {config.arch} network, not {args.arch}")
    report = pipeline.fuse_folder(args.pairs, args.out, params, strategy=args.strategy,
                                  overwrite=args.overwrite, progress=not args.no_progress)
    print(f"fused {len(report.written)} pair(s) into {args.out}"
          + (f"; {len(report.skipped_existing)} already there, skipped (--overwrite replaces them)"
             if report.skipped_existing else ""))
    if args.metrics:
        from jaxfuse import evaluate
        done = {n for n, _ in report.written + report.skipped_existing}
        result = evaluate.evaluate_pairs([q for q in pairs if q.name in done], args.out,
                                         convention=args.convention,
                                         progress=not args.no_progress)
        evaluate.print_table(result)
    if report.failed:
        print(f"skipped {len(report.failed)} problem(s):", file=sys.stderr)
        for path, problem in report.failed:
            print(f"error: {path}: {problem}", file=sys.stderr)
        return EXIT_PARTIAL if report.written or report.skipped_existing else EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
