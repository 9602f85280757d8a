"""The Res2NetFuse autoencoder: encoder, Res2Net block and decoder.

Image convention for the whole package: NHWC ``float32`` with values in
``[0, 255]`` (the authors feed raw 0–255 values, no normalisation); the model
is grayscale, so ``C == 1`` for images and ``C == 64`` for features.

The modules are Flax Linen modules, used functionally: parameters are a plain
nested ``dict`` pytree made by :func:`init_params`, and :func:`encode`,
:func:`decode` and :func:`reconstruct` are pure functions of ``(params, x)``
that can be wrapped in ``jax.jit``, ``jax.vmap`` and ``jax.grad``. Linen is
used rather than NNX because its parameters are already a plain dict (no graph
state to split and merge), which keeps the public functions, Orbax checkpoints
and the PyTorch state-dict mapping one-to-one. The architecture is read off the
parameter tree, so no static config has to travel beside ``params``.

Architecture (SPEC; paper Table I and Fig. 4; all convolutions stride 1, zero
"same" padding, with bias)::

    encoder: conv3 1→32 ReLU, conv3 32→64 ReLU (= c), φ = c + Res2Net(c)
    Res2Net: conv1 64→64 ReLU; split into 4 groups x1..x4 of 16 channels;
             y1 = x1, y2 = F(x2), y_i = F(x_i + y_{i-1}) (i = 3, 4);
             concat; conv1 64→64 ReLU.  F = [conv3 16→16 ReLU] × 2
    decoder: conv3 64→64, 64→32, 32→16 (ReLU), conv3 16→1 (none)

``F`` uses ONE conv (one weight set) for both applications in all three
groups in the authors' code, which produced the paper's numbers (the default,
``shared=True``: 89,617 parameters); Table I reads as if each group had its
own two convs (``shared=False``: 101,217 parameters). The residual add
``c + branch(c)`` is in the authors' code but not in Table I.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Params = Any  # a nested dict of jax.Array

SCALE = 4  # Res2Net scale s: groups in the hierarchical block
RECEPTIVE_RADIUS = 12  # 12 stacked 3×3 convs on the longest path: a 25×25 window


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """What distinguishes one network from another; stored in checkpoints.

    Attributes:
      arch: ``"res2netfuse"`` (this paper), ``"densefuse"`` (Li and Wu,
        IEEE TIP 2019; :class:`DenseEncoder`) or ``"msdnet"`` (Song, Wu and Li,
        ICIG 2019; :class:`MSDEncoder`), the paper's two comparison networks.
      shared: one conv for every application of ``F`` in the Res2Net block (the
        authors' code) or separate convs per group and application (Table I).
        Res2NetFuse only.
    """
    arch: str = "res2netfuse"
    shared: bool = True

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config fields: {sorted(unknown)}")
        return cls(**d)


ARCHS = ("res2netfuse", "densefuse", "msdnet")
MSD_SCALES = 3  # MSDNet's parallel 1×1, 3×3, 5×5 convs, fused scale by scale


def _conv(in_features: int, features: int, kernel: int, name: str,
          padding: str = "SAME") -> nn.Conv:
    # PyTorch's default Conv2d initialisation (kaiming-uniform with a = sqrt(5)
    # for the kernel, U(±1/sqrt(fan_in)) for the bias), as the authors trained
    # with it: with raw 0-255 inputs the initial scale matters.
    bound = 1.0 / (in_features * kernel * kernel) ** 0.5

    def bias_init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return nn.Conv(features, (kernel, kernel), padding=padding, name=name,
                   kernel_init=nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform"),
                   bias_init=bias_init)


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
        raise ValueError("reflection-padded networks (densefuse) cannot be fused on padded "
                         "images; use jaxfuse.fusion.fuse on the true size")


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


def _check_images(x, what: str, channels: int) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim != 4 or x.shape[-1] != channels:
        raise ValueError(f"{what} must be NHWC with C={channels}, got shape {x.shape}")
    return x


def config_from_params(params: Params) -> ModelConfig:
    """Reads the architecture off a parameter tree."""
    try:
        enc = params["encoder"]
        if "dense0" in enc:
            return ModelConfig(arch="densefuse")
        if "scale1" in enc:
            return ModelConfig(arch="msdnet")
        block = enc["res2net"]
    except (KeyError, TypeError):
        raise ValueError("not a jaxfuse parameter tree (no encoder/res2net or encoder/dense0)") from None
    return ModelConfig(shared="conv3" in block)


def _modules(config: ModelConfig):
    if config.arch == "densefuse":
        return DenseEncoder(), Decoder("REFLECT")
    if config.arch == "msdnet":
        return MSDEncoder(), Decoder("REFLECT", 64 * MSD_SCALES)
    return Encoder(config.shared), Decoder()


def feature_channels(config: ModelConfig) -> int:
    """Channels of the encoder's output (the fusion layer's input)."""
    return 64 * MSD_SCALES if config.arch == "msdnet" else 64


def init_params(key: jax.Array, config: ModelConfig = ModelConfig()) -> Params:
    """Random parameters (Flax's default initialisers) for ``config``.

    Returns ``{"encoder": ..., "decoder": ...}``; jitted, so building a model
    costs one compile instead of one per initialiser.
    """
    if config.arch not in ARCHS:
        raise ValueError(f"unknown architecture {config.arch!r}; choose from {', '.join(ARCHS)}")
    return _init(key, config)


@functools.partial(jax.jit, static_argnums=(1,))
def _init(key, config):
    k1, k2 = jax.random.split(key)
    encoder, decoder = _modules(config)
    enc = encoder.init(k1, jnp.zeros((1, 8, 8, 1), jnp.float32))["params"]
    dec = decoder.init(k2, jnp.zeros((1, 8, 8, feature_channels(config)), jnp.float32))["params"]
    return {"encoder": enc, "decoder": dec}


def encode(params: Params, images: jax.Array, *, mask: jax.Array | None = None) -> jax.Array:
    """Deep features φ of ``images`` (NHWC, C=1, 0–255) → ``(N, H, W, 64)``.

    ``mask`` (``(N, H, W, 1)``, 1 inside the true image, 0 in padding) makes a
    zero-padded image give exactly the features of the unpadded one inside
    the mask (and zeros outside); ``images`` must be 0 outside it.
    """
    images = _check_images(images, "images", 1)
    encoder, _ = _modules(config_from_params(params))
    return encoder.apply({"params": params["encoder"]}, images, mask)


def decode(params: Params, features: jax.Array, *, mask: jax.Array | None = None) -> jax.Array:
    """Image from features ``(N, H, W, 64)`` (192 for MSDNet) → ``(N, H, W, 1)``, ~0–255.

    ``mask`` as in :func:`encode`; outputs outside it are meaningless (crop them).
    """
    config = config_from_params(params)
    features = _check_images(features, "features", feature_channels(config))
    _, decoder = _modules(config)
    return decoder.apply({"params": params["decoder"]}, features, mask)


def reconstruct(params: Params, images: jax.Array, *, mask: jax.Array | None = None) -> jax.Array:
    """decode(encode(images)): the training network's output."""
    return decode(params, encode(params, images, mask=mask), mask=mask)


def count_params(params: Params) -> int:
    """Total number of scalar parameters."""
    return sum(int(x.size) for x in jax.tree_util.tree_leaves(params))
