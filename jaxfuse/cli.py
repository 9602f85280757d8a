"""Shared command-line plumbing: one-line errors, exit codes, progress bars.

Every command (``jaxfuse SUB``, ``python train.py``, ``python fuse.py``,
``python -m jaxfuse.evaluate``, ``python -m jaxfuse.convert``) runs its
``main`` through :func:`run_main` and exits with one of these statuses:

====  ==================================================================
 0    everything asked for was done (outputs that already existed and were
      left alone, as asked, count as done)
 1    an unexpected failure (a bug or an environment problem jaxfuse does
      not know); one line ``error: unexpected TYPE: message``, and
      ``JAXFUSE_DEBUG=1`` shows the traceback
 2    bad input or flags: nothing (or nothing more) could be done; one line
      ``error: FILE: problem`` per problem
 3    partial: some items failed (each reported as ``error: FILE: problem``),
      the others were written
 130  interrupted (Ctrl-C); finished outputs are kept, and the message says
      how to continue
====  ==================================================================

Problems are :class:`~jaxfuse.errors.JaxfuseError`\\ s raised by the library;
:func:`describe` words their settings and hints as flags (``{steps}`` →
``--steps``, hint ``"overwrite"`` → "pass --overwrite to replace it").
"""

from __future__ import annotations

import argparse
import os
import sys

from jaxfuse.errors import Interrupted, JaxfuseError

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_BAD_INPUT = 2
EXIT_PARTIAL = 3  # some items failed, the others were written
EXIT_INTERRUPTED = 130

HINTS: dict[str, str] = {
    "overwrite": "pass --overwrite to replace it",
    "resume": "pass --resume to continue it or --overwrite to start again",
    "restart": "pass --overwrite to start again",
    "continue": "continue with --resume",
}
"""The hint keys of :data:`jaxfuse.errors.HINTS`, worded as flags."""

FLAGS: dict[str, str] = {"out_dir": "--out", "src": "IN", "dst": "OUT"}
"""Settings whose flag is not ``--`` + the name with ``_`` as ``-``."""


def flag(setting: str) -> str:
    """The command-line spelling of a library setting: ``checkpoint_every`` → ``--checkpoint-every``."""
    return FLAGS.get(setting, "--" + setting.replace("_", "-"))


def describe(e: JaxfuseError) -> str:
    """``e``'s message as the commands print it (after ``error: ``): settings and hints as flags."""
    return e.describe(name=flag, hints=HINTS)


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports bad flags in one line (exit 2) without the usage dump."""

    def error(self, message):  # noqa: D401 - argparse API
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see --help)\n")


def run_main(main, argv=None) -> int:
    """Runs ``main(argv)``, turning known failures into ``error: ...`` lines and exit codes.

    Set ``JAXFUSE_DEBUG=1`` to get the traceback of unexpected errors.
    """
    try:
        return int(main(argv) or 0)
    except Interrupted as e:
        print(f"error: {describe(e)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except JaxfuseError as e:
        print(f"error: {describe(e)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print("error: out of memory", file=sys.stderr)
        return EXIT_UNEXPECTED
    except OSError as e:
        if e.filename is None or os.environ.get("JAXFUSE_DEBUG"):
            return _unexpected(e)
        # a file the system refused (permissions, a full disk, a folder that cannot be listed)
        print(f"error: {e.filename}: {e.strerror or e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as e:  # the last line of defence: one line, not a traceback
        return _unexpected(e)


def _unexpected(e: Exception) -> int:
    if os.environ.get("JAXFUSE_DEBUG"):
        raise e
    first = str(e).splitlines()[0] if str(e) else ""
    print(f"error: unexpected {type(e).__name__}: {first} (set JAXFUSE_DEBUG=1 for details)",
          file=sys.stderr)
    return EXIT_UNEXPECTED


class _NoBar:
    """What :func:`progress_bar` returns when disabled: iterates, and ignores the rest."""

    def __init__(self, iterable=None):
        self._it = iterable

    def __iter__(self):
        return iter(self._it if self._it is not None else ())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass

    def set_postfix(self, *a, **kw):
        pass

    def set_postfix_str(self, *a, **kw):
        pass

    def close(self):
        pass


def progress_bar(iterable=None, *, enabled: bool = True, desc: str | None = None,
                 unit: str = "it", total: int | None = None, initial: int = 0,
                 leave: bool = True):
    """A progress bar on stderr (tqdm), or a silent stand-in when ``enabled`` is False.

    Both iterate over ``iterable`` and have ``update``, ``set_postfix``,
    ``set_postfix_str`` and ``close``, and are context managers (closing the
    bar), so callers need no ``if``.
    """
    if not enabled:
        return _NoBar(iterable)
    from tqdm import tqdm
    return tqdm(iterable, desc=desc, unit=unit, total=total, initial=initial, leave=leave,
                file=sys.stderr, dynamic_ncols=True)
