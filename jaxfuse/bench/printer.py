"""The report: each stage's figures as the lines the benchmark prints."""

from __future__ import annotations

from jaxfuse.bench.config import GB, PAIR_HW, TRAIN_SIZE, is_busy
from jaxfuse.bench.util import fmt_mb, fmt_ms, fmt_s, spread

SKIPPED = "PyTorch        : PyTorch baseline skipped: {}"


def title(stage: str, cfg, model=None) -> str:
    """The section title of a stage (printed before it runs)."""
    if stage == "pair":
        h, w = cfg.pair_hw
        return f"Fusion of one {h}×{w} pair (l1)" + ("  [quick: not the 480×640 of the target]"
                                                     if tuple(cfg.pair_hw) != PAIR_HW else "")
    if stage == "large":
        h, w, engine, _ = cfg.large
        return (f"One {w}×{h} pair by tiles, fresh process ({engine})"
                + ("  [quick: not the 4000×3000 of the target]" if cfg.quick else ""))
    return {"env": "Machine and software", "model": "Model", "matmul": f"Matmul peak (float32, {cfg.matmul_n}³)",
            "train": f"Training step {cfg.train_size}×{cfg.train_size} (batch 1, Adam 5e-4)",
            "kernels": "One convolution, both frameworks (3×3, 64→64: the decoder's first layer)",
            "folder": "TNO-21 folder as a whole process (start-up and compiles included)",
            "memory": "Memory", "targets": "Targets (issue)",
            "markdown": "Markdown summary (for the README)"}[stage]


def env(e, cfg) -> None:
    print(f"device/backend : JAX {e.jax_backend} ({', '.join(e.jax_devices)}; kind {e.device_kind})")
    print(f"CPU            : {e.cpu} [{e.cpu_flags}], {cfg.cores} usable core(s) of {e.cpu_count}")
    print(f"versions       : python {e.python}, jax {e.jax}, jaxlib {e.jaxlib}, "
          f"flax {e.flax}, optax {e.optax}, numpy {e.numpy}")
    print(f"XLA threads    : XLA's CPU thread pool over all {cfg.cores} usable cores "
          f"(XLA_FLAGS={e.xla_flags or '<unset>'})")
    print(f"malloc         : {e.malloc} (jaxfuse.allocator; PyTorch in this process shares it, "
          "PyTorch's own processes run with glibc's defaults)")
    if cfg.use_torch:
        print(f"PyTorch        : {e.torch}, CPU fp32, set_num_threads({cfg.cores}) → "
              f"{e.torch_threads} intra-op thread(s), {e.torch_interop_threads} inter-op, "
              f"oneDNN {'on' if e.torch_mkldnn else 'off'}")
    else:
        print(SKIPPED.format(cfg.torch_skip_reason))
    la = e.loadavg_start
    print(f"load average   : {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} (1/5/15 min)"
          + ("  <- busy machine: absolute times are inflated; JAX and PyTorch are interleaved"
             " so the ratios hold better" if is_busy(la[0], cfg.cores) else ""))
    print(f"mode           : {'quick (fewer repeats, smaller sizes)' if cfg.quick else 'full'}")


def model(m) -> None:
    f = m.flops
    print(f"weights        : {m.weights}")
    print(f"network        : {m.title} shared={m.shared}, {m.parameters:,} "
          f"parameters; analytic conv FLOPs per pixel: encoder {f.encoder:,}, decoder {f.decoder:,}")
    print(f"FLOPs          : fusion of a 480×640 pair {f.fusion(*PAIR_HW) / 1e9:.1f} GFLOP "
          f"(2 encoders + 1 decoder); train step 256×256 {f.train(TRAIN_SIZE, TRAIN_SIZE) / 1e9:.1f} GFLOP "
          f"(forward + weight and input gradients)")


def matmul(mm) -> None:
    print(f"jnp.dot        : {spread(mm.jax_times_s)} → {mm.peak_gflops:.0f} GFLOP/s (the peak used below)")
    if mm.torch_times_s is not None:
        print(f"torch.mm       : {spread(mm.torch_times_s)} → {mm.torch_gflops:.0f} GFLOP/s")


def pair(p, cfg, peak: float) -> None:
    h, w = p.hw
    bh, bw = p.bucket
    print(f"input          : {p.source}"
          + (f"; auto_fuse pads it to its {bh}×{bw} shape bucket (masked, exact)" if (bh, bw) != (h, w) else ""))
    print(f"JAX fuse_pair  : {spread(p.times_s)}  [user path: NumPy in, auto_fuse, uint8 out]")
    print(f"JAX network    : {spread(p.network_times_s)}  [jitted fuse() on a {h}×{w} device array, "
          f"no padding]")
    print(f"JAX compile    : first call {fmt_s(p.first_call_s)} − steady = {fmt_s(p.compile_est_s)}; "
          f"on cleared caches: trace+lower {fmt_s(p.trace_lower_s)}, XLA compile {fmt_s(p.xla_compile_s)}")
    print(f"JAX GFLOP/s    : {p.gflops:.0f} (user path), {p.network_gflops:.0f} "
          f"(network) = {p.network_gflops / peak:.0%} of the matmul peak; "
          f"analytic {p.flops / 1e9:.1f} GFLOP, XLA cost_analysis {p.xla_cost_analysis_gflop:.1f} GFLOP")
    if not cfg.use_torch:
        print(SKIPPED.format(cfg.torch_skip_reason))
        return
    for fmt, t in p.torch.items():
        print(f"PyTorch {fmt:<13}: {spread(t.times_s)} → {t.gflops:.0f} GFLOP/s "
              f"({t.gflops / peak:.0%} of the JAX-measured matmul peak)")
    print(f"agreement      : uint8 outputs JAX vs PyTorch: max |diff| {p.output_max_abs_diff}, "
          f"{p.output_frac_diff_gt1:.3%} of pixels differ by more than 1")
    parts = [f"{p.speedup[fmt]:.2f}× PyTorch {fmt.replace('_', '-')} (best runs {p.speedup_best[fmt]:.2f}×)"
             for fmt in p.torch]
    print(f"speed-up       : JAX fuse_pair is {', '.join(parts)} (PyTorch time / JAX time, "
          f"medians; best runs = ratio of the minima)")


def train(steps: dict, cfg, peak: float) -> None:
    for kind, t in steps.items():
        label = "SSIM loss (jaxfuse default)" if kind == "ssim" else "MS-SSIM loss (authors')"
        print(f"-- {label}")
        print(f"JAX            : {spread(t.times_s)} → {t.gflops:.0f} GFLOP/s "
              f"({t.gflops / peak:.0%} of matmul peak; analytic "
              f"{t.flops / 1e9:.1f} GFLOP, XLA cost_analysis {t.xla_cost_analysis_gflop:.1f} GFLOP)")
        print(f"JAX compile    : trace+lower {fmt_s(t.trace_lower_s)} + XLA compile {fmt_s(t.xla_compile_s)} "
              f"= {fmt_s(t.compile_s)}")
        print(f"JAX {t.steps} steps : {fmt_s(t.projected_s)} projected "
              f"({t.steps} × median step + compile; checkpoints and plots not included)")
        print(f"convolutions   : {t.convolutions}")
        if t.xla_s is not None:
            print(f"JAX, XLA convs : {spread(t.xla_times_s)}; the oneDNN step is "
                  f"{t.xla_s / t.s:.2f}× faster; {t.steps} steps {fmt_s(t.steps * t.xla_s)}")
        if not cfg.use_torch:
            continue
        for fmt, tt in t.torch.items():
            print(f"PyTorch {fmt:<13}: {spread(tt.times_s)} → {tt.gflops:.0f} GFLOP/s; "
                  f"{t.steps} steps {fmt_s(t.torch_projected_s(fmt))}")
        if t.torch_own is not None:
            print(f"PyTorch CL, own process, glibc malloc defaults: {spread(t.torch_own.times_s)}; "
                  f"JAX / that = {t.ratio_own:.2f} (best runs {t.ratio_own_best:.2f})")
        print(f"loss check     : first-step loss JAX {t.first_loss:.6g}, PyTorch "
              f"{t.torch_first_loss:.6g} (same weights, same image)")
        parts = [f"/ PyTorch {fmt.replace('_', '-')} = {t.ratio[fmt]:.2f} (best runs {t.ratio_best[fmt]:.2f})"
                 for fmt in t.torch]
        print(f"ratio          : JAX {', '.join(parts)}")
        if t.xla_ratio:
            print("ratio, XLA     : JAX with XLA's convolutions " + ", ".join(
                f"/ PyTorch {fmt.replace('_', '-')} = {r:.2f}" for fmt, r in t.xla_ratio.items()))
    if cfg.use_torch:
        print("PyTorch losses : SSIM = 11-tap σ 1.5 separable Gaussian SSIM on the 0–1 scale "
              "(dm-pix's definition) + 0–1 MSE; MS-SSIM = the authors' formula (SPEC), separable "
              "Gaussian, + 0–1 MSE; Adam lr 5e-4; NCHW or channels-last network and input")
    else:
        print(SKIPPED.format(cfg.torch_skip_reason))


def kernels(k, peak: float) -> None:
    if k.skipped:
        print(f"skipped: {k.skipped}")
        return
    native = any(c.native_s is not None for c in k.cases.values())
    print(f"{'case':<26}{'JAX, XLA conv':>22}{'PyTorch channels-last':>26}{'XLA / PyTorch':>15}"
          + (f"{'JAX, oneDNN call':>24}{'oneDNN / PyTorch':>18}" if native else ""))
    for c in k.cases.values():
        label = f"{c.case.replace('_', ' ')} {c.hw[0]}×{c.hw[1]}"
        print(f"{label:<26}{fmt_ms(c.jax_s):>11} {c.jax_gflops:>4.0f} GFLOP/s{fmt_ms(c.torch_channels_last_s):>13} "
              f"{c.torch_gflops:>4.0f} GFLOP/s{c.ratio:>14.2f}×"
              + (f"{fmt_ms(c.native_s):>13} {c.native_gflops:>4.0f} GFLOP/s{c.native_ratio:>17.2f}×"
                 if c.native_s is not None else ""))
    print(f"(XLA options: {k.xla_options}; matmul peak {peak:.0f} GFLOP/s)")


def folder_plan(plan, cfg, model) -> None:
    if plan.skipped:
        print(f"skipped: {plan.skipped}" + (" (needs ir/ and vis/ PNG folders)" if cfg.tno else ""))
        return
    print(f"pairs          : {plan.what}")
    print(f"JAX command    : python fuse.py --pairs {plan.folder} --out TMP --no-progress --overwrite"
          + (" --checkpoint TMPCKPT" if model.checkpoint_args else ""))
    if cfg.use_torch:
        print(f"PyTorch script : python torch_fuse.py (imports torch + jaxfuse/bench/torch_baseline.py, "
              f"PIL in, PNG out, set_num_threads({cfg.cores}))")
    print("peak RSS       : VmHWM of each process (its own high-water mark)")


def folder_run(name: str, rnd, run) -> None:
    """One finished process of the folder stage (``rnd`` None: the warm-cache rerun)."""
    if rnd is None:
        print(f"{name:<21}: {run.wall_s:.1f} s wall, {run.cpu_s:.1f} s CPU, peak RSS "
              f"{fmt_mb(run.rss)} (same command again: compiled programs from the cache)", flush=True)
    elif not run.ok:
        print(f"{name}: FAILED (exit {run.returncode}): {run.error_tail(500)}")
    else:
        print(f"{name:<21}: round {rnd + 1}: {run.wall_s:.1f} s wall, {run.cpu_s:.1f} s CPU, peak RSS "
              f"{fmt_mb(run.rss)}", flush=True)


def folder(T, cfg) -> None:
    B, n = T.best, T.pairs
    if "jax" in B:
        print(f"JAX            : best of {T.rounds}: {B['jax'].s:.1f} s wall "
              f"({B['jax'].s / n:.2f} s/pair incl. start-up), {B['jax'].cpu_s:.1f} s CPU, "
              f"peak RSS {fmt_mb(B['jax'].rss)} (each round with an empty compilation cache)")
    if not cfg.use_torch:
        print(SKIPPED.format(cfg.torch_skip_reason))
        return
    for fmt in ("nchw", "channels_last"):
        if f"torch_{fmt}" in B:
            b = B[f"torch_{fmt}"]
            print(f"PyTorch {fmt:<13}: best of {T.rounds}: {b.s:.1f} s wall, "
                  f"{b.cpu_s:.1f} s CPU, peak RSS {fmt_mb(b.rss)}")
    if T.ratio("channels_last") is not None:
        print(f"ratio          : wall time JAX / PyTorch channels-last = "
              f"{T.ratio('channels_last'):.2f}, / NCHW = "
              f"{T.ratio('nchw'):.2f} (CPU time, less disturbed by other load: "
              f"{T.ratio('channels_last', cpu=True):.2f}, {T.ratio('nchw', cpu=True):.2f})")
    if T.output_max_abs_diff is not None:
        print(f"agreement      : fused PNGs JAX vs PyTorch: max |diff| {T.output_max_abs_diff}, "
              f"{T.output_frac_diff_gt1:.3%} of pixels differ by more than 1")


def tiled(L) -> None:
    if L.failed:
        print(f"FAILED (exit {L.returncode}): {L.error}")
        return
    print(f"input          : {L.input}; {L.w * L.h / 1e6:.1f} Mpixel, tiles of {L.tile} "
          f"(+12 px halo each side)")
    print(f"time           : fuse_pair {L.fuse_s:.1f} s ({L.flops / L.fuse_s / 1e9:.0f} "
          f"GFLOP/s counting the image, not the halos), whole process {L.process_s:.1f} s")
    print(f"peak RSS       : {fmt_mb(L.rss_peak)} ({L.rss_peak / GB:.2f} GB) for the whole process; "
          f"{fmt_mb(L.rss_before_fuse)} before fusing (imports, weights, the two inputs)")


def memory(maxrss: int, cfg) -> None:
    print(f"this benchmark process (JAX{' + PyTorch' if cfg.use_torch else ''}, all in-process "
          f"phases): peak RSS {fmt_mb(maxrss)}; per-process peaks are "
          f"in the TNO-21 and tiles sections")


def targets(tg) -> None:
    width = max(len(t.text) for t in tg.rows)
    for t in tg.rows:
        print(f"{t.text:<{width}}  {t.shown:>16}  {t.verdict}")
        if t.measured_cause:
            print(f"    measured cause: {t.measured_cause}")
    if tg.busy_note:
        print(tg.busy_note)
    if tg.flipped:
        print("Some verdicts flip on the fastest runs (ratio of the minima): the machine was busy "
              "and the two frameworks suffered unequally (PyTorch's OpenMP barriers lose most when "
              "cores are oversubscribed); rerun on an idle machine before quoting them.")


def ending(R) -> None:
    la = R.env.loadavg_end
    print(f"\n(benchmark took {R.bench_seconds:.0f} s; load average at the end "
          f"{la[0]:.2f} {la[1]:.2f} {la[2]:.2f})")
    if R.config.json:
        print(f"figures written to {R.config.json}")
