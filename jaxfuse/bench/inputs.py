"""The benchmark's images: the TNO-21 pairs, one 640×480 pair, smooth synthetic noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxfuse.bench.config import PAIR_HW


def tno_pairs(tno: Path | None):
    if tno is None:
        return []
    ir_dir, vis_dir = tno / "ir", tno / "vis"
    if not (ir_dir.is_dir() and vis_dir.is_dir()):
        return []
    names = sorted(p.name for p in ir_dir.iterdir() if p.suffix.lower() == ".png")
    return [(ir_dir / n, vis_dir / n) for n in names if (vis_dir / n).is_file()]


def load_gray(path) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(path).convert("L"), np.float32)


def synthetic_pair(h, w, seed=0):
    """Smooth random 0–255 images (bicubic upsampling of coarse noise)."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(2):
        small = rng.uniform(0, 255, (max(2, h // 16), max(2, w // 16))).astype(np.float32)
        img = Image.fromarray(small, mode="F").resize((w, h), Image.BICUBIC)
        out.append(np.clip(np.asarray(img, np.float32), 0, 255))
    return out[0], out[1]


def bench_pair(tno: Path, hw=PAIR_HW):
    """The TNO pair that is 640×480 (resized to ``hw`` if that differs), else a synthetic one."""
    from PIL import Image
    for ir, vis in tno_pairs(tno):
        if Image.open(ir).size == (PAIR_HW[1], PAIR_HW[0]):
            if tuple(hw) == PAIR_HW:
                return load_gray(ir), load_gray(vis), f"TNO pair {ir.name}"
            resize = lambda p: np.asarray(Image.open(p).convert("L").resize(  # noqa: E731
                (hw[1], hw[0]), Image.BILINEAR), np.float32)
            return resize(ir), resize(vis), f"TNO pair {ir.name} resized to {hw[0]}×{hw[1]}"
    a, b = synthetic_pair(*hw)
    return a, b, "synthetic smooth noise"


def large_source(tno: Path) -> str:
    """The tiled stage's source argument: ``IR|VIS`` of the (last) 640×480 TNO pair, else ``-``."""
    from PIL import Image
    src = "-"
    for ir, vis in tno_pairs(tno):
        if Image.open(ir).size == (PAIR_HW[1], PAIR_HW[0]):
            src = f"{ir}|{vis}"
    return src
