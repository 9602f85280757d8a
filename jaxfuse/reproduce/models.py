"""Stage 1: the models of the reproduction, trained here or reused from finished runs."""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from jaxfuse.errors import JaxfuseError

from .paper import BASELINE_KINDS, MAIN_ARCH, METHOD_STRATEGY, strategies_for, title
from .settings import Settings

Log = Callable[[str], None]


@dataclasses.dataclass
class Model:
    """One fusion model: a trained network's parameters, or a weight-free method, and its origin."""
    key: str                  # its folder name under train/ and fused/
    label: str
    params: object            # a parameter tree, or a jaxfuse.methods.Method
    source: str               # "trained", "reused", "resumed", "checkpoint `<path>`", ...
    train_seconds: float | None
    workdir: Path | None
    arch: str = MAIN_ARCH     # the architecture, or the method's name
    method: bool = False      # a weight-free method: one "strategy", nothing to reconstruct
    checkpoint: Path | None = None  # the checkpoint folder it was loaded from (--checkpoint & co)

    @property
    def strategies(self) -> tuple[str, ...]:
        """The fusion strategies this model is scored with."""
        return (METHOD_STRATEGY,) if self.method else strategies_for(self.arch)

    @property
    def reconstructs(self) -> bool:
        """Whether the model is an autoencoder, so Table III can score its reconstructions."""
        if self.method:
            return False
        from jaxfuse import model
        return model.arch_spec(self.arch).default_strategy != "generator"

    @functools.cached_property
    def fingerprint(self) -> str:
        """A hash of the parameters (a method: its settings and code): fused images cached for
        other parameters are stale."""
        import hashlib

        import jax
        h = hashlib.sha256()
        if self.method:
            h.update(repr(self.params).encode())
            h.update(self.params.source.encode())
            return h.hexdigest()[:16]
        for path, leaf in jax.tree_util.tree_flatten_with_path(self.params)[0]:
            a = np.asarray(leaf)
            h.update(f"{jax.tree_util.keystr(path)}{a.shape}{a.dtype}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]


@dataclasses.dataclass
class ModelSet:
    """Every model of the run, in training order, and which plays which part."""
    models: dict[str, Model]
    primary_key: str          # the single-image model of Tables II–IV
    many_key: str             # the many-image model of Tables II–III
    baseline_keys: dict[str, dict[str, str]]  # method -> {"single": key[, "many": key]}
    compare_key: str | None = None  # the main recipe with the other loss

    def __len__(self) -> int:
        return len(self.models)


def image_key(image: str) -> str:
    """A training image as keys and labels name it: a file's stem, or the bundled name."""
    return Path(image).stem if Path(image).is_file() else image


def single_key(settings: Settings, image: str, seed: int, loss: str | None = None) -> str:
    return (f"single-{image_key(image)}-seed{seed}-{settings.steps}steps-{settings.size}px-"
            f"{loss or settings.loss}")


def many_sources(settings: Settings) -> str:
    """The many-image model's folders as keys name them: ``vis+bundled``."""
    return "+".join(Path(src).resolve().name if Path(src).is_dir() else src
                    for src in settings.many_images)


def many_label(settings: Settings) -> str:
    return f"many-image ({many_sources(settings)}, {settings.many_augment})"


def many_key(settings: Settings) -> str:
    return (f"many-{many_sources(settings)}-{settings.many_augment}-seed{settings.seed0}-"
            f"{settings.many_steps_}steps-{settings.size}px-{settings.loss}")


def single_config(settings: Settings, image: str, seed: int, arch: str = MAIN_ARCH,
                  loss: str | None = None):
    from jaxfuse.training import TrainConfig
    return TrainConfig(arch=arch, image=image, steps=settings.steps, seed=seed,
                       loss=loss or settings.loss, size=settings.size)


def many_config(settings: Settings, arch: str = MAIN_ARCH):
    from jaxfuse.training import TrainConfig
    from jaxfuse.training import MANY_BATCH, MANY_LR
    images = tuple(src if src == "bundled" else str(Path(src).resolve())
                   for src in settings.many_images)
    return TrainConfig(arch=arch, images=images, augment=settings.many_augment, batch=MANY_BATCH,
                       lr=MANY_LR, steps=settings.many_steps_, seed=settings.seed0,
                       loss=settings.loss, size=settings.size)


def train_models(settings: Settings, out: Path, log: Log) -> ModelSet:
    """Trains (or reuses, or resumes) every model the tables need, under ``out/train``.

    The single-image models (each seed on the main image, each other image on
    the main seed), the main recipe with the other loss, the many-image model
    and, per comparison network, its single- and many-image models; the
    weight-free methods and the shipped FusionGAN need no training.
    ``settings.checkpoint``, ``settings.compare_checkpoint``,
    ``settings.many_checkpoint`` and ``settings.fusiongan_checkpoint`` stand
    in for those models.
    """
    models: dict[str, Model] = {}
    primary = _primary_from_checkpoint(settings, models, log)
    wanted = [(settings.image0, s) for s in settings.seeds]
    wanted += [(im, settings.seed0) for im in settings.images[1:]]
    for image, seed in wanted:
        k = single_key(settings, image, seed)
        if k not in models:
            models[k] = _train(k, f"single-image {image_key(image)} seed {seed}",
                               single_config(settings, image, seed), out, log)
    compare = settings.compare_loss_
    compare_key = None
    if compare is not None:
        compare_key = single_key(settings, settings.image0, settings.seed0, compare)
        label = f"single-image {image_key(settings.image0)} seed {settings.seed0}, loss {compare}"
        if settings.compare_checkpoint is not None:
            recorded = (_checkpoint_train_config(settings.compare_checkpoint) or {}).get("loss")
            if recorded is not None and recorded != compare:
                raise JaxfuseError(settings.compare_checkpoint, f"was trained with loss {recorded}, "
                                   f"not {compare}", settings=("compare_checkpoint",))
            models[compare_key] = _from_checkpoint(compare_key, label + " (checkpoint)",
                                                   settings.compare_checkpoint, log)
        else:
            models[compare_key] = _train(compare_key, label, single_config(
                settings, settings.image0, settings.seed0, loss=compare), out, log)
    if settings.many_checkpoint is not None:
        many = "many-checkpoint-" + Path(settings.many_checkpoint).resolve().name
        models[many] = _from_checkpoint(many, "many-image (--many-checkpoint)",
                                        settings.many_checkpoint, log)
    else:
        many = many_key(settings)
        models[many] = _train(many, many_label(settings), many_config(settings), out, log)
    baseline_keys = {}
    for name in settings.baselines:
        kind = BASELINE_KINDS[name]
        if kind == "method":
            baseline_keys[name] = {"single": name}
            models[name] = _method(name, log, settings.quick)
        elif kind == "pairs-network":
            baseline_keys[name] = {"single": _pairs_network(name, settings, models, log)}
        else:
            ks = baseline_keys[name] = {
                "single": f"{name}-{single_key(settings, settings.image0, settings.seed0)}"}
            models[ks["single"]] = _train(ks["single"], f"{name} single-image "
                                          f"{image_key(settings.image0)}", single_config(
                                              settings, settings.image0, settings.seed0, name),
                                          out, log)
            if settings.baseline_many:
                ks["many"] = f"{name}-{many_key(settings)}"
                models[ks["many"]] = _train(ks["many"], f"{name} {many_label(settings)}",
                                            many_config(settings, name), out, log)
    return ModelSet(models, primary, many, baseline_keys, compare_key)


#: A ``--quick`` run's settings for the methods whose defaults take minutes a pair (K-SVD):
#: a smoke run checks the path, not the numbers. JSR and JSRSD share them, so one dictionary.
QUICK_METHOD_OPTIONS = {m: {"ksvd_iters": 3, "train_patches": 4000} for m in ("jsr", "jsrsd")}


def _method(name: str, log: Log, quick_run: bool = False) -> Model:
    """A weight-free comparison method (:mod:`jaxfuse.methods`): nothing to train."""
    from jaxfuse.methods import get_method
    method = get_method(name)
    quick = QUICK_METHOD_OPTIONS.get(name) if quick_run else None
    if quick:
        method = dataclasses.replace(method, options={**method.options, **quick})
    log(f"  {method.title}: no weights ({method.reference})"
        + (f"; --quick: {', '.join(f'{k}={v}' for k, v in quick.items())}" if quick else ""))
    return Model(name, method.title, method, "no weights (`jaxfuse.methods`)", None, None, name,
                 method=True)


def _pairs_network(name: str, settings: Settings, models: dict, log: Log) -> str:
    """Loads a network trained on infrared/visible pairs (FusionGAN) into ``models``; its key.

    ``settings.fusiongan_checkpoint``, or the checkpoint jaxfuse ships.
    """
    from jaxfuse import assets
    given = settings.fusiongan_checkpoint
    path = given if given is not None else str(assets.shipped_checkpoint(name))
    key = f"{name}-" + ("shipped" if given is None else Path(given).resolve().name)
    m = models[key] = _from_checkpoint(key, f"{title(name)} ({'shipped' if given is None else 'checkpoint'})",
                                       path, log, arch=name)
    if given is None:  # not one machine's path: where it is in the repository
        m.source = f"the shipped checkpoint `checkpoints/{name}`"
    return key


def _primary_from_checkpoint(settings: Settings, models: dict, log: Log) -> str:
    """The main single-image model's key; loads ``settings.checkpoint`` into ``models`` if given.

    A checkpoint trained with exactly the main recipe takes that model's place
    (and key); any other one is kept under its own key beside the trained models.
    """
    image0, seed0 = settings.image0, settings.seed0
    key = single_key(settings, image0, seed0)
    if settings.checkpoint is None:
        return key
    recorded = _checkpoint_train_config(settings.checkpoint)
    if recorded is not None and same_train_config(recorded, single_config(settings, image0, seed0)):
        models[key] = _from_checkpoint(key, f"single-image {image_key(image0)} seed {seed0} "
                                       "(checkpoint)", settings.checkpoint, log)
        return key
    key = "checkpoint-" + Path(settings.checkpoint).resolve().name
    models[key] = _from_checkpoint(key, "single-image (--checkpoint)", settings.checkpoint, log)
    return key


def same_train_config(saved: dict, config) -> bool:
    """Whether a recorded training config is ``config`` (older records lack newer fields)."""
    from jaxfuse.training import TrainConfig
    want = json.loads(json.dumps(dataclasses.asdict(config)))  # tuples as lists, as recorded
    have = json.loads(json.dumps({**dataclasses.asdict(TrainConfig()), **saved}))
    for d in (want, have):
        d.pop("checkpoint_every", None)
        if d.get("image") is None and not d.get("dataset"):
            d["image"] = "camera"
    return want == have


def _finished_run(workdir: Path, config) -> dict | None:
    """The ``summary.json`` of a finished run of ``config`` in ``workdir``, if there is one."""
    try:
        s = json.loads((workdir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    if isinstance(s, dict) and s.get("steps") == config.steps and \
            same_train_config(s.get("config") or {}, config) and \
            (workdir / "checkpoints" / str(config.steps)).is_dir():
        return s
    return None


def _train(key: str, label: str, config, out: Path, log: Log) -> Model:
    from jaxfuse import checkpoint
    from jaxfuse.training import train_and_evaluate
    workdir = out / "train" / key
    step_dir = workdir / "checkpoints" / str(config.steps)
    s = _finished_run(workdir, config)
    if s is not None:
        params, _ = checkpoint.load_params(step_dir)
        log(f"  {label}: reusing the finished run in {workdir}")
        return Model(key, label, params, "reused", s.get("train_seconds"), workdir, config.arch)
    resume = bool(checkpoint.step_folders(workdir / "checkpoints"))
    log(f"  {label}: {'resuming' if resume else 'training'} {config.steps} steps in {workdir}")
    try:
        s = train_and_evaluate(config, workdir, resume=resume, progress=sys.stderr.isatty())
    except JaxfuseError as e:
        if e.hint != "restart":
            raise
        # the run cannot be resumed; this command has no overwrite setting, so say what to delete
        raise JaxfuseError(e.path, e.template, hint=f"delete {workdir} to start again",
                           settings=e.settings) from None
    params, _ = checkpoint.load_params(step_dir)
    return Model(key, label, params, "resumed" if resume else "trained", s["train_seconds"],
                 workdir, config.arch)


def _from_checkpoint(key: str, label: str, path: str, log: Log, arch: str = MAIN_ARCH) -> Model:
    from jaxfuse import checkpoint
    params, cfg = checkpoint.load_params(path)
    if cfg.arch != arch:
        raise JaxfuseError(path, f"is a {cfg.arch} checkpoint; the reproduction needs {arch} here")
    log(f"  {label}: using the checkpoint {path}")
    secs = None
    try:
        secs = float(checkpoint.latest_meta(path)[1].get("train_seconds"))
    except (JaxfuseError, TypeError, ValueError):  # a PyTorch file, or no time recorded
        pass
    return Model(key, label, params, f"checkpoint `{path}`", secs, None, cfg.arch,
                 checkpoint=Path(path))


def _checkpoint_train_config(path: str) -> dict | None:
    """The training config recorded in a jaxfuse checkpoint, if any."""
    from jaxfuse import checkpoint
    try:
        _, meta = checkpoint.latest_meta(path)
    except JaxfuseError:
        return None
    return meta.get("train") if isinstance(meta.get("train"), dict) else None
