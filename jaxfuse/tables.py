"""Small tables as aligned text, Markdown or CSV.

A table is a header (a list of column titles) and rows (lists of cells, as
long as the header). The caller formats numbers for text and Markdown (the
cells are printed with ``str``); :func:`format_csv` writes floats with
``repr`` so that they read back exactly.

    >>> print(format_text(["pair", "EN"], [["a", "6.5"], ["b", "7.0"]], footer=[["mean", "6.75"]]))
    pair    EN
    ----  ----
    a      6.5
    b      7.0
    ----  ----
    mean  6.75
"""

from __future__ import annotations

import csv
import io
from typing import Any, Sequence

Row = Sequence[Any]


def _check(header: Row, rows: Sequence[Row]) -> None:
    for r in rows:
        if len(r) != len(header):
            raise ValueError(f"table row has {len(r)} cells, header has {len(header)}: {list(r)!r}")


def _aligns(header: Row, align: str | None) -> str:
    """``align``: one of ``l``/``r``/``c`` per column; default: first left, others right."""
    if align is None:
        return "l" + "r" * (len(header) - 1)
    if len(align) != len(header) or set(align) - set("lrc"):
        raise ValueError(f"align must be one of l/r/c per column ({len(header)}), got {align!r}")
    return align


def format_text(header: Row, rows: Sequence[Row], *, footer: Sequence[Row] = (),
                align: str | None = None, sep: str = "  ") -> str:
    """An aligned plain-text table.

    Args:
      header: column titles.
      rows: the body rows.
      footer: rows printed below a second rule (a mean row, say).
      align: one letter per column, ``l`` (left), ``r`` (right) or ``c``
        (centre); default: the first column left, the others right.
      sep: the space between columns.

    Returns:
      The table, lines joined by ``\\n`` (no trailing newline): the header, a
      rule of dashes, the rows and, if any, a rule and the footer rows.
    """
    _check(header, list(rows) + list(footer))
    aligns = _aligns(header, align)
    cells = [[str(c) for c in r] for r in [header, *rows, *footer]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r):
        out = []
        for c, w, a in zip(r, widths, aligns):
            out.append(c.ljust(w) if a == "l" else c.rjust(w) if a == "r" else c.center(w))
        return sep.join(out).rstrip()

    rule = sep.join("-" * w for w in widths)
    lines = [line(cells[0]), rule] + [line(r) for r in cells[1:1 + len(rows)]]
    if footer:
        lines += [rule] + [line(r) for r in cells[1 + len(rows):]]
    return "\n".join(lines)


def _md_cell(c: Any) -> str:
    return str(c).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def format_markdown(header: Row, rows: Sequence[Row], *, align: str | None = None,
                    marks: bool = True) -> str:
    """A GitHub-flavoured Markdown table (``|`` in cells escaped).

    Args:
      header: column titles.
      rows: the rows.
      align: as in :func:`format_text`.
      marks: False writes the rule under the header as a bare ``|---|---|``,
        without alignment marks (the renderer's default alignment; ``align``
        is then ignored).

    Returns:
      The table, lines joined by ``\\n`` (no trailing newline).
    """
    _check(header, rows)
    if marks:
        signs = {"l": ":---", "r": "---:", "c": ":---:"}
        rule = "| " + " | ".join(signs[a] for a in _aligns(header, align)) + " |"
    else:
        rule = "|" + "---|" * len(header)
    lines = ["| " + " | ".join(_md_cell(c) for c in header) + " |", rule]
    lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _csv_cell(c: Any) -> str:
    if isinstance(c, bool):
        return str(c).lower()
    if isinstance(c, float):
        return repr(c)
    return "" if c is None else str(c)


def format_csv(header: Row, rows: Sequence[Row]) -> str:
    """CSV text (``\\n`` line ends, quoting where needed, floats as ``repr``).

    Args:
      header: column titles.
      rows: the rows; ``None`` becomes an empty cell, booleans ``true``/``false``.

    Returns:
      The CSV text, ending in a newline.
    """
    _check(header, rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([_csv_cell(c) for c in header])
    for r in rows:
        w.writerow([_csv_cell(c) for c in r])
    return buf.getvalue()


__all__ = ["format_text", "format_markdown", "format_csv"]
