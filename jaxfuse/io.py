"""Image reading and writing, and matching infrared/visible pairs in a folder.

Conventions (used by the whole package):

* An image read from disk is a NumPy ``float32`` array with values in
  ``[0, 255]``: ``(H, W)`` for grayscale, ``(H, W, 3)`` for RGB.
* How each Pillow mode becomes that array (the README repeats this table):

  ========================  ==================================================
  mode                      rule
  ========================  ==================================================
  ``L``                     as is
  ``1`` (1-bit)             0 → 0, 1 → 255
  ``I;16*`` / ``I`` 16-bit  ``v / 257`` (65535 → 255)
  ``I`` wider than 16 bit   refused (no agreed scale): a TIFF declaring more
                            than 16 bits per sample, or any value outside
                            0..65535
  ``F`` (float)             ``v · 255`` if all values lie in [0, 1]; as is if
                            they lie in [0, 255]; refused otherwise (or NaN/Inf)
  ``LA``                    alpha dropped
  ``P`` (palette)           through its palette to RGB (or gray)
  ``RGBA``                  alpha dropped
  ``CMYK``, ``YCbCr``,      Pillow's conversion to RGB
  ``LAB``, ``HSV``
  ========================  ==================================================

  An RGB image whose three channels are equal counts as grayscale.
* Outputs are written atomically: to a hidden temporary file
  ``.<name>.<pid>.<random>.tmp`` in the target folder, then renamed, so a
  killed process never leaves a truncated image; :func:`remove_stale_temps`
  deletes the temporaries a killed process left behind.
* :func:`load_image` raises only :class:`~jaxfuse.errors.JaxfuseError`, whatever
  the bytes of the file.

Pair layouts understood by :func:`find_pairs`:

* ``dir/ir/`` with ``dir/vis/`` (or ``dir/vi/``), files matched by stem;
* a flat folder of ``IR<k>.*`` and ``VIS<k>.*`` (any case), matched by ``k``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from jaxfuse import color
from jaxfuse.errors import JaxfuseError

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".pgm",
     ".ppm", ".pbm", ".pnm"})

# Decompression-bomb guard: Pillow warns past ~89 MP and raises past twice that.
# Fusion by tiles handles big images, so we allow up to 1 gigapixel explicitly.
Image.MAX_IMAGE_PIXELS = 1 << 30


def _to_array(img: Image.Image, path) -> np.ndarray:
    mode = img.mode
    if mode == "1":
        return np.asarray(img.convert("L"), dtype=np.float32)
    if mode == "L":
        return np.asarray(img, dtype=np.float32)
    if mode == "LA":
        return np.asarray(img.getchannel("L"), dtype=np.float32)
    if mode.startswith("I;16") or mode == "I":
        bits = _declared_bits(img)
        if mode == "I" and bits is not None and bits > 16:
            raise JaxfuseError(path, f"{bits}-bit integer image (no agreed scale; up to 16 bits is converted)")
        a = np.asarray(img).astype(np.float64)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise JaxfuseError(path, f"{mode} image with values outside 0..65535 (no agreed scale)")
        return (a / 257.0).astype(np.float32)
    if mode == "F":
        a = np.asarray(img, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            raise JaxfuseError(path, "float image contains NaN or Inf")
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if lo >= 0.0 and hi <= 1.0:
            return (a * 255.0).astype(np.float32)
        if lo >= 0.0 and hi <= 255.0:
            return a.astype(np.float32)
        raise JaxfuseError(path, f"float image with values in [{lo:g}, {hi:g}]; expected [0, 1] or [0, 255]")
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa"):
        a = np.asarray(img.convert("RGB"), dtype=np.float32)
        return a
    raise JaxfuseError(path, f"unsupported image mode {mode!r}")


def _declared_bits(img: Image.Image) -> int | None:
    """Bits per sample a TIFF declares (Pillow reads 32-bit integers as mode ``I`` too)."""
    tags = getattr(img, "tag_v2", None)
    try:
        bps = tags.get(258) if tags is not None else None
        return int(max(bps) if isinstance(bps, tuple) else bps) if bps else None
    except (TypeError, ValueError):
        return None


def as_gray_if_equal(a: np.ndarray) -> np.ndarray:
    """Returns ``(H, W)`` if ``a`` is RGB with three equal channels, else ``a``."""
    if a.ndim == 3 and a.shape[-1] == 3 and np.array_equal(a[..., 0], a[..., 1]) \
            and np.array_equal(a[..., 0], a[..., 2]):
        return np.ascontiguousarray(a[..., 0])
    return a


def load_image(path, *, gray: bool = False) -> np.ndarray:
    """Reads an image file as float32 in [0, 255].

    Args:
      path: the file.
      gray: if True, RGB images are converted to grayscale with the ITU-R
        BT.601 luma weights (0.299, 0.587, 0.114), as MATLAB's ``rgb2gray`` and
        Pillow's ``convert("L")`` do (without their rounding).

    Returns:
      ``(H, W)`` or, for a colour image and ``gray=False``, ``(H, W, 3)``.

    Raises:
      JaxfuseError: missing, empty, unreadable, truncated or unsupported files.
    """
    path = Path(path)
    if not path.exists():
        raise JaxfuseError(path, "no such file")
    if path.is_dir():
        raise JaxfuseError(path, "is a folder, not an image")
    try:
        size = path.stat().st_size
    except OSError as e:
        raise JaxfuseError(path, f"cannot read ({e.strerror})") from None
    if size == 0:
        raise JaxfuseError(path, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                img.load()
                a = _to_array(img, path)
    except JaxfuseError:
        raise
    except Image.DecompressionBombError:
        raise JaxfuseError(path, f"image is larger than {2 * Image.MAX_IMAGE_PIXELS:,} pixels "
                           "(decompression-bomb guard)") from None
    except MemoryError:
        raise JaxfuseError(path, "not enough memory to decode this image") from None
    except Exception as e:  # noqa: BLE001 - a decoder may raise anything on hostile bytes
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, PermissionError):
            msg = "permission denied"
        elif "cannot identify image file" in msg:
            msg = "not an image file Pillow can read"
        elif "truncated" in msg.lower() or isinstance(e, EOFError):
            msg = f"truncated or corrupt image ({msg})"
        else:
            msg = f"unreadable image ({msg})"
        raise JaxfuseError(path, msg) from None
    if a.ndim == 2 and 0 in a.shape or a.size == 0:
        raise JaxfuseError(path, "image has no pixels")
    a = as_gray_if_equal(a)
    if gray and a.ndim == 3:
        a = rgb_to_gray(a)
    return a


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an ``(..., 3)`` array, float32, same scale as the input.

    :func:`jaxfuse.color.luma`.
    """
    return color.luma(rgb)


def save_image(path, image: np.ndarray, *, overwrite: bool = False) -> Path:
    """Writes a uint8 ``(H, W)`` or ``(H, W, 3)`` image atomically.

    The image goes to a temporary file beside ``path`` and is renamed onto it,
    so a reader never sees a half-written file.

    Raises:
      JaxfuseError: if ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise JaxfuseError(path, "exists", hint="overwrite")
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise ValueError(f"save_image expects uint8, got {a.dtype}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF",
           ".tiff": "TIFF"}.get(path.suffix.lower(), "PNG")
    atomic_write(path, lambda f: Image.fromarray(a).save(f, format=fmt))
    return path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write(path, write_fn) -> None:
    """Calls ``write_fn(fileobj)`` on a temporary file, then renames it to ``path``.

    The temporary file is ``.<name>.<pid>.<random>.tmp`` beside ``path``:
    hidden, so folder scans skip it, and carrying the writer's process id, so
    :func:`remove_stale_temps` can tell one a killed process left behind.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file owner-only (0600); give it the mode a plain
        # open() would, so outputs are as readable as any other file.
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


_TEMP = re.compile(r"^\..+\.(\d+)\.[a-z0-9_]{8}\.tmp$")  # mkstemp's names: 8 of [a-z0-9_]


def remove_stale_temps(folder) -> list[Path]:
    """Deletes the temporaries of :func:`atomic_write` whose writer is no longer running.

    Returns the deleted paths. A temporary of a live process (another run
    writing into the same folder) is left alone.
    """
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TEMP.match(p.name)
        if m is None or not p.is_file() or _pid_alive(int(m.group(1))):
            continue
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # alive, owned by another user
    except (ProcessLookupError, OverflowError, ValueError):
        return False
    return True


@dataclasses.dataclass(frozen=True)
class Pair:
    """One infrared/visible pair; ``name`` is used for the output file."""
    name: str
    ir: Path
    vis: Path


_FLAT = re.compile(r"^(ir|vis|vi)[_\-\s]?(.+)$", re.IGNORECASE)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)


def _by_stem(files, problems, key=lambda p: p.stem):
    out: dict[str, Path] = {}
    dup: dict[str, list[Path]] = {}
    for p in files:
        k = key(p)
        if k in out or k in dup:
            dup.setdefault(k, [out.pop(k)] if k in out else []).append(p)
        else:
            out[k] = p
    for k, ps in dup.items():
        problems.append((ps[0], f"duplicate name {k!r}: {', '.join(p.name for p in ps)}; pair skipped"))
    return out, set(dup)


def find_pairs(folder) -> tuple[list[Pair], list[tuple[Path, str]]]:
    """Finds infrared/visible pairs in ``folder``.

    Returns:
      ``(pairs, problems)``: the pairs sorted by name, and ``(path, problem)``
      for every file or name that could not be paired (missing partner,
      duplicate stems, names that match nothing). Images are not opened here.

    Raises:
      JaxfuseError: the folder is missing, not a folder, or holds no pairs.
    """
    folder = Path(folder)
    if not folder.exists():
        raise JaxfuseError(folder, "folder does not exist")
    if not folder.is_dir():
        raise JaxfuseError(folder, "is not a folder")
    problems: list[tuple[Path, str]] = []
    sub = {p.name.lower(): p for p in folder.iterdir() if p.is_dir()}
    ir_dir = sub.get("ir")
    vis_dir = sub.get("vis") or sub.get("vi")
    if ir_dir is not None or vis_dir is not None:
        if ir_dir is None or vis_dir is None:
            missing = "ir/" if ir_dir is None else "vis/ (or vi/)"
            raise JaxfuseError(folder, f"has {'vis' if ir_dir is None else 'ir'}/ but no {missing}")
        irs, dup_ir = _by_stem(_images_in(ir_dir), problems)
        viss, dup_vis = _by_stem(_images_in(vis_dir), problems)
        skip = dup_ir | dup_vis
        for k in sorted(set(irs) - set(viss) - skip):
            problems.append((irs[k], "no visible partner; pair skipped"))
        for k in sorted(set(viss) - set(irs) - skip):
            problems.append((viss[k], "no infrared partner; pair skipped"))
        names = sorted((set(irs) & set(viss)) - skip)
        pairs = [Pair(k, irs[k], viss[k]) for k in names]
    else:
        irs_l, viss_l = [], []
        for p in _images_in(folder):
            m = _FLAT.match(p.stem)
            if m is None:
                problems.append((p, "name matches no pair pattern (IR<k>.* / VIS<k>.*); ignored"))
            elif m.group(1).lower() == "ir":
                irs_l.append((m.group(2), p))
            else:
                viss_l.append((m.group(2), p))
        irs, dup_ir = _by_stem([p for _, p in irs_l], problems, key=lambda p: _FLAT.match(p.stem).group(2))
        viss, dup_vis = _by_stem([p for _, p in viss_l], problems, key=lambda p: _FLAT.match(p.stem).group(2))
        skip = dup_ir | dup_vis
        for k in sorted(set(irs) - set(viss) - skip):
            problems.append((irs[k], "no visible partner; pair skipped"))
        for k in sorted(set(viss) - set(irs) - skip):
            problems.append((viss[k], "no infrared partner; pair skipped"))
        names = sorted((set(irs) & set(viss)) - skip, key=_natural_key)
        pairs = [Pair(k, irs[k], viss[k]) for k in names]
    if not pairs:
        if not problems:
            raise JaxfuseError(folder, "holds no images (expected ir/ + vis/ folders or IR<k>/VIS<k> files)")
        raise JaxfuseError(folder, f"holds no usable infrared/visible pairs ({len(problems)} problem(s), "
                           f"first: {problems[0][0].name}: {problems[0][1]})")
    return pairs, problems


def _natural_key(s: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]
