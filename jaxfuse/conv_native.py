"""2-D convolution with oneDNN kernels on the CPU, through XLA FFI custom calls.

XLA:CPU's convolution weight gradient is several times slower than oneDNN's.
This module offers :func:`conv`, a drop-in for the stride-1 convolutions the
networks use (NHWC activations, HWIO kernels, float32, bias, ``"SAME"``,
``"VALID"``, ``"REFLECT"`` or explicit padding), whose forward pass and two
gradients can each run oneDNN's kernel (forward, backward-data,
backward-weights) when the computation is on the CPU backend and the
compiled extension is present, and run ``lax.conv_general_dilated`` (and its
XLA gradients) otherwise: on another backend, for other dtypes, and when the
extension is not built. By default all three run on oneDNN
(:data:`DEFAULT_NATIVE_OPS`, :func:`set_native_ops`), except the kernel
gradient of a layer with a single input channel, where XLA's is as fast.

The extension is one shared library built from ``jaxfuse/native/onednn_conv.cc``
by :mod:`jaxfuse.conv_build` with the machine's compiler against the
``onednn-cpu-gomp`` and ``onednn-devel-cpu-gomp`` wheels (``pip install
'jaxfuse[cpu-kernels]'``). On first use (:func:`available`) it is loaded from
``$JAXFUSE_ONEDNN_LIB`` or from the build cache, built there first if the
wheels are installed and it is not (about 10 s, once per environment), and
its FFI targets are registered. Without the wheels, or with
``JAXFUSE_NATIVE_CONV=0``, nothing is built or loaded and the networks use
flax's ``nn.Conv`` exactly as before (:func:`enabled`; the networks ask it when
they are traced, :func:`jaxfuse.networks._conv`).

Behaviour under the transformations:

* ``jax.jit``: the custom calls are ordinary XLA ops; oneDNN primitives are
  built once per shape and cached inside the library.
* ``jax.grad``: a ``jax.custom_vjp``; the backward pass computes the input
  gradient with backward-data and the kernel and bias gradients together with
  backward-weights. Reflection padding is a ``jnp.pad`` before a ``"VALID"``
  convolution, so its gradient is JAX's.
* ``jax.vmap``: a vmapped axis of the activations is folded into the image
  batch (one call on ``B·N`` images) when the kernel and bias are shared; a
  batched kernel (and a per-example kernel gradient) runs one call per example.

Threads: each call runs oneDNN's OpenMP kernels on as many threads as XLA's
intra-op thread pool has (:func:`set_max_threads` caps it). OpenMP's idle
threads would otherwise spin between calls and take cores from XLA's own
threads, so unless ``OMP_WAIT_POLICY`` is already set, loading the extension
sets it to ``PASSIVE`` (it takes effect only if no OpenMP runtime was loaded
in the process before).
"""

from __future__ import annotations

import contextlib
import functools
from typing import Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

# the kernels' library (found, built, loaded): conv_build; named here, as this module's API
from jaxfuse import conv_build, conv_layouts
from jaxfuse.conv_build import (  # noqa: F401
    available, last_call_threads, library_path, onednn_version, unavailable_reason)
from jaxfuse.conv_layouts import wide_weight_grad_layout  # noqa: F401

__all__ = ["DEFAULT_NATIVE_OPS", "OPS", "available", "conv", "describe", "enabled", "last_call_threads",
           "library_path", "native_ops", "onednn_version", "set_enabled", "set_max_threads",
           "set_native_ops", "unavailable_reason", "wide_weight_grad_layout", "xla_convolutions"]

Padding = Union[str, int, Sequence[Union[int, Sequence[int]]]]

_DN = ("NHWC", "HWIO", "NHWC")
OPS = conv_build.OPS
# Which directions run on oneDNN by default: all three. Against XLA with the
# options jaxfuse compiles with (jaxfuse.xla), oneDNN's forward and input
# gradient are 1.1-3.6x faster on the networks' layers and its weight
# gradient 3-13x (native/bench_layers.py); :func:`set_native_ops` narrows it.
DEFAULT_NATIVE_OPS = OPS

_state: dict = {"max_threads": 0, "native_ops": DEFAULT_NATIVE_OPS, "enabled": True}


def enabled() -> bool:
    """Whether the networks' convolutions run on the kernels: :func:`available` and not
    switched off by :func:`set_enabled`. Read when a network is traced."""
    return _state["enabled"] and available()


def set_enabled(flag: bool) -> None:
    """Use the kernels in networks traced from now on (True, the default when they are
    available) or flax's ``nn.Conv`` (False). Functions already traced keep their choice."""
    _state["enabled"] = bool(flag)


@contextlib.contextmanager
def xla_convolutions():
    """Networks traced inside use flax's ``nn.Conv`` (XLA's convolutions), whatever is installed."""
    before = _state["enabled"]
    _state["enabled"] = False
    try:
        yield
    finally:
        _state["enabled"] = before


def describe() -> str:
    """Which convolutions the networks traced now use, in words (for summaries and reports)."""
    if enabled():
        return f"oneDNN {onednn_version()} kernels (jaxfuse.conv_native) on the CPU backend"
    why = unavailable_reason() or "switched off (conv_native.set_enabled)"
    return f"XLA's (lax.conv_general_dilated; {why})"


def set_max_threads(n: int) -> None:
    """Cap oneDNN's threads per call (0: as many as XLA's intra-op pool).

    Applies to functions traced afterwards (it is a constant of the call).
    """
    if n < 0:
        raise ValueError(f"max threads must be >= 0, got {n}")
    _state["max_threads"] = int(n)


def set_native_ops(ops=DEFAULT_NATIVE_OPS) -> None:
    """Choose which directions run on oneDNN: any of ``"fwd"``, ``"bwd_data"``,
    ``"bwd_weights"`` (the rest use XLA). Applies to functions traced afterwards."""
    ops = tuple(ops)
    bad = [op for op in ops if op not in OPS]
    if bad:
        raise ValueError(f"unknown convolution directions {bad}; choose from {OPS}")
    _state["native_ops"] = tuple(op for op in OPS if op in ops)


def native_ops() -> tuple[str, ...]:
    """The directions that run on oneDNN (when the extension is available)."""
    return _state["native_ops"]


# ---------------------------------------------------------------------------
# padding


def _resolve_padding(padding: Padding, kh: int, kw: int):
    """(reflect, ((pt, pb), (pl, pr))): reflect pads the input by those amounts
    with ``jnp.pad(mode="reflect")`` before a VALID convolution."""
    if isinstance(padding, str):
        p = padding.upper()
        if p in ("SAME", "REFLECT"):
            # lax's SAME at stride 1 and flax's REFLECT pad alike: (k-1)//2 before
            pads = (((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2))
            return p == "REFLECT", pads
        if p == "VALID":
            return False, ((0, 0), (0, 0))
        raise ValueError(f"padding must be 'SAME', 'VALID', 'REFLECT', an int or pairs, got {padding!r}")
    if isinstance(padding, (int, np.integer)):
        return False, ((int(padding),) * 2,) * 2
    pads = tuple(padding)
    if len(pads) != 2:
        raise ValueError(f"padding needs one entry per spatial axis (2), got {padding!r}")
    out = []
    for p in pads:
        if isinstance(p, (int, np.integer)):
            out.append((int(p), int(p)))
        else:
            lo, hi = p
            out.append((int(lo), int(hi)))
    if any(v < 0 for pair in out for v in pair):
        raise ValueError(f"negative padding is not supported, got {padding!r}")
    return False, tuple(out)


# ---------------------------------------------------------------------------
# the three operations: XLA versions


def _lax_fwd(x, w, b, pads):
    y = lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=_DN)
    return y + b.astype(y.dtype)


def _lax_bwd_data(dy, w, pads, x_shape):
    x0 = jnp.zeros(x_shape, dy.dtype)
    _, vjp = jax.vjp(lambda x_: lax.conv_general_dilated(x_, w, (1, 1), pads, dimension_numbers=_DN), x0)
    return vjp(dy)[0]


def _lax_bwd_weights(x, dy, pads, w_shape):
    w0 = jnp.zeros(w_shape, x.dtype)
    _, vjp = jax.vjp(lambda w_: lax.conv_general_dilated(x, w_, (1, 1), pads, dimension_numbers=_DN), w0)
    return vjp(dy)[0], dy.sum(axis=(0, 1, 2))


# ---------------------------------------------------------------------------
# the three operations: oneDNN custom calls, batched by folding into N
# (one set per padding and thread cap: custom_vmap keeps what it traced)


def _layout(op, ci, co, max_threads=0):
    """oneDNN's layout choice (native/onednn_conv.cc's ``blocked``): its own
    weight layout always; for the weight gradient of layers with at least 32
    channels in and out, its own activation layout too where that measured
    faster on this CPU (:func:`wide_weight_grad_layout`)."""
    wide = op == "bwd_weights" and ci >= 32 and co >= 32
    return conv_layouts.wide_weight_grad_layout(max_threads) if wide else 1


def _attrs(pads, op, ci, co, max_threads):
    (pt, pb), (pl, pr) = pads
    return dict(pad_t=np.int64(pt), pad_b=np.int64(pb), pad_l=np.int64(pl), pad_r=np.int64(pr),
                blocked=np.int64(_layout(op, ci, co, max_threads)), max_threads=np.int64(max_threads))


def _fold(a):
    return a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:])


def _unfold(a, b):
    return a.reshape((b, a.shape[0] // b) + a.shape[1:])


def _per_example(f, axis_size, in_batched, args):
    """Map f over the batched args one example at a time, closing over the rest."""
    batched = [a for a, bt in zip(args, in_batched) if bt]

    def one(sliced):
        it = iter(sliced)
        return f(*[next(it) if bt else a for a, bt in zip(args, in_batched)])

    return lax.map(one, tuple(batched))


# One set of custom calls per padding and thread cap (custom_vmap keeps what it
# traced, so these are constants of each set).

@functools.lru_cache(maxsize=None)
def _native_fwd(pads, max_threads):
    @jax.custom_batching.custom_vmap
    def fwd(x, w, b):
        out = jax.ShapeDtypeStruct(
            (x.shape[0], x.shape[1] + pads[0][0] + pads[0][1] - w.shape[0] + 1,
             x.shape[2] + pads[1][0] + pads[1][1] - w.shape[1] + 1, w.shape[3]), jnp.float32)
        return jax.ffi.ffi_call("jaxfuse_onednn_conv_fwd", out)(
            x, w, b, **_attrs(pads, "fwd", w.shape[2], w.shape[3], max_threads))

    @fwd.def_vmap
    def rule(axis_size, in_batched, x, w, b):
        bx, bw, bb = in_batched
        if bx and not bw and not bb:
            return _unfold(fwd(_fold(x), w, b), axis_size), True
        return _per_example(fwd, axis_size, in_batched, (x, w, b)), True

    return fwd


@functools.lru_cache(maxsize=None)
def _native_bwd_data(pads, max_threads):
    @jax.custom_batching.custom_vmap
    def bwd_data(dy, w):
        out = jax.ShapeDtypeStruct(
            (dy.shape[0], dy.shape[1] - pads[0][0] - pads[0][1] + w.shape[0] - 1,
             dy.shape[2] - pads[1][0] - pads[1][1] + w.shape[1] - 1, w.shape[2]), jnp.float32)
        return jax.ffi.ffi_call("jaxfuse_onednn_conv_bwd_data", out)(
            dy, w, **_attrs(pads, "bwd_data", w.shape[2], w.shape[3], max_threads))

    @bwd_data.def_vmap
    def rule(axis_size, in_batched, dy, w):
        bdy, bw = in_batched
        if bdy and not bw:
            return _unfold(bwd_data(_fold(dy), w), axis_size), True
        return _per_example(bwd_data, axis_size, in_batched, (dy, w)), True

    return bwd_data


@functools.lru_cache(maxsize=None)
def _native_bwd_weights(pads, max_threads):
    @jax.custom_batching.custom_vmap
    def bwd_weights(x, dy):
        kh = x.shape[1] + pads[0][0] + pads[0][1] - dy.shape[1] + 1
        kw = x.shape[2] + pads[1][0] + pads[1][1] - dy.shape[2] + 1
        out = (jax.ShapeDtypeStruct((kh, kw, x.shape[3], dy.shape[3]), jnp.float32),
               jax.ShapeDtypeStruct((dy.shape[3],), jnp.float32))
        return tuple(jax.ffi.ffi_call("jaxfuse_onednn_conv_bwd_weights", out)(
            x, dy, **_attrs(pads, "bwd_weights", x.shape[3], dy.shape[3], max_threads)))

    @bwd_weights.def_vmap
    def rule(axis_size, in_batched, x, dy):
        # a kernel gradient per example: one call each (summing over the
        # vmapped axis, when the kernel is shared, is left to JAX)
        return _per_example(bwd_weights, axis_size, in_batched, (x, dy)), (True, True)

    return bwd_weights


# ---------------------------------------------------------------------------
# dispatch: oneDNN on the CPU backend, XLA elsewhere
#
# cfg, a static argument of the custom_vjp: (pads, native ops, thread cap),
# read when conv is traced.


def _native_ok(op, cfg, *arrays) -> bool:
    return (op in cfg[1] and available() and all(a.dtype == jnp.float32 for a in arrays)
            and all(d > 0 for a in arrays for d in a.shape))


def _fwd_op(x, w, b, cfg):
    pads, _, max_threads = cfg
    if not _native_ok("fwd", cfg, x, w, b):
        return _lax_fwd(x, w, b, pads)
    return lax.platform_dependent(x, w, b, cpu=_native_fwd(pads, max_threads),
                                  default=functools.partial(_lax_fwd, pads=pads))


def _bwd_data_op(dy, w, cfg, x_shape):
    pads, _, max_threads = cfg
    if not _native_ok("bwd_data", cfg, dy, w):
        return _lax_bwd_data(dy, w, pads, x_shape)
    return lax.platform_dependent(dy, w, cpu=_native_bwd_data(pads, max_threads),
                                  default=functools.partial(_lax_bwd_data, pads=pads, x_shape=x_shape))


def _bwd_weights_op(x, dy, cfg, w_shape):
    pads, _, max_threads = cfg
    # one input channel (a network's first layer): XLA's weight gradient is
    # the faster there
    if not _native_ok("bwd_weights", cfg, x, dy) or x.shape[3] == 1:
        return _lax_bwd_weights(x, dy, pads, w_shape)
    return lax.platform_dependent(x, dy, cpu=_native_bwd_weights(pads, max_threads),
                                  default=functools.partial(_lax_bwd_weights, pads=pads, w_shape=w_shape))


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _conv4(x, w, b, cfg):
    return _fwd_op(x, w, b, cfg)


def _conv4_fwd(x, w, b, cfg):
    return _fwd_op(x, w, b, cfg), (x, w, b)


def _conv4_bwd(cfg, res, dy):
    x, w, b = res
    dy = dy.astype(x.dtype)
    dx = _bwd_data_op(dy, w, cfg, x.shape)
    dw, db = _bwd_weights_op(x, dy, cfg, w.shape)
    return dx, dw.astype(w.dtype), db.astype(b.dtype)


_conv4.defvjp(_conv4_fwd, _conv4_bwd)


def conv(x: jax.Array, w: jax.Array, b: jax.Array | None = None, padding: Padding = "SAME") -> jax.Array:
    """Stride-1 2-D convolution (cross-correlation, as ``lax`` and flax), plus bias.

    Args:
      x: activations ``(..., H, W, C_in)``: any leading axes (none included)
        are the image batch.
      w: kernel ``(KH, KW, C_in, C_out)`` (HWIO, flax's ``nn.Conv`` layout).
      b: bias ``(C_out,)``, or None for none.
      padding: ``"SAME"`` (zeros, output ``H × W``), ``"VALID"``, ``"REFLECT"``
        (flax's: ``(k-1)//2`` before, ``k//2`` after, mirrored without the
        edge), an int, or ``((top, bottom), (left, right))``.

    Returns:
      ``(..., H', W', C_out)``: what ``flax.linen.Conv`` computes with these
      parameters and padding.
    """
    x, w = jnp.asarray(x), jnp.asarray(w)
    if x.ndim < 3 or w.ndim != 4 or w.shape[2] != x.shape[-1]:
        raise ValueError(f"conv wants x (..., H, W, C) and w (KH, KW, C, C_out), got {x.shape} and {w.shape}")
    kh, kw = w.shape[:2]
    reflect, pads = _resolve_padding(padding, kh, kw)
    lead = x.shape[:-3]
    x4 = x.reshape((-1,) + x.shape[-3:]) if x.ndim != 4 else x
    if reflect:
        x4 = jnp.pad(x4, ((0, 0),) + pads + ((0, 0),), mode="reflect")
        pads = ((0, 0), (0, 0))
    bias = jnp.zeros((w.shape[3],), w.dtype) if b is None else jnp.asarray(b)
    dtype = jnp.result_type(x4.dtype, w.dtype, bias.dtype)
    cfg = (pads, _state["native_ops"], _state["max_threads"])
    y = _conv4(x4.astype(dtype), w.astype(dtype), bias.astype(dtype), cfg)
    return y.reshape(lead + y.shape[1:]) if x.ndim != 4 else y
