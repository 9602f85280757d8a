"""Writing evaluation results: one method's scores as JSON or CSV, a whole comparison into a folder.

Used by :mod:`jaxfuse.evaluate` (which re-exports these names) and the
``jaxfuse evaluate`` command. Every file is written atomically, and never
over an existing one unless ``overwrite``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from jaxfuse import tables
from jaxfuse.comparison import COMPARISON_FILES, comparison_chart, comparison_csv, comparison_markdown
from jaxfuse.errors import JaxfuseError
from jaxfuse.io import atomic_write

if TYPE_CHECKING:
    from jaxfuse.evaluate import Evaluation

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
        raise JaxfuseError(path, "exists", hint="overwrite")
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
                raise JaxfuseError(d, "is not a folder ({out_dir} with several methods is a folder)",
                                   settings=("out_dir",))
            break
    files = output_files(out_dir, methods)
    if not overwrite:
        existing = [f for f in files if f.exists() or f.is_symlink()]
        if existing:
            more = f" (and {len(existing) - 1} more output file(s))" if len(existing) > 1 else ""
            raise JaxfuseError(existing[0], f"exists{more}", hint="overwrite")
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
