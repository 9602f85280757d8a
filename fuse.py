"""``python fuse.py [FLAGS]``: the same as ``jaxfuse fuse`` (see ``--help``)."""
import sys

from jaxfuse.cli import run_main
from jaxfuse.commands.fuse import main

if __name__ == "__main__":
    sys.exit(run_main(main))
