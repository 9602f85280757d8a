"""Orbax checkpoints: parameters, optimizer state, step and configuration.

Layout: a checkpoint folder holds numbered step folders (Orbax's
``CheckpointManager``); each step has three items:

* ``params``: the model parameter pytree;
* ``opt``: the optimizer state and the step counter (training only);
* ``meta``: JSON ``{"format", "jaxfuse_version", "step", "model": ModelConfig,
  "train": training config, ...}``, checked on load: the format must be
  :data:`FORMAT`, the version a string, the step a non-negative integer, the
  model config valid, and the stored parameter tree (names, shapes, dtypes)
  must be exactly the one that config builds.

Every failure to read a checkpoint (missing, truncated or garbled files, a
mismatch between meta and params) is a :class:`JaxfuseError` naming the step
folder.

:func:`load_params` accepts the checkpoint folder (latest step is used), one
step folder, or a PyTorch ``state_dict`` file of the authors' code (``.model``,
``.pt``, ``.pth``; needs the ``torch`` extra).
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxfuse import __version__
from jaxfuse.errors import JaxfuseError
from jaxfuse.model import ARCHS, ModelConfig, config_from_params, init_params

FORMAT = "jaxfuse-checkpoint-1"
TORCH_SUFFIXES = (".model", ".pt", ".pth")

logging.getLogger("absl").setLevel(logging.ERROR)


def _ocp():
    import orbax.checkpoint as ocp  # imported lazily: it is slow to import
    _silence_closed_loop_reports()
    return ocp


def manager(directory, *, max_to_keep: int | None = 3, read_only: bool = False):
    """An Orbax ``CheckpointManager`` over ``directory`` (synchronous saves).

    ``max_to_keep``: how many step folders to keep (None: all); Orbax removes
    the oldest only after a newer step has been written completely.
    """
    ocp = _ocp()
    # cleanup_tmp_directories: a save killed midway leaves ``<step>.orbax-checkpoint-tmp``,
    # which the resumed run would otherwise trip over when it saves that step again.
    opts = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, enable_async_checkpointing=False, read_only=read_only,
        create=not read_only, cleanup_tmp_directories=not read_only)
    return ocp.CheckpointManager(Path(directory).absolute(), options=opts)


def make_meta(config: ModelConfig, step: int, train: dict | None = None, **extra) -> dict:
    return {"format": FORMAT, "jaxfuse_version": __version__, "step": int(step),
            "model": config.to_dict(), "train": train or {}, **extra}


def save(mngr, step: int, params, meta: dict, opt: Any = None) -> None:
    """Saves one step atomically (Orbax writes to a temporary folder and renames).

    State replicated over several devices (data-parallel training, one
    process or several) is saved as one host copy, written by the first
    process: the checkpoint is then the one a single device writes, and reads
    back anywhere.
    """
    ocp = _ocp()
    params, opt = _one_copy(params), _one_copy(opt)
    items = {"params": ocp.args.StandardSave(params), "meta": ocp.args.JsonSave(meta)}
    if opt is not None:
        items["opt"] = ocp.args.StandardSave(opt)
    with _interrupt_after():
        mngr.save(int(step), args=ocp.args.Composite(**items), force=True)
        mngr.wait_until_finished()


@contextlib.contextmanager
def _interrupt_after():
    """Ctrl-C (SIGINT) during a save takes effect when the save is done.

    A KeyboardInterrupt raised inside Orbax's save (its threads and event loops) can
    leave the process hung; deferred, the step being written is kept and the
    interrupt arrives at the training loop right after it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.getsignal(signal.SIGINT)
    if not callable(before):  # SIG_IGN / SIG_DFL: nothing to defer
        yield
        return
    pending = []
    signal.signal(signal.SIGINT, lambda sig, frame: pending.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
        if pending:
            before(signal.SIGINT, pending[-1])


def _one_copy(tree):
    """Each leaf replicated over several devices as a NumPy copy of its first local replica."""
    def one(x):
        if isinstance(x, jax.Array) and len(x.sharding.device_set) > 1:
            if not x.sharding.is_fully_replicated:
                raise ValueError("checkpoint.save takes replicated state, not sharded state")
            return np.asarray(x.addressable_data(0))
        return x
    return jax.tree_util.tree_map(one, tree)


def _on_one_device(tree):
    """Restore targets on this process's first device, whatever devices saved the arrays
    (a run on 4 devices, or 2 processes, is then read where one device runs)."""
    sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


def abstract_params(config: ModelConfig):
    return jax.eval_shape(lambda: init_params(jax.random.key(0), config))


def step_folders(path) -> list[tuple[int, Path]]:
    """The finished step folders of a checkpoint folder, ``[(step, folder), ...]`` by step.

    A finished step is a folder named by its number (Orbax writes a step
    under a temporary name and renames it when complete) holding a ``meta``
    item. A missing or unreadable ``path`` has none.
    """
    try:
        entries = list(Path(path).iterdir())
    except OSError:
        return []
    return sorted((int(p.name), p) for p in entries
                  if p.name.isdigit() and p.is_dir() and (p / "meta").is_dir())


def _step_dir(path: Path) -> Path:
    """The step folder to read: ``path`` itself or the latest step inside it (or inside
    ``path/checkpoints``, so a training workdir can be given as it is)."""
    if (path / "meta").is_dir() or (path / "params").is_dir():
        return path
    if (path / "checkpoints").is_dir():
        path = path / "checkpoints"
    steps = step_folders(path)
    if not steps:
        raise JaxfuseError(path, "not a jaxfuse checkpoint (no step folders with params and meta)")
    return steps[-1][1]


def latest_meta(path) -> tuple[Path, dict]:
    """``(step_dir, meta)`` of a checkpoint folder's latest step (or of a step folder)."""
    path = Path(path)
    if not path.is_dir():
        raise JaxfuseError(path, "checkpoint folder does not exist")
    step_dir = _step_dir(path)
    return step_dir, read_meta(step_dir)


def read_meta(step_dir: Path) -> dict:
    f = step_dir / "meta" / "metadata"
    try:
        meta = json.loads(f.read_text())
    except FileNotFoundError:
        raise JaxfuseError(step_dir, "not a jaxfuse checkpoint (no meta item)") from None
    except (OSError, ValueError) as e:
        raise JaxfuseError(f, f"corrupt checkpoint metadata ({type(e).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise JaxfuseError(f, f"not a {FORMAT} checkpoint (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if not isinstance(meta.get("jaxfuse_version"), str):
        raise JaxfuseError(f, "corrupt checkpoint metadata (no jaxfuse_version)")
    step = meta.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise JaxfuseError(f, f"corrupt checkpoint metadata (step {step!r})")
    return meta


def _config_of(meta: dict, where) -> ModelConfig:
    model = meta.get("model")
    if not isinstance(model, dict):
        raise JaxfuseError(where, f"checkpoint has an unusable model config ({model!r})")
    try:
        config = ModelConfig.from_dict(model)
    except (TypeError, ValueError) as e:
        raise JaxfuseError(where, f"checkpoint has an unusable model config ({e})") from None
    # from_dict checks names only; a hand-edited "shared": "no" would be truthy.
    for field, value in config.to_dict().items():
        default = getattr(ModelConfig, field)
        if type(value) is not type(default):
            raise JaxfuseError(where, f"checkpoint has an unusable model config "
                               f"({field}={value!r}, expected {type(default).__name__})")
    if config.arch not in ARCHS:
        raise JaxfuseError(where, f"checkpoint is for an unknown architecture {config.arch!r} "
                           f"(this jaxfuse knows {', '.join(ARCHS)})")
    return config


def _orbax_failed(step_dir: Path, e: Exception) -> JaxfuseError:
    msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    return JaxfuseError(step_dir, f"corrupt or mismatched checkpoint ({msg})")


def _silence_closed_loop_reports() -> None:
    """After a failed Orbax read, TensorStore completes the reads still in flight
    into Orbax's already-closed asyncio loop, and Python prints each as an
    unraisable "RuntimeError: Event loop is closed" traceback, which would bury
    the one-line error. Drop exactly those reports. Installed before the first
    Orbax call, since the reports can arrive before the failure is raised."""
    if getattr(sys.unraisablehook, "_jaxfuse", False):
        return
    previous = sys.unraisablehook

    def hook(unraisable):
        e = unraisable.exc_value
        if isinstance(e, RuntimeError) and "Event loop is closed" in str(e):
            return
        previous(unraisable)

    hook._jaxfuse = True
    sys.unraisablehook = hook


def _check_layout(step_dir: Path, config: ModelConfig, abstract) -> None:
    """The stored params must be exactly ``abstract``, the tree ``config`` builds."""
    ocp = _ocp()
    try:
        stored = ocp.StandardCheckpointHandler().metadata((step_dir / "params").absolute())
        stored = getattr(stored, "item_metadata", stored)
        stored = {_keystr(k): (tuple(v.shape), str(v.dtype))
                  for k, v in jax.tree_util.tree_flatten_with_path(stored)[0]}
    except Exception as e:  # noqa: BLE001 - Orbax/TensorStore raise many types for bad files
        raise _orbax_failed(step_dir, e) from None
    want = {_keystr(k): (tuple(v.shape), str(v.dtype))
            for k, v in jax.tree_util.tree_flatten_with_path(abstract)[0]}
    missing = sorted(set(want) - set(stored))
    extra = sorted(set(stored) - set(want))
    wrong = sorted(k for k in set(want) & set(stored) if want[k] != stored[k])
    if missing or extra or wrong:
        parts = ([f"missing {', '.join(missing[:3])}"] if missing else []) + \
                ([f"unexpected {', '.join(extra[:3])}"] if extra else []) + \
                [f"{k} is {stored[k][1]}{list(stored[k][0])}, expected {want[k][1]}{list(want[k][0])}"
                 for k in wrong[:3]]
        raise JaxfuseError(step_dir, f"params do not match the model config recorded in meta "
                           f"({config}): {'; '.join(parts)}")


def _keystr(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def restore(path, *, config: ModelConfig | None = None, with_opt_like: Any = None):
    """Restores ``(params, meta, opt)`` from a checkpoint folder or step folder.

    Args:
      path: a checkpoint folder (latest step) or one step folder.
      config: if given, the checkpoint must have been made for this config.
      with_opt_like: an optimizer state pytree (or abstract one) to restore the
        ``opt`` item into; ``None`` skips it.

    Raises:
      JaxfuseError: missing, corrupt or mismatched checkpoints.
    """
    path = Path(path)
    if not path.exists():
        raise JaxfuseError(path, "checkpoint does not exist")
    if not path.is_dir():
        raise JaxfuseError(path, "not a jaxfuse checkpoint folder (and not a .model/.pt/.pth file)")
    step_dir = _step_dir(path)
    meta = read_meta(step_dir)
    ckpt_config = _config_of(meta, step_dir)
    if config is not None and ckpt_config != config:
        raise JaxfuseError(step_dir, f"checkpoint is for {ckpt_config}, not {config}")
    if not (step_dir / "params").is_dir():
        raise JaxfuseError(step_dir, "not a complete jaxfuse checkpoint (no params item)")
    abstract = abstract_params(ckpt_config)
    _check_layout(step_dir, ckpt_config, abstract)
    ocp = _ocp()
    items = {"params": ocp.args.StandardRestore(_on_one_device(abstract))}
    if with_opt_like is not None:
        items["opt"] = ocp.args.StandardRestore(_on_one_device(with_opt_like))
    try:
        ckptr = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
        out = ckptr.restore(step_dir.absolute(), args=ocp.args.Composite(**items))
    except Exception as e:  # noqa: BLE001 - Orbax/TensorStore raise many types for bad files
        raise _orbax_failed(step_dir, e) from None
    params = out["params"]
    _check_finite(params, step_dir)
    return params, meta, (out["opt"] if with_opt_like is not None else None)


def _check_finite(params, where) -> None:
    import numpy as np
    for leaf in jax.tree_util.tree_leaves(params):
        if not np.all(np.isfinite(np.asarray(leaf))):
            raise JaxfuseError(where, "checkpoint parameters contain NaN or Inf")


def load_params(path, *, config: ModelConfig | None = None):
    """Loads ``(params, config)`` from any checkpoint jaxfuse understands."""
    path = Path(path)
    if path.suffix.lower() in TORCH_SUFFIXES and path.is_file():
        import warnings

        from jaxfuse import torch_io
        with warnings.catch_warnings():  # torch.load warns about odd pickles before refusing them
            warnings.simplefilter("ignore")
            params = torch_io.load_torch_checkpoint(path)
        got = config_from_params(params)
        if config is not None and got != config:
            raise JaxfuseError(path, f"checkpoint is for {got}, not {config}")
        return params, got
    params, meta, _ = restore(path, config=config)
    return params, _config_of(meta, path)
