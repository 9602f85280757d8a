"""``run(config)``: the stages in order, each reported as soon as it is done."""

from __future__ import annotations

import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from jaxfuse.bench import printer
from jaxfuse.bench.config import BenchConfig
from jaxfuse.bench.markdown import markdown
from jaxfuse.bench.results import Results, to_json
from jaxfuse.bench.stages import folder, kernels, pair, setup, tiled, train
from jaxfuse.bench.targets import judge
from jaxfuse.bench.util import section


def run(cfg: BenchConfig) -> Results:
    """Measures everything ``cfg`` asks for, prints the report, writes ``cfg.json`` if set."""
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="jaxfuse-bench-"))
    R = Results(cfg)
    try:
        section(printer.title("env", cfg))
        R.env = setup.environment(cfg)
        printer.env(R.env, cfg)

        section(printer.title("model", cfg))
        R.model = setup.setup_model(cfg, tmp)
        printer.model(R.model)
        side = None
        if cfg.use_torch:
            from jaxfuse.bench.torch_side import TorchSide
            side = TorchSide(R.model.params, cfg.cores)

        section(printer.title("matmul", cfg))
        R.matmul = pair.matmul_peak(cfg, side)
        printer.matmul(R.matmul)

        section(printer.title("pair", cfg))
        R.pair = pair.time_pair(cfg, R.model, side)
        printer.pair(R.pair, cfg, R.peak)

        section(printer.title("train", cfg))
        R.train = train.time_train(cfg, R.model, side, tmp=tmp)
        printer.train(R.train, cfg, R.peak)

        section(printer.title("kernels", cfg))
        R.kernels = kernels.time_conv(cfg, side)
        printer.kernels(R.kernels, R.peak)

        section(printer.title("folder", cfg))
        plan = folder.plan_folder(cfg, tmp)
        printer.folder_plan(plan, cfg, R.model)
        if plan.skipped:
            R.folder = plan
        else:
            R.folder = folder.time_folder(cfg, plan, R.model, tmp, on_run=printer.folder_run)
            printer.folder(R.folder, cfg)

        section(printer.title("large", cfg))
        R.tiled = tiled.time_tiled(cfg, R.model, tmp)
        printer.tiled(R.tiled)

        R.bench_process_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        section(printer.title("memory", cfg))
        printer.memory(R.bench_process_maxrss, cfg)

        section(printer.title("targets", cfg))
        R.targets = judge(R)
        printer.targets(R.targets)

        R.env.loadavg_end = list(os.getloadavg())
        R.bench_seconds = time.perf_counter() - t0
        section(printer.title("markdown", cfg))
        R.markdown = markdown(R)
        print(R.markdown)
        if cfg.json:
            Path(cfg.json).write_text(json.dumps(to_json(R), indent=2, default=float))
        printer.ending(R)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return R
