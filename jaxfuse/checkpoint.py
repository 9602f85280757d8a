"""Orbax checkpoints: parameters, optimizer state, step and configuration.

Layout: a checkpoint folder holds numbered step folders (Orbax's
``CheckpointManager``); each step has three items:

* ``params``: the model parameter pytree;
* ``opt``: the optimizer state and the step counter (training only);
* ``meta``: JSON ``{"format", "jaxfuse_version", "step", "model": ModelConfig,
  "train": training config, ...}``, checked on load.

:func:`load_params` accepts the checkpoint folder (latest step is used), one
step folder, or a PyTorch ``state_dict`` file of the authors' code (``.model``,
``.pt``, ``.pth``; needs the ``torch`` extra).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import jax

from jaxfuse import __version__
from jaxfuse.errors import JaxfuseError
from jaxfuse.model import ModelConfig, init_params

FORMAT = "jaxfuse-checkpoint-1"
TORCH_SUFFIXES = (".model", ".pt", ".pth")

logging.getLogger("absl").setLevel(logging.ERROR)


def _ocp():
    import orbax.checkpoint as ocp  # imported lazily: it is slow to import
    return ocp


def manager(directory, *, max_to_keep: int = 3, read_only: bool = False):
    """An Orbax ``CheckpointManager`` over ``directory`` (synchronous saves)."""
    ocp = _ocp()
    opts = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, enable_async_checkpointing=False, read_only=read_only,
        create=not read_only)
    return ocp.CheckpointManager(Path(directory).absolute(), options=opts)


def make_meta(config: ModelConfig, step: int, train: dict | None = None, **extra) -> dict:
    return {"format": FORMAT, "jaxfuse_version": __version__, "step": int(step),
            "model": config.to_dict(), "train": train or {}, **extra}


def save(mngr, step: int, params, meta: dict, opt: Any = None) -> None:
    """Saves one step atomically (Orbax writes to a temporary folder and renames)."""
    ocp = _ocp()
    items = {"params": ocp.args.StandardSave(params), "meta": ocp.args.JsonSave(meta)}
    if opt is not None:
        items["opt"] = ocp.args.StandardSave(opt)
    mngr.save(int(step), args=ocp.args.Composite(**items), force=True)
    mngr.wait_until_finished()


def abstract_params(config: ModelConfig):
    return jax.eval_shape(lambda: init_params(jax.random.key(0), config))


def _step_dir(path: Path) -> Path:
    """The step folder to read: ``path`` itself or the latest step inside it."""
    if (path / "meta").is_dir() or (path / "params").is_dir():
        return path
    # Orbax writes a step under a temporary name and renames it when complete,
    # so numeric folder names are finished steps.
    steps = sorted((int(p.name), p) for p in path.iterdir()
                   if p.is_dir() and p.name.isdigit() and (p / "meta").is_dir())
    if not steps:
        raise JaxfuseError(path, "not a jaxfuse checkpoint (no step folders with params and meta)")
    return steps[-1][1]


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
    return meta


def _config_of(meta: dict, where) -> ModelConfig:
    try:
        return ModelConfig.from_dict(meta["model"])
    except (KeyError, TypeError, ValueError) as e:
        raise JaxfuseError(where, f"checkpoint has an unusable model config ({e})") from None


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
    ocp = _ocp()
    items = {"params": ocp.args.StandardRestore(abstract_params(ckpt_config))}
    if with_opt_like is not None:
        items["opt"] = ocp.args.StandardRestore(
            jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), with_opt_like))
    try:
        ckptr = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
        out = ckptr.restore(step_dir.absolute(), args=ocp.args.Composite(**items))
    except Exception as e:  # Orbax/TensorStore raise many types for bad files
        msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise JaxfuseError(step_dir, f"corrupt or mismatched checkpoint ({msg})") from None
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
        from jaxfuse import torch_io
        params = torch_io.load_torch_checkpoint(path)
        got = ModelConfig(shared="conv3" in params["encoder"]["res2net"])
        if config is not None and got != config:
            raise JaxfuseError(path, f"checkpoint is for {got}, not {config}")
        return params, got
    params, meta, _ = restore(path, config=config)
    return params, _config_of(meta, path)
