"""Scores fused images of one or several methods against their infrared/visible sources.

The library behind ``jaxfuse evaluate`` (:mod:`jaxfuse.commands.evaluate`,
which documents the command line):

* :func:`evaluate_pairs` scores one folder of fused images,
  :func:`evaluate_methods` several methods' folders on the same pairs (each
  source pair read once) and compares them (:mod:`jaxfuse.comparison`);
* :func:`format_table` / :func:`print_table` show one method's scores,
  :func:`write_result` writes them as JSON or CSV, and
  :func:`write_evaluation` writes a whole comparison into a folder.

Pairs come from :func:`jaxfuse.io.find_pairs` (``ir/`` + ``vis/``, or
``IR<k>``/``VIS<k>`` files). The fused image of pair ``name`` is the file in
a method's folder whose stem is ``name`` (any image extension). The
convention (:mod:`jaxfuse.metrics.conventions`) fixes the metrics *and* how
image files are read: ``paper`` (the default: Res2NetFuse Table IV's columns
with the reference kit's values, its MI is 2·EN) and ``standard`` (textbook
definitions, real MI in bits, or nats with ``mi_base="nats"``) read float
BT.601 grey; ``cddfuse`` reads like OpenCV's grey conversion; ``vifb`` keeps
colour as MATLAB's ``imread`` does, so a colour visible image beside a grey
infrared one is normal there (sizes are compared on height and width only).
See :mod:`jaxfuse.metrics`.

A result is ``{"convention", "metrics", "per_pair": {name: {metric: value}},
"mean": {metric: value}, "skipped": [(path, problem), ...], "note"}``;
problems with single pairs (unreadable image, missing fused image, size
mismatch) are in ``skipped`` and the other pairs are still scored. Files are
written atomically and never over an existing file unless ``overwrite``.

``python -m jaxfuse.evaluate`` is the same as ``jaxfuse evaluate``.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from jaxfuse import metrics as M
from jaxfuse import tables
from jaxfuse.cli import progress_bar
from jaxfuse.comparison import (COMPARISON_FILES, Comparison, compare, comparison_chart,  # noqa: F401
                                comparison_csv, comparison_markdown, convention_line,
                                format_comparison, get_convention, note_for, print_comparison)
from jaxfuse.errors import JaxfuseError
from jaxfuse.evaluation_files import (check_output_dir, output_files, to_csv, to_json,  # noqa: F401
                                      write_evaluation, write_result)
from jaxfuse.io import IMAGE_SUFFIXES, Pair, find_pairs
from jaxfuse.metrics.conventions import Convention
from jaxfuse.pipeline import check_same_size

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


def convention_for(convention: str | Convention = "paper", mi_base: str | None = None) -> Convention:
    """The convention to score with, MI base applied.

    Args:
      convention: a name from :data:`jaxfuse.metrics.CONVENTIONS`, or a
        :class:`~jaxfuse.metrics.Convention` (returned as is).
      mi_base: ``"bits"`` or ``"nats"`` for the ``standard`` convention's MI;
        None: the convention's own. Only ``standard`` takes it.

    Raises:
      ValueError: unknown or unavailable convention, unknown base, or
        ``mi_base`` with a convention other than ``standard``.
    """
    if isinstance(convention, Convention):
        if mi_base is not None:
            raise ValueError("mi_base applies to a convention name ('standard'), not a Convention")
        return convention
    if mi_base is not None and convention != "standard":
        raise ValueError(f"mi_base is only valid with the 'standard' convention, not {convention!r}")
    conv = get_convention(convention)
    if mi_base is None:
        return conv
    from jaxfuse.metrics import standard
    return standard.make(mi_base=mi_base)


def _resolve(metrics: Sequence[str] | None, convention) -> list[str]:
    return convention_for(convention).resolve_all(None if not metrics else tuple(metrics))


def _load(conv: Convention, path: Path):
    try:
        return conv.load(path)
    except JaxfuseError:
        raise
    except (OSError, ValueError) as e:
        raise JaxfuseError(path, f"unreadable image ({e})") from None


def _score_all(pairs: Sequence[Pair], fused: Mapping[str, Path], conv: Convention,
               names: list[str], progress: bool) -> dict[str, dict]:
    """Scores every method; returns ``{method: result dict}`` in ``fused``'s order.

    Pair by pair: the sources are read once, then each method's fused image.
    """
    found, skipped = {}, {}
    for method, d in fused.items():  # every folder is checked before any scoring
        found[method], skipped[method] = find_fused(d, [p.name for p in pairs])
    per_pair: dict[str, dict[str, dict[str, float]]] = {m: {} for m in fused}
    make_scorer = conv.pair_scorer  # sources' work once per pair, where the convention offers it
    total = sum(len(f) for f in found.values())
    bar = progress_bar(total=total, desc="scoring", unit="image", leave=False,
                       enabled=progress and bool(total))
    try:
        for pair in pairs:
            users = [m for m in fused if pair.name in found[m]]
            if not users:
                continue
            source_problem = None
            try:
                ir = _load(conv, pair.ir)
                vis = _load(conv, pair.vis)
                check_same_size(vis, ir, pair.vis, f"does not match infrared {pair.ir.name}",
                                then="; pair skipped")
                scorer = None
                if make_scorer is not None:
                    try:
                        scorer = make_scorer(ir, vis)
                    except ValueError as e:
                        raise JaxfuseError(pair.vis, f"{e}; pair skipped") from None
            except JaxfuseError as e:
                source_problem = (Path(e.path) if e.path else pair.ir, e.problem)
            for method in users:
                fused_path = found[method][pair.name]
                bar.set_postfix_str(f"{method} {pair.name}" if len(fused) > 1 else pair.name)
                if source_problem is not None:
                    skipped[method].append(source_problem)
                else:
                    try:
                        img = _load(conv, fused_path)
                        check_same_size(img, ir, fused_path, "does not match sources",
                                        then="; pair skipped")
                        try:
                            if scorer is not None:
                                vals = scorer.score(img, names)
                            else:
                                vals = M.score_pair(ir, vis, img, metrics=names, convention=conv)
                            per_pair[method][pair.name] = {n: float(vals[n]) for n in names}
                        except ValueError as e:  # e.g. smaller than a metric's window
                            raise JaxfuseError(fused_path, f"{e}; pair skipped") from None
                    except JaxfuseError as e:
                        skipped[method].append((Path(e.path) if e.path else fused_path, e.problem))
                bar.update(1)
    finally:
        bar.close()
    note = note_for(conv, names)
    out = {}
    for method in fused:
        pp = per_pair[method]
        mean = {}
        if pp:
            mean = {n: math.fsum(v[n] for v in pp.values()) / len(pp) for n in names}
        out[method] = {"convention": conv.name, "metrics": list(names), "per_pair": pp,
                       "mean": mean, "skipped": skipped[method], "note": note}
    return out


def evaluate_pairs(pairs: Sequence[Pair], fused_dir, *, metrics: Sequence[str] | None = None,
                   convention: str | Convention = "paper", mi_base: str | None = None,
                   progress: bool = True) -> dict:
    """Scores every pair whose fused image is in ``fused_dir``.

    Args:
      pairs: from :func:`jaxfuse.io.find_pairs`.
      fused_dir: folder of fused images named by pair (any image extension).
      metrics: metric names (see :func:`jaxfuse.metrics.metric_names`);
        default: the convention's set.
      convention: a name from :data:`jaxfuse.metrics.CONVENTIONS` or a
        :class:`~jaxfuse.metrics.Convention`; images are read with its
        ``load``.
      mi_base: ``"bits"`` or ``"nats"``, ``standard`` convention only.
      progress: show a tqdm progress bar on stderr.

    Returns:
      ``{"convention": str, "metrics": [names], "per_pair": {name: {metric:
      value}}, "mean": {metric: value}, "skipped": [(path, problem), ...],
      "note": str}``; ``mean`` is over the scored pairs (empty if none);
      ``note`` is the convention's caveat for these metrics (may be empty).

    Raises:
      ValueError: unknown metric names or convention, or a misplaced
        ``mi_base`` (before any work).
      JaxfuseError: ``fused_dir`` missing.
    """
    conv = convention_for(convention, mi_base)
    names = _resolve(metrics, conv)
    return _score_all(pairs, {"": Path(fused_dir)}, conv, names, progress)[""]


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate_methods` returns.

    Attributes:
      results: ``{method: result}``, each as :func:`evaluate_pairs` returns
        it (its ``skipped`` includes the problems of the source pairs).
      comparison: the methods side by side (:func:`compare`).
    """

    results: dict[str, dict]
    comparison: Comparison


def evaluate_methods(pairs, fused: Mapping[str, str | os.PathLike], *,
                     convention: str | Convention = "paper", metrics: Sequence[str] | None = None,
                     mi_base: str | None = None, progress: bool = True) -> Evaluation:
    """Scores several methods' fused images on the same pairs and compares them.

    Each source pair is read once and scored against every method's fused
    image of it.

    Args:
      pairs: a list from :func:`jaxfuse.io.find_pairs`, or the folder to
        give it (its problems then go into every method's ``skipped``).
      fused: ``{method name: folder of its fused images named by pair}``.
      convention: a name from :data:`jaxfuse.metrics.CONVENTIONS` or a
        :class:`~jaxfuse.metrics.Convention`; images are read with its
        ``load``.
      metrics: metric names; default: the convention's set.
      mi_base: ``"bits"`` or ``"nats"``, ``standard`` convention only.
      progress: one tqdm progress bar on stderr over all fused images.

    Returns:
      An :class:`Evaluation`.

    Raises:
      ValueError: unknown metric names or convention, a misplaced
        ``mi_base``, or no methods (before any work).
      JaxfuseError: a missing folder (before any work).

    Example:
      >>> ev = evaluate_methods("data/vifb",  # doctest: +SKIP
      ...                       {"ADF": "data/vifb/fused/ADF",
      ...                        "CBF": "data/vifb/fused/CBF"},
      ...                       convention="vifb", progress=False)
      >>> ev.comparison.best["Entropy"]  # doctest: +SKIP
    """
    conv = convention_for(convention, mi_base)
    names = _resolve(metrics, conv)
    if not fused:
        raise ValueError("no methods to evaluate")
    pair_problems: list[tuple[Path, str]] = []
    if isinstance(pairs, (str, os.PathLike)):
        pairs, pair_problems = find_pairs(pairs)
    results = _score_all(list(pairs), {str(m): Path(d) for m, d in fused.items()}, conv, names,
                         progress)
    for r in results.values():
        r["skipped"] = list(pair_problems) + r["skipped"]
    return Evaluation(results=results, comparison=compare(results, conv))


# ---------------------------------------------------------------------------
# Formatting.

def format_table(result: dict, *, digits: int = 5) -> str:
    """The per-pair table and mean row of :func:`evaluate_pairs`' result, as text."""
    names = result["metrics"]
    rows = [[name] + [f"{vals[n]:.{digits}f}" for n in names] for name, vals in result["per_pair"].items()]
    footer = []
    if result["mean"]:
        footer = [[f"mean ({len(result['per_pair'])})"] + [f"{result['mean'][n]:.{digits}f}" for n in names]]
    return tables.format_text(["pair"] + list(names), rows, footer=footer)


def print_table(result: dict, *, file=None, digits: int = 5) -> None:
    """Prints :func:`format_table` (convention and its caveat in the first line)."""
    file = sys.stdout if file is None else file
    note = result.get("note")
    if note is None:  # a result from before notes were recorded
        note = note_for(M.get_convention(result["convention"]), result["metrics"])
    print(convention_line(result["convention"], note), file=file)
    print(format_table(result, digits=digits), file=file)


def method_dirs(dirs: Sequence[str]) -> dict[str, Path]:
    """``{method name: folder}``: each folder's own name is its method's name.

    Raises:
      JaxfuseError: two folders with the same name (naming both).
    """
    out: dict[str, Path] = {}
    for d in dirs:
        name = os.path.basename(os.path.normpath(os.path.abspath(d)))
        if name in out:
            raise JaxfuseError(d, f"method name {name!r} is also the name of {out[name]}; "
                               "each method's folder needs its own name")
        out[name] = Path(d)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m jaxfuse.evaluate``: the ``jaxfuse evaluate`` command (:mod:`jaxfuse.commands.evaluate`)."""
    from jaxfuse.cli import run_main
    from jaxfuse.commands import evaluate as command
    return run_main(command.main, argv)


if __name__ == "__main__":
    sys.exit(main())
