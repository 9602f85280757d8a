"""Train the Res2NetFuse autoencoder on ONE natural image (the paper's strategy).

    jaxfuse train                          # scikit-image's bundled `camera` photo
    jaxfuse train --image x.png --workdir runs/x
    jaxfuse train --workdir runs/x --resume   # continue an interrupted run
    jaxfuse train --arch fusiongan --pairs-dataset pairs/ --workdir runs/gan   # FusionGAN

(``python train.py`` in a clone of the repository is the same command.) The
work is :func:`jaxfuse.training.train_and_evaluate` (FusionGAN, which learns
from infrared/visible pairs: :func:`jaxfuse.fusiongan.train_and_evaluate`);
this module only parses flags. Ctrl-C stops a run cleanly: the loss curves so far are written, the
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
    p.add_argument("--steps", type=int, default=None,
                   help="training iterations (default 2000; fusiongan: generator steps, default "
                        "--epochs passes over the patches)")
    p.add_argument("--lr", type=float, default=None,
                   help="Adam learning rate (default 5e-4; fusiongan 1e-4)")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed (default 0)")
    p.add_argument("--loss", choices=losses.LOSSES, default="ssim",
                   help="ssim: dm-pix SSIM + MSE (paper Eq. 4, default); "
                        "msssim: the authors' MS-SSIM + MSE")
    p.add_argument("--size", type=int, default=256, help="training image side (default 256)")
    p.add_argument("--separate-convs", action="store_true",
                   help="one conv per group and application in the Res2Net block "
                        "(Table I's reading) instead of the authors' single shared conv")
    p.add_argument("--arch", choices=model.ARCHS, default=model.ARCHS[0],
                   help="network: res2netfuse (default) or the paper's baselines densefuse, "
                        "msdnet, fusiongan (fusiongan needs --pairs-dataset)")
    p.add_argument("--ssim-weight", type=float, default=1.0,
                   help="λ in λ·L_ssim + L_pixel (default 1; DenseFuse used 1, 10, 100, 1000)")
    p.add_argument("--dataset", choices=("bundled",), default=None,
                   help="train on many images instead of one: random augmented crops of the 20 "
                        "natural images scikit-image ships")
    p.add_argument("--batch", type=int, default=None,
                   help="batch size (default 1; fusiongan 32, the authors')")
    g = p.add_argument_group("fusiongan (with --arch fusiongan)")
    g.add_argument("--pairs-dataset", metavar="DIR", default=None,
                   help="the infrared/visible training pairs (the layouts fuse --pairs reads; "
                        "colour visible images are trained on their luma); required")
    g.add_argument("--epochs", type=int, default=None,
                   help="passes over the training patches when --steps is not given (default 10)")
    g.add_argument("--patch", type=int, default=None,
                   help="training patch side; the discriminator sees it less 12 (default 132)")
    g.add_argument("--d-steps", type=int, default=None,
                   help="discriminator steps per generator step (default 2)")
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
    gan_flags = [f for f, v in (("--pairs-dataset", args.pairs_dataset), ("--epochs", args.epochs),
                                ("--patch", args.patch), ("--d-steps", args.d_steps)) if v is not None]
    if args.arch == "fusiongan":
        if args.pairs_dataset is None:
            p.error("--arch fusiongan learns from infrared/visible pairs: give --pairs-dataset DIR")
        other = [f for f, v in (("--image", args.image), ("--dataset", args.dataset)) if v is not None]
        if other:
            p.error(f"{other[0]} trains an autoencoder; --arch fusiongan trains on --pairs-dataset")
    elif gan_flags:
        p.error(f"{gan_flags[0]} is for --arch fusiongan, not {args.arch}")
    from jaxfuse import xla
    xla.enable_compilation_cache()
    if args.arch == "fusiongan":
        return _train_fusiongan(args)

    from jaxfuse.training import TrainConfig, train_and_evaluate
    config = TrainConfig(image=args.image, steps=2000 if args.steps is None else args.steps,
                         lr=5e-4 if args.lr is None else args.lr, seed=args.seed,
                         loss=args.loss, size=args.size, shared=not args.separate_convs,
                         checkpoint_every=args.checkpoint_every, arch=args.arch,
                         ssim_weight=args.ssim_weight, dataset=args.dataset,
                         batch=1 if args.batch is None else args.batch)
    s = train_and_evaluate(config, args.workdir, resume=args.resume, overwrite=args.overwrite,
                           progress=not args.no_progress, keep_checkpoints=args.keep_checkpoints,
                           log=lambda line: print(line, file=sys.stderr, flush=True))
    r = s["reconstruction"]
    print(f"trained {s['steps']} steps in {s['train_seconds']:.0f} s on {s['backend']}: "
          f"final loss {s['final_loss']['total']:.5f}; reconstruction SSIM {r['ssim']:.5f}, "
          f"PSNR {r['psnr_db']:.2f} dB")
    print(f"checkpoint: {s['checkpoint']}  (curves: {args.workdir}/loss_curves.png)")
    return 0


def _train_fusiongan(args) -> int:
    from jaxfuse import fusiongan
    given = {"steps": args.steps, "lr": args.lr, "batch": args.batch, "epochs": args.epochs,
             "patch": args.patch, "d_steps": args.d_steps}
    config = fusiongan.GANConfig(pairs_dataset=args.pairs_dataset, seed=args.seed,
                                 checkpoint_every=args.checkpoint_every,
                                 **{k: v for k, v in given.items() if v is not None})
    s = fusiongan.train_and_evaluate(config, args.workdir, resume=args.resume,
                                     overwrite=args.overwrite, progress=not args.no_progress,
                                     keep_checkpoints=args.keep_checkpoints,
                                     log=lambda line: print(line, file=sys.stderr, flush=True))
    f, d = s["final_loss"], s["dataset"]
    print(f"trained FusionGAN {s['steps']} steps ({d['epochs_run']:.3g} epochs of {d['patches']} "
          f"patches from {d['pairs']} pairs) in {s['train_seconds']:.0f} s on {s['backend']}: "
          f"final generator loss {f['total']:.5f} (content {f['content']:.5f}), "
          f"discriminator {f['discriminator']:.5f}")
    print(f"checkpoint: {s['checkpoint']}  (curves: {args.workdir}/loss_curves.png, "
          f"sample: {args.workdir}/sample.png)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
