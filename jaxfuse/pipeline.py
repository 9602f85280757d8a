"""Fusing infrared/visible pairs, a folder or one pair: the work behind ``jaxfuse fuse``.

Every pair is handled on its own: a bad pair is reported and skipped and the
others are still fused. Outputs are written atomically, finished outputs are
skipped on a rerun (so an interrupted run completes by running the same
command again; the hidden temporaries a killed run left are deleted), and
nothing is overwritten without ``overwrite=True``, the overview included.
Several processes may fuse into one folder: an output another one finished
meanwhile counts as already there.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from jaxfuse import io
from jaxfuse.cli import progress_bar
from jaxfuse.errors import Interrupted, JaxfuseError

OVERVIEW_NAME = "_overview.png"
OUTPUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
"""What a single fused image may be written as (by its name)."""


@dataclasses.dataclass
class FolderReport:
    written: list = dataclasses.field(default_factory=list)   # (name, path)
    skipped_existing: list = dataclasses.field(default_factory=list)  # (name, path)
    failed: list = dataclasses.field(default_factory=list)    # (path, problem)


def size_text(image) -> str:
    """An image's size as people write it: ``W×H``."""
    return f"{image.shape[1]}×{image.shape[0]}"


def check_same_size(image, reference, path, relation: str, *, then: str = "") -> None:
    """The one image size check: height and width must agree (channels may differ).

    Raises:
      JaxfuseError: ``path: size W×H <relation> (W×H)<then>``, e.g.
        ``vis/a.png: size 24×21 differs from its infrared partner a.png (24×20)``.
    """
    if image.shape[:2] != reference.shape[:2]:
        raise JaxfuseError(path, f"size {size_text(image)} {relation} ({size_text(reference)}){then}")


def load_pair(pair: io.Pair) -> tuple[np.ndarray, np.ndarray]:
    """Reads one pair and checks that it can be fused.

    The infrared image is used as grayscale; the visible one stays RGB if it
    is colour. Raises JaxfuseError naming the file at fault.
    """
    ir = io.load_image(pair.ir, gray=True)
    vis = io.load_image(pair.vis)
    check_same_size(vis, ir, pair.vis, f"differs from its infrared partner {pair.ir.name}")
    return ir, vis


def _fuse(params, ir, vis, strategy, fuse_fn):
    from jaxfuse.fusion import fuse_pair  # imported here: it brings in JAX and the model
    return fuse_pair(params, ir, vis, strategy=strategy, fuse_fn=fuse_fn)


def check_out_file(ir, vis, out, *, overwrite: bool = False) -> Path:
    """Checks, before any work, that :func:`fuse_one` may write ``out``.

    Raises:
      JaxfuseError: ``out`` is one of the inputs, a folder, has no image
        suffix, or exists and ``overwrite`` is False.
    """
    out = Path(out)
    if out.is_dir():
        raise JaxfuseError(out, "is a folder; with one pair {out_dir} names the fused image file",
                           settings=("out_dir",))
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise JaxfuseError(out, "the fused image's name must end in "
                           f"{', '.join(OUTPUT_SUFFIXES)}")
    if out.exists() and any(out.resolve() == Path(p).resolve() for p in (ir, vis)):
        raise JaxfuseError(out, "is an input image; choose another name so inputs are never "
                           "overwritten")
    if out.exists() and not overwrite:
        raise JaxfuseError(out, "exists", hint="overwrite")
    return out


def fuse_one(ir, vis, out, params, *, strategy: str = "l1", overwrite: bool = False,
             fuse_fn=None) -> Path:
    """Fuses one infrared/visible pair into the image file ``out``, atomically.

    A colour visible image goes through the colour path (the fused image is
    then RGB), as in :func:`fuse_folder`; the output format follows ``out``'s
    suffix.

    Raises:
      JaxfuseError: an unreadable image, sizes that differ, or an ``out`` in
        the way (:func:`check_out_file`).
    """
    out = check_out_file(ir, vis, out, overwrite=overwrite)
    ir_img, vis_img = load_pair(io.Pair(out.stem, Path(ir), Path(vis)))
    fused = _fuse(params, ir_img, vis_img, strategy, fuse_fn)
    try:
        io.save_image(out, fused, overwrite=overwrite)
    except OSError as e:
        raise JaxfuseError(out, f"cannot write ({e.strerror or e})") from None
    return out


def fuse_folder(pairs_dir, out_dir, params, *, strategy: str = "l1", overwrite: bool = False,
                progress: bool = True, overview: int = 6, fuse_fn=None) -> FolderReport:
    """Fuses every pair found in ``pairs_dir`` into ``out_dir/<name>.png``.

    Args:
      pairs_dir: a folder in one of the layouts of :func:`jaxfuse.io.find_pairs`.
      out_dir: where the fused PNGs go (created if needed); must not be the
        input folder or one of its ir/vis folders.
      params: a network's parameters, or a weight-free method
        (:func:`jaxfuse.methods.get_method`).
      strategy: fusion strategy name (networks only).
      overwrite: replace existing outputs instead of skipping them.
      progress: show a progress bar.
      overview: also write ``_overview.png`` with up to this many pairs side by
        side (infrared | visible | fused); 0 to skip.

    Returns:
      A :class:`FolderReport`; pairing problems found before fusing are in
      ``failed`` too.

    Raises:
      JaxfuseError: a missing or pair-less folder, or an ``out_dir`` in the way.
      Interrupted: Ctrl-C; the finished outputs are kept (a rerun completes them).
    """
    pairs_dir, out_dir = Path(pairs_dir), Path(out_dir)
    pairs, problems = io.find_pairs(pairs_dir)
    check_out_dir(pairs_dir, out_dir, pairs)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise JaxfuseError(out_dir, f"cannot create output folder ({e.strerror})") from None
    io.remove_stale_temps(out_dir)
    report = FolderReport(failed=[(p, m) for p, m in problems])
    shown = []
    try:
        with progress_bar(pairs, desc=f"fuse ({_what(params, strategy)})", unit="pair",
                          enabled=progress) as bar:
            for pair in bar:
                _fuse_into(pair, out_dir / f"{pair.name}.png", params, strategy, overwrite,
                           fuse_fn, report, shown, overview)
    except KeyboardInterrupt:
        raise Interrupted(out_dir, f"interrupted after fusing {len(report.written)} pair(s), which "
                          "are kept", hint="the same command again fuses the rest") from None
    if shown and (overwrite or not (out_dir / OVERVIEW_NAME).exists()):
        try:
            io.save_image(out_dir / OVERVIEW_NAME, overview_image(shown), overwrite=True)
        except (OSError, MemoryError) as e:
            report.failed.append((out_dir / OVERVIEW_NAME, f"cannot write the overview ({e})"))
    return report


def _what(params, strategy: str) -> str:
    """What fuses, as the progress bar names it: a method's name, or the network's strategy."""
    from jaxfuse.methods import Method
    return params.name if isinstance(params, Method) else strategy


def _fuse_into(pair, target, params, strategy, overwrite, fuse_fn, report, shown, overview):
    """Fuses one pair of a folder into ``target``, recording the outcome in ``report``."""
    if target.exists() and not overwrite:
        report.skipped_existing.append((pair.name, target))
        return
    try:
        ir, vis = load_pair(pair)
        fused = _fuse(params, ir, vis, strategy, fuse_fn)
        try:
            io.save_image(target, fused, overwrite=overwrite)
        except JaxfuseError:
            if not overwrite and target.exists():  # another process finished it meanwhile
                report.skipped_existing.append((pair.name, target))
                return
            raise
    except JaxfuseError as e:
        report.failed.append((Path(e.path) if e.path else pair.ir, e.problem))
        return
    except OSError as e:
        report.failed.append((target, f"cannot write ({e.strerror or e})"))
        return
    except MemoryError:
        report.failed.append((pair.ir, "out of memory while fusing this pair"))
        return
    except Exception as e:  # noqa: BLE001 - one pair must not stop the others
        msg = str(e).splitlines()[0] if str(e) else ""
        report.failed.append((pair.ir, f"unexpected {type(e).__name__}: {msg}"))
        return
    report.written.append((pair.name, target))
    if len(shown) < overview:
        shown.append((ir, vis, fused))


def check_out_dir(pairs_dir, out_dir, pairs) -> None:
    """Raises JaxfuseError if ``out_dir`` is an input folder or an existing file."""
    pairs_dir, out_dir = Path(pairs_dir), Path(out_dir)
    out = out_dir.resolve()
    inputs = {pairs_dir.resolve()} | {p.ir.parent.resolve() for p in pairs} | \
             {p.vis.parent.resolve() for p in pairs}
    if out in inputs:
        raise JaxfuseError(out_dir, "{out_dir} is an input folder; choose another so inputs are "
                           "never overwritten", settings=("out_dir",))
    if out.exists() and not out.is_dir():
        raise JaxfuseError(out_dir, "{out_dir} exists and is not a folder", settings=("out_dir",))


def thumbnail(a, height: int) -> np.ndarray:
    """An image (gray or RGB, 0–255) as RGB uint8 scaled to ``height`` rows."""
    from PIL import Image
    a = np.clip(np.asarray(a), 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    w = max(1, round(a.shape[1] * height / a.shape[0]))
    return np.asarray(Image.fromarray(a).resize((w, height), Image.BILINEAR))


def overview_image(rows, height: int = 160) -> np.ndarray:
    """An RGB uint8 grid: one row per pair, columns infrared | visible | fused."""
    lines = []
    for ir, vis, fused in rows:
        tiles = [thumbnail(a, height) for a in (ir, vis, fused)]
        gap = np.full((height, 6, 3), 255, np.uint8)
        lines.append(np.concatenate([tiles[0], gap, tiles[1], gap, tiles[2]], axis=1))
    width = max(x.shape[1] for x in lines)
    lines = [np.pad(x, ((0, 6), (0, width - x.shape[1]), (0, 0)), constant_values=255) for x in lines]
    return np.concatenate(lines, axis=0)
