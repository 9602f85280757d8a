"""The TNO-21 folder as whole processes: ``fuse.py`` against the PyTorch fuse script."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np

from jaxfuse.bench.config import PROGRAMS, REPO, BenchConfig
from jaxfuse.bench.inputs import load_gray, tno_pairs
from jaxfuse.bench.process import ProcessRun, child_env, run_script, torch_weights

TORCH_FUSE = PROGRAMS / "torch_fuse.py"
FORMATS = ("nchw", "channels_last")


@dataclasses.dataclass
class FolderPlan:
    """Which pairs (``skipped`` says why none) and the folder that holds them."""
    pairs: list
    folder: Path | None
    what: str = ""
    skipped: str | None = None


@dataclasses.dataclass
class ProcessBest:
    """One contender over the rounds: best wall and CPU time, highest peak RSS."""
    s: float
    runs_s: list
    cpu_s: float
    rss: int | None


@dataclasses.dataclass
class FolderTiming:
    pairs: int
    folder: str
    rounds: int
    best: dict = dataclasses.field(default_factory=dict)  # jax, torch_{fmt}, jax_warm_cache → ProcessBest
    output_max_abs_diff: int | None = None                # fused PNGs, JAX vs PyTorch channels-last
    output_frac_diff_gt1: float | None = None

    def ratio(self, fmt: str, cpu: bool = False) -> float | None:
        """Whole process, JAX / PyTorch ``fmt`` (wall or CPU time), when both ran."""
        if not all(k in self.best for k in ("jax", "torch_channels_last", "torch_nchw")):
            return None
        j, t = self.best["jax"], self.best[f"torch_{fmt}"]
        return j.cpu_s / t.cpu_s if cpu else j.s / t.s


def plan_folder(cfg: BenchConfig, tmp: Path) -> FolderPlan:
    """The pairs to fuse; quick mode copies the smallest ones to a folder of their own."""
    from PIL import Image
    pairs = tno_pairs(cfg.tno)
    if not pairs:
        why = f"{cfg.tno} not found" if cfg.tno else "no TNO-21 folder given"
        return FolderPlan([], None, skipped=why)
    if cfg.tno_pairs and cfg.tno_pairs < len(pairs):
        pairs = sorted(pairs, key=lambda p: Image.open(p[0]).size[0] * Image.open(p[0]).size[1])
        pairs = sorted(pairs[:cfg.tno_pairs])
        folder = tmp / "tno_subset"
        for sub in ("ir", "vis"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        for ir, vis in pairs:
            shutil.copy(ir, folder / "ir" / ir.name)
            shutil.copy(vis, folder / "vis" / vis.name)
        return FolderPlan(pairs, folder, f"quick: the {len(pairs)} smallest pairs "
                          f"({', '.join(p[0].stem for p in pairs)}) of {cfg.tno}")
    return FolderPlan(pairs, cfg.tno, f"all {len(pairs)} pairs of {cfg.tno}")


def time_folder(cfg: BenchConfig, plan: FolderPlan, model, tmp: Path, on_run=None) -> FolderTiming:
    """Runs each contender ``cfg.tno_rounds`` times, then ``fuse.py`` once more on a warm cache.

    ``on_run(name, round_or_None, ProcessRun)`` is called after every process
    (``None``: the warm-cache run).
    """
    on_run = on_run or (lambda *a: None)
    env = child_env()
    names = ["jax"] + ([f"torch_{fmt}" for fmt in FORMATS] if cfg.use_torch else [])
    runs = {name: [] for name in names}

    def jax_args(out):
        return ["--pairs", plan.folder, "--out", out, "--no-progress", "--overwrite"] + model.checkpoint_args

    if cfg.use_torch:
        weights = torch_weights(model, tmp)
    outs = {}
    for r in range(cfg.tno_rounds):
        for name in names:
            out = tmp / f"out_{name}_{r}"
            if name == "jax":  # a fresh compilation cache: a first run, compiles included
                res = run_script(REPO / "fuse.py", jax_args(out), tmp=tmp,
                                 env={**env, "JAX_COMPILATION_CACHE_DIR": str(tmp / f"xla_cache_{r}")})
            else:
                # PyTorch as it runs out of the box: glibc's malloc defaults (see jaxfuse.allocator)
                res = run_script(TORCH_FUSE, [plan.folder, out, weights, name[len("torch_"):], cfg.cores,
                                              "1" if model.shared else "0"], tmp=tmp,
                                 env={**env, "JAXFUSE_MALLOC": "default"})
            on_run(name, r, res)
            runs[name].append(res if res.ok else None)
            if res.ok:
                outs[name] = out
    if runs["jax"] and runs["jax"][-1]:
        # fuse.py keeps a compilation cache: a second run on the same sizes skips compiling.
        res = run_script(REPO / "fuse.py", jax_args(tmp / "out_jax_warm"), tmp=tmp,
                         env={**env, "JAX_COMPILATION_CACHE_DIR": str(tmp / f"xla_cache_{cfg.tno_rounds - 1}")})
        if res.ok:
            runs["jax_warm_cache"] = [res]
            on_run("jax_warm_cache", None, res)
    T = FolderTiming(pairs=len(plan.pairs), folder=str(plan.folder), rounds=cfg.tno_rounds)
    for name, rs in runs.items():
        ok: list[ProcessRun] = [x for x in rs if x]
        if ok:
            T.best[name] = ProcessBest(s=min(x.wall_s for x in ok), runs_s=[x.wall_s for x in ok],
                                       cpu_s=min(x.cpu_s for x in ok),
                                       rss=max((x.rss for x in ok if x.rss is not None), default=None))
    if cfg.use_torch and "jax" in outs and "torch_channels_last" in outs:
        worst, frac = 0, []
        for ir, _ in plan.pairs:
            d = np.abs(load_gray(outs["jax"] / ir.name) - load_gray(outs["torch_channels_last"] / ir.name))
            worst = max(worst, int(d.max()))
            frac.append(float(np.mean(d > 1)))
        T.output_max_abs_diff = worst
        T.output_frac_diff_gt1 = float(np.mean(frac))
    return T
