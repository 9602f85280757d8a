"""Scores fused images against their infrared/visible sources.

    python -m jaxfuse.evaluate --pairs DIR --fused FUSED_DIR \\
        [--metrics EN MI ...] [--convention paper|standard] \\
        [--out FILE.json|FILE.csv] [--overwrite]

``DIR`` holds the source pairs in a layout :func:`jaxfuse.io.find_pairs`
understands (``ir/`` + ``vis/``, or ``IR<k>``/``VIS<k>`` files). The fused
image of pair ``name`` is the file in ``FUSED_DIR`` whose stem is ``name``
(any image extension). ``--convention paper`` (the default) gives Res2NetFuse
Table IV's columns with the reference kit's values (its MI is 2·EN);
``standard`` gives the textbook set with real mutual information. See
:mod:`jaxfuse.metrics`.

Output: a table per pair and the mean on stdout, and with ``--out`` a JSON
file ``{"per_pair": {name: {metric: value}}, "mean": {metric: value}, ...}``
or a CSV file (one row per pair, then a ``mean`` row), written atomically and
never over an existing file unless ``--overwrite``. Problems with single
pairs (unreadable image, missing fused image, size mismatch) are printed as
``error: <file>: <problem>``; the other pairs are still scored, a summary of
what was skipped ends the run, and the exit status is then 2.

Example (the reference means of RFN-Nest's published images):

    python -m jaxfuse.evaluate --pairs ../shared/data/tno21 \\
        --fused ../shared/data/tno21_fused/rfnnest --convention paper
"""

from __future__ import annotations

import argparse
import csv
import io as _io
import json
import math
import sys
from pathlib import Path
from typing import Iterable, Sequence

from jaxfuse import metrics as M
from jaxfuse.errors import JaxfuseError
from jaxfuse.io import IMAGE_SUFFIXES, Pair, atomic_write, find_pairs, load_image


def find_fused(fused_dir, names: Iterable[str]) -> tuple[dict[str, Path], list[tuple[Path, str]]]:
    """Maps each pair name to the image in ``fused_dir`` with that stem.

    Returns:
      ``(found, problems)``: ``{name: path}`` and ``(path, problem)`` for
      names with no fused image or with several (``01.png`` and ``01.jpg``).

    Raises:
      JaxfuseError: ``fused_dir`` is missing or not a folder.
    """
    fused_dir = Path(fused_dir)
    if not fused_dir.exists():
        raise JaxfuseError(fused_dir, "folder does not exist")
    if not fused_dir.is_dir():
        raise JaxfuseError(fused_dir, "is not a folder")
    by_stem: dict[str, list[Path]] = {}
    for p in sorted(fused_dir.iterdir()):
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES:
            by_stem.setdefault(p.stem, []).append(p)
    found, problems = {}, []
    for name in names:
        cands = by_stem.get(name, [])
        if not cands:
            problems.append((fused_dir / name,
                             "no fused image with this name (any image extension); pair skipped"))
        elif len(cands) > 1:
            problems.append((cands[0], f"several fused images named {name!r}: "
                             f"{', '.join(c.name for c in cands)}; pair skipped"))
        else:
            found[name] = cands[0]
    return found, problems


def _resolve(metrics: Sequence[str] | None, convention: str) -> list[str]:
    names = M.default_metrics(convention) if not metrics else metrics
    out = []
    for n in names:
        canon, _ = M.resolve_metric(n, convention)
        if canon not in out:
            out.append(canon)
    return out


def evaluate_pairs(pairs: Sequence[Pair], fused_dir, *, metrics: Sequence[str] | None = None,
                   convention: str = "paper", progress: bool = True) -> dict:
    """Scores every pair whose fused image is in ``fused_dir``.

    Args:
      pairs: from :func:`jaxfuse.io.find_pairs`.
      fused_dir: folder of fused images named by pair (any image extension).
      metrics: metric names (see :func:`jaxfuse.metrics.metric_names`);
        default: the convention's set.
      convention: ``"paper"`` or ``"standard"``.
      progress: show a tqdm progress bar on stderr.

    Returns:
      ``{"convention": str, "metrics": [names], "per_pair": {name: {metric:
      value}}, "mean": {metric: value}, "skipped": [(path, problem), ...]}``;
      ``mean`` is over the scored pairs (empty if none).

    Raises:
      ValueError: unknown metric names or convention (before any work).
      JaxfuseError: ``fused_dir`` missing.
    """
    names = _resolve(metrics, convention)
    found, skipped = find_fused(fused_dir, [p.name for p in pairs])
    per_pair: dict[str, dict[str, float]] = {}
    todo = [p for p in pairs if p.name in found]
    bar = None
    if progress and todo:
        from tqdm import tqdm
        bar = tqdm(total=len(todo), desc="scoring", unit="pair", file=sys.stderr, leave=False)
    try:
        for pair in todo:
            fused_path = found[pair.name]
            if bar is not None:
                bar.set_postfix_str(pair.name)
            try:
                ir = load_image(pair.ir, gray=True)
                vis = load_image(pair.vis, gray=True)
                fused = load_image(fused_path, gray=True)
                if ir.shape != vis.shape:
                    raise JaxfuseError(pair.vis, f"size {_hw(vis)} does not match infrared "
                                       f"{pair.ir.name} ({_hw(ir)}); pair skipped")
                if fused.shape != ir.shape:
                    raise JaxfuseError(fused_path, f"size {_hw(fused)} does not match sources "
                                       f"({_hw(ir)}); pair skipped")
                try:
                    per_pair[pair.name] = M.score_pair(ir, vis, fused, metrics=names,
                                                       convention=convention)
                except ValueError as e:  # e.g. smaller than a metric's window
                    raise JaxfuseError(fused_path, f"{e}; pair skipped") from None
            except JaxfuseError as e:
                skipped.append((Path(e.path) if e.path else fused_path, e.problem))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    mean = {}
    if per_pair:
        for n in names:
            mean[n] = math.fsum(v[n] for v in per_pair.values()) / len(per_pair)
    return {"convention": convention, "metrics": names, "per_pair": per_pair, "mean": mean,
            "skipped": skipped}


def _hw(a) -> str:
    return f"{a.shape[1]}x{a.shape[0]}"


def format_table(result: dict, *, digits: int = 5) -> str:
    """The per-pair table and mean row of :func:`evaluate_pairs`' result, as text."""
    names = result["metrics"]
    rows = [[name] + [f"{vals[n]:.{digits}f}" for n in names] for name, vals in result["per_pair"].items()]
    footer = []
    if result["mean"]:
        footer = [[f"mean ({len(result['per_pair'])})"] + [f"{result['mean'][n]:.{digits}f}" for n in names]]
    header = ["pair"] + list(names)
    widths = [max(len(r[i]) for r in [header] + rows + footer) for i in range(len(header))]

    def line(r):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    if footer:
        out += ["  ".join("-" * w for w in widths), line(footer[0])]
    return "\n".join(out)


def print_table(result: dict, *, file=None, digits: int = 5) -> None:
    """Prints :func:`format_table` (convention named in the first line)."""
    file = sys.stdout if file is None else file
    print(f"convention: {result['convention']}" +
          (" (MI = 2*EN, as the reference kit reports it)" if result["convention"] == "paper"
           and "MI" in result["metrics"] else ""), file=file)
    print(format_table(result, digits=digits), file=file)


def to_json(result: dict) -> str:
    skipped = [{"path": str(p), "problem": msg} for p, msg in result.get("skipped", [])]
    doc = {"per_pair": result["per_pair"], "mean": result["mean"],
           "convention": result["convention"], "skipped": skipped}
    return json.dumps(doc, indent=1) + "\n"


def to_csv(result: dict) -> str:
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = result["metrics"]
    w.writerow(["pair"] + names)
    for name, vals in result["per_pair"].items():
        w.writerow([name] + [repr(vals[n]) for n in names])
    if result["mean"]:
        w.writerow(["mean"] + [repr(result["mean"][n]) for n in names])
    return buf.getvalue()


def write_result(result: dict, path, *, overwrite: bool = False) -> Path:
    """Writes ``result`` as JSON or CSV (by suffix), atomically.

    Raises:
      JaxfuseError: unknown suffix, existing file without ``overwrite``, or
        missing parent folder.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".csv"):
        raise JaxfuseError(path, "output must end in .json or .csv")
    if path.exists() and not overwrite:
        raise JaxfuseError(path, "exists; pass --overwrite to replace it")
    if not path.parent.is_dir():
        raise JaxfuseError(path.parent, "output folder does not exist")
    text = to_json(result) if suffix == ".json" else to_csv(result)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    return path


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        print(f"error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m jaxfuse.evaluate",
                description="Score fused infrared/visible images with the paper's (kit-exact) "
                            "or the standard fusion metrics.")
    p.add_argument("--pairs", required=True,
                   help="folder of source pairs (ir/ + vis/, or IR<k>/VIS<k> files)")
    p.add_argument("--fused", required=True, help="folder of fused images named like the pairs")
    p.add_argument("--metrics", nargs="+", default=None, metavar="NAME",
                   help="metrics to compute (space- or comma-separated, case-insensitive); "
                        f"default: the convention's set. Known: {', '.join(M.metric_names())}")
    p.add_argument("--convention", choices=M.CONVENTIONS, default="paper",
                   help="paper: Table IV columns, kit-exact (MI = 2*EN); "
                        "standard: textbook set with real MI (default: paper)")
    p.add_argument("--out", default=None, help="write the results to FILE.json or FILE.csv")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from jaxfuse import xla
    xla.enable_compilation_cache()
    metrics = None
    if args.metrics:
        metrics = [m for item in args.metrics for m in item.split(",") if m.strip()]
    try:
        try:
            names = _resolve(metrics, args.convention)
        except ValueError as e:
            raise JaxfuseError(None, str(e)) from None
        out = Path(args.out) if args.out else None
        if out is not None:  # fail before the work, not after it
            if out.suffix.lower() not in (".json", ".csv"):
                raise JaxfuseError(out, "output must end in .json or .csv")
            if out.exists() and not args.overwrite:
                raise JaxfuseError(out, "exists; pass --overwrite to replace it")
            if not out.parent.is_dir():
                raise JaxfuseError(out.parent, "output folder does not exist")
        pairs, pair_problems = find_pairs(args.pairs)
        result = evaluate_pairs(pairs, args.fused, metrics=names, convention=args.convention,
                                progress=not args.no_progress)
    except JaxfuseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # e.g. a folder that cannot be listed
        print(f"error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    result["skipped"] = list(pair_problems) + result["skipped"]
    for path, problem in result["skipped"]:
        print(f"error: {path}: {problem}", file=sys.stderr)
    if result["per_pair"]:
        print_table(result)
    status = 0
    if out is not None and result["per_pair"]:
        try:
            write_result(result, out, overwrite=args.overwrite)
            print(f"wrote {out}", file=sys.stderr)
        except (JaxfuseError, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
            status = 2
    n_ok, n_bad = len(result["per_pair"]), len(result["skipped"])
    if not result["per_pair"]:
        print(f"error: {args.fused}: no pair could be scored ({n_bad} problem(s) above)", file=sys.stderr)
        return 2
    if n_bad:
        print(f"summary: scored {n_ok} pair(s); skipped {n_bad} item(s):", file=sys.stderr)
        for path, problem in result["skipped"]:
            print(f"  {path}: {problem}", file=sys.stderr)
        status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
