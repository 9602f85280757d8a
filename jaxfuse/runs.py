"""A training run's folder, for every trainer: refuse or resume, check what a resume continues,
loss curves, and what an interrupt says.

:func:`jaxfuse.training.train_and_evaluate` (the autoencoders) and
:func:`jaxfuse.fusiongan.train_and_evaluate` both run on it; each passes its own loss terms
(``keys``) and curve panels.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import warnings
from pathlib import Path

import numpy as np

from jaxfuse import __version__, checkpoint, io
from jaxfuse.errors import Interrupted, JaxfuseError


def resumable_history(meta: dict, ident: dict, where, keys, normalize=None) -> dict:
    """The loss history (``keys``) to continue from ``meta``; raises if the run cannot be resumed.

    ``normalize`` maps a recorded identity to the form compared (older records, defaults named).
    """
    saved = meta.get("identity")
    if not isinstance(saved, dict):
        raise JaxfuseError(where, "cannot resume: the checkpoint records no training settings")
    if normalize is not None:
        saved, ident = normalize(saved), normalize(ident)
    if saved != ident:
        diff = []
        for k in sorted(set(ident) | set(saved)):
            if saved.get(k) != ident.get(k):
                diff.append(f"{k[:-len('_sha256')]} (different pixels)" if k.endswith("_sha256")
                            else f"{k}={saved.get(k)!r}, now {ident.get(k)!r}")
        raise JaxfuseError(where, f"cannot resume: the checkpoint was made with different "
                           f"settings ({'; '.join(diff)})", hint="restart")
    if meta.get("jaxfuse_version") != __version__:
        raise JaxfuseError(where, f"cannot resume: the checkpoint was written by jaxfuse "
                           f"{meta.get('jaxfuse_version')}, this is {__version__}")
    step, history = meta["step"], meta.get("history")
    try:
        history = {k: [float(x) for x in history[k][:step]] for k in keys}
    except (KeyError, TypeError, ValueError):
        history = None
    if history is None or any(len(v) != step for v in history.values()):
        raise JaxfuseError(where, "cannot resume: corrupt checkpoint metadata (loss history)")
    return history


def plot_curves(history: dict, path: Path, panels) -> None:
    """One log-scale panel per ``(history key, title)`` of ``panels``, written to ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(panels), figsize=(13 * len(panels) / 3, 3.6))
    steps = np.arange(1, len(history["total"]) + 1)
    for ax, (key, title) in zip(axes, panels):
        ax.plot(steps, history[key], lw=0.8)
        ax.set_title(title)
        ax.set_xlabel("iteration")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    io.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


def check_workdir(workdir: Path, *, resume: bool = False, overwrite: bool = False) -> None:
    """Raises JaxfuseError if ``workdir`` exists and is not a folder, or holds a run
    that neither ``resume`` nor ``overwrite`` allows (as :func:`open_run` would, but
    before a trainer spends time on its data)."""
    if workdir.exists() and not workdir.is_dir():
        raise JaxfuseError(workdir, "{workdir} exists and is not a folder", settings=("workdir",))
    _refuse_existing(workdir / "checkpoints", resume, overwrite)


def _refuse_existing(ckdir: Path, resume: bool, overwrite: bool) -> None:
    if not (resume or overwrite) and checkpoint.step_folders(ckdir):
        raise JaxfuseError(ckdir, "already holds a training run", hint="resume")


def open_run(workdir: Path, ident: dict, steps: int, *, resume: bool, overwrite: bool,
             keys, normalize=None, primary: bool = True) -> tuple[Path, Path | None, dict]:
    """Readies ``workdir`` for a run: ``(ckdir, resume_from, history)``.

    An existing run is refused without ``resume`` or ``overwrite`` (and
    removed with ``overwrite``); with ``resume``, the latest checkpoint's
    settings must be ``ident`` and its step at most ``steps``, and its loss
    history (``keys``) is returned with it (identities compared through ``normalize``) (``resume_from`` is None when there
    is nothing to resume). Any training loop with Orbax checkpoints can use it.
    Only the ``primary`` process (of a ``jax.distributed`` job) removes files.
    """
    ckdir = workdir / "checkpoints"
    has_ckpt = bool(checkpoint.step_folders(ckdir))
    if has_ckpt and not resume:
        _refuse_existing(ckdir, resume, overwrite)
        if primary:
            shutil.rmtree(ckdir)
        has_ckpt = False
    history = {k: [] for k in keys}
    resume_from = None
    if resume and has_ckpt:
        # The settings first: cheap, before any compile, and clearer than a failed restore.
        resume_from, meta = checkpoint.latest_meta(ckdir)
        history = resumable_history(meta, ident, resume_from, keys, normalize)
        if meta["step"] > steps:
            raise JaxfuseError(ckdir, f"checkpoint is at step {meta['step']}, beyond {{steps}} "
                               f"{steps}", settings=("steps",))
    workdir.mkdir(parents=True, exist_ok=True)
    if primary:
        io.remove_stale_temps(workdir)  # a summary or curve a killed run was writing
    return ckdir, resume_from, history


def saved_after_interrupt(mngr, ckdir: Path) -> int | None:
    """The latest step on disk after Ctrl-C (None: no checkpoint yet)."""
    # An interrupt inside checkpoint.save may leave Orbax's thread finishing that
    # step: wait for it, then trust the disk (a save that failed is not there; a
    # resumed run's earlier checkpoint is).
    try:
        mngr.wait_until_finished()
    except Exception:  # noqa: BLE001 - a save that failed is simply not on disk
        pass
    on_disk = [s for s, _ in checkpoint.step_folders(ckdir)]
    return max(on_disk) if on_disk else None


def check_finite(terms: dict, where, step: int) -> None:
    """A training step's loss terms must be finite: otherwise a one-line error naming ``where``."""
    if not all(math.isfinite(v) for v in terms.values()):
        raise JaxfuseError(where, f"loss became {terms['total']} at step {step}",
                           hint="try a lower {lr}", settings=("lr",))


@contextlib.contextmanager
def training_loop(bar, mngr, ckdir: Path, history: dict, workdir: Path, panels):
    """Around a trainer's loop over ``bar``: XLA's donation warnings silenced, Ctrl-C turned
    into :func:`interrupted`'s error (curves written first), the progress bar closed either way."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*donated buffers were not usable.*")
            yield
    except KeyboardInterrupt:
        bar.close()
        raise interrupted(mngr, ckdir, history, workdir, panels) from None
    finally:
        bar.close()


def interrupted(mngr, ckdir: Path, history: dict, workdir: Path, panels) -> Interrupted:
    """After Ctrl-C: writes the run's loss curves; the error that says what a resume redoes
    (from the latest checkpoint on disk)."""
    saved = saved_after_interrupt(mngr, ckdir)
    done = len(history["total"])
    if done:
        plot_curves(history, workdir / "loss_curves.png", panels)
    if saved is None:
        what = "no checkpoint yet, so a resumed run starts at step 0"
    elif saved == done:
        what = f"the checkpoint at {saved} holds every step so far"
    else:
        what = f"steps since the checkpoint at {saved} will be redone"
    return Interrupted(None, f"interrupted at step {done}; {what}", hint="continue")
