"""Train the Res2NetFuse autoencoder on ONE natural image (the paper's strategy).

    jaxfuse train                          # scikit-image's bundled `camera` photo
    jaxfuse train --image x.png --workdir runs/x
    jaxfuse train --workdir runs/x --resume   # continue an interrupted run
    jaxfuse train --images photos/ --epochs 4 --workdir runs/many   # many images from a folder
    jaxfuse train --images photos/ bundled --augment crops          # ... plus the bundled 20
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

from jaxfuse import allocator
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
    p.add_argument("--images", nargs="+", metavar="DIR", default=None,
                   help="train on many images instead of one: every image file under these "
                        "folders (recursively; 'bundled' adds the 20 natural images scikit-image "
                        "ships). Bad files are skipped with a warning. Defaults become the "
                        "paper's many-image recipe: batch 4, lr 1e-4, 4 epochs")
    p.add_argument("--augment", choices=("resize", "crops"), default=None,
                   help="with --images: resize each whole image to --size (the authors' recipe, "
                        "default) or random crops, flips and 90° turns (for small folders)")
    p.add_argument("--dataset", choices=("bundled",), default=None,
                   help="the same as --images bundled --augment crops")
    p.add_argument("--batch", type=int, default=None,
                   help="batch size (default 1; with --images 4; fusiongan 32, the authors'). "
                        "With several devices, the global batch, split over them")
    p.add_argument("--epochs", type=int, default=None,
                   help="with --images or --pairs-dataset: passes over the data when --steps is "
                        "not given (default 4 for --images, 10 for fusiongan)")
    g = p.add_argument_group("fusiongan (with --arch fusiongan)")
    g.add_argument("--pairs-dataset", metavar="DIR", default=None,
                   help="the infrared/visible training pairs (the layouts fuse --pairs reads; "
                        "colour visible images are trained on their luma); required")
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
    d = p.add_argument_group("several processes (jax.distributed; with --images)")
    d.add_argument("--coordinator", metavar="HOST:PORT", default=None,
                   help="the first process's address; every process gives the same one")
    d.add_argument("--num-processes", type=int, default=None, help="how many processes in all")
    d.add_argument("--process-id", type=int, default=None, help="this process's index, from 0")
    p.add_argument("--resume", action="store_true",
                   help="continue from the latest checkpoint in --workdir")
    p.add_argument("--overwrite", action="store_true", help="discard an existing run in --workdir")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    allocator.configure()  # before JAX starts its threads: reused step buffers (jaxfuse.allocator)
    p = build_parser()
    args = p.parse_args(argv)
    if args.resume and args.overwrite:
        p.error("--resume and --overwrite contradict each other")
    gan_flags = [f for f, v in (("--pairs-dataset", args.pairs_dataset), ("--patch", args.patch),
                                ("--d-steps", args.d_steps)) if v is not None]
    sources = [f for f, v in (("--image", args.image), ("--dataset", args.dataset),
                              ("--images", args.images)) if v is not None]
    dist = [f for f, v in (("--coordinator", args.coordinator),
                           ("--num-processes", args.num_processes),
                           ("--process-id", args.process_id)) if v is not None]
    if args.arch == "fusiongan":
        if args.pairs_dataset is None:
            p.error("--arch fusiongan learns from infrared/visible pairs: give --pairs-dataset DIR")
        if sources:
            p.error(f"{sources[0]} trains an autoencoder; --arch fusiongan trains on --pairs-dataset")
    elif gan_flags:
        p.error(f"{gan_flags[0]} is for --arch fusiongan, not {args.arch}")
    if len(sources) > 1:
        p.error(f"{sources[0]} and {sources[1]} exclude each other: give one source of images")
    if args.epochs is not None and args.arch != "fusiongan" and args.images is None:
        p.error("--epochs needs --images (or --arch fusiongan); one image trains for --steps")
    if args.epochs is not None and args.steps is not None:
        p.error("--steps and --epochs exclude each other: give one length")
    if args.augment is not None and args.images is None and args.dataset is None:
        p.error("--augment needs --images")
    if dist and (len(dist) < 3 or args.images is None):
        p.error("--coordinator, --num-processes and --process-id go together, with --images")
    from jaxfuse import xla
    xla.enable_compilation_cache()
    if args.arch == "fusiongan":
        return _train_fusiongan(args)
    if dist:
        from jaxfuse import parallel
        parallel.init_distributed(args.coordinator, args.num_processes, args.process_id)

    from jaxfuse.training import MANY_BATCH, MANY_EPOCHS, MANY_LR, TrainConfig, train_and_evaluate
    images = ("bundled",) if args.dataset else (tuple(args.images) if args.images else None)
    many = images is not None
    epochs = None
    if many and args.steps is None:
        epochs = MANY_EPOCHS if args.epochs is None else args.epochs
    config = TrainConfig(image=args.image, steps=2000 if args.steps is None else args.steps, epochs=epochs,
                         lr=(MANY_LR if many else 5e-4) if args.lr is None else args.lr,
                         seed=args.seed, loss=args.loss, size=args.size,
                         shared=not args.separate_convs, checkpoint_every=args.checkpoint_every,
                         arch=args.arch, ssim_weight=args.ssim_weight, images=images,
                         augment=args.augment or ("crops" if args.dataset else "resize"),
                         batch=(MANY_BATCH if many else 1) if args.batch is None else args.batch)
    s = train_and_evaluate(config, args.workdir, resume=args.resume, overwrite=args.overwrite,
                           progress=not args.no_progress, keep_checkpoints=args.keep_checkpoints,
                           log=lambda line: print(line, file=sys.stderr, flush=True))
    if "reconstruction" not in s:  # not the first process: it writes no summary
        return 0
    r = s["reconstruction"]
    if "dataset" in s:
        d = s["dataset"]
        print(f"data: {d['images']} image(s) ({len(d['skipped'])} skipped), "
              f"{d['epochs_run']:.3g} epoch(s) on {d['devices']} device(s)")
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
