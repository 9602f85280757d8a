"""The ``jaxfuse`` command: one entry point, a subcommand per job.

    jaxfuse SUBCOMMAND [FLAGS]        # or: python -m jaxfuse SUBCOMMAND [FLAGS]
    jaxfuse --help                    # the subcommands, one line each
    jaxfuse SUBCOMMAND --help         # its flags

Each subcommand is a module ``jaxfuse.commands.<name>`` with
``build_parser()`` and ``main(argv) -> int``, imported only when it runs (so
``jaxfuse --help`` does not import JAX), and run through
:func:`jaxfuse.cli.run_main`, which gives every command the same one-line
errors and exit codes (see :mod:`jaxfuse.cli`).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Sequence

COMMANDS: dict[str, str] = {
    "train": "train the autoencoder (one image, or a folder of many with --images)",
    "fuse": "fuse one infrared/visible pair, or every pair in a folder",
    "evaluate": "score fused images with a paper's metrics; compare methods",
    "convert": "convert checkpoints between PyTorch .model files and jaxfuse folders",
    "reproduce": "reproduce the paper's Tables II-IV in one run",
    "bench": "measure speed and memory, against PyTorch",
}
"""The subcommands and their one-line descriptions, in the order ``--help`` lists them."""

PROG = "jaxfuse"


def usage() -> str:
    """What ``jaxfuse --help`` prints."""
    from jaxfuse import __version__
    from jaxfuse.cli import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_PARTIAL, EXIT_UNEXPECTED
    width = max(map(len, COMMANDS))
    lines = [f"usage: {PROG} SUBCOMMAND [FLAGS]   (or: python -m jaxfuse SUBCOMMAND [FLAGS])", "",
             f"Res2NetFuse infrared/visible image fusion in JAX (jaxfuse {__version__}).", "",
             "subcommands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, text in COMMANDS.items()]
    lines += ["", f"'{PROG} SUBCOMMAND --help' lists its flags.",
              f"exit status: 0 done, {EXIT_BAD_INPUT} bad input or flags, {EXIT_PARTIAL} partial "
              f"(some items failed, the others were written), {EXIT_INTERRUPTED} interrupted, "
              f"{EXIT_UNEXPECTED} unexpected error."]
    return "\n".join(lines)


def command_module(name: str):
    """The module of subcommand ``name`` (imported now)."""
    return importlib.import_module(f"jaxfuse.commands.{name}")


def main(argv: Sequence[str] | None = None) -> int:
    """``jaxfuse SUBCOMMAND ...``: runs the subcommand; returns the exit status."""
    from jaxfuse.cli import EXIT_BAD_INPUT, run_main
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        if len(argv) > 1 and argv[0] == "help" and argv[1] in COMMANDS:  # jaxfuse help fuse
            argv = [argv[1], "--help"]
        else:
            try:
                print(usage(), file=sys.stdout if argv else sys.stderr, flush=True)
            except BrokenPipeError:  # jaxfuse --help | head
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0 if argv else EXIT_BAD_INPUT
    if argv[0] == "--version":
        from jaxfuse import __version__
        print(f"jaxfuse {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        what = "unknown flag" if name.startswith("-") else "unknown subcommand"
        print(f"error: {what} {name!r}; choose one of {', '.join(COMMANDS)} (see {PROG} --help)",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    module = command_module(name)
    try:
        return run_main(module.main, rest)
    except SystemExit as e:  # argparse's --help (0) and one-line flag errors (2)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_BAD_INPUT)
