"""Folder training: does decoding keep up with the train step?

    python benchmarks/bench_data.py [--images DIR ...] [--count 300] [--batch 4] [--size 256]

Prints, in one run on this machine:

1. images/s of the input pipeline alone (``jaxfuse.data``: decode, gray,
   augment, batch, in threads with prefetch), for each augmentation;
2. images/s of the whole training step (pipeline + ``train_step`` of the
   main network, compiled before timing) at the paper's batch 4;
3. the ratio of the two (above 1: the step, not decoding, sets the pace;
   the pipeline then costs only the step's idle CPU threads), and the
   projected wall time of the paper's 80 000-image recipe (80 000 × 4 epochs
   / batch 4 = 80 000 steps) at the measured step rate.

Without ``--images`` it writes ``--count`` JPEGs (real photographs: the
visible RoadScene images beside the repository if present, else the images
scikit-image ships, at their own sizes, cycled with flips) into a temporary
folder. The machine may be shared: compare figures within one run only.
Not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from jaxfuse import allocator, data  # noqa: E402

allocator.configure()  # as train.py does, before JAX starts its threads (jaxfuse.allocator)

ROADSCENE = ROOT.parent / "shared" / "data" / "roadscene_train" / "vis"
PAPER_IMAGES, PAPER_EPOCHS, PAPER_BATCH = 80_000, 4, 4


def _write_jpegs(folder: Path, count: int) -> str:
    """``count`` JPEGs of real photographs in ``folder``; says where they came from."""
    from PIL import Image

    from jaxfuse import datasets, io
    if ROADSCENE.is_dir():
        src = sorted(p for p in ROADSCENE.iterdir() if p.suffix.lower() in io.IMAGE_SUFFIXES)
        load = lambda i: Image.open(src[i % len(src)]).convert("RGB")  # noqa: E731
        what = f"RoadScene visible photographs ({len(src)}, cycled)"
    else:
        names = datasets.NATURAL_IMAGES
        load = lambda i: Image.fromarray(  # noqa: E731
            np.clip(datasets.natural_image(names[i % len(names)]), 0, 255).astype(np.uint8))
        what = f"scikit-image's {len(names)} natural images (cycled)"
    for i in range(count):
        img = load(i)
        if (i // 20) % 2:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        img.save(folder / f"{i:05d}.jpg", quality=90)
    return what


def _pipeline_rate(dataset, batch, size, augment, batches, threads) -> float:
    pipe = data.pipeline(dataset, batch=batch, size=size, augment=augment, seed=0, steps=batches)
    it = data.iterator(pipe, threads=threads)
    next(it)  # start the threads
    t = time.perf_counter()
    for _ in range(batches - 1):
        next(it)
    return (batches - 1) * batch / (time.perf_counter() - t)


def _step_rate(dataset, batch, size, augment, steps, threads) -> float:
    import jax
    import jax.numpy as jnp

    from jaxfuse import training
    cfg = training.TrainConfig(size=size, batch=batch, lr=training.MANY_LR, steps=steps)
    step = training.make_train_step(cfg)
    state = training.init_state(cfg)
    it = data.iterator(data.pipeline(dataset, batch=batch, size=size, augment=augment, seed=0,
                                     steps=steps + 2), threads=threads)
    state, terms = step(state, jnp.asarray(next(it)))  # compile
    jax.block_until_ready(terms)
    t = time.perf_counter()
    for _ in range(steps):
        state, terms = step(state, jnp.asarray(next(it)))
        float(terms["total"])  # as the training loop does every step
    return steps * batch / (time.perf_counter() - t)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds < 172_800 else f"{seconds / 86_400:.1f} days"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", nargs="+", default=None, help="folders to read (default: temporary JPEGs)")
    ap.add_argument("--count", type=int, default=300, help="JPEGs to write without --images")
    ap.add_argument("--batch", type=int, default=PAPER_BATCH)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batches", type=int, default=60, help="batches timed for the pipeline alone")
    ap.add_argument("--steps", type=int, default=15, help="train steps timed")
    ap.add_argument("--threads", type=int, default=0, help="decoding threads (0: the CPU count)")
    args = ap.parse_args(argv)
    import jax
    tmp = None
    if args.images is None:
        tmp = tempfile.TemporaryDirectory()
        what = _write_jpegs(Path(tmp.name), args.count)
        sources = [tmp.name]
        print(f"folder: {args.count} JPEGs of {what}")
    else:
        sources, what = args.images, None
    dataset = data.scan(sources)
    print(f"images: {len(dataset)} ({len(dataset.skipped)} skipped); batch {args.batch}, "
          f"{args.size}×{args.size}; {os.cpu_count()} CPU(s), backend {jax.default_backend()}; "
          f"malloc: {allocator.describe()}")
    rates = {}
    for augment in data.AUGMENTS:
        rates[augment] = _pipeline_rate(dataset, args.batch, args.size, augment, args.batches,
                                        args.threads)
        print(f"pipeline alone, augment {augment:6s}: {rates[augment]:8.1f} images/s")
    step = _step_rate(dataset, args.batch, args.size, "resize", args.steps, args.threads)
    print(f"train step with the pipeline (res2netfuse, augment resize): {step:8.2f} images/s")
    worst = min(rates.values())
    print(f"pipeline / train step: {worst / step:.1f}× (slowest augmentation); "
          f"{'decoding keeps ahead of the step' if worst > step else 'DECODING STARVES THE STEP'}")
    steps = PAPER_IMAGES * PAPER_EPOCHS // PAPER_BATCH
    print(f"the paper's recipe ({PAPER_IMAGES} images × {PAPER_EPOCHS} epochs / batch "
          f"{PAPER_BATCH} = {steps} steps) at this rate: {_hours(steps * PAPER_BATCH / step)} "
          f"on this {jax.default_backend().upper()}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
