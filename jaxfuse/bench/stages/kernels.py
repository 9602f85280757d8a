"""Where the time goes: the network's heaviest convolution alone, in both frameworks."""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxfuse.bench.config import BenchConfig
from jaxfuse.bench.util import interleaved, med

# The decoder's first layer of Res2NetFuse: 3×3, 64 → 64.
KERNEL, CHANNELS = 3, 64


@dataclasses.dataclass
class ConvCase:
    """One convolution (forward, or a gradient) at one size: JAX / PyTorch channels-last."""
    case: str
    hw: tuple[int, int]
    jax_s: float
    torch_channels_last_s: float
    jax_gflops: float
    torch_gflops: float
    native_s: float | None = None  # jaxfuse.conv_native's oneDNN call, when the kernels are on

    @property
    def ratio(self) -> float:
        """XLA's convolution / PyTorch channels-last."""
        return self.jax_s / self.torch_channels_last_s

    @property
    def native_ratio(self) -> float | None:
        """jaxfuse's oneDNN call / PyTorch channels-last."""
        return None if self.native_s is None else self.native_s / self.torch_channels_last_s

    @property
    def native_gflops(self) -> float | None:
        return None if self.native_s is None else self.jax_gflops * self.jax_s / self.native_s


@dataclasses.dataclass
class ConvKernels:
    """The cases in order (empty when ``skipped`` says why) and the XLA options in force."""
    cases: dict = dataclasses.field(default_factory=dict)  # case → ConvCase
    xla_options: str = ""
    skipped: str | None = None


def time_conv(cfg: BenchConfig, torch_side=None) -> ConvKernels:
    """Forward at the fusion size; forward, input and weight gradients at the train size.

    XLA's convolution (``lax.conv_general_dilated``) and, when the oneDNN kernels
    are on, :func:`jaxfuse.conv_native.conv` beside it, interleaved with PyTorch.
    These ratios are the measured cause of the fusion and training verdicts.
    """
    if torch_side is None:
        return ConvKernels(skipped=f"needs the PyTorch baseline ({cfg.torch_skip_reason})")
    import jax
    import jax.numpy as jnp
    from jax import lax

    from jaxfuse import conv_native, xla
    torch = torch_side.torch
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.05, (KERNEL, KERNEL, CHANNELS, CHANNELS)).astype(np.float32)  # HWIO, as Flax
    dn = ("NHWC", "HWIO", "NHWC")
    conv = lambda x, k: lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=dn)  # noqa: E731
    fwd = xla.jit(conv)
    dx = xla.jit(lambda x, k, g: jax.vjp(lambda x_: conv(x_, k), x)[1](g)[0])
    dw = xla.jit(lambda x, k, g: jax.vjp(lambda k_: conv(x, k_), k)[1](g)[0])
    native = conv_native.enabled()
    nconv = lambda x, k: conv_native.conv(x, k, None, "SAME")  # noqa: E731
    nfwd = xla.jit(nconv)
    ndx = xla.jit(lambda x, k, g: jax.vjp(lambda x_: nconv(x_, k), x)[1](g)[0])
    ndw = xla.jit(lambda x, k, g: jax.vjp(lambda k_: nconv(x, k_), k)[1](g)[0])
    tw = torch.from_numpy(w.transpose(3, 2, 0, 1).copy())  # OIHW
    ts = (cfg.train_size, cfg.train_size)
    cases = [("forward", cfg.pair_hw), ("forward_train", ts), ("input_grad", ts), ("weight_grad", ts)]
    out = ConvKernels(xla_options=str(xla.compiler_options() or "XLA defaults"))
    pad = KERNEL // 2
    for case, (h, wd) in cases:
        x = rng.normal(0, 1, (1, h, wd, CHANNELS)).astype(np.float32)
        xj, kj, gj = jnp.asarray(x), jnp.asarray(w), jnp.asarray(x)
        tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).contiguous(memory_format=torch.channels_last)
        tg = tx.clone()
        twc = tw.contiguous(memory_format=torch.channels_last)
        if case.startswith("forward"):
            jf = lambda: fwd(xj, kj).block_until_ready()  # noqa: E731
            nf = lambda: nfwd(xj, kj).block_until_ready()  # noqa: E731
            tf = lambda: torch.nn.functional.conv2d(tx, twc, padding=pad)  # noqa: E731
        elif case == "input_grad":
            jf = lambda: dx(xj, kj, gj).block_until_ready()  # noqa: E731
            nf = lambda: ndx(xj, kj, gj).block_until_ready()  # noqa: E731
            tf = lambda: torch.nn.grad.conv2d_input(tx.shape, twc, tg, padding=pad)  # noqa: E731
        else:
            jf = lambda: dw(xj, kj, gj).block_until_ready()  # noqa: E731
            nf = lambda: ndw(xj, kj, gj).block_until_ready()  # noqa: E731
            tf = lambda: torch.nn.grad.conv2d_weight(tx, twc.shape, tg, padding=pad)  # noqa: E731
        fns = {"jax": jf, "torch": tf, **({"native": nf} if native else {})}
        with torch.no_grad():
            t = interleaved(fns, cfg.reps_kernel, warmup=2)
        gflop = 2.0 * h * wd * CHANNELS * CHANNELS * KERNEL * KERNEL / 1e9
        mj, mt = med(t["jax"]), med(t["torch"])
        out.cases[case] = ConvCase(case=case, hw=(h, wd), jax_s=mj, torch_channels_last_s=mt,
                                   jax_gflops=gflop / mj, torch_gflops=gflop / mt,
                                   native_s=med(t["native"]) if native else None)
    return out
