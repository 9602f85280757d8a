"""``python -m jaxfuse.bench``: see :mod:`jaxfuse.commands.bench`."""

import sys

from jaxfuse.cli import run_main
from jaxfuse.commands.bench import main

sys.exit(run_main(main))
