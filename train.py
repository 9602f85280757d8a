"""``python train.py [FLAGS]``: the same as ``jaxfuse train`` (see ``--help``)."""
import sys

from jaxfuse.cli import run_main
from jaxfuse.commands.train import main

if __name__ == "__main__":
    sys.exit(run_main(main))
