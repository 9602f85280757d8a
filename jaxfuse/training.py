"""Single-image training of the autoencoder (the paper's "single image" strategy).

``train_and_evaluate(config, workdir)`` is the whole job; ``jaxfuse train``
(:mod:`jaxfuse.commands.train`) only parses flags. Recipe (SPEC, authors' code): one natural image, grayscale,
resized to 256×256, raw 0–255 values; 2000 steps of batch 1; Adam, lr 5e-4;
loss L_ssim + L_pixel (see :mod:`jaxfuse.losses` for the two SSIM choices
and the pixel-term scaling).

The state is a plain pytree ``{"params", "opt", "step"}``; the train step is
one ``jax.jit`` with the state donated. Checkpoints (Orbax) are written every
``checkpoint_every`` steps and at the end; ``resume=True`` continues from the
latest one and, on the same machine, ends with the same parameters, bit for
bit, as an uninterrupted run (the step is deterministic and the data is one
fixed image).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from PIL import Image

from jaxfuse import __version__, allocator, checkpoint, conv_native, io, losses, model, runs, xla
from jaxfuse.cli import progress_bar
from jaxfuse.errors import JaxfuseError

BUILTIN_IMAGE = "camera"  # scikit-image's bundled 512×512 grayscale photograph
KEEP_CHECKPOINTS = 2  # step folders kept by default (the newest)
# the paper's many-image recipe (80 000 MS-COCO images): the defaults of ``train.py --images``
MANY_BATCH, MANY_LR, MANY_EPOCHS = 4, 1e-4, 4


def _bad(setting: str, problem: str) -> JaxfuseError:
    """A bad setting: ``problem`` follows its name (``steps must be ...``)."""
    return JaxfuseError(None, "{%s} %s" % (setting, problem), settings=(setting,))


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run.

    ``jaxfuse train`` with no flags = ``TrainConfig()`` (the shipped model).
    """
    image: str | None = None  # a file or a bundled image's name; None = ``camera``
    steps: int = 2000
    lr: float = 5e-4
    seed: int = 0
    loss: str = "ssim"
    size: int = 256
    shared: bool = True
    checkpoint_every: int = 100
    arch: str = model.ARCHS[0]
    ssim_weight: float = 1.0  # λ in L = λ·L_ssim + L_pixel (DenseFuse tried 1, 10, 100, 1000)
    dataset: str | None = None  # "bundled": the earlier many-image stream (crops of the 20 bundled
    # images, drawn per step); kept so its runs resume. ``train.py --dataset bundled`` now means
    # images=("bundled",), augment="crops"
    batch: int = 1
    images: tuple[str, ...] | None = None  # folders (or "bundled"): :mod:`jaxfuse.data`
    augment: str = "resize"  # with ``images``: "resize" (the authors') or "crops"
    epochs: int | None = None  # with ``images``: passes over them; sets ``steps``

    def validate(self) -> None:
        """Raises JaxfuseError naming the first bad setting."""
        if self.steps < 1:
            raise _bad("steps", f"must be a positive integer, got {self.steps}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise _bad("lr", f"must be a positive number, got {self.lr}")
        if self.loss not in losses.LOSSES:
            raise _bad("loss", f"must be one of {', '.join(losses.LOSSES)}, got {self.loss!r}")
        if self.size < losses.MIN_SIZE[self.loss]:
            raise _bad("size", f"{self.size} is below the {losses.MIN_SIZE[self.loss]} "
                       f"pixels the {self.loss} loss needs")
        if self.checkpoint_every < 1:
            raise _bad("checkpoint_every", f"must be positive, got {self.checkpoint_every}")
        if self.arch not in model.ARCHS:
            raise _bad("arch", f"must be one of {', '.join(model.ARCHS)}, got {self.arch!r}")
        if model.arch_spec(self.arch).fuse_sources is not None:
            raise _bad("arch", f"{self.arch} is no autoencoder: it learns from infrared/visible "
                       "pairs (jaxfuse.fusiongan.train_and_evaluate)")
        if not (self.ssim_weight > 0 and math.isfinite(self.ssim_weight)):
            raise _bad("ssim_weight", f"must be a positive number, got {self.ssim_weight}")
        if self.dataset not in (None, "bundled"):
            raise _bad("dataset", f"must be 'bundled', got {self.dataset!r}")
        if self.batch < 1:
            raise _bad("batch", f"must be a positive integer, got {self.batch}")
        given = [n for n in ("image", "dataset", "images") if getattr(self, n)]
        if len(given) > 1:
            raise JaxfuseError(None, "{%s} and {%s} exclude each other" % tuple(given[:2]),
                               settings=tuple(given[:2]))
        from jaxfuse import data
        if self.augment not in data.AUGMENTS:
            raise _bad("augment", f"must be one of {', '.join(data.AUGMENTS)}, got {self.augment!r}")
        if self.epochs is not None and (not self.images or self.epochs < 1):
            if not self.images:
                raise JaxfuseError(None, "{epochs} needs a folder of {images}",
                                   settings=("epochs", "images"))
            raise _bad("epochs", f"must be a positive integer, got {self.epochs}")

    @property
    def model_config(self) -> model.ModelConfig:
        spec = model.arch_spec(self.arch)
        return spec.config(**{f: getattr(self, f) for f in spec.options})


def load_training_image(path: str | None, size: int = 256) -> np.ndarray:
    """The training image as ``(1, size, size, 1)`` float32, 0–255.

    ``path=None`` uses scikit-image's bundled ``camera`` photograph (no
    download); the name of another bundled image (:data:`jaxfuse.datasets.
    NATURAL_IMAGES`) that is not an existing file uses that one. RGB is
    converted to gray (BT.601), then resized bilinearly.
    """
    from jaxfuse import datasets
    if path is None or (path in datasets.NATURAL_IMAGES and not Path(path).exists()):
        gray = datasets.natural_image(path or BUILTIN_IMAGE)
    else:
        gray = io.load_image(path, gray=True)
        if min(gray.shape) < 2:
            raise JaxfuseError(path, f"image of {gray.shape[1]}×{gray.shape[0]} is too small to train on")
    img = Image.fromarray(gray.astype(np.float32), mode="F").resize((size, size), Image.BILINEAR)
    return np.clip(np.asarray(img, np.float32), 0, 255)[None, :, :, None]


def make_optimizer(lr: float) -> optax.GradientTransformation:
    return optax.adam(lr)


def init_state(config: TrainConfig) -> dict:
    params = model.init_params(jax.random.key(config.seed), config.model_config)
    return {"params": params, "opt": make_optimizer(config.lr).init(params),
            "step": jnp.zeros((), jnp.int32)}


def make_train_step(config: TrainConfig):
    """A jitted ``step(state, image) -> (state, terms)``; the state is donated."""
    opt = make_optimizer(config.lr)

    def loss_fn(params, image):
        terms = losses.loss_terms(model.reconstruct(params, image), image, kind=config.loss,
                                  ssim_weight=config.ssim_weight)
        terms = jax.tree_util.tree_map(jnp.mean, terms)
        return terms["total"], terms

    def step(state, image):
        grads, terms = jax.grad(loss_fn, has_aux=True)(state["params"], image)
        updates, opt_state = opt.update(grads, state["opt"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        return {"params": params, "opt": opt_state, "step": state["step"] + 1}, terms

    return xla.jit(step, donate_argnums=(0,))


reconstruct = xla.jit(model.reconstruct)  # the trained model's reconstruction, jitted once


def _identity(config: TrainConfig, image: np.ndarray, dataset=None) -> dict:
    """What must match for a resumed run to continue the same run (JSON-safe)."""
    d = json.loads(json.dumps(dataclasses.asdict(config)))
    for k in ("steps", "checkpoint_every", "epochs"):
        d.pop(k)
    if dataset is not None:
        d["dataset_sha256"] = dataset.fingerprint()
    else:
        d["image_sha256"] = hashlib.sha256(image.tobytes()).hexdigest()
    return d


HISTORY_KEYS = ("pixel", "ssim", "total")  # the loss terms recorded per step
PANELS = (("pixel", "pixel loss (MSE, 0–1 scale)"), ("ssim", "SSIM loss (1 − SSIM)"),
          ("total", "total loss"))  # the loss-curve panels: (history key, title)


def _named_image(ident: dict) -> dict:
    """``ident`` with the default image named: ``image=None`` and ``image='camera'`` are one run."""
    if ident.get("image") is None and not ident.get("dataset") and not ident.get("images"):
        return {**ident, "image": BUILTIN_IMAGE}
    return ident


def _save_side_by_side(image: np.ndarray, recon: np.ndarray, path: Path) -> None:
    a = np.clip(image[0, :, :, 0], 0, 255).astype(np.uint8)
    b = np.clip(np.rint(recon[0, :, :, 0]), 0, 255).astype(np.uint8)
    gap = np.full((a.shape[0], 8), 255, np.uint8)
    io.save_image(path, np.concatenate([a, gap, b], axis=1), overwrite=True)


def train_and_evaluate(config: TrainConfig, workdir, *, resume: bool = False,
                       overwrite: bool = False, progress: bool = True,
                       keep_checkpoints: int = KEEP_CHECKPOINTS, log=None) -> dict:
    """Trains on one image and writes checkpoints, curves and a summary to ``workdir``.

    Writes ``workdir/checkpoints/<step>/`` (Orbax), ``loss_curves.png``,
    ``reconstruction.png`` (training image | reconstruction) and
    ``summary.json`` (final losses, reconstruction SSIM/PSNR, time).

    Args:
      config: the run.
      workdir: its folder (created if missing).
      resume: continue from the latest checkpoint in ``workdir`` (which must
        have been made with the same settings; ``steps`` and
        ``checkpoint_every`` may change). With no checkpoint yet, start at 0.
      overwrite: discard an existing run in ``workdir``.
      progress: show a progress bar on stderr.
      keep_checkpoints: how many step folders to keep, the newest (0: all);
        an older one is removed only after a newer one is written completely.
      log: called with a line saying where a resumed run starts.

    Returns:
      The summary dict.

    Raises:
      JaxfuseError: bad settings or files, an existing run without
        ``resume`` or ``overwrite``, a run that cannot be resumed, a loss that
        is no longer finite.
      Interrupted: Ctrl-C; the checkpoints so far and the loss curves of the
        interrupted run are written, and the message says which steps a
        resumed run will redo.
    """
    config.validate()
    if keep_checkpoints < 0:
        raise _bad("keep_checkpoints", f"must be 0 (keep all) or positive, got {keep_checkpoints}")
    workdir = Path(workdir)
    runs.check_workdir(workdir, resume=resume, overwrite=overwrite)
    procs, proc = jax.process_count(), jax.process_index()
    say = log if log is not None else (lambda line: print(line, file=sys.stderr, flush=True))
    dataset = None
    if config.images:
        from jaxfuse import data
        dataset = data.scan(config.images, warn=say if proc == 0 else None,
                            progress=progress and proc == 0)
        if config.epochs is not None:
            steps = config.epochs * len(dataset) // config.batch
            if steps < 1:
                raise JaxfuseError(None, f"{config.epochs} epoch(s) of {len(dataset)} image(s) "
                                   f"make no batch of {config.batch}", settings=("batch",))
            config = dataclasses.replace(config, steps=steps)
        image_np = data.resize(data.load_item(dataset.items[0]), config.size)[None, :, :, None]
    else:
        image_np = load_training_image(config.image, config.size)
    ident = _identity(config, image_np, dataset)
    ckdir, resume_from, history = runs.open_run(workdir, ident, config.steps, resume=resume,
                                                overwrite=overwrite, keys=HISTORY_KEYS,
                                                normalize=_named_image, primary=proc == 0)
    if procs > 1:  # the others wait until the first process has readied the folder
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices("jaxfuse: run folder ready")

    state = init_state(config)
    elapsed_before = 0.0
    data_state = None
    mngr = checkpoint.manager(ckdir, max_to_keep=keep_checkpoints or None)
    if resume_from is not None:
        params, meta, opt = checkpoint.restore(resume_from, config=config.model_config,
                                               with_opt_like=state["opt"])
        state = {"params": params, "opt": opt, "step": jnp.asarray(meta["step"], jnp.int32)}
        elapsed_before = float(meta.get("train_seconds", 0.0) or 0.0)
        data_state = meta.get("data_state")
        if dataset is not None and not isinstance(data_state, dict):
            raise JaxfuseError(resume_from, "cannot resume: the checkpoint records no "
                               "input-pipeline state")
    start = int(state["step"])
    if log is not None and resume:
        log(f"resuming at step {start} of {config.steps} from {resume_from}" if resume_from
            else f"nothing to resume in {ckdir}; starting at step 0 of {config.steps}")

    train_step = make_train_step(config)
    image = jnp.asarray(image_np)
    fixed_batch = jnp.repeat(image, config.batch, axis=0)
    pool = stream = None
    if config.dataset == "bundled":
        # Many-image training: fresh augmented crops each step, drawn from a
        # generator seeded by (seed, step) so a resumed run sees the same data.
        from jaxfuse import datasets
        pool = [datasets.natural_image(n) for n in datasets.NATURAL_IMAGES]
    mesh = None
    if dataset is not None:
        from jaxfuse import data, parallel
        if jax.device_count() > 1:
            if config.batch % jax.device_count():
                raise JaxfuseError(None, f"{{batch}} {config.batch} is not a multiple of the "
                                   f"{jax.device_count()} devices", settings=("batch",))
            mesh = parallel.data_mesh()
            state = parallel.replicate(state, mesh)
        stream = data.iterator(data.pipeline(dataset, batch=config.batch, size=config.size,
                                             augment=config.augment, seed=config.seed,
                                             steps=config.steps, process=proc, processes=procs),
                               state=data_state)

    def next_batch(i):
        if stream is None:
            if pool is None:
                return fixed_batch
            return jnp.asarray(datasets.random_crops(
                pool, np.random.default_rng([config.seed, i]), config.batch, config.size))
        local = next(stream)
        if mesh is None:
            return jnp.asarray(local)
        return parallel.global_batch(local, mesh)

    save_meta = lambda step, secs: checkpoint.make_meta(  # noqa: E731
        config.model_config, step, train=dataclasses.asdict(config), identity=ident,
        history=history, train_seconds=secs,
        **({"data_state": stream.get_state()} if stream is not None else {}))

    t0 = time.perf_counter()
    bar = progress_bar(range(start, config.steps), total=config.steps, initial=start,
                       desc="train", unit="step", enabled=progress and proc == 0)
    per_epoch = len(dataset) / config.batch if dataset is not None else None
    with runs.training_loop(bar, mngr, ckdir, history, workdir, PANELS):
        for i in bar:
            batch = next_batch(i)
            state, terms = train_step(state, batch)
            terms = {k: float(v) for k, v in terms.items()}
            runs.check_finite(terms, config.image or BUILTIN_IMAGE, i + 1)
            for k in history:
                history[k].append(terms[k])
            step = i + 1
            if per_epoch is None:
                bar.set_postfix(loss=f"{terms['total']:.4f}", refresh=False)
            else:
                rate = (step - start) * config.batch / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix(epoch=f"{i // per_epoch + 1:.0f}", loss=f"{terms['total']:.4f}",
                                img_s=f"{rate:.1f}", refresh=False)
            if step % config.checkpoint_every == 0 or step == config.steps:
                checkpoint.save(mngr, step, state["params"], save_meta(
                    step, elapsed_before + time.perf_counter() - t0), opt=state["opt"])
    seconds = elapsed_before + time.perf_counter() - t0
    mngr.wait_until_finished()
    if proc != 0:  # the summary, curves and pictures are the first process's
        return {"steps": config.steps, "train_seconds": seconds, "process": proc}

    from jaxfuse import metrics  # only needed here, at the end
    if mesh is not None:  # back to one device (the first local copy of the replicated state)
        state = jax.tree_util.tree_map(lambda x: jnp.asarray(x.addressable_data(0)), state)
    recon = np.asarray(reconstruct(state["params"], image))
    recon_clipped = np.clip(recon, 0, 255)
    ssim_val = float(losses.ssim(jnp.asarray(recon_clipped), image)[0])  # the loss's SSIM
    mse = metrics.mse(image_np[0, :, :, 0], recon_clipped[0, :, :, 0])
    psnr = metrics.psnr(image_np[0, :, :, 0], recon_clipped[0, :, :, 0])
    if history["total"]:
        runs.plot_curves(history, workdir / "loss_curves.png", PANELS)
    _save_side_by_side(image_np, recon, workdir / "reconstruction.png")
    summary = {
        "jaxfuse_version": __version__,
        "config": dataclasses.asdict(config),
        "steps": config.steps,
        "final_loss": {k: (v[-1] if v else None) for k, v in history.items()},
        "reconstruction": {"ssim": ssim_val, "psnr_db": psnr, "mse_01": mse},
        "train_seconds": seconds,
        "backend": jax.default_backend(),
        "convolutions": conv_native.describe(),
        "malloc": allocator.describe(),
        "checkpoint": str(ckdir / str(config.steps)),
    }
    if dataset is not None:
        summary["dataset"] = {**dataset.summary(), "augment": config.augment,
                              "epochs_run": config.steps * config.batch / len(dataset),
                              "devices": jax.device_count(), "processes": procs}
    io.atomic_write(workdir / "summary.json", lambda f: f.write(json.dumps(summary, indent=2).encode()))
    return summary


