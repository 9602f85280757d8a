"""Train the Res2NetFuse autoencoder on ONE natural image (the paper's strategy).

    jaxfuse train                          # scikit-image's bundled `camera` photo
    jaxfuse train --image x.png --workdir runs/x
    jaxfuse train --workdir runs/x --resume   # continue an interrupted run

(``python train.py`` in a clone of the repository is the same command.) The
work is :func:`jaxfuse.training.train_and_evaluate`; this module only parses
flags. Ctrl-C stops a run cleanly: the loss curves so far are written, the
message says which steps ``--resume`` will redo, and the exit status is 130.
"""

from __future__ import annotations

import sys
from typing import Sequence

from jaxfuse.cli import ArgumentParser, run_main

PROG = "jaxfuse train"


def build_parser() -> ArgumentParser:
    from jaxfuse import losses, model
    from jaxfuse.training import KEEP_CHECKPOINTS
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--image", default=None,
                   help="training image file (any size; made gray and resized), or the name of "
                        "an image scikit-image ships (astronaut, coffee, ...). Default: 'camera'")
    p.add_argument("--workdir", default="runs/train",
                   help="where checkpoints, curves and the summary go (default: runs/train)")
    p.add_argument("--steps", type=int, default=2000, help="training iterations (default 2000)")
    p.add_argument("--lr", type=float, default=5e-4, help="Adam learning rate (default 5e-4)")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed (default 0)")
    p.add_argument("--loss", choices=losses.LOSSES, default="ssim",
                   help="ssim: dm-pix SSIM + MSE (paper Eq. 4, default); "
                        "msssim: the authors' MS-SSIM + MSE")
    p.add_argument("--size", type=int, default=256, help="training image side (default 256)")
    p.add_argument("--separate-convs", action="store_true",
                   help="one conv per group and application in the Res2Net block "
                        "(Table I's reading) instead of the authors' single shared conv")
    p.add_argument("--arch", choices=model.ARCHS, default=model.ARCHS[0],
                   help="network: res2netfuse (default) or the paper's baselines densefuse, msdnet")
    p.add_argument("--ssim-weight", type=float, default=1.0,
                   help="λ in λ·L_ssim + L_pixel (default 1; DenseFuse used 1, 10, 100, 1000)")
    p.add_argument("--dataset", choices=("bundled",), default=None,
                   help="train on many images instead of one: random augmented crops of the 20 "
                        "natural images scikit-image ships")
    p.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    p.add_argument("--checkpoint-every", type=int, default=100,
                   help="steps between checkpoints (default 100)")
    p.add_argument("--keep-checkpoints", type=int, default=KEEP_CHECKPOINTS, metavar="N",
                   help=f"keep the newest N step folders (default {KEEP_CHECKPOINTS}; 0 keeps "
                        "every one); an older one is removed only after a newer one is written "
                        "completely")
    p.add_argument("--resume", action="store_true",
                   help="continue from the latest checkpoint in --workdir")
    p.add_argument("--overwrite", action="store_true", help="discard an existing run in --workdir")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.resume and args.overwrite:
        p.error("--resume and --overwrite contradict each other")
    from jaxfuse import xla
    xla.enable_compilation_cache()

    from jaxfuse.training import TrainConfig, train_and_evaluate
    config = TrainConfig(image=args.image, steps=args.steps, lr=args.lr, seed=args.seed,
                         loss=args.loss, size=args.size, shared=not args.separate_convs,
                         checkpoint_every=args.checkpoint_every, arch=args.arch,
                         ssim_weight=args.ssim_weight, dataset=args.dataset, batch=args.batch)
    s = train_and_evaluate(config, args.workdir, resume=args.resume, overwrite=args.overwrite,
                           progress=not args.no_progress, keep_checkpoints=args.keep_checkpoints,
                           log=lambda line: print(line, file=sys.stderr, flush=True))
    r = s["reconstruction"]
    print(f"trained {s['steps']} steps in {s['train_seconds']:.0f} s on {s['backend']}: "
          f"final loss {s['final_loss']['total']:.5f}; reconstruction SSIM {r['ssim']:.5f}, "
          f"PSNR {r['psnr_db']:.2f} dB")
    print(f"checkpoint: {s['checkpoint']}  (curves: {args.workdir}/loss_curves.png)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
