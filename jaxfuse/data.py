"""Training input from folders of images, built on Grain.

The paper's many-image model saw 80 000 MS-COCO photographs, gray and
resized to 256×256, batch 4, 4 epochs. :func:`scan` finds the images of one
or more folders (recursively; every format the fusion path reads, see
:data:`jaxfuse.io.IMAGE_SUFFIXES`) and may add the 20 natural images that
scikit-image ships (the source name ``bundled``); :func:`pipeline` turns
that list into batches:

1. a global shuffle with ``seed``, reshuffled every epoch (Grain's
   ``MapDataset.shuffle`` then ``repeat``: epoch ``e`` is its own
   permutation, every image once per epoch);
2. decoding (gray, BT.601 luma, as :func:`jaxfuse.io.load_image`) and the one
   augmentation step, per element, with a random generator Grain derives from
   ``(seed, element index)``, so element ``i`` is the same pixels whenever and
   wherever it is read;
3. this process's share (``[process::processes]``: with ``jax.distributed``
   each process decodes only its own images);
4. batching (batches may straddle epochs), then decoding in threads with
   prefetch (Grain's ``ReadOptions``).

Augmentations (``augment``), applied in this one place:

* ``"resize"`` (the authors' recipe): the whole image resized bilinearly to
  ``size × size``; aspect ratio is not kept, as theirs does not.
* ``"crops"``: a random square of side ``u · min(H, W)``, ``u`` uniform in
  [0.5, 1], resized bilinearly to ``size`` (small images are upsampled, not
  skipped), then a random horizontal flip and a random 90° rotation: what a
  small set needs to stand in for a large one.

The iterator's state (Grain's ``get_state``, the index of the next batch) is
what a checkpoint stores for an exact resume; because every element is a
pure function of its index, restoring it replays the same stream.

Bad files are found before training starts, by decoding every file once in
threads (:func:`scan`): empty, unreadable, truncated, unsupported or tiny
images are skipped with a one-line warning each and counted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from jaxfuse import io
from jaxfuse.errors import JaxfuseError

BUNDLED = "bundled"  # the source name of scikit-image's 20 natural images
AUGMENTS = ("resize", "crops")
MIN_SIDE = 8  # images with a shorter side are skipped ("tiny")
_SAMPLE = 1 << 16  # bytes from each end of a file that the resume fingerprint reads


@dataclasses.dataclass(frozen=True)
class Dataset:
    """The training images found by :func:`scan`.

    ``items``: files (absolute paths) and bundled images (``"bundled:<name>"``),
    in a fixed order (sources in the order given, files sorted by path);
    ``skipped``: ``(file, problem)`` for each file left out.
    """
    sources: tuple[str, ...]
    items: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()

    def __len__(self) -> int:
        return len(self.items)

    def fingerprint(self) -> str:
        """SHA-256 of each item's name, size and first and last 64 KiB: what a resume must match.

        (Not every byte: reading 80 000 files again on every resume costs minutes.
        Not the modification time either: a copy, a restore or a remount changes
        it and would refuse a resume of the same data. A file rewritten with the
        same size and the same first and last 64 KiB goes unnoticed.)
        """
        h = hashlib.sha256()
        for item in self.items:
            h.update(item.encode())
            if not item.startswith(BUNDLED + ":"):
                with open(item, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    h.update(f":{size}:".encode())
                    h.update(f.read(_SAMPLE))
                    if size > 2 * _SAMPLE:
                        f.seek(size - _SAMPLE)
                    h.update(f.read())
            h.update(b"\n")
        return h.hexdigest()

    def summary(self) -> dict:
        """What ``summary.json`` records about the data."""
        return {"sources": list(self.sources), "images": len(self.items),
                "skipped": [{"file": f, "problem": p} for f, p in self.skipped]}


def _files_under(folder: Path) -> list[Path]:
    """Image files under ``folder``, recursively, sorted; hidden files and folders left out."""
    out = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            p = Path(root) / name
            if not name.startswith(".") and p.suffix.lower() in io.IMAGE_SUFFIXES:
                out.append(p)
    return sorted(out)


def _check(path: Path) -> str | None:
    """None if ``path`` decodes to a trainable image, else the problem, in a few words."""
    try:
        a = io.load_image(path, gray=True)
    except JaxfuseError as e:
        return e.problem
    if min(a.shape) < MIN_SIDE:
        return f"image of {a.shape[1]}×{a.shape[0]} is too small (under {MIN_SIDE} pixels a side)"
    return None


def scan(sources: Sequence[str], *, warn: Callable[[str], None] | None = None,
         threads: int | None = None, progress: bool = False) -> Dataset:
    """The training images of ``sources``: folders, or ``"bundled"``.

    Every image file under a folder is decoded once (in ``threads`` threads,
    default the CPU count); the bad ones are skipped, each with a one-line
    ``warn(...)`` naming the file. ``"bundled"`` (when no such folder exists)
    adds scikit-image's 20 natural images.

    Raises:
      JaxfuseError: no sources, a source that is neither a folder nor
        ``"bundled"``, or no usable image at all.
    """
    from jaxfuse import datasets
    from jaxfuse.cli import progress_bar
    if not sources:
        raise JaxfuseError(None, "no training images given", settings=("images",))
    items: list[str] = []
    skipped: list[tuple[str, str]] = []
    names = []
    for src in sources:
        p = Path(src)
        if str(src) == BUNDLED and not p.exists():
            items += [f"{BUNDLED}:{n}" for n in datasets.NATURAL_IMAGES]
            names.append(BUNDLED)
            continue
        if not p.exists():
            raise JaxfuseError(p, "no such folder")
        if not p.is_dir():
            raise JaxfuseError(p, "is not a folder (give a folder of training images)")
        files = _files_under(p)
        if not files:
            raise JaxfuseError(p, "holds no image file (looked for "
                               f"{', '.join(sorted(io.IMAGE_SUFFIXES))}, in subfolders too)")
        with ThreadPoolExecutor(threads or os.cpu_count() or 1) as pool, \
                progress_bar(total=len(files), desc=f"checking {p.name or p}", unit="image",
                             enabled=progress, leave=False) as bar:
            problems = []
            for problem in pool.map(_check, files):
                problems.append(problem)
                bar.update(1)
        for f, problem in zip(files, problems):
            if problem is None:
                items.append(str(f.resolve()))
            else:
                skipped.append((str(f), problem))
                if warn is not None:
                    warn(f"warning: {f}: {problem}; skipped")
        names.append(str(p))
    if not items:
        raise JaxfuseError(Path(sources[0]) if len(sources) == 1 else None,
                           f"no usable training image ({len(skipped)} file(s) skipped)",
                           settings=() if len(sources) == 1 else ("images",))
    return Dataset(tuple(names), tuple(items), tuple(skipped))


def load_item(item: str) -> np.ndarray:
    """One item of a :class:`Dataset` as ``(H, W)`` float32 gray in [0, 255]."""
    from jaxfuse import datasets
    if item.startswith(BUNDLED + ":"):
        return datasets.natural_image(item[len(BUNDLED) + 1:])
    return io.load_image(item, gray=True)


def resize(img: np.ndarray, size: int) -> np.ndarray:
    """``img`` resized bilinearly to ``size × size`` (float32, clipped to [0, 255])."""
    from PIL import Image
    out = Image.fromarray(np.ascontiguousarray(img, np.float32), mode="F").resize(
        (size, size), Image.BILINEAR)
    return np.clip(np.asarray(out, np.float32), 0, 255)


def random_crop(img: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """The ``"crops"`` augmentation of one image (see the module docstring)."""
    h, w = img.shape
    side = max(MIN_SIDE, int(min(h, w) * rng.uniform(0.5, 1.0)))
    y = rng.integers(0, h - side + 1)
    x = rng.integers(0, w - side + 1)
    c = resize(img[y:y + side, x:x + side], size)
    if rng.random() < 0.5:
        c = c[:, ::-1]
    return np.ascontiguousarray(np.rot90(c, k=int(rng.integers(4))))


class _Decode:
    """Grain's per-element work: decode, then augment (picklable for worker processes)."""

    def __init__(self, size: int, augment: str):
        self.size, self.augment = size, augment

    def __call__(self, item: str, rng: np.random.Generator) -> np.ndarray:
        img = load_item(item)
        out = resize(img, self.size) if self.augment == "resize" else \
            random_crop(img, rng, self.size)
        return out[:, :, None]


def epochs_for(steps: int, batch: int, n: int) -> int:
    """Epochs the stream needs so that ``steps`` batches of ``batch`` exist."""
    return max(1, -(-steps * batch // n))


def pipeline(dataset: Dataset, *, batch: int, size: int, augment: str = "resize",
             seed: int = 0, steps: int, process: int = 0, processes: int = 1):
    """The training stream as a Grain ``MapDataset`` of ``(batch/processes, size, size, 1)`` batches.

    ``batch`` is the global batch; this process gets elements
    ``process, process + processes, ...`` of the global stream, so the
    processes' batches together hold exactly the global batch. The stream
    holds at least ``steps`` batches (whole epochs).
    """
    import grain
    if augment not in AUGMENTS:
        raise JaxfuseError(None, f"{{augment}} must be one of {', '.join(AUGMENTS)}, got {augment!r}",
                           settings=("augment",))
    if batch % processes:
        raise JaxfuseError(None, f"{{batch}} {batch} is not a multiple of the {processes} processes",
                           settings=("batch",))
    n = len(dataset)
    ds = grain.MapDataset.source(list(dataset.items)).shuffle(seed=seed)
    ds = ds.repeat(epochs_for(steps, batch, n))
    ds = ds.random_map(_Decode(size, augment), seed=seed)
    if processes > 1:
        ds = ds[process::processes]
    return ds.batch(batch // processes, drop_remainder=True, batch_fn=np.stack)


def iterator(ds, *, threads: int = 0, prefetch: int = 0, state: dict | None = None):
    """A Grain iterator over :func:`pipeline`'s dataset: decoding in ``threads``
    threads (0: the CPU count) with ``prefetch`` batches ahead (0: twice the
    threads); ``state`` (from ``get_state()``) continues a saved stream."""
    import grain
    threads = threads or os.cpu_count() or 1
    it = iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=threads,
                                                   prefetch_buffer_size=prefetch or 2 * threads)))
    if state is not None:
        it.set_state(state)
    return it


def order(dataset: Dataset, *, seed: int, epochs: int) -> list[str]:
    """The items in the order the stream visits them (no decoding): for tests and reports."""
    import grain
    ds = grain.MapDataset.source(list(dataset.items)).shuffle(seed=seed).repeat(epochs)
    return [ds[i] for i in range(len(ds))]


def iter_batches(ds, start: int = 0) -> Iterable[np.ndarray]:
    """Batches ``start, start + 1, ...`` of a dataset by index, no threads (for tests)."""
    for i in range(start, len(ds)):
        yield ds[i]
