"""The networks' Flax Linen modules: Res2NetFuse's encoder and Res2Net block, DenseFuse's
dense encoder, MSDNet's multi-scale encoder, and the shared decoder.

Used through :mod:`jaxfuse.model`, whose architecture table (``ARCH_SPECS``)
builds them and whose pure functions (``encode``, ``decode``, ``fuse``) apply
them; every convolution is built by :func:`_conv` (PyTorch's default
initialisation, as the authors trained; flax's ``nn.Conv``, or oneDNN's kernels
through :mod:`jaxfuse.conv_native` when they are built) and every activation
takes the shape-bucket mask (:func:`_act`).
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfuse import conv_native

SCALE = 4  # Res2Net scale s: groups in the hierarchical block
MSD_SCALES = 3  # MSDNet's parallel 1×1, 3×3, 5×5 convs, fused scale by scale


class NativeConv(nn.Module):
    """``nn.Conv`` (stride 1, bias) computed by :func:`jaxfuse.conv_native.conv`: oneDNN's kernels
    on the CPU backend, XLA elsewhere.

    Its parameters are ``nn.Conv``'s: the same names, shapes, initialisers and
    random streams, so checkpoints and initial values do not depend on which
    of the two a network was built with.
    """
    features: int
    kernel_size: int
    padding: str
    kernel_init: Callable
    bias_init: Callable

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.kernel_size
        kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features),
                            jnp.float32)
        bias = self.param("bias", self.bias_init, (self.features,), jnp.float32)
        return conv_native.conv(x, kernel, bias, self.padding)


def _conv(in_features: int, features: int, kernel: int, name: str,
          padding: str = "SAME") -> nn.Module:
    """One of the networks' convolutions: :class:`NativeConv` when jaxfuse's oneDNN kernels are
    built and enabled (:func:`jaxfuse.conv_native.enabled`), else flax's ``nn.Conv``."""
    # PyTorch's default Conv2d initialisation (kaiming-uniform with a = sqrt(5)
    # for the kernel, U(±1/sqrt(fan_in)) for the bias), as the authors trained
    # with it: with raw 0-255 inputs the initial scale matters.
    bound = 1.0 / (in_features * kernel * kernel) ** 0.5

    def bias_init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
    if conv_native.enabled():
        return NativeConv(features, kernel, padding, kernel_init, bias_init, name=name)
    return nn.Conv(features, (kernel, kernel), padding=padding, name=name,
                   kernel_init=kernel_init, bias_init=bias_init)


def _act(x: jax.Array, mask: jax.Array | None) -> jax.Array:
    """ReLU, then zero outside the valid region when the image is padded.

    Zeroing every layer's output outside the true image makes a padded image
    compute exactly what the unpadded one does with "same" zero padding: the
    next 3×3 conv sees zeros beyond the true border either way.
    """
    x = nn.relu(x)
    return x if mask is None else x * mask


class Res2NetBlock(nn.Module):
    """The hierarchical Res2Net branch (paper Eq. 1), 64 → 64 channels."""
    shared: bool = True

    @nn.compact
    def __call__(self, c: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        h = _act(_conv(64, 64, 1, "conv_in")(c), mask)
        xs = jnp.split(h, SCALE, axis=-1)
        width = h.shape[-1] // SCALE
        if self.shared:
            conv = _conv(width, width, 3, "conv3")
            convs = [[conv, conv] for _ in range(SCALE - 1)]
        else:
            convs = [[_conv(width, width, 3, f"conv3_g{g}_{j}") for j in range(2)]
                     for g in range(SCALE - 1)]
        ys = [xs[0]]
        for i in range(1, SCALE):
            z = xs[i] if i == 1 else xs[i] + ys[-1]
            first, second = convs[i - 1]
            ys.append(_act(second(_act(first(z), mask)), mask))
        return _act(_conv(64, 64, 1, "conv_out")(jnp.concatenate(ys, axis=-1)), mask)


class Encoder(nn.Module):
    """Two 3×3 convs then the Res2Net branch with a residual add: 1 → 64 channels."""
    shared: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        h = _act(_conv(1, 32, 3, "conv0")(x), mask)
        c = _act(_conv(32, 64, 3, "conv1")(h), mask)
        return c + Res2NetBlock(self.shared, name="res2net")(c, mask)


class DenseEncoder(nn.Module):
    """DenseFuse's encoder (Li and Wu, IEEE TIP 2019, Fig. 1 / Table I).

    conv3 1→16 ReLU, then a dense block of three conv3 layers with 16 outputs
    each (ReLU) whose inputs are everything before, concatenated (16, 32, 48
    channels in), giving 64 channels. Reflection padding, as the DenseFuse
    reference code pads (the paper does not say).
    """

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        _no_mask(mask)
        f = nn.relu(_conv(1, 16, 3, "conv0", "REFLECT")(x))
        for i in range(3):
            f = jnp.concatenate([f, nn.relu(_conv(16 * (i + 1), 16, 3, f"dense{i}", "REFLECT")(f))], -1)
        return f


class MSDEncoder(nn.Module):
    """MSDNet's encoder: DenseFuse's encoder, then a multi-scale layer.

    Three parallel convs on the 64 dense-block channels, 1×1, 3×3 and 5×5,
    64 → 64 each with ReLU and reflection padding, concatenated in that order
    (192 channels). Facts from the MSDNet authors' public code (the ICIG 2019
    paper gives the idea, "three filters of different sizes", not the
    layers); see the README's notes on the baselines.
    """

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        f = DenseEncoder(name="dense")(x, mask)
        return jnp.concatenate([nn.relu(_conv(64, 64, k, f"scale{k}", "REFLECT")(f))
                                for k in (1, 3, 5)], axis=-1)


def _no_mask(mask):
    if mask is not None:
        raise ValueError("reflection-padded networks cannot be fused on padded images (masks "
                         "emulate zero padding only); use jaxfuse.fusion.fuse on the true size")


class Decoder(nn.Module):
    """Four 3×3 convs 64 → 64 → 32 → 16 → 1, ReLU on all but the last.

    The same decoder in all architectures; DenseFuse and MSDNet pad by
    reflection, and MSDNet's first conv takes its 192 channels (192 → 64).
    """
    padding: str = "SAME"
    in_features: int = 64

    @nn.compact
    def __call__(self, f: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        if self.padding != "SAME":
            _no_mask(mask)
        chans = (self.in_features, 64, 32, 16, 1)
        for i in range(4):
            f = _conv(chans[i], chans[i + 1], 3, f"conv{i}", self.padding)(f)
            f = _act(f, mask) if i < 3 else f
        return f
