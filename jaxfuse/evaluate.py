"""Scores fused images of one or several methods against their infrared/visible sources.

    python -m jaxfuse.evaluate --pairs DIR --fused METHOD_DIR [METHOD_DIR ...] \\
        [--convention paper|standard|cddfuse|vifb] [--metrics NAME ...] \\
        [--mi-base bits|nats] [--out FILE.json|FILE.csv|OUTDIR] [--overwrite] \\
        [--no-progress]

``DIR`` holds the source pairs in a layout :func:`jaxfuse.io.find_pairs`
understands (``ir/`` + ``vis/``, or ``IR<k>``/``VIS<k>`` files). Each
``METHOD_DIR`` holds one method's fused images: the fused image of pair
``name`` is the file whose stem is ``name`` (any image extension), and the
folder's name is the method's name (two folders with the same name are an
error). The convention (:mod:`jaxfuse.metrics.conventions`) fixes the
metrics *and* how image files are read: ``paper`` (the default: Res2NetFuse
Table IV's columns with the reference kit's values, its MI is 2·EN) and
``standard`` (textbook definitions, real MI in bits, or nats with
``--mi-base nats``) read float BT.601 grey; ``cddfuse`` reads like OpenCV's
grey conversion; ``vifb`` keeps colour as MATLAB's ``imread`` does, so a
colour visible image beside a grey infrared one is normal there (sizes are
compared on height and width only). See :mod:`jaxfuse.metrics`.

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
file unless ``--overwrite`` (checked before any work). Problems with single
pairs (unreadable image, missing fused image, size mismatch) are printed as
``error: <file>: <problem>``; the other pairs are still scored, a summary of
what was skipped ends the run, and the exit status is then 2. Any other
problem is one ``error: <path>: <problem>`` line and exit status 2.

Examples. The reference means of RFN-Nest's published images:

    python -m jaxfuse.evaluate --pairs ../shared/data/tno21 \\
        --fused ../shared/data/tno21_fused/rfnnest --convention paper

The VIFB development set, all 25 published methods, VIFB's own metrics:

    python -m jaxfuse.evaluate --pairs ../shared/data/vifb_dev \\
        --fused ../shared/data/vifb_dev/fused/* --convention vifb --out runs/vifb
"""

from __future__ import annotations

import argparse
import io as _io
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from jaxfuse import metrics as M
from jaxfuse import tables
from jaxfuse.errors import JaxfuseError
from jaxfuse.io import IMAGE_SUFFIXES, Pair, atomic_write, find_pairs
from jaxfuse.metrics.conventions import Convention

COMPARISON_FILES = ("comparison.md", "comparison.csv", "comparison.png")
"""The files a comparison writes into the output folder."""


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
        raise ValueError(f"--mi-base is only valid with --convention standard, not {convention!r}")
    try:
        conv = M.get_convention(convention)
    except ImportError as e:  # a convention whose module (or a package it needs) is missing
        raise ValueError(f"convention {convention!r} is not available here ({e})") from None
    if mi_base is None:
        return conv
    from jaxfuse.metrics import standard
    return standard.make(mi_base=mi_base)


def _note(conv: Convention, names: Sequence[str]) -> str:
    # The paper convention's note is about its MI; say it only where MI is shown.
    if conv.name == "paper" and "MI" not in names:
        return ""
    return conv.note


def _resolve(metrics: Sequence[str] | None, convention) -> list[str]:
    return convention_for(convention).resolve_all(None if not metrics else tuple(metrics))


def _hw(a) -> str:
    return f"{a.shape[1]}x{a.shape[0]}"


def _load(conv: Convention, path: Path):
    try:
        return conv.load(path)
    except JaxfuseError:
        raise
    except (OSError, ValueError) as e:
        raise JaxfuseError(path, f"unreadable image ({e})") from None


def _pair_scorer(conv: Convention):
    """``make(ir, vis) -> scorer`` with ``scorer.score(fused, names) -> {name: value}``, or None.

    A convention may offer a scorer that keeps the work that depends on the
    sources only (histograms, filtered sources) for every fused image of the
    pair; the values are those of its functions. A ``pair_scorer`` attribute
    of the convention wins; VIFB's :class:`~jaxfuse.metrics.vifb.VifbPair`
    is used for the registered ``vifb`` convention.
    """
    make = getattr(conv, "pair_scorer", None)
    if make is not None:
        return make
    if conv.name == "vifb" and conv is M.get_convention("vifb"):
        from jaxfuse.metrics.vifb import VifbPair
        return VifbPair
    return None


def _score_all(pairs: Sequence[Pair], fused: Mapping[str, Path], conv: Convention,
               names: list[str], progress: bool) -> dict[str, dict]:
    """Scores every method; returns ``{method: result dict}`` in ``fused``'s order.

    Pair by pair: the sources are read once, then each method's fused image.
    """
    found, skipped = {}, {}
    for method, d in fused.items():  # every folder is checked before any scoring
        found[method], skipped[method] = find_fused(d, [p.name for p in pairs])
    per_pair: dict[str, dict[str, dict[str, float]]] = {m: {} for m in fused}
    make_scorer = _pair_scorer(conv)
    total = sum(len(f) for f in found.values())
    bar = None
    if progress and total:
        from tqdm import tqdm
        bar = tqdm(total=total, desc="scoring", unit="image", file=sys.stderr, leave=False)
    try:
        for pair in pairs:
            users = [m for m in fused if pair.name in found[m]]
            if not users:
                continue
            source_problem = None
            try:
                ir = _load(conv, pair.ir)
                vis = _load(conv, pair.vis)
                if ir.shape[:2] != vis.shape[:2]:
                    raise JaxfuseError(pair.vis, f"size {_hw(vis)} does not match infrared "
                                       f"{pair.ir.name} ({_hw(ir)}); pair skipped")
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
                if bar is not None:
                    bar.set_postfix_str(f"{method} {pair.name}" if len(fused) > 1 else pair.name)
                if source_problem is not None:
                    skipped[method].append(source_problem)
                else:
                    try:
                        img = _load(conv, fused_path)
                        if img.shape[:2] != ir.shape[:2]:
                            raise JaxfuseError(fused_path, f"size {_hw(img)} does not match "
                                               f"sources ({_hw(ir)}); pair skipped")
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
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    note = _note(conv, names)
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
class Comparison:
    """Methods side by side: their means per metric, the best and the ranks.

    Attributes:
      convention: the convention's name.
      note: its caveat for these metrics ("" if none).
      metrics: metric names, in column order.
      methods: the compared methods (those with at least one scored pair),
        in the order given.
      means: ``{method: {metric: mean over its scored pairs}}``.
      pairs: ``{method: number of scored pairs}``.
      higher_is_better: ``{metric: bool}``.
      best: ``{metric: [methods with the best mean]}`` (several on a tie;
        NaN is never best).
      ranks: ``{method: {metric: rank}}``, 1 = best; tied methods share the
        mean of their places (2.5); NaN ranks last.
      mean_rank: ``{method: mean of its ranks over the metrics}``.
      best_mean_rank: the methods with the lowest mean rank.
      same_pairs: whether every method was scored on the same pairs (if
        not, the means are over different images).
    """

    convention: str
    note: str
    metrics: list[str]
    methods: list[str]
    means: dict[str, dict[str, float]]
    pairs: dict[str, int]
    higher_is_better: dict[str, bool]
    best: dict[str, list[str]]
    ranks: dict[str, dict[str, float]]
    mean_rank: dict[str, float]
    best_mean_rank: list[str]
    same_pairs: bool


def _rank(values: Mapping[str, float], higher_is_better: bool) -> tuple[dict[str, float], list[str]]:
    """Average ranks (1 = best) and the best keys; NaN ranks last and is never best."""
    def key(m):
        v = values[m]
        if math.isnan(v):
            return math.inf
        return -v if higher_is_better else v

    order = sorted(values, key=key)
    ranks: dict[str, float] = {}
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and key(order[j + 1]) == key(order[i]):
            j += 1
        for m in order[i:j + 1]:
            ranks[m] = (i + j) / 2 + 1
        i = j + 1
    best = [m for m in values if order and key(m) == key(order[0]) and key(m) != math.inf]
    return ranks, best


def compare(results: Mapping[str, dict], convention: str | Convention) -> Comparison:
    """The :class:`Comparison` of per-method results.

    Args:
      results: ``{method: result}``, each as :func:`evaluate_pairs` returns
        it, all with the same metrics; methods with no scored pair are left
        out.
      convention: the convention they were scored with (for which metrics
        are better when lower).

    Raises:
      ValueError: the results have different metrics.
    """
    conv = convention_for(convention)
    results = dict(results)
    metric_sets = {tuple(r["metrics"]) for r in results.values()}
    if len(metric_sets) > 1:
        raise ValueError(f"results have different metrics: {sorted(metric_sets)}")
    names = list(next(iter(metric_sets))) if metric_sets else []
    methods = [m for m, r in results.items() if r["per_pair"]]
    means = {m: dict(results[m]["mean"]) for m in methods}
    hib = {n: conv.higher_is_better(n) for n in names}
    ranks: dict[str, dict[str, float]] = {m: {} for m in methods}
    best = {}
    for n in names:
        r, b = _rank({m: means[m][n] for m in methods}, hib[n])
        best[n] = b
        for m in methods:
            ranks[m][n] = r[m]
    mean_rank = {m: (math.fsum(ranks[m].values()) / len(names) if names else math.nan)
                 for m in methods}
    lowest = min(mean_rank.values(), default=math.nan)
    best_mean_rank = [m for m in methods if mean_rank[m] == lowest]
    pair_sets = {frozenset(results[m]["per_pair"]) for m in methods}
    note = next((r.get("note", "") for r in results.values()), _note(conv, names))
    return Comparison(convention=conv.name, note=note, metrics=names, methods=methods,
                      means=means, pairs={m: len(results[m]["per_pair"]) for m in methods},
                      higher_is_better=hib, best=best, ranks=ranks, mean_rank=mean_rank,
                      best_mean_rank=best_mean_rank, same_pairs=len(pair_sets) <= 1)


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
      >>> ev = evaluate_methods("../shared/data/vifb_dev",  # doctest: +SKIP
      ...                       {"ADF": "../shared/data/vifb_dev/fused/ADF",
      ...                        "CBF": "../shared/data/vifb_dev/fused/CBF"},
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


def _convention_line(convention: str, note: str) -> str:
    return f"convention: {convention}" + (f" ({note})" if note else "")


def print_table(result: dict, *, file=None, digits: int = 5) -> None:
    """Prints :func:`format_table` (convention and its caveat in the first line)."""
    file = sys.stdout if file is None else file
    note = result.get("note")
    if note is None:  # a result from before notes were recorded
        note = _note(M.get_convention(result["convention"]), result["metrics"])
    print(_convention_line(result["convention"], note), file=file)
    print(format_table(result, digits=digits), file=file)


def _fmt_rank(r: float) -> str:
    return f"{r:g}"


def _comparison_rows(comp: Comparison, digits: int, mark) -> tuple[list[str], list[list[str]]]:
    header = ["method", "pairs"] + comp.metrics + ["mean rank"]
    rows = []
    for m in comp.methods:
        cells = [m, str(comp.pairs[m])]
        for n in comp.metrics:
            cells.append(mark(f"{comp.means[m][n]:.{digits}f}", m in comp.best[n]))
        cells.append(mark(f"{comp.mean_rank[m]:.2f}", m in comp.best_mean_rank))
        rows.append(cells)
    return header, rows


def _rank_rows(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    header = ["method"] + comp.metrics + ["mean rank"]
    rows = [[m] + [_fmt_rank(comp.ranks[m][n]) for n in comp.metrics] + [f"{comp.mean_rank[m]:.2f}"]
            for m in comp.methods]
    return header, rows


def _lower_names(comp: Comparison) -> list[str]:
    return [n for n in comp.metrics if not comp.higher_is_better[n]]


def format_comparison(comp: Comparison, *, digits: int = 4) -> str:
    """The comparison as plain text: means (best marked ``*``), then ranks."""
    header, rows = _comparison_rows(comp, digits, lambda s, b: s + ("*" if b else " "))
    header = header[:2] + [h + " " for h in header[2:]]  # room for the mark
    lower = _lower_names(comp)
    legend = "* best in its column; higher is better" + (
        f" except {', '.join(lower)} (lower is better)" if lower else "")
    rheader, rrows = _rank_rows(comp)
    out = [tables.format_text(header, rows), legend]
    if not comp.same_pairs:
        out.append("note: the methods were scored on different pairs (see the pairs column)")
    out += ["", "ranks (1 = best; ties share the mean of their places)",
            tables.format_text(rheader, rrows)]
    return "\n".join(out)


def print_comparison(comp: Comparison, *, file=None, digits: int = 4) -> None:
    """Prints :func:`format_comparison` under a line naming the convention."""
    file = sys.stdout if file is None else file
    print(_convention_line(comp.convention, comp.note), file=file)
    print(format_comparison(comp, digits=digits), file=file)


def comparison_markdown(comp: Comparison, *, digits: int = 4, title: str | None = None) -> str:
    """The comparison as a Markdown document: means (best in bold), then ranks."""
    header, rows = _comparison_rows(comp, digits, lambda s, b: f"**{s}**" if b else s)
    header = header[:2] + [n + (" ↑" if comp.higher_is_better[n] else " ↓") for n in comp.metrics] \
        + ["mean rank ↓"]
    align = "lr" + "r" * (len(header) - 2)
    rheader, rrows = _rank_rows(comp)
    lines = [f"# {title or 'Comparison'}", "",
             _convention_line(comp.convention, comp.note) + ".",
             "Means over each method's scored pairs; **bold**: best in its column; "
             "↑ higher is better, ↓ lower is better.", ""]
    if not comp.same_pairs:
        lines += ["Note: the methods were scored on different pairs (see the pairs column).", ""]
    lines += [tables.format_markdown(header, rows, align=align), "",
              "## Ranks", "", "1 = best; tied methods share the mean of their places.", "",
              tables.format_markdown(rheader, rrows, align="l" + "r" * (len(rheader) - 1)), ""]
    return "\n".join(lines)


def comparison_csv(comp: Comparison) -> str:
    """The comparison as CSV: one row per method, then a ``best`` row.

    Columns: ``method``, ``pairs``, the metric means, ``rank_<metric>`` per
    metric, ``mean_rank``. The ``best`` row names the best method(s) of each
    metric column and of ``mean_rank`` (ties joined by ``;``).
    """
    header = (["method", "pairs"] + comp.metrics + [f"rank_{n}" for n in comp.metrics]
              + ["mean_rank"])
    rows = []
    for m in comp.methods:
        rows.append([m, comp.pairs[m]] + [float(comp.means[m][n]) for n in comp.metrics]
                    + [float(comp.ranks[m][n]) for n in comp.metrics] + [float(comp.mean_rank[m])])
    rows.append(["best", None] + [";".join(comp.best[n]) for n in comp.metrics]
                + [None] * len(comp.metrics) + [";".join(comp.best_mean_rank)])
    return tables.format_csv(header, rows)


def comparison_chart(comp: Comparison, *, columns: int = 5, dpi: int = 100) -> bytes:
    """A PNG of the means: one bar chart panel per metric, the best bar highlighted.

    Methods are on the vertical axis (same order in every panel, named in the
    first column), the metric's mean on the horizontal one; each panel's
    title gives the metric and whether higher (↑) or lower (↓) is better, and
    the best bar carries its value.

    Returns:
      The PNG file's bytes.
    """
    from matplotlib.figure import Figure

    n = max(len(comp.metrics), 1)
    cols = max(1, min(columns, n))
    rows = math.ceil(n / cols)
    k = max(len(comp.methods), 1)
    label_w = 0.08 * max((len(m) for m in comp.methods), default=4) + 0.4
    panel_h = 0.24 * k + 0.9
    fig = Figure(figsize=(cols * 3.2 + label_w, rows * panel_h + 0.6), dpi=dpi, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    ys = list(range(len(comp.methods)))
    for i, ax in enumerate(axes.flat):
        if i >= len(comp.metrics):
            ax.set_visible(False)
            continue
        name = comp.metrics[i]
        vals = [comp.means[m][name] for m in comp.methods]
        colors = ["#d95f02" if m in comp.best[name] else "#7f9fbf" for m in comp.methods]
        ax.barh(ys, vals, color=colors, height=0.7)
        ax.set_title(f"{name} {'↑' if comp.higher_is_better[name] else '↓'}", fontsize=10)
        ax.tick_params(axis="x", labelsize=7)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
        for y, v, m in zip(ys, vals, comp.methods):
            if m in comp.best[name] and math.isfinite(v):
                ax.annotate(f"{v:.4g}", (v, y), xytext=(2, 0), textcoords="offset points",
                            va="center", ha="left" if v >= 0 else "right", fontsize=7)
        ax.margins(x=0.15)
    axes[0][0].set_yticks(ys, comp.methods)
    axes[0][0].set_ylim(len(ys) - 0.5, -0.5)  # first method on top (the y axis is shared)
    fig.suptitle(_convention_line(comp.convention, comp.note)
                 + ("" if comp.same_pairs else "  (methods scored on different pairs)"), fontsize=11)
    buf = _io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# ---------------------------------------------------------------------------
# Files.

def to_json(result: dict) -> str:
    skipped = [{"path": str(p), "problem": msg} for p, msg in result.get("skipped", [])]
    doc = {"per_pair": result["per_pair"], "mean": result["mean"],
           "convention": result["convention"], "skipped": skipped}
    if result.get("note"):
        doc["note"] = result["note"]
    return json.dumps(doc, indent=1) + "\n"


def to_csv(result: dict) -> str:
    names = result["metrics"]
    rows = [[name] + [float(vals[n]) for n in names] for name, vals in result["per_pair"].items()]
    if result["mean"]:
        rows.append(["mean"] + [float(result["mean"][n]) for n in names])
    return tables.format_csv(["pair"] + list(names), rows)


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


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
    _write_text(path, to_json(result) if suffix == ".json" else to_csv(result))
    return path


def output_files(out_dir, methods: Iterable[str]) -> list[Path]:
    """The files :func:`write_evaluation` writes into ``out_dir`` for ``methods``."""
    out_dir = Path(out_dir)
    files = []
    for m in methods:
        files += [out_dir / f"{m}.json", out_dir / f"{m}.csv"]
    return files + [out_dir / f for f in COMPARISON_FILES]


def check_output_dir(out_dir, methods: Iterable[str], *, overwrite: bool = False) -> list[Path]:
    """Checks, before any work, that :func:`write_evaluation` can write into ``out_dir``.

    Returns:
      The files it will write.

    Raises:
      JaxfuseError: ``out_dir`` (or a folder above it) is a file, a method's
        name clashes with the comparison files, or a file exists and
        ``overwrite`` is False.
    """
    out_dir = Path(out_dir)
    methods = list(methods)
    for m in methods:
        if f"{m}.csv" in COMPARISON_FILES:
            raise JaxfuseError(out_dir / f"{m}.csv", f"method name {m!r} clashes with the "
                               "comparison files; rename its folder")
    for d in [out_dir, *out_dir.parents]:
        if d.exists():
            if not d.is_dir():
                raise JaxfuseError(d, "is not a folder (--out with several methods is a folder)")
            break
    files = output_files(out_dir, methods)
    if not overwrite:
        existing = [f for f in files if f.exists() or f.is_symlink()]
        if existing:
            more = f" (and {len(existing) - 1} more output file(s))" if len(existing) > 1 else ""
            raise JaxfuseError(existing[0], f"exists{more}; pass --overwrite to replace it")
    return files


def write_evaluation(ev: Evaluation, out_dir, *, overwrite: bool = False,
                     title: str | None = None) -> list[Path]:
    """Writes per-method JSON/CSV and the comparison files into ``out_dir``, atomically.

    Methods with no scored pair still get their JSON (its ``skipped`` says
    why) and a CSV with the header only; the comparison leaves them out.

    Args:
      ev: from :func:`evaluate_methods`.
      out_dir: the folder; created if missing.
      overwrite: replace existing files.
      title: the Markdown heading (default ``Comparison``).

    Returns:
      The written files.

    Raises:
      JaxfuseError: as :func:`check_output_dir`.
    """
    out_dir = Path(out_dir)
    check_output_dir(out_dir, ev.results, overwrite=overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for m, r in ev.results.items():
        for suffix, text in ((".json", to_json(r)), (".csv", to_csv(r))):
            _write_text(out_dir / f"{m}{suffix}", text)
            written.append(out_dir / f"{m}{suffix}")
    comp = ev.comparison
    _write_text(out_dir / "comparison.md", comparison_markdown(comp, title=title))
    _write_text(out_dir / "comparison.csv", comparison_csv(comp))
    png = comparison_chart(comp)
    atomic_write(out_dir / "comparison.png", lambda f: f.write(png))
    written += [out_dir / f for f in COMPARISON_FILES]
    return written


# ---------------------------------------------------------------------------
# The command line.

class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        print(f"error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m jaxfuse.evaluate",
                description="Score fused infrared/visible images of one or several methods with "
                            "one evaluator's metrics (paper, standard, cddfuse or vifb).")
    p.add_argument("--pairs", required=True,
                   help="folder of source pairs (ir/ + vis/, or IR<k>/VIS<k> files)")
    p.add_argument("--fused", required=True, nargs="+", metavar="METHOD_DIR",
                   help="folder(s) of fused images named like the pairs, one per method; "
                        "the folder's name is the method's name")
    p.add_argument("--metrics", nargs="+", default=None, metavar="NAME",
                   help="metrics to compute (space- or comma-separated, case-insensitive); "
                        "default: the convention's set")
    p.add_argument("--convention", choices=M.CONVENTIONS, default="paper",
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
    from jaxfuse import xla
    xla.enable_compilation_cache()
    metrics = None
    if args.metrics:
        metrics = [m for item in args.metrics for m in item.split(",") if m.strip()]
    try:
        try:
            conv = convention_for(args.convention, args.mi_base)
            names = _resolve(metrics, conv)
        except ValueError as e:
            raise JaxfuseError(None, str(e)) from None
        methods = method_dirs(args.fused)
        many = len(methods) > 1 or (args.out is not None and _is_dir_arg(args.out))
        out = Path(args.out) if args.out else None
        if out is not None and not many:  # fail before the work, not after it
            if out.suffix.lower() not in (".json", ".csv"):
                raise JaxfuseError(out, "output must end in .json or .csv (or be a folder)")
            if out.exists() and not args.overwrite:
                raise JaxfuseError(out, "exists; pass --overwrite to replace it")
            if not out.parent.is_dir():
                raise JaxfuseError(out.parent, "output folder does not exist")
        if out is not None and many:
            if out.suffix.lower() in (".json", ".csv") and not out.is_dir():
                raise JaxfuseError(out, "with several methods --out is a folder, not a "
                                   f"{out.suffix} file")
            check_output_dir(out, methods, overwrite=args.overwrite)
        pairs, pair_problems = find_pairs(args.pairs)
        ev = evaluate_methods(pairs, methods, convention=conv, metrics=names,
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
    for r in ev.results.values():
        r["skipped"] = list(pair_problems) + r["skipped"]
    if not many:
        return _report_one(args, next(iter(ev.results.values())), out)
    return _report_many(args, ev, out)


def _report_one(args, result: dict, out: Path | None) -> int:
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
        print(f"error: {args.fused[0]}: no pair could be scored ({n_bad} problem(s) above)",
              file=sys.stderr)
        return 2
    if n_bad:
        print(f"summary: scored {n_ok} pair(s); skipped {n_bad} item(s):", file=sys.stderr)
        for path, problem in result["skipped"]:
            print(f"  {path}: {problem}", file=sys.stderr)
        status = 2
    return status


def _report_many(args, ev: Evaluation, out: Path | None) -> int:
    problems = _unique(p for r in ev.results.values() for p in r["skipped"])
    for path, problem in problems:
        print(f"error: {path}: {problem}", file=sys.stderr)
    dirs = method_dirs(args.fused)
    empty = [m for m, r in ev.results.items() if not r["per_pair"]]
    for m in empty:
        print(f"error: {dirs[m]}: no pair could be scored; method left out of the comparison",
              file=sys.stderr)
    comp = ev.comparison
    if not comp.methods:
        print(f"error: {args.pairs}: no pair could be scored for any method "
              f"({len(problems)} problem(s) above)", file=sys.stderr)
        return 2
    print_comparison(comp)
    status = 0
    if out is not None:
        try:
            written = write_evaluation(ev, out, overwrite=args.overwrite,
                                       title=f"Comparison on {Path(args.pairs).name or args.pairs}")
            print(f"wrote {len(written)} file(s) into {out}", file=sys.stderr)
        except (JaxfuseError, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
            status = 2
    n_img = sum(len(r["per_pair"]) for r in ev.results.values())
    if problems or empty:
        print(f"summary: scored {n_img} image(s) of {len(comp.methods)} method(s); skipped "
              f"{len(problems)} item(s)" + (f"; {len(empty)} method(s) with nothing scored"
                                             if empty else "") + (":" if problems else ""),
              file=sys.stderr)
        for path, problem in problems:
            print(f"  {path}: {problem}", file=sys.stderr)
        status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
