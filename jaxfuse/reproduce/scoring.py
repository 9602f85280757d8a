"""Stages 2–4: fuse the TNO pairs, score the fused images, reconstruct the natural images.

Fused images go to ``out/fused/<model>/<strategy>/<pair>.png`` beside a
``scores.json``; ``out/fused/<model>/model.json`` records the parameters'
fingerprint, so images fused by other parameters are not reused.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from jaxfuse.errors import JaxfuseError

from .models import Model, ModelSet
from .paper import RECON_METRICS
from .settings import Settings, make_quick_pairs

Log = Callable[[str], None]


@dataclasses.dataclass
class Inputs:
    """Where the run writes and what it fuses."""
    out: Path
    pairs_dir: Path
    pairs: list               # jaxfuse.io.Pair, sorted by name


@dataclasses.dataclass
class Fused:
    """The fused images: one folder per model and strategy, and how many were new."""
    folders: dict[str, dict[str, Path]]   # model key -> strategy -> folder
    new: dict[str, dict[str, int]]        # model key -> strategy -> images written now
    seconds: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    # model key -> strategy -> seconds spent fusing (and writing) the new images


@dataclasses.dataclass
class Scores:
    """The paper's eight metrics per model and strategy: ``{"per_pair": {name: {metric: v}},
    "mean": {metric: v}}``."""
    fusion: dict[str, dict[str, dict]]    # model key -> strategy -> per_pair and mean


@dataclasses.dataclass
class Reconstruction:
    """Table III: the natural images and each model's per-image SSIM, PSNR and MSE."""
    images: dict[str, np.ndarray]         # name -> gray 0-255, centre-cropped
    per_image: dict[str, dict[str, dict[str, float]]]  # model key -> image -> metric -> v

    def mean(self, key: str, exclude: Sequence[str] = ()) -> dict[str, float]:
        """A model's per-image scores averaged over the images not in ``exclude``."""
        keep = [v for k, v in self.per_image[key].items() if k not in exclude]
        return {m: math.fsum(v[m] for v in keep) / len(keep) for m in RECON_METRICS}


def shown(path: Path) -> str:
    """``path`` as the report prints it: relative to the working directory when that is at most
    one level up (``../shared/data/tno21``), so a report does not carry one machine's layout."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive
        return str(path)
    return rel if Path(rel).parts[:2].count(os.pardir) <= 1 else str(path)


def find_inputs(settings: Settings, out_dir) -> Inputs:
    """The output folder and the pairs to fuse: ``settings.pairs``, or with ``settings.quick``
    and no pairs folder, three tiny synthetic pairs written to ``out/pairs``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise JaxfuseError(out, "{out_dir} exists and is not a folder", settings=("out_dir",))
    if settings.pairs is not None:
        pairs_dir = Path(settings.pairs)
    elif settings.quick:
        pairs_dir = make_quick_pairs(out / "pairs")
    else:
        raise JaxfuseError(None, "no TNO pairs folder given (only a quick run makes its own)",
                           hint="pass {pairs} DIR", settings=("pairs",))
    pairs = select_pairs(pairs_dir, settings.max_pairs)
    out.mkdir(parents=True, exist_ok=True)
    return Inputs(out, pairs_dir, pairs)


def select_pairs(pairs_dir: Path, max_pairs: int | None):
    """The pairs to use: all, or the ``max_pairs`` smallest by area (for quick runs)."""
    from PIL import Image

    from jaxfuse import io
    pairs, problems = io.find_pairs(pairs_dir)
    if problems:
        p, msg = problems[0]
        raise JaxfuseError(p, f"{msg} ({len(problems)} pairing problem(s) in {pairs_dir})")
    if max_pairs is not None and max_pairs < len(pairs):
        def area(pair):
            try:
                with Image.open(pair.ir) as im:
                    return im.size[0] * im.size[1]
            except OSError:
                return 0
        keep = {p.name for p in sorted(pairs, key=lambda p: (area(p), p.name))[:max_pairs]}
        pairs = [p for p in pairs if p.name in keep]
    return pairs


def fuse_models(models: ModelSet, inputs: Inputs, log: Log) -> Fused:
    """Fuses every pair with every model and each of its strategies; existing images are kept."""
    folders, new, seconds = {}, {}, {}
    for key, model in models.models.items():
        folders[key], new[key], seconds[key] = _fuse_model(model, inputs, log)
    return Fused(folders, new, seconds)


def _fuse_model(model: Model, inputs: Inputs, log: Log) -> tuple[dict, dict, dict]:
    import shutil

    from jaxfuse import io
    from jaxfuse.fusion import fuse_pair
    from jaxfuse.pipeline import load_pair
    root = inputs.out / "fused" / model.key
    stamp = root / "model.json"
    try:
        same = json.loads(stamp.read_text()).get("fingerprint") == model.fingerprint
    except (OSError, ValueError, AttributeError):
        same = False
    if not same:
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        io.atomic_write(stamp, lambda f: f.write(json.dumps(
            {"model": model.label, "fingerprint": model.fingerprint}).encode()))
    folders, new, seconds = {}, {}, {}
    for strategy in model.strategies:
        d = folders[strategy] = root / strategy
        d.mkdir(parents=True, exist_ok=True)
        io.remove_stale_temps(d)
        t0, wrote = time.perf_counter(), 0
        for pair in inputs.pairs:
            target = d / f"{pair.name}.png"
            if target.exists():
                continue
            ir, vis = load_pair(pair)
            io.save_image(target, fuse_pair(model.params, ir, vis, strategy=strategy))
            wrote += 1
        new[strategy], seconds[strategy] = wrote, time.perf_counter() - t0
        log(f"  {model.label}, {strategy}: fused {wrote} new of {len(inputs.pairs)} pair(s) "
            f"in {seconds[strategy]:.0f} s")
    return folders, new, seconds


def score_fusions(models: ModelSet, fused: Fused, pairs, log: Log) -> Scores:
    """Scores each fused folder with the paper's eight metrics (paper convention).

    A folder's ``scores.json`` is reused when no image in it is new and it
    covers every pair with the same metrics.
    """
    from jaxfuse import metrics
    fusion = {}
    for key, model in models.models.items():
        fusion[key] = {}
        for strategy, folder in fused.folders[key].items():
            t0 = time.perf_counter()
            per_pair, reused = _score_folder(folder, pairs, fresh=fused.new[key][strategy] == 0)
            mean = {m: math.fsum(v[m] for v in per_pair.values()) / len(per_pair)
                    for m in metrics.PAPER_METRICS}
            fusion[key][strategy] = {"per_pair": per_pair, "mean": mean}
            log(f"  {model.label}, {strategy}: "
                + ("scores reused" if reused else f"scored in {time.perf_counter() - t0:.0f} s"))
    return Scores(fusion)


def _score_folder(folder: Path, pairs, *, fresh: bool) -> tuple[dict, bool]:
    """``(per_pair, reused)``: the folder's scores, from its cache where that is still valid."""
    from jaxfuse import evaluate, io, metrics
    names = [p.name for p in pairs]
    cache = folder / "scores.json"
    cached = None
    if fresh and cache.is_file():
        try:
            cached = json.loads(cache.read_text())
        except (OSError, ValueError):
            cached = None
    if (isinstance(cached, dict) and cached.get("metrics") == list(metrics.PAPER_METRICS)
            and isinstance(cached.get("per_pair"), dict) and set(names) <= set(cached["per_pair"])):
        return {n: cached["per_pair"][n] for n in names}, True
    r = evaluate.evaluate_pairs(pairs, folder, convention="paper", progress=False)
    if r["skipped"]:
        p, msg = r["skipped"][0]
        raise JaxfuseError(p, f"could not be scored: {msg}")
    per_pair = r["per_pair"]
    io.atomic_write(cache, lambda f: f.write(json.dumps(
        {"metrics": list(metrics.PAPER_METRICS), "per_pair": per_pair}, indent=1).encode()))
    return per_pair, False


def recon_images(crop: int) -> dict[str, np.ndarray]:
    """The 20 bundled natural images, gray 0–255, centre-cropped to at most ``crop`` a side."""
    from jaxfuse import datasets
    out = {}
    for name in datasets.NATURAL_IMAGES:
        a = datasets.natural_image(name)
        h, w = a.shape
        ch, cw = min(h, crop), min(w, crop)
        y, x = (h - ch) // 2, (w - cw) // 2
        out[name] = np.ascontiguousarray(a[y:y + ch, x:x + cw])
    return out


def reconstruct_and_score(params, images: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per-image SSIM, PSNR (dB) and MSE (0–1) of each image against its reconstruction.

    The reconstruction is clipped to [0, 255] and kept in float (not rounded).
    """
    import jax.numpy as jnp

    from jaxfuse import metrics
    from jaxfuse.training import reconstruct as rec
    out = {}
    for name, a in images.items():
        r = np.clip(np.asarray(rec(params, jnp.asarray(a[None, :, :, None]))[0, :, :, 0]), 0, 255)
        out[name] = {"SSIM": metrics.ssim(a, r), "PSNR": metrics.psnr(a, r), "MSE": metrics.mse(a, r)}
    return out


def reconstruct_models(models: ModelSet, crop: int) -> Reconstruction:
    """Reconstructs the 20 bundled natural images with every autoencoder and scores them
    (weight-free methods and FusionGAN reconstruct nothing)."""
    images = recon_images(crop)
    return Reconstruction(images, {k: reconstruct_and_score(m.params, images)
                                   for k, m in models.models.items() if m.reconstructs})
