"""All figures of one run (:class:`Results`) and their JSON form (``--json``)."""

from __future__ import annotations

import dataclasses

from jaxfuse.bench.config import PAIR_HW, TRAIN_SIZE, BenchConfig


@dataclasses.dataclass
class Results:
    """Each stage's dataclass, filled in as the run goes (None: not run yet)."""
    config: BenchConfig
    env: object = None      # stages.setup.EnvInfo
    model: object = None    # stages.setup.ModelInfo
    matmul: object = None   # stages.pair.MatmulPeak
    pair: object = None     # stages.pair.PairTiming
    train: dict = dataclasses.field(default_factory=dict)  # loss → stages.train.TrainTiming
    kernels: object = None  # stages.kernels.ConvKernels
    folder: object = None   # stages.folder.FolderTiming, or the FolderPlan that was skipped
    tiled: object = None    # stages.tiled.TiledRun
    targets: object = None  # targets.Targets
    bench_process_maxrss: int | None = None
    bench_seconds: float | None = None
    markdown: str = ""

    @property
    def peak(self) -> float:
        return self.matmul.peak_gflops


def _jax(R: Results) -> dict:
    J = {"matmul_2048_s": R.matmul.jax_s, "matmul_peak_gflops": R.matmul.peak_gflops}
    p = R.pair
    J.update({"pair_hw": list(p.hw), "pair_first_call_s": p.first_call_s, "pair_steady_s": p.steady_s,
              "pair_network_s": p.network_s, "pair_compile_est_s": p.compile_est_s,
              "pair_trace_lower_s": p.trace_lower_s, "pair_xla_compile_s": p.xla_compile_s,
              "pair_gflops": p.gflops, "pair_network_gflops": p.network_gflops,
              "pair_xla_cost_analysis_gflop": p.xla_cost_analysis_gflop,
              "pair_times_s": p.times_s, "pair_network_times_s": p.network_times_s})
    for kind, t in R.train.items():
        J.update({f"train_{kind}_s": t.s, f"train_{kind}_compile_s": t.compile_s,
                  f"train_{kind}_trace_lower_s": t.trace_lower_s, f"train_{kind}_xla_compile_s": t.xla_compile_s,
                  f"train_{kind}_gflops": t.gflops,
                  f"train_{kind}_xla_cost_analysis_gflop": t.xla_cost_analysis_gflop,
                  f"train_{kind}_2000_steps_s": t.projected_s, f"train_{kind}_times_s": t.times_s})
        if t.torch:
            J[f"train_{kind}_first_loss"] = t.first_loss
        J[f"train_{kind}_convolutions"] = t.convolutions
        if t.xla_s is not None:
            J.update({f"train_{kind}_xla_convs_s": t.xla_s, f"train_{kind}_xla_convs_times_s": t.xla_times_s})
    return J


def _torch(R: Results) -> dict:
    P = {}
    if not R.config.use_torch:
        return P
    P["matmul_peak_gflops"] = R.matmul.torch_gflops
    for fmt, t in R.pair.torch.items():
        P.update({f"pair_{fmt}_s": t.s, f"pair_{fmt}_gflops": t.gflops, f"pair_{fmt}_times_s": t.times_s})
    P["pair_output_max_abs_diff"] = R.pair.output_max_abs_diff
    P["pair_output_frac_diff_gt1"] = R.pair.output_frac_diff_gt1
    for kind, tr in R.train.items():
        for fmt, t in tr.torch.items():
            P.update({f"train_{kind}_{fmt}_s": t.s, f"train_{kind}_{fmt}_2000_steps_s": tr.torch_projected_s(fmt),
                      f"train_{kind}_{fmt}_times_s": t.times_s})
        P[f"train_{kind}_first_loss"] = tr.torch_first_loss
        if tr.torch_own is not None:  # channels-last, its own process, glibc's malloc defaults
            P.update({f"train_{kind}_channels_last_own_process_s": tr.torch_own.s,
                      f"train_{kind}_channels_last_own_process_times_s": tr.torch_own.times_s})
    return P


def ratios(R: Results) -> dict:
    """Every JAX/PyTorch ratio by its JSON name (what the targets are judged on)."""
    r = {}
    if R.pair is not None:
        for fmt in R.pair.speedup:
            r[f"pair_speedup_vs_{fmt}"] = R.pair.speedup[fmt]
            r[f"pair_speedup_vs_{fmt}_best"] = R.pair.speedup_best[fmt]
    for kind, t in R.train.items():
        for fmt in t.ratio:
            r[f"train_{kind}_vs_{fmt}"] = t.ratio[fmt]
            r[f"train_{kind}_vs_{fmt}_best"] = t.ratio_best[fmt]
        for fmt, x in t.xla_ratio.items():
            r[f"train_{kind}_xla_convs_vs_{fmt}"] = x
        if t.ratio_own is not None:  # PyTorch channels-last in its own process, glibc's malloc defaults
            r[f"train_{kind}_vs_channels_last_own_process"] = t.ratio_own
            r[f"train_{kind}_vs_channels_last_own_process_best"] = t.ratio_own_best
    F = R.folder
    if getattr(F, "best", None) is not None and F.ratio("channels_last") is not None:
        r["tno_vs_channels_last"] = F.ratio("channels_last")
        r["tno_vs_nchw"] = F.ratio("nchw")
        r["tno_cpu_vs_channels_last"] = F.ratio("channels_last", cpu=True)
        r["tno_cpu_vs_nchw"] = F.ratio("nchw", cpu=True)
    return r


def _folder(F) -> dict:
    if getattr(F, "skipped", None):
        return {"skipped": F.skipped}
    T = {"pairs": F.pairs, "folder": F.folder, "rounds": F.rounds}
    for name, b in F.best.items():
        T.update({f"{name}_s": b.s, f"{name}_runs_s": b.runs_s, f"{name}_cpu_s": b.cpu_s, f"{name}_rss": b.rss})
    if F.output_max_abs_diff is not None:
        T["output_max_abs_diff"] = F.output_max_abs_diff
        T["output_frac_diff_gt1"] = F.output_frac_diff_gt1
    return T


def _tiled(L) -> dict:
    d = {"h": L.h, "w": L.w, "engine": L.engine, "tile": L.tile, "process_s": L.process_s,
         "rss_peak": L.rss_peak, "input": L.input}
    if L.failed:
        d["failed"] = True
    else:
        d.update({"fuse_s": L.fuse_s, "rss_before_fuse": L.rss_before_fuse})
    return d


def to_json(R: Results) -> dict:
    """The figures as one JSON-able dict (the layout ``--json`` has always written)."""
    M = R.model
    out = {"mode": "quick" if R.config.quick else "full", "jax": _jax(R), "torch": _torch(R),
           "ratios": ratios(R),
           "targets": {t.key: t.to_dict() for t in R.targets.rows} if R.targets else {},
           "env": R.env.to_dict(),
           "model": {"weights": M.weights, "shared": M.shared, "parameters": M.parameters,
                     "fusion_gflop_480x640": M.flops.fusion(*PAIR_HW) / 1e9,
                     "train_gflop_256": M.flops.train(TRAIN_SIZE, TRAIN_SIZE) / 1e9}}
    if R.kernels is not None and not R.kernels.skipped:
        out["kernels"] = {c: {"hw": list(k.hw), "jax_s": k.jax_s, "torch_channels_last_s": k.torch_channels_last_s,
                              "ratio": k.ratio, "jax_gflops": k.jax_gflops, "torch_gflops": k.torch_gflops,
                              "native_s": k.native_s, "native_ratio": k.native_ratio}
                          for c, k in R.kernels.cases.items()}
    out["tno"] = _folder(R.folder)
    out["large"] = _tiled(R.tiled)
    out.update({"bench_process_maxrss": R.bench_process_maxrss, "bench_seconds": R.bench_seconds,
                "markdown": R.markdown})
    return out
