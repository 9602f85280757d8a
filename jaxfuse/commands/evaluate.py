"""Score fused images of one or several methods with one evaluator's metrics.

    jaxfuse evaluate --pairs DIR --fused METHOD_DIR [METHOD_DIR ...] \\
        [--convention paper|standard|cddfuse|vifb] [--metrics NAME ...] \\
        [--mi-base bits|nats] [--out FILE.json|FILE.csv|OUTDIR] [--overwrite] \\
        [--no-progress]

(``python -m jaxfuse.evaluate`` is the same command.) ``DIR`` holds the
source pairs (``ir/`` + ``vis/``, or ``IR<k>``/``VIS<k>`` files). Each
``METHOD_DIR`` holds one method's fused images, named like the pairs (any
image extension); the folder's name is the method's name (two folders with
the same name are an error). The convention fixes the metrics and how the
files are read (see :mod:`jaxfuse.evaluate`).

One method (and ``--out`` a file or absent): a table per pair and the mean on
stdout, and with ``--out`` a JSON file ``{"per_pair": {name: {metric:
value}}, "mean": {metric: value}, "convention": ..., "skipped": [...]}`` or a
CSV file (one row per pair, then a ``mean`` row).

Several methods, or ``--out`` a folder (one that exists or a name ending in
``/``; created if missing): the comparison table on stdout (each method's
mean per metric, the best per column marked ``*``, each method's rank per
metric and its mean rank), and in ``OUTDIR``:

* ``METHOD.json`` and ``METHOD.csv`` per method, in the one-method format;
* ``comparison.md`` and ``comparison.csv``: the comparison table (Markdown
  with the best per column in bold; CSV with ``rank_<metric>`` columns, a
  ``mean_rank`` column and a final ``best`` row naming the best methods);
* ``comparison.png``: one bar chart panel per metric, methods on the
  vertical axis, the best bar highlighted.

Ranks: 1 is best (largest value, or smallest where the convention says lower
is better); tied methods share the mean of their places. Source pairs are
read once and reused for every method; one progress bar on stderr counts
every fused image. Outputs are written atomically and never over an existing
file unless ``--overwrite`` (checked before any work).

Problems with single pairs (unreadable image, missing fused image, size
mismatch) are printed as ``error: <file>: <problem>``; the other pairs are
still scored, a summary of what was skipped ends the run, and the exit
status is 3 (2 if nothing could be scored). Any other problem is one
``error: <path>: <problem>`` line and exit status 2 (:mod:`jaxfuse.cli`).

Examples. The reference means of RFN-Nest's published images (TNO-21 pairs
and the published fused images, wherever you keep them):

    jaxfuse evaluate --pairs data/tno21 --fused data/tno21_fused/rfnnest --convention paper

The VIFB set, all published methods, VIFB's own metrics:

    jaxfuse evaluate --pairs data/vifb --fused data/vifb/fused/* --convention vifb --out runs/vifb
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterable, Sequence

from jaxfuse.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_PARTIAL, ArgumentParser, describe, run_main
from jaxfuse.errors import JaxfuseError

PROG = "jaxfuse evaluate"


def build_parser() -> ArgumentParser:
    from jaxfuse.metrics import CONVENTIONS
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", required=True,
                   help="folder of source pairs (ir/ + vis/, or IR<k>/VIS<k> files)")
    p.add_argument("--fused", required=True, nargs="+", metavar="METHOD_DIR",
                   help="folder(s) of fused images named like the pairs, one per method; "
                        "the folder's name is the method's name")
    p.add_argument("--metrics", nargs="+", default=None, metavar="NAME",
                   help="metrics to compute (space- or comma-separated, case-insensitive); "
                        "default: the convention's set")
    p.add_argument("--convention", choices=CONVENTIONS, default="paper",
                   help="paper: Res2NetFuse Table IV, kit-exact (MI = 2*EN); standard: textbook "
                        "definitions with real MI; cddfuse: CDDFuse's Evaluator.py; vifb: VIFB's "
                        "compute_metrics.m, colour kept (default: paper)")
    p.add_argument("--mi-base", choices=("bits", "nats"), default=None,
                   help="MI in bits (default) or nats; --convention standard only")
    p.add_argument("--out", default=None,
                   help="one method: FILE.json or FILE.csv; several methods (or a folder): the "
                        "folder for METHOD.json/.csv and comparison.md/.csv/.png")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _is_dir_arg(out: str) -> bool:
    return out.endswith(("/", os.sep)) or Path(out).is_dir()


def _unique(problems: Iterable[tuple[Path, str]]) -> list[tuple[Path, str]]:
    seen, out = set(), []
    for path, problem in problems:
        key = (str(path), problem)
        if key not in seen:
            seen.add(key)
            out.append((path, problem))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from jaxfuse import evaluate as E
    from jaxfuse import xla
    xla.enable_compilation_cache()
    metrics = None
    if args.metrics:
        metrics = [m for item in args.metrics for m in item.split(",") if m.strip()]
    if args.mi_base is not None and args.convention != "standard":
        raise JaxfuseError(None, "--mi-base is only valid with --convention standard, not "
                           f"{args.convention!r}")
    try:
        conv = E.convention_for(args.convention, args.mi_base)
        names = E._resolve(metrics, conv)
    except ValueError as e:
        raise JaxfuseError(None, str(e)) from None
    methods = E.method_dirs(args.fused)
    many = len(methods) > 1 or (args.out is not None and _is_dir_arg(args.out))
    out = Path(args.out) if args.out else None
    if out is not None and not many:  # fail before the work, not after it
        if out.suffix.lower() not in (".json", ".csv"):
            raise JaxfuseError(out, "output must end in .json or .csv (or be a folder)")
        if out.exists() and not args.overwrite:
            raise JaxfuseError(out, "exists", hint="overwrite")
        if not out.parent.is_dir():
            raise JaxfuseError(out.parent, "output folder does not exist")
    if out is not None and many:
        if out.suffix.lower() in (".json", ".csv") and not out.is_dir():
            raise JaxfuseError(out, "with several methods --out is a folder, not a "
                               f"{out.suffix} file")
        E.check_output_dir(out, methods, overwrite=args.overwrite)
    pairs, pair_problems = E.find_pairs(args.pairs)
    ev = E.evaluate_methods(pairs, methods, convention=conv, metrics=names,
                            progress=not args.no_progress)
    for r in ev.results.values():
        r["skipped"] = list(pair_problems) + r["skipped"]
    if not many:
        return _report_one(args, next(iter(ev.results.values())), out)
    return _report_many(args, ev, methods, out)


def _write_failed(e: Exception) -> int:
    print(f"error: {describe(e) if isinstance(e, JaxfuseError) else e}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _report_one(args, result: dict, out: Path | None) -> int:
    from jaxfuse import evaluate as E
    for path, problem in result["skipped"]:
        print(f"error: {path}: {problem}", file=sys.stderr)
    if result["per_pair"]:
        E.print_table(result)
    status = EXIT_OK
    if out is not None and result["per_pair"]:
        try:
            E.write_result(result, out, overwrite=args.overwrite)
            print(f"wrote {out}", file=sys.stderr)
        except (JaxfuseError, OSError) as e:
            status = _write_failed(e)
    n_ok, n_bad = len(result["per_pair"]), len(result["skipped"])
    if not result["per_pair"]:
        print(f"error: {args.fused[0]}: no pair could be scored ({n_bad} problem(s) above)",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    if n_bad:
        print(f"summary: scored {n_ok} pair(s); skipped {n_bad} item(s):", file=sys.stderr)
        for path, problem in result["skipped"]:
            print(f"  {path}: {problem}", file=sys.stderr)
        status = status or EXIT_PARTIAL
    return status


def _report_many(args, ev, dirs: dict, out: Path | None) -> int:
    from jaxfuse import evaluate as E
    problems = _unique(p for r in ev.results.values() for p in r["skipped"])
    for path, problem in problems:
        print(f"error: {path}: {problem}", file=sys.stderr)
    empty = [m for m, r in ev.results.items() if not r["per_pair"]]
    for m in empty:
        print(f"error: {dirs[m]}: no pair could be scored; method left out of the comparison",
              file=sys.stderr)
    comp = ev.comparison
    if not comp.methods:
        print(f"error: {args.pairs}: no pair could be scored for any method "
              f"({len(problems)} problem(s) above)", file=sys.stderr)
        return EXIT_BAD_INPUT
    E.print_comparison(comp)
    status = EXIT_OK
    if out is not None:
        try:
            written = E.write_evaluation(ev, out, overwrite=args.overwrite,
                                         title=f"Comparison on {Path(args.pairs).name or args.pairs}")
            print(f"wrote {len(written)} file(s) into {out}", file=sys.stderr)
        except (JaxfuseError, OSError) as e:
            status = _write_failed(e)
    n_img = sum(len(r["per_pair"]) for r in ev.results.values())
    if problems or empty:
        print(f"summary: scored {n_img} image(s) of {len(comp.methods)} method(s); skipped "
              f"{len(problems)} item(s)" + (f"; {len(empty)} method(s) with nothing scored"
                                             if empty else "") + (":" if problems else ""),
              file=sys.stderr)
        for path, problem in problems:
            print(f"  {path}: {problem}", file=sys.stderr)
        status = status or EXIT_PARTIAL
    return status


if __name__ == "__main__":
    sys.exit(run_main(main))
