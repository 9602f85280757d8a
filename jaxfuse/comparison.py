"""Methods side by side: their means per metric, the best, the ranks, as text, Markdown, CSV and a chart.

:func:`compare` makes a :class:`Comparison` from per-method results (as
:func:`jaxfuse.evaluate.evaluate_pairs` returns them);
:func:`format_comparison`, :func:`comparison_markdown`,
:func:`comparison_csv` and :func:`comparison_chart` present it. Ranks: 1 is
best (largest value, or smallest where the convention says lower is better);
tied methods share the mean of their places; NaN ranks last and is never
best.
"""

from __future__ import annotations

import io as _io
import math
import sys
from dataclasses import dataclass
from typing import Mapping, Sequence

from jaxfuse import metrics as M
from jaxfuse import tables
from jaxfuse.metrics.conventions import Convention

COMPARISON_FILES = ("comparison.md", "comparison.csv", "comparison.png")
"""The files a comparison writes into the output folder."""


def get_convention(convention: str | Convention) -> Convention:
    """``convention`` itself, or the registered convention of that name.

    Raises:
      ValueError: unknown name, or a convention whose module (or a package it
        needs) is missing.
    """
    if isinstance(convention, Convention):
        return convention
    try:
        return M.get_convention(convention)
    except ImportError as e:  # a convention whose module (or a package it needs) is missing
        raise ValueError(f"convention {convention!r} is not available here ({e})") from None


def note_for(conv: Convention, names: Sequence[str]) -> str:
    """The convention's caveat for these metrics ("" if none)."""
    # The paper convention's note is about its MI; say it only where MI is shown.
    if conv.name == "paper" and "MI" not in names:
        return ""
    return conv.note


def convention_line(convention: str, note: str) -> str:
    """``convention: NAME (note)``, the first line of every printed table."""
    return f"convention: {convention}" + (f" ({note})" if note else "")


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
      results: ``{method: result}``, each as :func:`jaxfuse.evaluate.evaluate_pairs` returns
        it, all with the same metrics; methods with no scored pair are left
        out.
      convention: the convention they were scored with (for which metrics
        are better when lower).

    Raises:
      ValueError: the results have different metrics.
    """
    conv = get_convention(convention)
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
    note = next((r.get("note", "") for r in results.values()), note_for(conv, names))
    return Comparison(convention=conv.name, note=note, metrics=names, methods=methods,
                      means=means, pairs={m: len(results[m]["per_pair"]) for m in methods},
                      higher_is_better=hib, best=best, ranks=ranks, mean_rank=mean_rank,
                      best_mean_rank=best_mean_rank, same_pairs=len(pair_sets) <= 1)


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
    print(convention_line(comp.convention, comp.note), file=file)
    print(format_comparison(comp, digits=digits), file=file)


def comparison_markdown(comp: Comparison, *, digits: int = 4, title: str | None = None) -> str:
    """The comparison as a Markdown document: means (best in bold), then ranks."""
    header, rows = _comparison_rows(comp, digits, lambda s, b: f"**{s}**" if b else s)
    header = header[:2] + [n + (" ↑" if comp.higher_is_better[n] else " ↓") for n in comp.metrics] \
        + ["mean rank ↓"]
    align = "lr" + "r" * (len(header) - 2)
    rheader, rrows = _rank_rows(comp)
    lines = [f"# {title or 'Comparison'}", "",
             convention_line(comp.convention, comp.note) + ".",
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
    fig.suptitle(convention_line(comp.convention, comp.note)
                 + ("" if comp.same_pairs else "  (methods scored on different pairs)"), fontsize=11)
    buf = _io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


__all__ = ["COMPARISON_FILES", "Comparison", "compare", "comparison_chart", "comparison_csv",
           "comparison_markdown", "convention_line", "format_comparison", "get_convention",
           "note_for", "print_comparison"]
