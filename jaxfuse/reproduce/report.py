"""Stage 6: the CSVs, the montage and ``report.md``."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
from pathlib import Path
from typing import Sequence

import numpy as np

from jaxfuse import __version__, conv_native

from .models import ModelSet
from .paper import BASELINE_KINDS, MAIN_ARCH, STRATEGIES, baseline_strategies, title
from .results import REPORT_ORDER, Tables
from .scoring import Inputs, Reconstruction, shown
from .settings import Settings


@dataclasses.dataclass
class Outputs:
    """The files the run wrote beside ``report.md``."""
    csv: dict[str, Path]      # table name -> <out>/<name>.csv
    montage: Path


def write_outputs(settings: Settings, inputs: Inputs, models: ModelSet, tables: Tables) -> Outputs:
    """Writes one CSV per table and ``montage.png`` into the output folder."""
    from jaxfuse import io
    csv_paths = {}
    for tab in tables.all:
        path = inputs.out / f"{tab.name}.csv"
        io.atomic_write(path, lambda f, tab=tab: f.write(tab.csv().encode()))
        csv_paths[tab.name] = path
    return Outputs(csv_paths, _write_montage(settings, inputs, models))


MANY_CURVE = "many_loss_curves.png"


@dataclasses.dataclass(frozen=True)
class ManyRecipe:
    """How the many-image model of Tables II–III was trained, as the report states it:
    from the settings when this call trained it, from the checkpoint's own record when
    ``--many-checkpoint`` gave it."""
    sources: tuple[str, ...]
    augment: str
    steps: int
    batch: int
    lr: float
    seed: int
    size: int
    dataset: dict | None      # summary.json's "dataset" (images, skipped), when found
    checkpoint: Path | None   # the checkpoint folder, when one was given
    history: dict | None      # its loss history, for the curves


def many_recipe(settings: Settings, models: ModelSet) -> ManyRecipe:
    """The many-image model's recipe (see :class:`ManyRecipe`)."""
    from jaxfuse import checkpoint
    from jaxfuse.errors import JaxfuseError
    from jaxfuse.training import MANY_BATCH, MANY_LR
    m = models.models.get(models.many_key)
    if m is not None and m.checkpoint is not None:
        try:
            step_dir, meta = checkpoint.latest_meta(m.checkpoint)
        except JaxfuseError:  # a PyTorch file: no record of its training
            meta, step_dir = {}, None
        t = meta.get("train") if isinstance(meta.get("train"), dict) else {}
        sources = tuple(t.get("images") or [x for x in (t.get("dataset"), t.get("image")) if x]
                        or ["(not recorded)"])
        summary = None
        if step_dir is not None:
            for where in (step_dir.parent, step_dir.parent.parent):
                try:
                    summary = json.loads((where / "summary.json").read_text())
                    break
                except (OSError, ValueError):
                    continue
        dataset = (summary or {}).get("dataset")
        if (summary or {}).get("config", {}).get("images") != t.get("images"):
            dataset = None  # a summary of some other run
        return ManyRecipe(sources, t.get("augment") or "resize", int(meta.get("step") or 0),
                          int(t.get("batch") or 1), float(t.get("lr") or 0.0),
                          int(t.get("seed") or 0), int(t.get("size") or 0), dataset, m.checkpoint,
                          meta.get("history") if isinstance(meta.get("history"), dict) else None)
    dataset = None
    if m is not None and m.workdir is not None:
        try:
            dataset = json.loads((m.workdir / "summary.json").read_text()).get("dataset")
        except (OSError, ValueError):
            pass
    return ManyRecipe(tuple(settings.many_images), settings.many_augment, settings.many_steps_,
                      MANY_BATCH, MANY_LR, settings.seed0, settings.size,
                      dataset if isinstance(dataset, dict) else None, None, None)


def many_curve(inputs: Inputs, models: ModelSet, settings: Settings) -> Path | None:
    """Writes the many-image model's loss curves beside the report (``None``: none known).

    A model trained by this call: its ``loss_curves.png``; one from ``--many-checkpoint``:
    drawn from the loss history its checkpoint records."""
    from jaxfuse import io, runs, training
    m = models.models.get(models.many_key)
    path = inputs.out / MANY_CURVE
    if m is not None and m.checkpoint is not None:
        history = many_recipe(settings, models).history
        if not history or not history.get("total"):
            return None
        runs.plot_curves(history, path, training.PANELS)
        return path
    src = m.workdir / "loss_curves.png" if m is not None and m.workdir is not None else None
    if src is None or not src.is_file():
        return None
    data = src.read_bytes()
    io.atomic_write(path, lambda f: f.write(data))
    return path


def montage_columns(models: ModelSet) -> list[tuple[str, str, str]]:
    """``(model key, strategy, label)`` per fused column of the montage, as the paper's
    Figs. 7–9: the comparison methods in its order (DCHWT, JSR, JSRSD, DenseFuse, FusionGAN,
    MSDNet l1 and mean; DenseFuse with its own first strategy, as the paper shows one), then
    Res2NetFuse l1 and mean."""
    columns = []
    for name, ks in models.baseline_keys.items():
        strategies = baseline_strategies(name)
        if name == "densefuse":
            strategies = strategies[:1]
        columns += [(ks["single"], s, title(name) if len(strategies) == 1 else f"{title(name)} {s}")
                    for s in strategies]
    return columns + [(models.primary_key, s, f"{title(MAIN_ARCH)} {s}") for s in STRATEGIES]


def _write_montage(settings: Settings, inputs: Inputs, models: ModelSet) -> Path:
    from jaxfuse import io
    from jaxfuse.pipeline import load_pair
    columns = montage_columns(models)
    rows = []
    for pair in inputs.pairs[:settings.montage_pairs]:
        ir, vis = load_pair(pair)
        rows.append([ir, vis] + [io.load_image(inputs.out / "fused" / k / s / f"{pair.name}.png")
                                 for k, s, _ in columns])
    path = inputs.out / "montage.png"
    io.save_image(path, montage(rows, ["infrared", "visible"] + [c[2] for c in columns]),
                  overwrite=True)
    return path


def montage(rows, labels: Sequence[str], height: int = 180) -> np.ndarray:
    """RGB uint8 grid, one row of images per pair, under a header of column ``labels``."""
    from PIL import Image, ImageDraw

    from jaxfuse.pipeline import thumbnail

    gap = 6
    grid = [[thumbnail(c, height) for c in cells] for cells in rows]
    widths = [max(r[i].shape[1] for r in grid) for i in range(len(grid[0]))]
    width = sum(widths) + gap * (len(widths) - 1)
    body = []
    for r in grid:
        line = np.full((height + gap, width, 3), 255, np.uint8)
        x = 0
        for t, w in zip(r, widths):
            x0 = x + (w - t.shape[1]) // 2  # centred in its column
            line[:height, x0:x0 + t.shape[1]] = t
            x += w + gap
        body.append(line)
    header = Image.new("RGB", (width, 22), "white")
    draw = ImageDraw.Draw(header)
    x = 0
    for label, w in zip(labels, widths):
        draw.text((x + 4, 5), label, fill="black")
        x += w + gap
    return np.concatenate([np.asarray(header)] + body, axis=0)


@dataclasses.dataclass
class ReportInputs:
    """Everything ``report.md`` says."""
    settings: Settings
    inputs: Inputs
    models: ModelSet
    tables: Tables
    recon: Reconstruction
    timing: dict[str, float]  # stage -> seconds of this call
    seconds: float            # wall time of this call
    command: str | None
    many: ManyRecipe          # how the many-image model was trained
    many_curve: Path | None   # its loss curves beside the report, if written


def write_report(r: ReportInputs) -> Path:
    """Writes ``<out>/report.md``; returns its path."""
    from jaxfuse import io
    path = r.inputs.out / "report.md"
    text = report_text(r)
    io.atomic_write(path, lambda f: f.write(text.encode()))
    return path


def report_text(r: ReportInputs) -> str:
    return "\n".join(_head(r) + _models(r) + _timing(r) + _tables(r) + _notes(r))


def device() -> str:
    import jax
    d = jax.devices()[0]
    kind = getattr(d, "device_kind", d.platform)
    cpu = platform.processor() or platform.machine()
    return (f"{jax.default_backend()} ({kind}, {jax.device_count()} device(s)); host {cpu}, "
            f"{os.cpu_count()} CPU core(s); jax {jax.__version__}, jaxfuse {__version__}, "
            f"Python {platform.python_version()}; convolutions: {conv_native.describe()} "
            "(each run's `summary.json` records its own)")


def _many_text(r) -> str:
    """The many-image model's data, as the report states it."""
    rec = r.many
    names = ", ".join("the 20 bundled natural images" if src == "bundled" else f"`{shown(src)}`"
                      for src in rec.sources)
    how = ("random crops (½–1 of the short side), flips and 90° turns" if rec.augment == "crops"
           else "each whole image resized")
    count = ""
    d = rec.dataset
    if d is not None:
        try:
            count = (f" ({d['images']} images, {len(d['skipped'])} skipped, "
                     f"{rec.steps * rec.batch / d['images']:.1f} epochs)")
        except (KeyError, TypeError, ZeroDivisionError):
            pass
    return f"{names}{count}, gray, {how} (`jaxfuse.data`)"


def _many_line(r) -> str:
    """The settings line of the many-image model."""
    rec = r.many
    where = "" if rec.checkpoint is None else f" (`--many-checkpoint {shown(rec.checkpoint)}`, as its checkpoint records)"
    return (f"- many-image training{where}: {_many_text(r)}, {rec.steps} steps, batch {rec.batch}, "
            f"Adam lr {rec.lr:g}, seed {rec.seed}, {rec.size}×{rec.size}")


def _native_shape(name: str) -> tuple[int, int]:
    from jaxfuse import datasets
    return datasets.natural_image(name).shape


def _head(r: ReportInputs) -> list[str]:
    s, pairs = r.settings, r.inputs.pairs
    n = len(pairs)
    cropped = [k for k, a in r.recon.images.items() if a.shape != _native_shape(k)]
    networks = "; ".join(_baseline_text(s, name) for name in s.baselines)
    return [
        f"# Res2NetFuse reproduction{' (--quick smoke run: numbers are meaningless)' if s.quick else ''}",
        "", "Command:", "", "```bash", r.command or "(library call)", "```", "",
        "## Settings", "",
        f"- pairs: `{shown(r.inputs.pairs_dir)}`, {n} pair(s)"
        f"{'' if s.max_pairs is None else f' (the {n} smallest)'}: {', '.join(p.name for p in pairs)}",
        f"- single-image training: images {', '.join(s.images)}; seeds "
        f"{', '.join(map(str, s.seeds))}; {s.steps} steps, batch 1, Adam lr 5e-4, "
        f"loss `{s.loss}`, image gray and resized to {s.size}×{s.size}",
        _many_line(r),
        "- comparison methods: " + (networks or "none (`--baselines` given none)"),
        *([f"- second loss: the single-image model's recipe with loss `{s.compare_loss_}` beside "
           f"`{s.loss}`"] if s.compare_loss_ else []),
        f"- fusion: strategies {', '.join(STRATEGIES)}; metrics: the paper's eight, reference-kit "
        f"convention (`jaxfuse.metrics`, MI = 2·EN as in the kit)",
        f"- reconstruction: the 20 natural images of `jaxfuse.datasets.NATURAL_IMAGES`, gray, "
        f"centre-cropped to at most {s.crop}×{s.crop} "
        f"({len(cropped)} cropped: {', '.join(cropped) or 'none'}; the others at native size); "
        f"output clipped to [0, 255], not rounded; SSIM (MATLAB defaults), PSNR (dB) and MSE "
        f"(0–1 scale) per image, then averaged",
        "", "Models:", ""]


def _baseline_text(s: Settings, name: str) -> str:
    kind = BASELINE_KINDS[name]
    if kind == "method":
        return f"{title(name)}, no weights (`jaxfuse.methods`)"
    if kind == "pairs-network":
        where = s.fusiongan_checkpoint or f"checkpoints/{name}"
        return f"{title(name)}, trained on infrared/visible pairs: `{where}`"
    trained = "single-image and many-image" if s.baseline_many else "single-image"
    return (f"{title(name)}, trained {trained} with the recipes above, fused with "
            f"{' and '.join(baseline_strategies(name))}")


def _models(r: ReportInputs) -> list[str]:
    lines = []
    for k, m in r.models.models.items():
        secs = f", {m.train_seconds:.0f} s of training" if m.train_seconds is not None else ""
        lines.append(f"- `{k}`: {m.label}; {m.source}{secs}"
                     + (" — **the single-image model of Tables II–IV**" if k == r.models.primary_key else "")
                     + (" — **the many-image model of Tables II–III**" if k == r.models.many_key else ""))
    return lines


def _timing(r: ReportInputs) -> list[str]:
    trained = sum(m.train_seconds or 0 for m in r.models.models.values())
    return ["", "## Timing and device", "",
            f"- device: {device()}",
            f"- total wall time of this call: {r.seconds:.0f} s; "
            + "; ".join(f"{k} {v:.0f} s" for k, v in r.timing.items()),
            f"- training time recorded by the runs (including reused ones): {trained:.0f} s", ""]


def _tables(r: ReportInputs) -> list[str]:
    lines = []
    for name in REPORT_ORDER:
        tab = r.tables.report.get(name)
        if tab is None:
            if name == "images":
                lines += ["## Training images", "", "Not studied in this run (one image); pass "
                          "`--images camera astronaut coffee ...` to train one model per image.", ""]
            continue
        lines += [f"## {tab.title}", "", tab.markdown(), ""]
        if tab.note:
            lines += [tab.note, ""]
        lines += [f"CSV: `{name}.csv`", ""]
    return lines


def _notes(r: ReportInputs) -> list[str]:
    n = len(r.inputs.pairs)
    lines = [
        "Per-pair scores of the single-image model: `per_pair.csv`; per-image reconstruction: "
        "`per_image.csv`. Montage of the first pairs (infrared | visible | the comparison "
        "methods (networks: single-image) | Res2NetFuse l1 | mean, as the paper's Figs. 7–9): "
        "`montage.png`."
        + (f" Loss curves of the many-image model: `{MANY_CURVE}`."
           if r.many_curve is not None else ""), "",
        "## Notes on gaps", "",
        f"- The paper averages over 20 TNO pairs without naming them; ours are means over the "
        f"{n} pair(s) used here{' (TNO-21, all 21 pairs)' if n == 21 else ''}. Table IV's "
        f"leave-one-out rows show how far dropping one pair moves each mean.",
        "- Compare differences to ours with the seed table: a difference smaller than the "
        "spread over seeds is noise.",
        "- Table III: the paper used 20 MS-COCO images; we use the 20 natural images "
        "scikit-image ships. The single-image model's training image is among them (a row "
        "leaves it out)"
        + (", and the many-image model's training set includes all 20, so its reconstruction "
           "numbers are on seen images and flatter it." if "bundled" in r.many.sources
           else "; the many-image model was not trained on them."),
        f"- The many-image model stands in for the paper's 80 000-image model (80 000 MS-COCO "
        f"images, batch 4, lr 1e-4, 4 epochs = 80 000 steps, 320 000 samples); ours sees "
        f"{r.many.steps} batches of {r.many.batch} ({r.many.batch * r.many.steps} samples) from "
        f"{_many_text(r)}, far less data and fewer steps.",
        "- Loss: `ssim` is paper Eq. 4 (SSIM + MSE); the authors' code used MS-SSIM (`msssim`). "
        "SPEC.md's PyTorch calibration used the authors' MS-SSIM recipe.",
        "- MI in the paper's kit is 2·EN, not mutual information (see `jaxfuse.metrics`).", ""]
    if "fusiongan" in r.settings.baselines:
        lines.insert(-1, "- FusionGAN is trained on 171 registered RoadScene pairs, none of them "
                     "TNO, with a shortened recipe (its checkpoint's README says which); the "
                     "paper's row is its authors' model, trained on TNO pairs outside the test set.")
    if any(BASELINE_KINDS[b] == "method" for b in r.settings.baselines):
        lines.insert(-1, "- DCHWT, JSR and JSRSD have no weights; the settings their papers leave "
                     "open are in `jaxfuse.methods` and the README. JSR and JSRSD learn their "
                     "dictionary from each pair, with a fixed seed.")
    if r.settings.quick:
        lines += ["- This was a `--quick` smoke run (tiny training, small crops, few pairs): it checks "
                  "the machinery, not the paper.", ""]
    return lines
