"""The markdown block for the README's Performance section."""

from __future__ import annotations

from jaxfuse.bench.config import TRAIN_SIZE, is_busy
from jaxfuse.bench.util import fmt_mb, fmt_ms, fmt_s


def markdown(R) -> str:
    cfg, env, P, L = R.config, R.env, R.pair, R.tiled
    t = cfg.use_torch
    peak = R.peak
    flops = R.model.flops
    la = env.loadavg_start[0]
    conv = R.train["ssim"].convolutions if R.train.get("ssim") else ""
    lines = [
        "### Performance (`python -m jaxfuse.bench" + (" --quick" if cfg.quick else "") + "`)",
        "",
        f"{env.cpu}, {cfg.cores} cores, JAX {env.jax} on {env.jax_backend}"
        + (f", PyTorch {env.torch} CPU fp32 with {env.torch_threads} threads" if t else "")
        + f"; load average {la:.1f} at the start"
        + (" (busy machine: absolute times inflated, JAX and PyTorch interleaved)"
           if is_busy(la, cfg.cores) else "") + "."
        + (f" Convolutions: {conv}." if conv else "")
        + f" malloc: {env.malloc} (`jaxfuse.allocator`; PyTorch in this process shares it, PyTorch's "
        "own processes below run with glibc's defaults).",
        "",
        "| | jaxfuse (JAX) | PyTorch channels-last | PyTorch NCHW | JAX / PyTorch CL |",
        "|---|---|---|---|---|",
    ]

    def row(name, j, cl, nc, ratio):
        lines.append(f"| {name} | {j} | {cl if t else '—'} | {nc if t else '—'} | {ratio if t else '—'} |")

    def torch_s(timings, fmt):
        return timings[fmt].s if fmt in timings else None

    def gf(v):
        return "n/a" if v is None else f"{v:.0f}"

    h, w = P.hw
    row(f"fusion, one {h}×{w} pair (steady)", fmt_ms(P.steady_s), fmt_ms(torch_s(P.torch, "channels_last")),
        fmt_ms(torch_s(P.torch, "nchw")),
        f"{1 / P.speedup['channels_last']:.2f}×" if "channels_last" in P.speedup else "")
    row("  its compilation (first call − steady)", fmt_s(P.compile_est_s), "—", "—", "")
    B = getattr(R.folder, "best", None) or {}
    cl = B.get("torch_channels_last")
    if "jax" in B:
        ratio = R.folder.ratio("channels_last")
        row(f"TNO-21 folder, whole process ({R.folder.pairs} pairs)", f"{B['jax'].s:.1f} s",
            f"{cl.s if cl else float('nan'):.1f} s",
            f"{B['torch_nchw'].s if 'torch_nchw' in B else float('nan'):.1f} s",
            f"{ratio:.2f}×" if ratio is not None else "")
    if "jax_warm_cache" in B:
        warm = B["jax_warm_cache"].s
        row("  the same, run again (compilation cache warm)", f"{warm:.1f} s", "—", "—",
            f"{warm / cl.s:.2f}×" if cl else "")
    for kind, label in (("ssim", "SSIM"), ("msssim", "MS-SSIM")):
        tr = R.train.get(kind)
        row(f"train step {TRAIN_SIZE}×{TRAIN_SIZE}, {label} loss", fmt_ms(tr and tr.s),
            *(fmt_ms(torch_s(tr.torch, f) if tr else None) for f in ("channels_last", "nchw")),
            f"{tr.ratio['channels_last']:.2f}×" if tr and "channels_last" in tr.ratio else "")
        if tr and tr.torch_own is not None:
            row("  PyTorch in a process of its own, glibc's malloc defaults", "—", fmt_ms(tr.torch_own.s), "—",
                f"{tr.ratio_own:.2f}×")
        if tr and tr.xla_s is not None:
            row("  the same step with XLA's convolutions", fmt_ms(tr.xla_s), "—", "—",
                f"{tr.xla_ratio['channels_last']:.2f}×" if "channels_last" in tr.xla_ratio else "")
    ssim = R.train.get("ssim")
    row(f"{ssim.steps if ssim else cfg.train_steps} training steps (SSIM), projected (JAX: + compile)",
        fmt_s(ssim and ssim.projected_s),
        *(fmt_s(ssim.torch_projected_s(f) if ssim and f in ssim.torch else None) for f in ("channels_last", "nchw")),
        "")
    row(f"fusion GFLOP/s ({h}×{w}; JAX: network alone)", f"{P.network_gflops:.0f} "
        f"({P.network_gflops / peak:.0%} of matmul peak)",
        *(gf(P.torch[f].gflops if f in P.torch else None) for f in ("channels_last", "nchw")), "")
    train_gflops = ssim.gflops if ssim else 0
    row("train GFLOP/s (SSIM)", f"{train_gflops:.0f} ({train_gflops / peak:.0%} of matmul peak)", "", "", "")
    if "jax" in B:
        row("peak RSS, TNO-21 process", fmt_mb(B["jax"].rss),
            *(fmt_mb(B[f"torch_{f}"].rss if f"torch_{f}" in B else None) for f in ("channels_last", "nchw")), "")
    if L is not None and not L.failed:
        row(f"{L.w}×{L.h} pair by tiles: time / peak RSS", f"{L.fuse_s:.1f} s / {fmt_mb(L.rss_peak)}", "—", "—", "")
    lines += ["", f"float32 matmul peak measured here: {peak:.0f} GFLOP/s (2048³ `jnp.dot`). "
              f"FLOPs are analytic conv FLOPs (fusion of a {h}×{w} pair: "
              f"{flops.fusion(h, w) / 1e9:.1f} GFLOP; train step: {flops.train(256, 256) / 1e9:.1f} GFLOP)."
              + (" PyTorch train losses: separable-Gaussian SSIM (dm-pix's definition) / the authors' "
                 "MS-SSIM, each + 0–1 MSE, as jaxfuse." if t else ""),
              "", "| target | measured | | measured cause of a miss |", "|---|---|---|---|"]
    for tg in R.targets.rows:
        lines.append(f"| {tg.text} | {tg.shown} | **{tg.verdict}** | {tg.measured_cause or ''} |")
    K = R.kernels.cases if R.kernels is not None else {}
    if K:
        lines += ["", "The 3×3 64→64 convolution alone (JAX / PyTorch channels-last time): "
                  + "; ".join(f"{c.replace('_', ' ')} {v.hw[0]}×{v.hw[1]} XLA {v.ratio:.2f}× "
                              f"({v.jax_gflops:.0f} vs {v.torch_gflops:.0f} GFLOP/s)"
                              + (f", jaxfuse's oneDNN call {v.native_ratio:.2f}× ({v.native_gflops:.0f} GFLOP/s)"
                                 if v.native_s is not None else "")
                              for c, v in K.items()) + "."]
    lines += ["", "Times are medians of interleaved runs (whole processes: best of the rounds); "
              "“best runs” compares the fastest run of each side."]
    if R.targets.busy_note:
        lines += ["", f"**{R.targets.busy_note}**"]
    return "\n".join(lines)
