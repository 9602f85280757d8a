"""Stage 5: the result tables, each written as CSV and as Markdown from the same cells."""

from __future__ import annotations

import dataclasses
import math
import statistics

from jaxfuse import tables as _tables

from .models import ModelSet, image_key, single_key
from .paper import (CALIBRATION, LOWER_IS_BETTER, MAIN_ARCH, PAPER_BASELINES, PAPER_MANY,
                    PAPER_METRIC_ORDER, PAPER_RECON, PAPER_SINGLE, PUBLISHED_RERUNS, RECON_METRICS,
                    STRATEGIES, baseline_strategies, title)
from .scoring import Inputs, Reconstruction, Scores, shown
from .settings import Settings

REPORT_ORDER = ("table4", "comparison", "losses", "baselines", "table2", "table3", "times", "seeds",
                "images")


def fmt(v) -> str:
    """How a table cell is printed: 5 decimals, or 4 significant digits below 1e-4."""
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    v = float(v)
    if not math.isfinite(v):
        return str(v)
    if v != 0 and abs(v) < 1e-4:
        return f"{v:.3e}"
    return f"{v:.5f}"


@dataclasses.dataclass
class Table:
    """One result table: written as CSV and as a Markdown table from the same cells."""
    name: str                 # file stem: <name>.csv
    title: str
    columns: list[str]        # the first column labels the rows
    rows: list[list]          # cells: str, float or None
    note: str = ""

    def csv(self) -> str:
        """Floats as ``repr`` (they read back exactly), ``None`` as an empty cell."""
        return _tables.format_csv(self.columns, [[float(c) if isinstance(c, float) else c for c in r]
                                                 for r in self.rows])

    def markdown(self) -> str:
        return _tables.format_markdown(self.columns, self._formatted(), marks=False)

    def text(self) -> str:
        return self.title + "\n" + _tables.format_text(self.columns, self._formatted())

    def _formatted(self) -> list[list[str]]:
        return [[fmt(c) for c in r] for r in self.rows]


@dataclasses.dataclass
class Tables:
    """The report's tables (Markdown and CSV) and the per-pair/per-image ones (CSV only)."""
    report: dict[str, Table]  # by name, in the order of REPORT_ORDER; absent ones not studied
    details: list[Table]

    @property
    def all(self) -> list[Table]:
        return list(self.report.values()) + self.details


def build_tables(settings: Settings, inputs: Inputs, models: ModelSet, scores: Scores,
                 recon: Reconstruction, fused=None) -> Tables:
    """Every table of the report, from the models' fusion scores and reconstructions.

    ``fused`` (a :class:`jaxfuse.reproduce.Fused`) adds the table of fusion times.
    """
    report = {"table4": _table4(inputs, scores.fusion[models.primary_key]),
              "comparison": _comparison(settings, inputs, models, scores),
              "table2": _table2(scores.fusion[models.primary_key], scores.fusion[models.many_key]),
              "table3": _table3(settings, models, recon)}
    if models.compare_key is not None:
        report["losses"] = _losses(settings, models, scores)
    if settings.network_baselines:
        report["baselines"] = _baselines(settings, models, scores)
    if fused is not None:
        report["times"] = _times(inputs, models, fused)
    report["seeds"] = seeds = _seeds(settings, scores, recon)
    if len(settings.images) > 1:
        report["images"] = _images(settings, scores, recon, seed_range={r[0]: r[-3] for r in seeds.rows})
    report = {name: report[name] for name in REPORT_ORDER if name in report}
    return Tables(report, _details(inputs, models, scores, recon))


def _fusion_row(label: str, values: dict) -> list:
    return [label] + [values.get(m) for m in PAPER_METRIC_ORDER]


def _delta(a: dict, b: dict) -> dict:
    return {m: a[m] - b[m] for m in PAPER_METRIC_ORDER}


def _rel(a: dict, b: dict) -> dict:
    return {m: 100.0 * (a[m] - b[m]) / b[m] for m in PAPER_METRIC_ORDER}


def _leave_one_out(per_pair: dict) -> tuple[dict, dict]:
    """Per metric, the lowest and highest mean over all pairs but one."""
    lo, hi = {}, {}
    for m in PAPER_METRIC_ORDER:
        vals = [v[m] for v in per_pair.values()]
        total = math.fsum(vals)
        means = [(total - x) / (len(vals) - 1) for x in vals]
        lo[m], hi[m] = min(means), max(means)
    return lo, hi


def _spread(values: list[float]) -> tuple[float, float, float, float]:
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, std, min(values), max(values)


def _metric_rows(fusion: dict, recon: dict) -> dict[str, float]:
    """All scalar results of one model, keyed ``"l1 EN"``, ..., ``"recon SSIM"``."""
    d = {f"{s} {m}": fusion[s]["mean"][m] for s in STRATEGIES for m in PAPER_METRIC_ORDER}
    d.update({f"recon {m}": recon[m] for m in RECON_METRICS})
    return d


def _paper_value(row: str) -> float | None:
    kind, m = row.split(" ", 1)
    if kind == "recon":
        return PAPER_RECON["Res2NetFuseRecons_1"][m]
    return PAPER_SINGLE[kind][m]


def _table4(inputs: Inputs, p1: dict) -> Table:
    n = len(inputs.pairs)
    rows = []
    for s in STRATEGIES:
        ours = p1[s]["mean"]
        rows += [_fusion_row(f"ours {s}", ours), _fusion_row(f"paper {s}", PAPER_SINGLE[s]),
                 _fusion_row(f"ours − paper {s}", _delta(ours, PAPER_SINGLE[s])),
                 _fusion_row(f"(ours − paper)/paper % {s}", _rel(ours, PAPER_SINGLE[s])),
                 _fusion_row(f"PyTorch calibration {s}", CALIBRATION[s])]
        if n >= 3:
            lo, hi = _leave_one_out(p1[s]["per_pair"])
            rows += [_fusion_row(f"ours {s}, {n - 1} of {n} pairs: lowest", lo),
                     _fusion_row(f"ours {s}, {n - 1} of {n} pairs: highest", hi)]
    return Table(
        "table4", f"Table IV: Res2NetFuse (single-image model), ours on {n} pairs vs the paper's 20",
        ["row"] + list(PAPER_METRIC_ORDER), rows,
        note=f"Ours: means over the {n} pairs in `{shown(inputs.pairs_dir)}`; the paper's: means "
             "over 20 TNO pairs it does not name. PyTorch calibration: SPEC.md's 21-pair means of a "
             "PyTorch version of the authors' recipe (MS-SSIM loss, camera, seed 0)."
             + (f" The 'lowest/highest' rows: the extremes, per metric, of the {n} means over "
                f"{n - 1} pairs that leaving out one pair gives; they bound what the paper's "
                "unnamed missing pair can do." if n >= 3 else ""))


def _table2(p1: dict, pm: dict) -> Table:
    rows = []
    for s in STRATEGIES:
        rows += [_fusion_row(f"ours single-image {s}", p1[s]["mean"]),
                 _fusion_row(f"ours many-image {s}", pm[s]["mean"]),
                 _fusion_row(f"ours many − single {s}", _delta(pm[s]["mean"], p1[s]["mean"])),
                 _fusion_row(f"paper Res2NetFuse_1 {s}", PAPER_SINGLE[s]),
                 _fusion_row(f"paper Res2NetFuse_80000 {s}", PAPER_MANY[s]),
                 _fusion_row(f"paper 80000 − 1 {s}", _delta(PAPER_MANY[s], PAPER_SINGLE[s]))]
    return Table("table2", "Table II: single-image vs many-image training, fused and scored alike",
                 ["row"] + list(PAPER_METRIC_ORDER), rows)


def _table3(settings: Settings, models: ModelSet, recon: Reconstruction) -> Table:
    def row(label, means):
        return [label] + [means[m] for m in RECON_METRICS]

    image0 = settings.image0
    rows = [row("ours single-image", recon.mean(models.primary_key)),
            row("ours many-image", recon.mean(models.many_key))]
    if image0 in recon.images and not models.primary_key.startswith("checkpoint-"):
        rows.append(row(f"ours single-image, without {image0} (19 images)",
                        recon.mean(models.primary_key, exclude=[image0])))
    for arch, ks in models.baseline_keys.items():
        for kind, k in ks.items():
            if k in recon.per_image:
                rows.append(row(f"ours {arch} {kind}-image", recon.mean(k)))
    rows += [row(f"paper {k}", v) for k, v in PAPER_RECON.items()]
    return Table("table3", "Table III: reconstruction of 20 natural images (SSIM, PSNR dB, MSE on 0–1)",
                 ["row"] + list(RECON_METRICS), rows)


def _baselines(settings: Settings, models: ModelSet, scores: Scores) -> Table:
    fusion, rows = scores.fusion, []
    for arch in settings.network_baselines:
        ks = models.baseline_keys[arch]
        for s in baseline_strategies(arch):
            rows += [_fusion_row(f"ours {arch} {kind}-image {s}", fusion[k][s]["mean"])
                     for kind, k in ks.items()]
        for s, v in PAPER_BASELINES[arch].items():
            rows.append(_fusion_row(f"paper {arch}" + (f" {s}" if s else " (strategy not stated)"), v))
    for s in STRATEGIES:
        rows.append(_fusion_row(f"ours {MAIN_ARCH} single-image {s}",
                                fusion[models.primary_key][s]["mean"]))
    many = (f"; many-image: {settings.many_steps_} steps of batch 4 on "
            f"{'+'.join(settings.many_images)} ({settings.many_augment})"
            if settings.baseline_many else "; not trained many-image in this run")
    return Table(
        "baselines", f"Table IV, comparison networks trained here "
                     f"({', '.join(settings.network_baselines)}), beside the paper's rows",
        ["row"] + list(PAPER_METRIC_ORDER), rows,
        note="Ours: the same recipe as the Res2NetFuse models (single image "
             f"`{image_key(settings.image0)}`, seed {settings.seed0}, {settings.steps} steps, loss "
             f"`{settings.loss}` with λ = 1{many}). The paper's DenseFuse and MSDNet rows are the "
             "published models, trained on 80 000 MS-COCO images; its DenseFuse row does not say "
             "which of DenseFuse's two strategies it used, so it stands beside both of ours.")


def _comparison(settings: Settings, inputs: Inputs, models: ModelSet, scores: Scores) -> Table:
    """The whole of Table IV: each comparison method and Res2NetFuse, ours beside the paper's."""
    fusion, rows = scores.fusion, []
    entries = [(name, models.baseline_keys[name]["single"], baseline_strategies(name),
                PAPER_BASELINES[name]) for name in settings.baselines]
    entries.append((MAIN_ARCH, models.primary_key, STRATEGIES, PAPER_SINGLE))
    for name, key, strategies, paper in entries:
        labels = {s: title(name) if len(strategies) == 1 else f"{title(name)} {s}" for s in strategies}
        for s in strategies:
            rows.append(_fusion_row(f"ours {labels[s]}", fusion[key][s]["mean"]))
            if s in paper:
                rows.append(_fusion_row(f"paper {labels[s]}", paper[s]))
        if None in paper:  # one published row for all of ours
            rows.append(_fusion_row(f"paper {title(name)}", paper[None]))
        for s in strategies:
            rows.append(_fusion_row(f"(ours − paper)/paper % {labels[s]}",
                                    _rel(fusion[key][s]["mean"], paper.get(s, paper.get(None)))))
        if name in PUBLISHED_RERUNS:
            rerun = PUBLISHED_RERUNS[name]
            rows += [_fusion_row(f"published re-run {title(name)}", rerun),
                     _fusion_row(f"(ours − re-run)/re-run % {title(name)}",
                                 _rel(fusion[key][strategies[0]]["mean"], rerun))]
    n = len(inputs.pairs)
    return Table(
        "comparison", f"Table IV, every method: ours on {n} pairs beside the paper's",
        ["row"] + list(PAPER_METRIC_ORDER), rows,
        note="Ours: DCHWT, JSR and JSRSD are `jaxfuse.methods` (no weights); DenseFuse and MSDNet "
             f"are trained here single-image like Res2NetFuse (`{image_key(settings.image0)}`, seed "
             f"{settings.seed0}, {settings.steps} steps, loss `{settings.loss}`), where the paper's "
             "were trained on 80 000 MS-COCO images; FusionGAN is trained on 171 RoadScene pairs "
             "(its authors trained on TNO pairs outside the test set; see its checkpoint's README); "
             "Res2NetFuse is the single-image model of Table IV above. The paper's DenseFuse row "
             "gives no strategy, so it stands beside both of ours. JSR and JSRSD also stand beside "
             "published re-runs of their authors' algorithms on these 21 pairs, scored here with "
             "the same metrics: as the paper's 20 pairs are unnamed, those re-runs are what our "
             "implementations are held to (within 3 %).")


def _losses(settings: Settings, models: ModelSet, scores: Scores) -> Table:
    """The main recipe with each loss: the shipped one and the other, beside paper and calibration."""
    fusion, rows = scores.fusion, []
    keys = {settings.loss: models.primary_key, settings.compare_loss_: models.compare_key}
    for s in STRATEGIES:
        for loss, key in keys.items():
            rows.append(_fusion_row(f"ours loss {loss} {s}", fusion[key][s]["mean"]))
        rows += [_fusion_row(f"paper {s}", PAPER_SINGLE[s]),
                 _fusion_row(f"PyTorch calibration {s}", CALIBRATION[s])]
        for loss, key in keys.items():
            rows.append(_fusion_row(f"(ours − paper)/paper % loss {loss} {s}",
                                    _rel(fusion[key][s]["mean"], PAPER_SINGLE[s])))
    return Table(
        "losses", f"Table IV, Res2NetFuse trained with each loss ({', '.join(keys)}), beside the "
                  "paper's rows",
        ["row"] + list(PAPER_METRIC_ORDER), rows,
        note=f"Both: the main recipe (`{image_key(settings.image0)}`, seed {settings.seed0}, "
             f"{settings.steps} steps). `ssim` is paper Eq. 4 (dm-pix SSIM + MSE); `msssim` is the "
             "authors' code (their MS-SSIM + MSE), the recipe of the PyTorch calibration.")


def _times(inputs: Inputs, models: ModelSet, fused) -> Table:
    """How long each model took per pair, over the pairs it fused (and wrote) in this call."""
    rows = []
    for key, per in fused.seconds.items():
        for s, secs in per.items():
            n = fused.new[key][s]
            rows.append([models.models[key].label, s, f"{n} of {len(inputs.pairs)}", secs,
                         secs / n if n else None])
    return Table("times", "Fusion time per pair, this call (reused images are not fused again)",
                 ["model", "strategy", "pairs fused", "seconds", "seconds per pair"], rows,
                 note="Wall time on this machine, reading and writing included; the first pair "
                      "of each network also pays its compiles.")


def _per_model(scores: Scores, recon: Reconstruction, keys: list[str]) -> dict[str, dict[str, float]]:
    return {k: _metric_rows(scores.fusion[k], recon.mean(k)) for k in keys}


def _seeds(settings: Settings, scores: Scores, recon: Reconstruction) -> Table:
    keys = [single_key(settings, settings.image0, s) for s in settings.seeds]
    per_seed = _per_model(scores, recon, keys)
    rows = []
    for r in per_seed[keys[0]]:
        vals = [per_seed[k][r] for k in keys]
        mean, std, lo, hi = _spread(vals)
        p = _paper_value(r)
        rows.append([r] + vals + [mean, std, lo, hi, hi - lo, p, "yes" if lo <= p <= hi else "no"])
    return Table(
        "seeds", f"Seeds: single-image model ({image_key(settings.image0)}) trained with seeds "
                 f"{', '.join(map(str, settings.seeds))}",
        ["metric"] + [f"seed {s}" for s in settings.seeds] +
        ["mean", "std", "min", "max", "max − min", "paper", "paper in [min, max]"], rows)


def _images(settings: Settings, scores: Scores, recon: Reconstruction, seed_range: dict) -> Table:
    keys = [single_key(settings, im, settings.seed0) for im in settings.images]
    per_img = _per_model(scores, recon, keys)
    rows = []
    for r in per_img[keys[0]]:
        vals = [per_img[k][r] for k in keys]
        pick = min if r.split(" ", 1)[1] in LOWER_IS_BETTER else max
        best = pick(range(len(vals)), key=vals.__getitem__)
        rows.append([r] + vals + [max(vals) - min(vals), seed_range.get(r),
                                  image_key(settings.images[best])])
    return Table(
        "images", f"Training images: one single-image model per image (seed {settings.seed0})",
        ["metric"] + [image_key(im) for im in settings.images] +
        ["max − min", "seed max − min", "best"], rows,
        note="'max − min' over the training images beside the same spread over seeds: "
             "a choice of image matters only where its spread clearly exceeds the seeds'. "
             "Reconstruction rows include each model's own training image among the 20.")


def _details(inputs: Inputs, models: ModelSet, scores: Scores, recon: Reconstruction) -> list[Table]:
    """The per-pair and per-image tables: written as CSV only."""
    primary = scores.fusion[models.primary_key]
    pp = [[name, s] + [primary[s]["per_pair"][name][m] for m in PAPER_METRIC_ORDER]
          for s in STRATEGIES for name in (p.name for p in inputs.pairs)]
    pi = [[name, label] + [recon.per_image[k][name][m] for m in RECON_METRICS]
          for k, label in ((models.primary_key, "single"), (models.many_key, "many"))
          for name in recon.images]
    return [Table("per_pair", "Per pair, single-image model",
                  ["pair", "strategy"] + list(PAPER_METRIC_ORDER), pp),
            Table("per_image", "Per image reconstruction", ["image", "model"] + list(RECON_METRICS), pi)]
