"""Where jaxfuse's shipped and cached things are: the one place that knows their paths.

* The shipped checkpoints live in ``checkpoints/`` at the top of the source
  tree; the wheel carries that folder as the package data of
  ``jaxfuse._checkpoints`` (``pyproject.toml`` maps one onto the other), and
  :func:`shipped_checkpoint` finds them there. In a source checkout or an
  editable install (whose import hook does not import a data folder without
  ``__init__.py``) it finds the same folder as ``checkpoints/`` beside the
  package, where ``pyproject.toml`` is.
* The persistent compilation cache of the commands is
  ``~/.cache/jaxfuse/xla`` (``$XDG_CACHE_HOME`` respected).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from jaxfuse.errors import JaxfuseError

CHECKPOINTS_PACKAGE = "jaxfuse._checkpoints"
DEFAULT_MODEL = "res2netfuse"


def _source_tree_checkpoints() -> Path | None:
    """``checkpoints/`` beside the package in a source checkout (jaxfuse imported from it)."""
    top = Path(__file__).resolve().parent.parent
    if (top / "pyproject.toml").is_file() and (top / "checkpoints").is_dir():
        return top / "checkpoints"
    return None


def checkpoints_dir() -> Path | None:
    """The folder of the shipped checkpoints, or None if this installation has none."""
    try:
        spec = importlib.util.find_spec(CHECKPOINTS_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    for loc in (spec.submodule_search_locations or []) if spec is not None else []:
        if Path(loc).is_dir():
            return Path(loc)
    return _source_tree_checkpoints()


def shipped_models() -> list[str]:
    """The names of the shipped checkpoints (``["res2netfuse"]``)."""
    d = checkpoints_dir()
    if d is None:
        return []
    return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def shipped_checkpoint(name: str = DEFAULT_MODEL) -> Path:
    """The checkpoint folder of the shipped model ``name``.

    Raises:
      JaxfuseError: this installation ships no such checkpoint (the message
        says which it has); the hint names the checkpoint setting.
    """
    d = checkpoints_dir()
    path = d / name if d is not None else None
    if path is None or not path.is_dir():
        have = shipped_models()
        raise JaxfuseError(path or name, "no shipped checkpoint of this name in this installation "
                           f"({'it has ' + ', '.join(have) if have else 'it has none'})",
                           hint="train one and pass it as {checkpoint}", settings=("checkpoint",))
    return path


def cache_dir() -> Path:
    """The commands' persistent compilation cache: ``~/.cache/jaxfuse/xla``.

    ``$XDG_CACHE_HOME`` replaces ``~/.cache``; ``JAX_COMPILATION_CACHE_DIR``
    (read by :func:`jaxfuse.xla.enable_compilation_cache`) wins over both.
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "jaxfuse" / "xla"
