"""Reproduce the paper's Tables II, III and IV, with seed and training-image studies.

    python -m jaxfuse.reproduce --pairs DIR          # the full reproduction (hours on a CPU)
    python -m jaxfuse.reproduce --quick --out /tmp/r # a smoke run in about a minute
    python -m jaxfuse.reproduce --pairs DIR --checkpoint checkpoints/res2netfuse   # reuse the shipped model

``reproduce(settings, out_dir)`` is the whole job, one stage after another
(the command line is :mod:`jaxfuse.commands.reproduce`):

1. :func:`~.models.train_models`: trains the single-image model
   (``images[0]``, ``seeds[0]``; or takes ``checkpoint``), the same recipe with
   the other seeds (is a difference noise?) and with the other images (does
   the image matter?), the many-image model (batch 4, lr 1e-4, augmented crops
   of the 20 bundled natural images, standing in for the paper's 80 000
   MS-COCO images) and the comparison networks alike.
2. :func:`~.scoring.fuse_models`: fuses the TNO pairs (``pairs``) with the
   l1-norm and mean strategies (each comparison network with its own two).
3. :func:`~.scoring.score_fusions`: scores them with the paper's eight
   metrics, kit convention (:data:`jaxfuse.metrics.PAPER_METRICS`).
4. :func:`~.scoring.reconstruct_models`: reconstructs the 20 bundled natural
   images (gray, centre-cropped to at most ``crop`` pixels a side) and scores
   SSIM, PSNR and MSE (0–1 scale).
5. :func:`~.results.build_tables`: Tables II, III and IV beside the paper's
   values, the seed and training-image studies, per-pair and per-image tables.
6. :func:`~.report.write_outputs` and :func:`~.report.write_report`: one CSV
   per table, ``montage.png`` (infrared | visible | the comparison networks |
   Res2NetFuse l1 | mean, as the paper's Figs. 7–9), the many-image model's
   loss curves (``many_loss_curves.png``, :func:`~.report.many_curve`) and ``report.md``
   (tables, command, settings, timing, device, notes) into ``out_dir``.

Measured (this machine, 2-core CPU): with ``checkpoints/res2netfuse`` as the
single-image model (the shipped model: ``ssim`` loss, camera, 2000 steps,
seed 0) the 21-pair means are, l1: SSIM_a 0.71592, EN 6.84882, MI 13.69764,
Qabf 0.48646, FMI_dct 0.37197, FMI_w 0.43185, SCD 1.70304, MS_SSIM 0.85130;
mean: 0.74186, 6.79239, 13.58478, 0.46826, 0.40366, 0.42559, 1.83824, 0.92266
(all within 1.3% of the paper's Table IV), and Table III gives SSIM 0.99897,
PSNR 52.67 dB, MSE 1.19e-5.

Finished work is reused: a model whose workdir holds a ``summary.json`` for the
same settings is loaded, not retrained (a partial checkpoint is resumed), and
fused images and their scores are kept, so rerunning an interrupted
reproduction with the same settings continues it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Callable

from .models import Model, ModelSet, train_models
from .paper import (BASELINE_KINDS, BASELINES, CALIBRATION, LOWER_IS_BETTER, MAIN_ARCH,
                    PAPER_BASELINES, PAPER_MANY, PAPER_METRIC_ORDER, PAPER_RECON, PAPER_SINGLE,
                    PUBLISHED_RERUNS, RECON_METRICS, STRATEGIES, baseline_strategies)
from .report import (ManyRecipe, Outputs, ReportInputs, many_curve, many_recipe, montage,
                     write_outputs, write_report)
from .results import Table, Tables, build_tables, fmt
from .scoring import (Fused, Inputs, Reconstruction, Scores, find_inputs, fuse_models,
                      reconstruct_models, score_fusions, select_pairs, shown)
from .settings import Settings, make_quick_pairs


@dataclasses.dataclass
class Reproduction:
    """What :func:`reproduce` made."""
    tables: dict[str, Table]  # the report's tables by name
    report: Path
    csv: dict[str, Path]
    montage: Path
    seconds: float            # wall time of the call, up to the report
    models: dict[str, str]    # model key -> where it came from ("trained", "reused", ...)
    backend: str


def reproduce(settings: Settings, out_dir, *, command: str | None = None,
              log: Callable[[str], None] = print) -> Reproduction:
    """Runs the reproduction and writes the report; returns the tables and paths.

    Args:
      settings: what to train and evaluate.
      out_dir: where models, fused images, CSVs, ``report.md`` and
        ``montage.png`` go (created; finished work in it is reused).
      command: the command line to record in the report.
      log: receives one progress line per stage and per model.

    Raises:
      JaxfuseError: bad settings, missing pairs folder, unreadable checkpoint or images.
    """
    import jax
    settings.validate()
    clock = _Clock(log)
    inputs = find_inputs(settings, out_dir)
    with clock.stage("training", "training (this call)"):
        models = train_models(settings, inputs.out, log)
    with clock.stage(f"fusing and scoring {len(inputs.pairs)} pair(s) from {inputs.pairs_dir} "
                     f"with {len(models)} model(s)", "fusion and scoring"):
        fused = fuse_models(models, inputs, log)
        scores = score_fusions(models, fused, inputs.pairs, log)
    with clock.stage("reconstructing the 20 bundled natural images (centre crop ≤ "
                     f"{settings.crop} px)", "reconstruction"):
        recon = reconstruct_models(models, settings.crop)
    with clock.stage("writing tables, montage and report", "report"):
        tables = build_tables(settings, inputs, models, scores, recon, fused)
        outputs = write_outputs(settings, inputs, models, tables)
        curve = many_curve(inputs, models, settings)
    seconds = clock.elapsed()
    report = write_report(ReportInputs(settings, inputs, models, tables, recon, clock.timing,
                                       seconds, command, many_recipe(settings, models), curve))
    clock.log_stage(f"done: {report}")
    return Reproduction(tables.report, report, outputs.csv, outputs.montage, seconds,
                        {k: m.source for k, m in models.models.items()}, jax.default_backend())


class _Clock:
    """Logs each stage with the time since the start and records how long it took."""

    def __init__(self, log: Callable[[str], None]):
        self.log, self.start, self.timing = log, time.perf_counter(), {}

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def log_stage(self, name: str) -> None:
        self.log(f"[{self.elapsed():6.0f} s] {name}")

    @contextlib.contextmanager
    def stage(self, name: str, key: str):
        self.log_stage(name)
        t = time.perf_counter()
        yield
        self.timing[key] = time.perf_counter() - t


__all__ = [
    "reproduce", "Reproduction", "Settings", "make_quick_pairs",
    "Model", "ModelSet", "train_models", "Inputs", "Fused", "Scores", "Reconstruction",
    "find_inputs", "select_pairs", "fuse_models", "score_fusions", "reconstruct_models",
    "Table", "Tables", "build_tables", "fmt", "Outputs", "ReportInputs", "write_outputs",
    "write_report", "montage", "shown",
    "STRATEGIES", "RECON_METRICS", "LOWER_IS_BETTER", "PAPER_METRIC_ORDER", "PAPER_SINGLE",
    "PAPER_MANY", "CALIBRATION", "PAPER_RECON", "BASELINES", "BASELINE_KINDS", "MAIN_ARCH",
    "PAPER_BASELINES", "PUBLISHED_RERUNS", "baseline_strategies",
]
