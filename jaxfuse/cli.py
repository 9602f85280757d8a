"""Shared command-line plumbing: one-line errors, exit codes, no tracebacks."""

from __future__ import annotations

import argparse
import os
import sys

from jaxfuse.errors import JaxfuseError

EXIT_BAD_INPUT = 2
EXIT_PARTIAL = 3  # some pairs failed, the others were written


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports bad flags in one line (exit 2) without the usage dump."""

    def error(self, message):  # noqa: D401 - argparse API
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see --help)\n")


def run_main(main, argv=None) -> int:
    """Runs ``main(argv)``, turning known failures into ``error: ...`` lines.

    Set ``JAXFUSE_DEBUG=1`` to get the traceback of unexpected errors.
    """
    try:
        return int(main(argv) or 0)
    except JaxfuseError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory", file=sys.stderr)
        return 1
    except Exception as e:  # the last line of defence: one line, not a traceback
        if os.environ.get("JAXFUSE_DEBUG"):
            raise
        print(f"error: unexpected {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
              "(set JAXFUSE_DEBUG=1 for details)", file=sys.stderr)
        return 1
