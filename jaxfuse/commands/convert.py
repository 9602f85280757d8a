"""Convert Res2NetFuse checkpoints: PyTorch .model/.pt/.pth <-> jaxfuse (Orbax) checkpoint folder.

    jaxfuse convert IN OUT [--overwrite]

(``python -m jaxfuse.convert`` is the same command.) The direction is chosen
by OUT's suffix: ``.model``, ``.pt`` or ``.pth`` writes a PyTorch
``state_dict`` the authors' code loads; anything else a jaxfuse checkpoint
folder that ``jaxfuse fuse --checkpoint OUT`` reads. IN is a PyTorch
``state_dict`` file or a jaxfuse checkpoint folder (its latest step) or step
folder. OUT is never overwritten without ``--overwrite``, and even then a
folder only when it is empty or a jaxfuse checkpoint. The work is
:func:`jaxfuse.convert.convert`.
"""

from __future__ import annotations

import sys
from typing import Sequence

from jaxfuse.cli import ArgumentParser, run_main

PROG = "jaxfuse convert"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0] + " The direction is "
                       "chosen by OUT's suffix.")
    p.add_argument("input", metavar="IN",
                   help="a PyTorch state_dict file or a jaxfuse checkpoint folder")
    p.add_argument("output", metavar="OUT",
                   help="a .model/.pt/.pth file (PyTorch) or a folder (jaxfuse checkpoint)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from jaxfuse.convert import convert
    print(convert(args.input, args.output, overwrite=args.overwrite))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
