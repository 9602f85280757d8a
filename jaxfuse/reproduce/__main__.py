"""``python -m jaxfuse.reproduce``: see :mod:`jaxfuse.commands.reproduce`."""

import sys

from jaxfuse.cli import run_main
from jaxfuse.commands.reproduce import main

sys.exit(run_main(main))
