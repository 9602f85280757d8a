"""Fusing a folder of infrared/visible pairs: the work behind ``fuse.py``.

Every pair is handled on its own: a bad pair is reported and skipped and the
others are still fused. Outputs are written atomically, finished outputs are
skipped on a rerun (so an interrupted run completes by running the same
command again; the hidden temporaries a killed run left are deleted), and
nothing is overwritten without ``overwrite=True``, the overview included.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from jaxfuse import io
from jaxfuse.errors import JaxfuseError
from jaxfuse.fusion import fuse_pair

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "res2netfuse"
OVERVIEW_NAME = "_overview.png"


@dataclasses.dataclass
class FolderReport:
    written: list = dataclasses.field(default_factory=list)   # (name, path)
    skipped_existing: list = dataclasses.field(default_factory=list)  # (name, path)
    failed: list = dataclasses.field(default_factory=list)    # (path, problem)


def load_pair(pair: io.Pair) -> tuple[np.ndarray, np.ndarray]:
    """Reads one pair and checks that it can be fused.

    The infrared image is used as grayscale; the visible one stays RGB if it
    is colour. Raises JaxfuseError naming the file at fault.
    """
    ir = io.load_image(pair.ir, gray=True)
    vis = io.load_image(pair.vis)
    if ir.shape[:2] != vis.shape[:2]:
        raise JaxfuseError(pair.vis, f"size {vis.shape[1]}×{vis.shape[0]} differs from its infrared "
                           f"partner {pair.ir.name} ({ir.shape[1]}×{ir.shape[0]})")
    return ir, vis


def fuse_folder(pairs_dir, out_dir, params, *, strategy: str = "l1", overwrite: bool = False,
                progress: bool = True, overview: int = 6, fuse_fn=None) -> FolderReport:
    """Fuses every pair found in ``pairs_dir`` into ``out_dir/<name>.png``.

    Args:
      pairs_dir: a folder in one of the layouts of :func:`jaxfuse.io.find_pairs`.
      out_dir: where the fused PNGs go (created if needed); must not be the
        input folder or one of its ir/vis folders.
      params: Res2NetFuse parameters.
      strategy: fusion strategy name.
      overwrite: replace existing outputs instead of skipping them.
      progress: show a progress bar.
      overview: also write ``_overview.png`` with up to this many pairs side by
        side (infrared | visible | fused); 0 to skip.

    Returns:
      A :class:`FolderReport`; pairing problems found before fusing are in
      ``failed`` too.
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
    bar = pairs
    if progress:
        from tqdm import tqdm
        bar = tqdm(pairs, desc=f"fuse ({strategy})", unit="pair", dynamic_ncols=True)
    for pair in bar:
        target = out_dir / f"{pair.name}.png"
        if target.exists() and not overwrite:
            report.skipped_existing.append((pair.name, target))
            continue
        try:
            ir, vis = load_pair(pair)
            fused = fuse_pair(params, ir, vis, strategy=strategy, fuse_fn=fuse_fn)
            io.save_image(target, fused, overwrite=overwrite)
        except JaxfuseError as e:
            report.failed.append((Path(e.path) if e.path else pair.ir, e.problem))
            continue
        except OSError as e:
            report.failed.append((target, f"cannot write ({e.strerror or e})"))
            continue
        except MemoryError:
            report.failed.append((pair.ir, "out of memory while fusing this pair"))
            continue
        except Exception as e:  # noqa: BLE001 - one pair must not stop the others
            msg = str(e).splitlines()[0] if str(e) else ""
            report.failed.append((pair.ir, f"unexpected {type(e).__name__}: {msg}"))
            continue
        report.written.append((pair.name, target))
        if len(shown) < overview:
            shown.append((ir, vis, fused))
    if shown and (overwrite or not (out_dir / OVERVIEW_NAME).exists()):
        try:
            io.save_image(out_dir / OVERVIEW_NAME, overview_image(shown), overwrite=True)
        except (OSError, MemoryError) as e:
            report.failed.append((out_dir / OVERVIEW_NAME, f"cannot write the overview ({e})"))
    return report


def check_out_dir(pairs_dir, out_dir, pairs) -> None:
    """Raises JaxfuseError if ``out_dir`` is an input folder or an existing file."""
    pairs_dir, out_dir = Path(pairs_dir), Path(out_dir)
    out = out_dir.resolve()
    inputs = {pairs_dir.resolve()} | {p.ir.parent.resolve() for p in pairs} | \
             {p.vis.parent.resolve() for p in pairs}
    if out in inputs:
        raise JaxfuseError(out_dir, "--out is an input folder; choose another so inputs are never overwritten")
    if out.exists() and not out.is_dir():
        raise JaxfuseError(out_dir, "--out exists and is not a folder")


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
