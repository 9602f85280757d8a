"""Converts Res2NetFuse checkpoints between PyTorch files and jaxfuse (Orbax) folders.

:func:`convert` ``(src, dst)`` is the work behind ``jaxfuse convert IN OUT``
(:mod:`jaxfuse.commands.convert`; ``python -m jaxfuse.convert`` is the same
command). The direction is chosen by ``dst``:

* ``dst`` ends in ``.model``, ``.pt`` or ``.pth``: a PyTorch ``state_dict``
  file that the authors' code loads with
  ``model.load_state_dict(torch.load(OUT))``;
* anything else: a jaxfuse Orbax checkpoint folder (one step, ``0``, with the
  parameters and their model config; no optimizer state), which
  ``jaxfuse fuse --checkpoint OUT`` and :func:`jaxfuse.checkpoint.load_params`
  read.

``src`` is a PyTorch ``state_dict`` file (any name; ``torch.load`` with
``weights_only=True``) or a jaxfuse checkpoint folder or step folder (its
latest step). Both directions need the ``torch`` extra for the PyTorch side.

``dst`` is never overwritten without ``overwrite``; even then a folder is only
replaced when it is empty or a jaxfuse checkpoint folder. Both outputs are
written under a temporary name and renamed into place.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from jaxfuse.checkpoint import TORCH_SUFFIXES, step_folders
from jaxfuse.errors import JaxfuseError


def _load(src: Path):
    """``(params, config)`` from a PyTorch file or a jaxfuse checkpoint folder."""
    from jaxfuse import checkpoint, model
    if src.is_file():
        from jaxfuse import torch_io
        params = torch_io.load_torch_checkpoint(src)
        return params, model.config_from_params(params)
    if not src.exists():
        raise JaxfuseError(src, "no such file or folder")
    return checkpoint.load_params(src)


def _check_replaceable(d: Path) -> None:
    """Refuses unless ``d`` is empty or a checkpoint folder of numbered Orbax step folders."""
    children = list(d.iterdir())
    if not children:
        return
    if (d / "meta").is_dir() or (d / "params").is_dir():
        # Replacing one step folder with a whole checkpoint folder would nest them.
        raise JaxfuseError(d, "is one step of a jaxfuse checkpoint; name the checkpoint folder "
                              "(or a new folder) as {dst}", settings=("dst",))
    if not step_folders(d):
        raise JaxfuseError(d, "is a folder that is not a jaxfuse checkpoint; refusing to replace it")


def _check_orbax_target(dst: Path, *, overwrite: bool) -> None:
    if dst.exists():
        if not overwrite:
            raise JaxfuseError(dst, "exists", hint="overwrite")
        if not dst.is_dir():
            raise JaxfuseError(dst, "is a file; a jaxfuse checkpoint is a folder (name {dst} "
                                    ".model/.pt/.pth to write a PyTorch file)", settings=("dst",))
        _check_replaceable(dst)


def _write_orbax(params, config, dst: Path, *, overwrite: bool, source: Path) -> None:
    """Writes a one-step checkpoint folder beside ``dst``, then swaps it into place."""
    from jaxfuse import checkpoint
    _check_orbax_target(dst, overwrite=overwrite)
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent))
    except OSError as e:
        why = ("a parent folder is a file" if isinstance(e, (FileExistsError, NotADirectoryError))
               else e.strerror or str(e))
        raise JaxfuseError(dst, f"cannot write ({why})") from None
    old = None
    try:
        mngr = checkpoint.manager(tmp / "ckpt")
        meta = checkpoint.make_meta(config, 0, converted_from=str(source))
        checkpoint.save(mngr, 0, params, meta)
        mngr.close()
        if dst.exists():
            old = tmp / "old"
            os.replace(dst, old)
        os.replace(tmp / "ckpt", dst)
    except BaseException:
        if old is not None and old.exists() and not dst.exists():
            os.replace(old, dst)  # put the original back
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def convert(src, dst, *, overwrite: bool = False) -> str:
    """Converts ``src`` to ``dst`` (direction by ``dst``'s suffix); returns a summary line.

    Raises:
      JaxfuseError: unreadable or mismatched input, or an output in the way.
    """
    src, dst = Path(src), Path(dst)
    if dst.suffix.lower() in TORCH_SUFFIXES:
        from jaxfuse import torch_io
        torch_io.require_torch(dst)  # fail before loading anything if PyTorch is missing
        if dst.is_dir():
            raise JaxfuseError(dst, "is a folder; expected a .model/.pt/.pth file name")
        if dst.exists() and not overwrite:
            raise JaxfuseError(dst, "exists", hint="overwrite")
        params, config = _load(src)
        torch_io.save_torch_checkpoint(params, dst, overwrite=overwrite)
        kind = "PyTorch state_dict"
    else:
        _check_orbax_target(dst, overwrite=overwrite)  # before the (slow) load
        params, config = _load(src)
        _write_orbax(params, config, dst, overwrite=overwrite, source=src)
        kind = "jaxfuse checkpoint"
    from jaxfuse.model import arch_spec, count_params
    form = arch_spec(config).form(config)
    return f"wrote {kind} {dst} ({form} form, {count_params(params):,} parameters)"


def main(argv=None) -> int:
    """``python -m jaxfuse.convert``: the ``jaxfuse convert`` command (:mod:`jaxfuse.commands.convert`)."""
    from jaxfuse.cli import run_main
    from jaxfuse.commands import convert as command
    return run_main(command.main, argv)


if __name__ == "__main__":
    sys.exit(main())
