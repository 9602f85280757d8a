"""One training step (batch 1, Adam) for each loss, JAX against PyTorch."""

from __future__ import annotations

import dataclasses
import warnings

from jaxfuse import conv_native
from jaxfuse.bench.config import LOSSES, PROGRAMS, BenchConfig
from jaxfuse.bench.process import child_env, run_script, torch_weights
from jaxfuse.bench.stages.pair import TorchTiming
from jaxfuse.bench.util import interleaved, med, timed, xla_cost_flops


TORCH_TRAIN = PROGRAMS / "torch_train.py"


@dataclasses.dataclass
class TrainTiming:
    """One loss's train step: steady state, compilation, the projection to ``steps`` steps."""
    loss: str
    size: int
    steps: int
    flops: float
    s: float
    trace_lower_s: float
    xla_compile_s: float
    gflops: float
    xla_cost_analysis_gflop: float
    times_s: list
    first_loss: float
    torch: dict = dataclasses.field(default_factory=dict)       # fmt → TorchTiming
    torch_first_loss: float | None = None                       # channels-last, same weights
    ratio: dict = dataclasses.field(default_factory=dict)       # fmt → JAX / PyTorch, medians
    ratio_best: dict = dataclasses.field(default_factory=dict)  # fmt → the same, minima
    convolutions: str = ""                                      # conv_native.describe()
    xla_s: float | None = None        # with the oneDNN kernels on: the XLA-convolution step's median
    xla_times_s: list = dataclasses.field(default_factory=list)
    xla_ratio: dict = dataclasses.field(default_factory=dict)   # fmt → XLA-path step / PyTorch
    # PyTorch channels-last in a process of its own with glibc's malloc defaults (as it runs out of
    # the box; in this process it shares jaxfuse.allocator's settings), and JAX / that
    torch_own: TorchTiming | None = None
    ratio_own: float | None = None
    ratio_own_best: float | None = None

    @property
    def compile_s(self) -> float:
        return self.trace_lower_s + self.xla_compile_s

    @property
    def projected_s(self) -> float:
        """``steps`` × the median step + compile (checkpoints and plots not included)."""
        return self.steps * self.s + self.compile_s

    def torch_projected_s(self, fmt: str) -> float:
        return self.steps * self.torch[fmt].s


def _xla_step(tcfg, params, img):
    """One call of the train step traced with flax's nn.Conv (XLA's convolutions), compiled."""
    import jax

    from jaxfuse import training
    with conv_native.xla_convolutions():
        params = jax.tree_util.tree_map(lambda x: x + 0, params)
        holder = {"state": {"params": params, "opt": training.make_optimizer(tcfg.lr).init(params),
                            "step": jax.numpy.zeros((), jax.numpy.int32)}}
        compiled = training.make_train_step(tcfg).lower(holder["state"], img).compile()

    def step():
        holder["state"], terms = compiled(holder["state"], img)
        float(terms["total"])
    return step


def _torch_own_process(cfg: BenchConfig, model, tmp, kind: str, lr: float):
    """Every timed step (seconds) of PyTorch channels-last in a fresh process with
    glibc's malloc defaults; None (and a printed line) if it failed."""
    import json

    res = run_script(TORCH_TRAIN, [torch_weights(model, tmp), "channels_last", kind, cfg.cores,
                                   cfg.reps_for(kind), cfg.train_size, lr, "1" if model.shared else "0"],
                     tmp=tmp, env=child_env(JAXFUSE_MALLOC="default"))
    if not res.ok:
        print(f"PyTorch in its own process failed: {res.error_tail(300)}")
        return None
    d = json.loads(res.stdout.strip().splitlines()[-1])
    return d["times_s"]


def time_train(cfg: BenchConfig, model, torch_side=None, losses=LOSSES, tmp=None) -> dict:
    """``{loss: TrainTiming}`` at ``cfg.train_size``², starting from the benchmark's weights.

    With ``torch_side`` and ``tmp`` (a scratch folder), PyTorch channels-last is
    also timed in a process of its own with glibc's malloc defaults.
    """
    import jax

    from jaxfuse import training
    image = training.load_training_image(None, cfg.train_size)
    flops = model.flops.train(cfg.train_size, cfg.train_size)
    out = {}
    for kind in losses:
        tcfg = training.TrainConfig(loss=kind, size=cfg.train_size)
        # Start from the benchmark's weights so JAX and PyTorch train the same network
        # (copies: the step donates its state).
        params = jax.tree_util.tree_map(lambda x: x + 0, model.params)
        holder = {"state": {"params": params, "opt": training.make_optimizer(tcfg.lr).init(params),
                            "step": jax.numpy.zeros((), jax.numpy.int32)}}
        img = jax.device_put(image)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*donated buffers were not usable.*")
            step = training.make_train_step(tcfg)
            # Compile once, timed (the steady-state calls below use this executable).
            t_lower, lowered = timed(lambda: step.lower(holder["state"], img))
            t_compile, compiled = timed(lambda: lowered.compile())
            xla_flops = xla_cost_flops(compiled)
            first_loss = []

            def jstep():
                holder["state"], terms = compiled(holder["state"], img)
                total = float(terms["total"])  # what the training loop does each step
                if not first_loss:
                    first_loss.append(total)

            fns = {"jax": jstep}
            if conv_native.enabled():  # the same step with XLA's convolutions, interleaved
                fns["jax_xla"] = _xla_step(tcfg, model.params, img)
            tl = {}
            if torch_side is not None:
                for fmt in cfg.fmts:
                    fns[f"torch_{fmt}"], tl[fmt] = torch_side.train_fn(fmt, image, kind, tcfg.lr)
            t = interleaved(fns, cfg.reps_for(kind), warmup=1)
        m = {k: med(v) for k, v in t.items()}
        res = TrainTiming(loss=kind, size=cfg.train_size, steps=cfg.train_steps, flops=flops, s=m["jax"],
                          trace_lower_s=t_lower, xla_compile_s=t_compile, gflops=flops / m["jax"] / 1e9,
                          xla_cost_analysis_gflop=xla_flops / 1e9, times_s=t["jax"],
                          first_loss=first_loss[0], convolutions=conv_native.describe())
        if "jax_xla" in m:
            res.xla_s, res.xla_times_s = m["jax_xla"], t["jax_xla"]
        if torch_side is not None:
            for fmt in cfg.fmts:
                tm = m[f"torch_{fmt}"]
                res.torch[fmt] = TorchTiming(s=tm, gflops=flops / tm / 1e9, times_s=t[f"torch_{fmt}"])
                res.ratio[fmt] = m["jax"] / tm
                res.ratio_best[fmt] = min(t["jax"]) / min(t[f"torch_{fmt}"])
                if res.xla_s is not None:
                    res.xla_ratio[fmt] = res.xla_s / tm
            res.torch_first_loss = tl["channels_last"][0]
            own = _torch_own_process(cfg, model, tmp, kind, tcfg.lr) if tmp is not None else None
            if own:
                res.torch_own = TorchTiming(s=med(own), gflops=flops / med(own) / 1e9, times_s=own)
                res.ratio_own, res.ratio_own_best = m["jax"] / med(own), min(t["jax"]) / min(own)
        out[kind] = res
    return out
