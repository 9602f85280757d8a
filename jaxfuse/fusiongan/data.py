"""FusionGAN's training data: every 132×132 patch (stride 14) of every infrared/visible pair of
a folder, and the per-epoch order.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from jaxfuse import color, io
from jaxfuse.errors import JaxfuseError
from jaxfuse.fusiongan.networks import PATCH, STRIDE

@dataclasses.dataclass
class PairPatches:
    """Every training patch of a pairs folder, cut on demand.

    Attributes:
      names: the pairs' names.
      images: per pair, ``(H, W, 2)`` float32 on the networks' scale
        (infrared, visible luma).
      index: ``(P, 3)`` int32 rows ``(pair, y, x)``, the patches' top-left corners.
      patch: the patches' side.
      sha256: a digest of the names and pixels (what a resumed run must match).
    """
    names: list
    images: list
    index: np.ndarray
    patch: int
    sha256: str

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Patches ``rows`` of :attr:`index` as ``(ir, vis)``, each ``(B, patch, patch, 1)``."""
        p = self.patch
        out = np.stack([self.images[i][y:y + p, x:x + p] for i, y, x in self.index[rows]])
        return out[..., :1], out[..., 1:]


def load_pair_patches(folder, *, patch: int = PATCH, stride: int = STRIDE) -> PairPatches:
    """The patches of every pair in ``folder`` (:func:`jaxfuse.io.find_pairs` layouts).

    The infrared image is read as gray; a colour visible image is reduced to
    its luma Y exactly as the colour path does before fusing
    (:func:`jaxfuse.fusion.fuse_pair`). Patches start every ``stride``
    pixels, as the authors cut them; a pair smaller than ``patch`` gives none.

    Raises:
      JaxfuseError: a missing or pair-less folder, any pair that cannot be
        read or paired, or no pair as large as one patch.
    """
    from jaxfuse import pipeline
    pairs, problems = io.find_pairs(folder)
    if problems:
        path, problem = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise JaxfuseError(path, f"{problem}{more}; a training set must pair every image")
    names, images, index = [], [], []
    h = hashlib.sha256()
    for i, pair in enumerate(pairs):
        ir, vis = pipeline.load_pair(pair)
        y = color.rgb_to_ycbcr(vis)[..., 0].astype(np.float32) if vis.ndim == 3 else vis
        img = np.stack([ir, y], axis=-1).astype(np.float32)
        img = (img - 127.5) / 127.5
        names.append(pair.name)
        images.append(img)
        h.update(pair.name.encode() + b"\0" + np.asarray(img.shape, np.int64).tobytes() + img.tobytes())
        ys = range(0, img.shape[0] - patch + 1, stride)
        xs = range(0, img.shape[1] - patch + 1, stride)
        index += [(i, yy, xx) for yy in ys for xx in xs]
    if not index:
        raise JaxfuseError(folder, f"no pair is as large as one {patch}×{patch} training patch")
    return PairPatches(names, images, np.asarray(index, np.int32), patch, h.hexdigest())


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The patch order of one epoch: a permutation of ``range(n)`` drawn from ``(seed, epoch)``."""
    return np.random.default_rng([seed, epoch]).permutation(n)
