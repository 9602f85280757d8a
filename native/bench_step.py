"""A whole training step, XLA's convolutions vs jaxfuse.conv_native's.

jaxfuse.training.make_train_step as it is (variant ``xla``), and the same step
traced with every flax ``nn.Conv`` call replaced by ``conv_native.conv`` on
the module's own kernel and bias (``flax.linen.intercept_methods``; nothing
in jaxfuse is changed): ``native_w`` runs the kernel gradient on oneDNN (the
default), ``native_all`` all three directions. Steps alternate variant by
variant; medians of wall and process-CPU milliseconds. Each variant starts
from the same parameters; the losses after the timed steps are printed, as a
check that all variants train alike.

    python native/bench_step.py [--arch res2netfuse] [--size 256] [--steps 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import flax.linen as nn
import jax
import numpy as np

from jaxfuse import conv_native, training


def conv_interceptor(next_fun, args, kwargs, context):
    m = context.module
    if isinstance(m, nn.Conv) and context.method_name == "__call__":
        assert m.strides in (None, 1, (1, 1)) and m.feature_group_count == 1
        assert m.kernel_dilation in (None, 1, (1, 1)) and m.input_dilation in (None, 1, (1, 1))
        kernel = m.get_variable("params", "kernel")
        bias = m.get_variable("params", "bias") if m.use_bias else None
        return conv_native.conv(args[0], kernel, bias, m.padding)
    return next_fun(*args, **kwargs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="res2netfuse")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    assert conv_native.available(), conv_native.unavailable_reason()
    cfg = training.TrainConfig(arch=args.arch, size=args.size, batch=args.batch)
    img = training.load_training_image(None, args.size)
    img = np.repeat(img, args.batch, axis=0)
    print(f"{args.arch} {args.size}x{args.size} batch {args.batch}; oneDNN {conv_native.onednn_version()}; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; load {os.getloadavg()}")

    variants = {}
    for name, ops in (("xla", None), ("native_w", ("bwd_weights",)),
                      ("native_all", conv_native.OPS)):
        step = training.make_train_step(cfg)
        state = training.init_state(cfg)
        t = time.perf_counter()
        if ops is None:
            state, terms = step(state, img)
        else:
            conv_native.set_native_ops(ops)
            with nn.intercept_methods(conv_interceptor):
                state, terms = step(state, img)  # traced and compiled here
        jax.block_until_ready(state)
        print(f"  {name}: first step (compile) {time.perf_counter() - t:.1f} s", flush=True)
        variants[name] = [step, state, [], [], None]
    conv_native.set_native_ops()

    for _ in range(args.steps):
        for name, v in variants.items():
            step, state = v[0], v[1]
            c, t = time.process_time(), time.perf_counter()
            state, terms = step(state, img)
            jax.block_until_ready(state)
            v[2].append((time.perf_counter() - t) * 1e3)
            v[3].append((time.process_time() - c) * 1e3)
            v[1], v[4] = state, terms
    base_w = statistics.median(variants["xla"][2])
    base_c = statistics.median(variants["xla"][3])
    print(f"{'variant':<12}{'wall ms':>10}{'cpu ms':>10}{'xla/this wall':>15}{'xla/this cpu':>14}   loss")
    for name, v in variants.items():
        mw, mc = statistics.median(v[2]), statistics.median(v[3])
        print(f"{name:<12}{mw:>10.1f}{mc:>10.1f}{base_w / mw:>15.2f}{base_c / mc:>14.2f}   "
              f"{float(v[4]['total']):.6f}")
    print("load after", os.getloadavg())


if __name__ == "__main__":
    main()
