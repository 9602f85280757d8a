"""Reproduce the paper's Tables II, III and IV, with seed and training-image studies.

    python -m jaxfuse.reproduce --pairs DIR          # the full reproduction (hours on a CPU)
    python -m jaxfuse.reproduce --quick --out /tmp/r # a smoke run in about a minute, on tiny pairs

The flags become a :class:`jaxfuse.reproduce.Settings`;
:func:`jaxfuse.reproduce.reproduce` does the work.
"""

from __future__ import annotations

import shlex
import sys
from typing import Sequence

from jaxfuse.cli import ArgumentParser, run_main

DEFAULT_OUT = "runs/reproduce"
PROG = "python -m jaxfuse.reproduce"
PRINTED_TABLES = ("table4", "comparison", "losses", "baselines", "table2", "table3")


def build_parser() -> ArgumentParser:
    from jaxfuse.reproduce import BASELINES
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", default=None, metavar="DIR",
                   help="the TNO pairs folder (ir/ and vis/), e.g. TNO-21; required unless --quick, "
                        "which makes three tiny pairs of its own when no folder is given")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 3 steps, 64 px, 1 seed, 1 image, the 2 smallest pairs, 64 px crops")
    p.add_argument("--steps", type=int, default=None, help="single-image training steps (default 2000)")
    p.add_argument("--many-steps", type=int, default=None,
                   help="many-image training steps (default: --steps)")
    p.add_argument("--many-images", nargs="+", default=None, metavar="DIR",
                   help="the many-image model's training folders; 'bundled' is the 20 natural "
                        "images scikit-image ships (default bundled)")
    p.add_argument("--many-augment", choices=("resize", "crops"), default=None,
                   help="the many-image model's augmentation (default crops)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default 0 1 2)")
    p.add_argument("--images", nargs="+", default=None,
                   help="training images, bundled names or files; the first is the main one "
                        "(default camera astronaut coffee)")
    p.add_argument("--size", type=int, default=None, help="training image side (default 256)")
    p.add_argument("--loss", choices=("ssim", "msssim"), default=None, help="training loss (default ssim)")
    p.add_argument("--crop", type=int, default=None,
                   help="Table III images are centre-cropped to at most this side (default 512)")
    p.add_argument("--max-pairs", type=int, default=None, help="use only the N smallest pairs")
    p.add_argument("--baselines", nargs="*", default=None, choices=BASELINES, metavar="METHOD",
                   help="the paper's comparison methods to run and score, from "
                        f"{', '.join(BASELINES)} (default: all; give none to skip them)")
    p.add_argument("--no-baseline-many", action="store_true",
                   help="train the comparison networks single-image only (Table IV needs no more)")
    p.add_argument("--fusiongan-checkpoint", default=None,
                   help="the FusionGAN model to score (default: the shipped checkpoints/fusiongan)")
    p.add_argument("--compare-loss", choices=("other", "none", "ssim", "msssim"), default=None,
                   help="also train the single-image recipe with this loss (default: other, the "
                        "loss --loss does not use; none: skip)")
    p.add_argument("--compare-checkpoint", default=None,
                   help="use this model as the second-loss model instead of training it")
    p.add_argument("--checkpoint", default=None,
                   help="use this model as the single-image model instead of training it")
    p.add_argument("--many-checkpoint", default=None,
                   help="use this model as the many-image model instead of training it")
    return p


def settings_from_args(args):
    """The :class:`jaxfuse.reproduce.Settings` the parsed flags ask for."""
    from jaxfuse.reproduce import Settings
    kw = dict(pairs=args.pairs, steps=args.steps, many_steps=args.many_steps,
              seeds=tuple(args.seeds) if args.seeds else None,
              images=tuple(args.images) if args.images else None, size=args.size, loss=args.loss,
              crop=args.crop, max_pairs=args.max_pairs, checkpoint=args.checkpoint,
              baselines=tuple(args.baselines) if args.baselines is not None else None,
              many_checkpoint=args.many_checkpoint,
              many_images=tuple(args.many_images) if args.many_images else None,
              many_augment=args.many_augment,
              baseline_many=False if args.no_baseline_many else None,
              fusiongan_checkpoint=args.fusiongan_checkpoint, compare_loss=args.compare_loss,
              compare_checkpoint=args.compare_checkpoint)
    if args.quick:
        return Settings.quick_defaults(**kw)
    return Settings(**{k: v for k, v in kw.items() if v is not None})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from jaxfuse import xla
    from jaxfuse.reproduce import reproduce
    xla.enable_compilation_cache()
    argv = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join([*PROG.split(), *argv])
    result = reproduce(settings_from_args(args), args.out, command=command,
                       log=lambda s: print(s, flush=True))
    print()
    for name in PRINTED_TABLES:
        if name in result.tables:
            print(result.tables[name].text())
            print()
    print(f"report: {result.report}  (seed and training-image studies are in it)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
