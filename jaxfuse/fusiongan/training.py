"""FusionGAN training: the config, the jitted generator + discriminator step, checkpoints and
exact resume, the summary and loss curves.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from jaxfuse import __version__, checkpoint, io, model, runs, xla
from jaxfuse.cli import progress_bar
from jaxfuse.errors import JaxfuseError
from jaxfuse.fusiongan.data import PairPatches, epoch_order, load_pair_patches
from jaxfuse.fusiongan.losses import adversarial_loss, content_loss, discriminator_loss, soft_labels
from jaxfuse.fusiongan.networks import (
    BATCH, D_STEPS, Discriminator, EPOCHS, FAKE_LABELS, Generator, LAMBDA, LR, MIN_PATCH, PAD,
    PATCH, Params, REAL_LABELS, RECIPE, _bad, init_variables)

@dataclasses.dataclass(frozen=True)
class GANConfig:
    """Everything that defines a FusionGAN training run (defaults: the authors' recipe).

    ``steps`` counts generator steps (each after ``d_steps`` discriminator
    steps); None runs ``epochs`` full passes over the patches.
    """
    pairs_dataset: str
    epochs: int = EPOCHS
    steps: int | None = None
    batch: int = BATCH
    lr: float = LR
    seed: int = 0
    d_steps: int = D_STEPS
    patch: int = PATCH
    checkpoint_every: int = 100

    def validate(self) -> None:
        """Raises JaxfuseError naming the first bad setting."""
        if self.epochs < 1:
            raise _bad("epochs", f"must be a positive integer, got {self.epochs}")
        if self.steps is not None and self.steps < 1:
            raise _bad("steps", f"must be a positive integer, got {self.steps}")
        if self.batch < 1:
            raise _bad("batch", f"must be a positive integer, got {self.batch}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise _bad("lr", f"must be a positive number, got {self.lr}")
        if self.d_steps < 1:
            raise _bad("d_steps", f"must be a positive integer, got {self.d_steps}")
        if self.patch < MIN_PATCH:
            raise _bad("patch", f"{self.patch} is below the {MIN_PATCH} pixels the discriminator's "
                       "four stride-2 convolutions need")
        if self.checkpoint_every < 1:
            raise _bad("checkpoint_every", f"must be positive, got {self.checkpoint_every}")

    @property
    def model_config(self) -> model.ModelConfig:
        return model.arch_spec("fusiongan").config()


HISTORY_KEYS = ("discriminator", "adversarial", "content", "total")
PANELS = (("discriminator", "discriminator loss"),
          ("adversarial", "generator: adversarial term"),
          ("content", "generator: content loss (L_content)"),
          ("total", f"generator loss (adversarial + {LAMBDA:g}·content)"))


def init_state(config: GANConfig) -> dict:
    """The training state pytree: both networks' variables, both Adam states, the step."""
    g, d = init_variables(jax.random.key(config.seed), patch=config.patch)
    opt = optax.adam(config.lr)
    return {"g": g["params"], "d": d["params"], "g_stats": g["batch_stats"],
            "d_stats": d["batch_stats"], "g_opt": opt.init(g["params"]),
            "d_opt": opt.init(d["params"]), "step": jnp.zeros((), jnp.int32)}


@functools.lru_cache(maxsize=None)
def make_train_step(lr: float, d_steps: int = D_STEPS):
    """A jitted ``step(state, ir, vis, key) -> (state, terms)``; the state is donated.

    ``ir``, ``vis``: ``(B, P, P, 1)`` patches on the networks' scale. One step
    is ``d_steps`` discriminator updates on the generator's current output,
    then one generator update against the updated discriminator.
    """
    opt = optax.adam(lr)
    gen, disc = Generator(), Discriminator()

    def d_loss_fn(d, stats, real, fake, key):
        ka, kb = jax.random.split(key)
        d_real, new = disc.apply({"params": d, "batch_stats": stats}, real, update=True,
                                 mutable=["batch_stats"])
        d_fake = disc.apply({"params": d, "batch_stats": stats}, fake)
        n = real.shape[0]
        loss = jnp.mean(discriminator_loss(d_real, d_fake, soft_labels(ka, n, REAL_LABELS),
                                           soft_labels(kb, n, FAKE_LABELS)))
        return loss, new["batch_stats"]

    def step(state, ir, vis, key):
        crop = lambda a: a[:, PAD:a.shape[1] - PAD, PAD:a.shape[2] - PAD]  # noqa: E731
        ir_label, vis_label = crop(ir), crop(vis)
        x = jnp.concatenate([ir, vis], axis=-1)
        keys = jax.random.split(key, d_steps + 1)

        def run_gen(g):
            out, new = gen.apply({"params": g, "batch_stats": state["g_stats"]}, x, mode="train",
                                 mutable=["batch_stats"])
            return out, new["batch_stats"]

        fused, gen_vjp, g_stats = jax.vjp(run_gen, state["g"], has_aux=True)
        fake = lax.stop_gradient(fused)

        def d_step(carry, k):
            d, d_stats, d_opt = carry
            (loss, d_stats), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
                d, d_stats, vis_label, fake, k)
            updates, d_opt = opt.update(grads, d_opt, d)
            return (optax.apply_updates(d, updates), d_stats, d_opt), loss

        # A scan, not an unrolled loop: one copy of the discriminator step to compile.
        (d, d_stats, d_opt), d_losses = lax.scan(
            d_step, (state["d"], state["d_stats"], state["d_opt"]), keys[:d_steps])

        def g_loss_fn(f):
            d_fake = disc.apply({"params": d, "batch_stats": d_stats}, f)
            adv = jnp.mean(adversarial_loss(d_fake, soft_labels(keys[-1], f.shape[0], REAL_LABELS)))
            content = jnp.mean(content_loss(f, ir_label, vis_label))
            total = adv + LAMBDA * content
            return total, {"adversarial": adv, "content": content, "total": total}

        (_, terms), df = jax.value_and_grad(g_loss_fn, has_aux=True)(fused)
        (g_grads,) = gen_vjp(df)
        updates, g_opt = opt.update(g_grads, state["g_opt"], state["g"])
        g = optax.apply_updates(state["g"], updates)
        terms["discriminator"] = d_losses[-1]
        new_state = {"g": g, "d": d, "g_stats": g_stats, "d_stats": d_stats, "g_opt": g_opt,
                     "d_opt": d_opt, "step": state["step"] + 1}
        return new_state, terms

    return xla.jit(step, donate_argnums=(0,))


def _opt_item(state: dict) -> dict:
    """The training state beside the generator's parameters: the checkpoint's ``opt`` item."""
    return {k: state[k] for k in ("d", "g_stats", "d_stats", "g_opt", "d_opt")}


def _identity(config: GANConfig, data: PairPatches) -> dict:
    """What must match for a resumed run to continue the same run."""
    d = dataclasses.asdict(config)
    for k in ("steps", "epochs", "checkpoint_every"):
        d.pop(k)
    d["recipe"] = RECIPE
    d["pairs_sha256"] = data.sha256
    return d


def _sample(params: Params, data: PairPatches) -> np.ndarray:
    """infrared | visible | fused of the first training pair, uint8 RGB (for a look)."""
    from jaxfuse import fusion, pipeline
    img = data.images[0] * 127.5 + 127.5
    ir, vis = img[..., 0], img[..., 1]
    fused = fusion.fuse_pair(params, ir, vis, strategy="generator")
    return pipeline.overview_image([(ir, vis, fused)], height=min(240, ir.shape[0]))


def train_and_evaluate(config: GANConfig, workdir, *, resume: bool = False,
                       overwrite: bool = False, progress: bool = True,
                       keep_checkpoints: int | None = None, log=None) -> dict:
    """Trains FusionGAN on a pairs folder; writes checkpoints, curves and a summary to ``workdir``.

    Writes ``workdir/checkpoints/<step>/`` (Orbax: the generator as
    ``params``, the rest of the training state as ``opt``),
    ``loss_curves.png``, ``sample.png`` (infrared | visible | fused, the first
    training pair) and ``summary.json``. Arguments, resuming, Ctrl-C and
    errors as :func:`jaxfuse.training.train_and_evaluate`; ``steps`` and
    ``epochs`` may change on a resume.

    Returns:
      The summary dict.
    """
    from jaxfuse import training
    config.validate()
    if keep_checkpoints is None:
        keep_checkpoints = training.KEEP_CHECKPOINTS
    if keep_checkpoints < 0:
        raise _bad("keep_checkpoints", f"must be 0 (keep all) or positive, got {keep_checkpoints}")
    workdir = Path(workdir)
    runs.check_workdir(workdir, resume=resume, overwrite=overwrite)
    data = load_pair_patches(config.pairs_dataset, patch=config.patch)
    per_epoch = len(data) // config.batch
    if per_epoch < 1:
        raise JaxfuseError(config.pairs_dataset, f"has {len(data)} patches, fewer than one "
                           f"{{batch}} of {config.batch}", settings=("batch",))
    total = config.steps if config.steps is not None else config.epochs * per_epoch
    ident = _identity(config, data)
    ckdir, resume_from, history = runs.open_run(
        workdir, ident, total, resume=resume, overwrite=overwrite, keys=HISTORY_KEYS)

    state = init_state(config)
    elapsed_before = 0.0
    mngr = checkpoint.manager(ckdir, max_to_keep=keep_checkpoints or None)
    if resume_from is not None:
        params, meta, opt = checkpoint.restore(resume_from, config=config.model_config,
                                               with_opt_like=_opt_item(state))
        state = {"g": params["generator"], **opt, "step": jnp.asarray(meta["step"], jnp.int32)}
        # Orbax hands back arrays committed to a device; fresh ones are not, and jit
        # compiles the step again for the other kind. Same values, uncommitted.
        state = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a)), state)
        elapsed_before = float(meta.get("train_seconds", 0.0) or 0.0)
    start = int(state["step"])
    if log is not None and resume:
        log(f"resuming at step {start} of {total} from {resume_from}" if resume_from
            else f"nothing to resume in {ckdir}; starting at step 0 of {total}")

    train_step = make_train_step(config.lr, config.d_steps)
    base_key = jax.random.fold_in(jax.random.key(config.seed), 1)  # the labels' stream, apart from init's
    train = {**dataclasses.asdict(config), "recipe": RECIPE, "total_steps": total}
    save_meta = lambda step, secs: checkpoint.make_meta(  # noqa: E731
        config.model_config, step, train=train, identity=ident, history=history,
        train_seconds=secs)
    order, order_epoch = None, None
    t0 = time.perf_counter()
    bar = progress_bar(range(start, total), total=total, initial=start, desc="train fusiongan",
                       unit="step", enabled=progress)
    with runs.training_loop(bar, mngr, ckdir, history, workdir, PANELS):
        for i in bar:
            epoch, j = divmod(i, per_epoch)
            if order_epoch != epoch:
                order, order_epoch = epoch_order(len(data), config.seed, epoch), epoch
            ir, vis = data.batch(order[j * config.batch:(j + 1) * config.batch])
            state, terms = train_step(state, ir, vis, jax.random.fold_in(base_key, i))
            terms = {k: float(v) for k, v in terms.items()}
            runs.check_finite(terms, config.pairs_dataset, i + 1)
            for k in history:
                history[k].append(terms[k])
            step = i + 1
            bar.set_postfix(d=f"{terms['discriminator']:.3f}", g=f"{terms['total']:.3f}",
                            refresh=False)
            if step % config.checkpoint_every == 0 or step == total:
                checkpoint.save(mngr, step, {"generator": state["g"]}, save_meta(
                    step, elapsed_before + time.perf_counter() - t0), opt=_opt_item(state))
    seconds = elapsed_before + time.perf_counter() - t0

    params = {"generator": state["g"]}
    if history["total"]:
        runs.plot_curves(history, workdir / "loss_curves.png", PANELS)
    io.save_image(workdir / "sample.png", _sample(params, data), overwrite=True)
    done = total - start
    summary = {
        "jaxfuse_version": __version__,
        "arch": "fusiongan",
        "config": dataclasses.asdict(config),
        "recipe": RECIPE,
        "dataset": {"pairs": len(data.names), "patches": len(data), "steps_per_epoch": per_epoch,
                    "epochs_run": total / per_epoch, "sha256": data.sha256},
        "steps": total,
        "final_loss": {k: (v[-1] if v else None) for k, v in history.items()},
        "train_seconds": seconds,
        "seconds_per_step_this_run": (time.perf_counter() - t0) / done if done else None,
        "backend": jax.default_backend(),
        "checkpoint": str(ckdir / str(total)),
    }
    io.atomic_write(workdir / "summary.json", lambda f: f.write(json.dumps(summary, indent=2).encode()))
    return summary
