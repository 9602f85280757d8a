"""``python -m jaxfuse SUBCOMMAND ...``: the same as the ``jaxfuse`` command."""

import sys

from jaxfuse.commands import main

if __name__ == "__main__":
    sys.exit(main())
