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

The paper's comparison networks, DenseFuse and MSDNet, are architectures
here too. Everything that distinguishes one architecture from another —
its modules, feature channels, how its features are split for fusion,
whether its layers can be masked (shape buckets, tiles), its paper's
strategies, its PyTorch layout — is one :class:`ArchSpec` entry in
:data:`ARCH_SPECS`; the rest of jaxfuse asks :func:`arch_spec` instead of
testing names. :func:`fuse` (re-exported as :func:`jaxfuse.fusion.fuse`) is
the fusion network: encode each source, fuse, decode.

FusionGAN (Ma et al., Information Fusion 2019; :mod:`jaxfuse.fusiongan`), the
paper's GAN baseline, is an architecture too, of another kind: an end-to-end
generator with no encoder, fusion layer or decoder. Its entry names its own
parameter initialiser and fusion function (:attr:`ArchSpec.fuse_sources`),
and its one "strategy" is ``"generator"``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfuse import xla
from jaxfuse.networks import (MSD_SCALES, SCALE, Decoder, DenseEncoder, Encoder,  # noqa: F401
                              MSDEncoder, Res2NetBlock, _act, _conv, _no_mask)
from jaxfuse.strategies import get_strategy, mean_range

Params = Any  # a nested dict of jax.Array

RECEPTIVE_RADIUS = 12  # Res2NetFuse: 12 stacked 3×3 convs on the longest path, a 25×25 window


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """What distinguishes one network from another; stored in checkpoints.

    Attributes:
      arch: ``"res2netfuse"`` (this paper), ``"densefuse"`` (Li and Wu,
        IEEE TIP 2019; :class:`DenseEncoder`), ``"msdnet"`` (Song, Wu and Li,
        ICIG 2019; :class:`MSDEncoder`) or ``"fusiongan"`` (Ma et al.,
        Information Fusion 2019; :mod:`jaxfuse.fusiongan`), the paper's
        comparison networks.
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


def _check_images(x, what: str, channels: int) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim != 4 or x.shape[-1] != channels:
        raise ValueError(f"{what} must be NHWC with C={channels}, got shape {x.shape}")
    return x


# ----------------------------------------------------------------------------- the architectures

TorchRows = list[tuple[str, tuple[str, ...], tuple[int, ...]]]  # (torch_prefix, params_path, oihw_shape)


def _one_form(config: ModelConfig) -> str:
    return "standard"


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    """Everything that distinguishes one architecture: one entry of :data:`ARCH_SPECS`.

    Attributes:
      name: the ``ModelConfig.arch`` string (checkpoints, ``--arch``).
      title: the network's name in messages and reports.
      marker: the entry of ``params["encoder"]`` (of ``params`` itself for an
        end-to-end network) that identifies its parameter tree
        (:func:`config_from_params`); unique across the table.
      build: ``config -> (encoder, decoder)`` Linen modules; :func:`init_params`,
        :func:`encode` and :func:`decode` use them. None for an end-to-end network.
      feature_channels: channels of the encoder's output (the fusion layer's input).
      fusion_groups: the features are split into this many equal channel groups,
        each fused on its own (MSDNet's scales); 1 fuses all channels at once.
      maskable: every layer uses zero "same" padding, so a zero-padded image
        under a mask computes exactly the unpadded one: shape buckets and
        tiles (:mod:`jaxfuse.engine`) work. False for reflection-padded
        networks, which are fused at their true size.
      receptive_radius: how far an output pixel sees on each side, the sum of
        the kernels' half-widths on the longest path (the halo a tile needs).
      strategies: its paper's fusion strategies; the first is its default.
      options: the further :class:`ModelConfig` fields that apply to it
        (Res2NetFuse: ``("shared",)``); the others keep their defaults.
      read_options: ``encoder_params -> dict`` of those fields read off the
        tree, or None.
      form: ``config -> str``, the variant's name in messages ("shared",
        "separate-convs").
      torch_keys: ``config -> [(torch_prefix, params_path, oihw_shape)]``,
        the layout of the PyTorch ``state_dict`` (:mod:`jaxfuse.torch_io`),
        or None when jaxfuse maps no PyTorch counterpart.
      torch_config: ``state_dict keys -> ModelConfig``, the variant a
        ``state_dict`` holds (with ``torch_keys``).
      fuse_sources: for an end-to-end network (no encoder, fusion layer or
        decoder): ``(params, sources) -> fused``, sources ``(2, N, H, W, 1)``
        with ``sources[0]`` infrared and ``sources[1]`` visible, 0–255 →
        ``(N, H, W, 1)`` float before the output step; :func:`fuse` calls it.
        None for an encoder–decoder network.
      init: for an end-to-end network, ``key -> params``, its parameter
        initialiser (:func:`init_params` calls it).
    """
    name: str
    title: str
    marker: str
    build: Callable[[ModelConfig], tuple[nn.Module, nn.Module]] | None
    feature_channels: int
    receptive_radius: int
    strategies: tuple[str, ...]
    fusion_groups: int = 1
    maskable: bool = True
    options: tuple[str, ...] = ()
    read_options: Callable[[Mapping], dict] | None = None
    form: Callable[[ModelConfig], str] = _one_form
    torch_keys: Callable[[ModelConfig], TorchRows] | None = None
    torch_config: Callable[[Any], ModelConfig] | None = None
    fuse_sources: Callable[[Any, jax.Array], jax.Array] | None = None
    init: Callable[[jax.Array], Any] | None = None

    @property
    def default_strategy(self) -> str:
        return self.strategies[0]

    def config(self, **options) -> ModelConfig:
        """The :class:`ModelConfig` of this architecture (``options``: further fields)."""
        return ModelConfig(arch=self.name, **options)


def _res2netfuse_torch_keys(config: ModelConfig) -> TorchRows:
    """The authors' ``state_dict`` layout (see the table in :mod:`jaxfuse.torch_io`)."""
    width = 64 // SCALE
    rows = [("conv.0.conv", ("encoder", "conv0"), (32, 1, 3, 3)),
            ("conv.1.conv", ("encoder", "conv1"), (64, 32, 3, 3)),
            ("res2netBlock.0.conv", ("encoder", "res2net", "conv_in"), (64, 64, 1, 1))]
    if config.shared:
        rows.append(("res2netBlock.1.conv.conv", ("encoder", "res2net", "conv3"),
                     (width, width, 3, 3)))
    else:
        rows += [(f"res2netBlock.1.convs.{g}.{j}.conv", ("encoder", "res2net", f"conv3_g{g}_{j}"),
                  (width, width, 3, 3))
                 for g in range(SCALE - 1) for j in range(2)]
    rows.append(("res2netBlock.2.conv", ("encoder", "res2net", "conv_out"), (64, 64, 1, 1)))
    chans = (64, 64, 32, 16, 1)
    rows += [(f"decoder.{i}.conv", ("decoder", f"conv{i}"), (chans[i + 1], chans[i], 3, 3))
             for i in range(4)]
    return rows


_RES2NETFUSE = ArchSpec(
    name="res2netfuse", title="Res2NetFuse", marker="res2net",
    build=lambda config: (Encoder(config.shared), Decoder()),
    feature_channels=64, receptive_radius=RECEPTIVE_RADIUS, strategies=("l1", "mean"),
    options=("shared",), read_options=lambda enc: {"shared": "conv3" in enc["res2net"]},
    form=lambda config: "shared" if config.shared else "separate-convs",
    torch_keys=_res2netfuse_torch_keys,
    torch_config=lambda keys: ModelConfig(
        shared=not any(k.startswith("res2netBlock.1.convs.") for k in keys)))

# DenseFuse: conv0 + three dense convs, then the four decoder convs (all 3×3).
_DENSEFUSE = ArchSpec(
    name="densefuse", title="DenseFuse", marker="dense0",
    build=lambda config: (DenseEncoder(), Decoder("REFLECT")),
    feature_channels=64, receptive_radius=4 + 4, strategies=("addition", "l1_block"),
    maskable=False)

# MSDNet: DenseFuse's encoder (4), the 5×5 scale conv (2), the decoder (4).
_MSDNET = ArchSpec(
    name="msdnet", title="MSDNet", marker="scale1",
    build=lambda config: (MSDEncoder(), Decoder("REFLECT", 64 * MSD_SCALES)),
    feature_channels=64 * MSD_SCALES, receptive_radius=4 + 2 + 4, strategies=("l1", "mean"),
    fusion_groups=MSD_SCALES, maskable=False)

def _fusiongan():
    from jaxfuse import fusiongan  # imported on use: it imports this module
    return fusiongan


# FusionGAN: an end-to-end generator of five VALID convs (kernels 5, 5, 3, 3, 1), fused at
# its true size: its per-image batch statistics make every pixel depend on the whole image.
_FUSIONGAN = ArchSpec(
    name="fusiongan", title="FusionGAN", marker="generator", build=None,
    feature_channels=0, receptive_radius=2 + 2 + 1 + 1, strategies=("generator",),
    maskable=False, init=lambda key: _fusiongan().init_params(key),
    fuse_sources=lambda params, sources: _fusiongan().fuse_sources(params, sources))

ARCH_SPECS: dict[str, ArchSpec] = {s.name: s for s in (_RES2NETFUSE, _DENSEFUSE, _MSDNET,
                                                       _FUSIONGAN)}
ARCHS = tuple(ARCH_SPECS)  # the architecture names, this paper's first


def arch_spec(what) -> ArchSpec:
    """The :class:`ArchSpec` of an architecture name, a :class:`ModelConfig` or a parameter tree.

    Raises:
      ValueError: an unknown name, or a tree that is not a jaxfuse model's.
    """
    if isinstance(what, ArchSpec):
        return what
    if isinstance(what, ModelConfig):
        name = what.arch
    elif isinstance(what, str):
        name = what
    else:
        name = config_from_params(what).arch
    try:
        return ARCH_SPECS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown architecture {name!r}; choose from {', '.join(ARCH_SPECS)}") from None


def _marked(spec: ArchSpec, params) -> bool:
    tree = params if spec.fuse_sources is not None else params.get("encoder", {})
    return isinstance(tree, Mapping) and spec.marker in tree


def config_from_params(params: Params) -> ModelConfig:
    """Reads the architecture off a parameter tree (the one :class:`ArchSpec` marker it holds)."""
    try:
        found = [s for s in ARCH_SPECS.values() if _marked(s, params)]
        if len(found) == 1:
            spec = found[0]
            return spec.config(**(spec.read_options(params["encoder"]) if spec.read_options else {}))
    except (KeyError, TypeError, AttributeError):
        pass
    markers = [s.marker if s.fuse_sources is not None else f"encoder/{s.marker}"
               for s in ARCH_SPECS.values()]
    raise ValueError(f"not a jaxfuse parameter tree (no {', '.join(markers[:-1])} or {markers[-1]})")


def _modules(config: ModelConfig):
    spec = arch_spec(config)
    if spec.build is None:
        raise ValueError(f"{spec.title} is an end-to-end network with no encoder or decoder; "
                         "fuse with fuse()")
    return spec.build(config)


def feature_channels(config: ModelConfig) -> int:
    """Channels of the encoder's output (the fusion layer's input)."""
    return arch_spec(config).feature_channels


def init_params(key: jax.Array, config: ModelConfig = ModelConfig()) -> Params:
    """Random parameters (Flax's default initialisers) for ``config``.

    Returns ``{"encoder": ..., "decoder": ...}`` (an end-to-end network: its
    own tree, :attr:`ArchSpec.init`); jitted, so building a model costs one
    compile instead of one per initialiser.
    """
    spec = arch_spec(config)  # an unknown architecture is refused before tracing
    if spec.init is not None:
        return spec.init(key)
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


def _fusion_groups(spec: ArchSpec, features: jax.Array) -> list[jax.Array]:
    if spec.fusion_groups == 1:
        return [features]
    return jnp.split(features, spec.fusion_groups, -1)


def fusion_layer(params: Params, features: jax.Array, *, strategy: str = "l1",
                 mask: jax.Array | None = None, value_range=None) -> jax.Array:
    """The fusion layer: ``(k, N, H, W, C)`` features → ``(N, H, W, C)``.

    The strategy runs on each of the architecture's channel groups on its own
    (:attr:`ArchSpec.fusion_groups`; MSDNet fuses each scale's 64 channels
    apart, its paper's Sec. 3), else on all channels at once.

    Args:
      value_range: for ``strategy="mean"``, the whole image's feature-mean
        range as :func:`feature_range` returns it (for fusing one tile).
    """
    spec = arch_spec(params)
    fn = get_strategy(strategy)
    groups = _fusion_groups(spec, features)
    if spec.fusion_groups == 1:
        ranges = [value_range]
    else:
        ranges = [None] * len(groups) if value_range is None else list(value_range)
    fused = [fn(f, mask=mask, **({} if r is None else {"value_range": r})) for f, r in zip(groups, ranges)]
    return fused[0] if len(fused) == 1 else jnp.concatenate(fused, -1)


def feature_range(params: Params, features: jax.Array, *, mask: jax.Array | None = None):
    """What ``value_range`` :func:`fusion_layer` takes: the mean strategy's
    :func:`jaxfuse.strategies.mean_range` of ``features`` ``(k, N, H, W, C)``
    over ``mask``, ``(lo, hi)``, or one such pair per fusion group."""
    spec = arch_spec(params)
    ranges = [mean_range(f, mask=mask) for f in _fusion_groups(spec, features)]
    return ranges[0] if spec.fusion_groups == 1 else tuple(ranges)


@xla.jit(static_argnames=("strategy",))
def fuse(params: Params, sources: jax.Array, *, strategy: str = "l1",
         mask: jax.Array | None = None, value_range=None) -> jax.Array:
    """Fuses k registered grayscale sources (also :func:`jaxfuse.fusion.fuse`).

    Args:
      params: parameters of any architecture in :data:`ARCH_SPECS`.
      sources: ``(k, N, H, W, 1)`` float, 0–255; ``k ≥ 2`` sources of N images
        (an end-to-end network such as FusionGAN: ``k = 2``, infrared first).
      strategy: a name in :data:`jaxfuse.strategies.STRATEGIES`, or for an
        end-to-end network its one entry of :attr:`ArchSpec.strategies`
        (``"generator"``).
      mask: optional ``(N, H, W, 1)``, 1 on the true image and 0 on padding
        (where ``sources`` must be 0): padded images then fuse exactly as
        unpadded ones inside the mask (see :mod:`jaxfuse.engine`).
      value_range: for ``strategy="mean"`` on a tile, the whole image's
        feature-mean range (:func:`feature_range`).

    Returns:
      The decoded fused images ``(N, H, W, 1)``, float, before the output step.
    """
    sources = jnp.asarray(sources, jnp.float32)
    if sources.ndim != 5 or sources.shape[-1] != 1 or sources.shape[0] < 2:
        raise ValueError(f"sources must be (k>=2, N, H, W, 1), got {sources.shape}")
    spec = arch_spec(params)
    if spec.fuse_sources is not None:
        if strategy not in spec.strategies:
            raise ValueError(f"{spec.title} fuses with its generator and has no fusion strategy: "
                             f"strategy must be {' or '.join(map(repr, spec.strategies))}, "
                             f"got {strategy!r}")
        if mask is not None or value_range is not None:
            raise ValueError(f"{spec.title} is fused at its true size: no mask or value_range")
        return spec.fuse_sources(params, sources)
    k, n = sources.shape[:2]
    flat_mask = None if mask is None else jnp.tile(mask, (k, 1, 1, 1))
    feats = encode(params, sources.reshape((k * n,) + sources.shape[2:]), mask=flat_mask)
    feats = feats.reshape((k, n) + feats.shape[1:])
    fused = fusion_layer(params, feats, strategy=strategy, mask=mask, value_range=value_range)
    return decode(params, fused, mask=mask)


def count_params(params: Params) -> int:
    """Total number of scalar parameters."""
    return sum(int(x.size) for x in jax.tree_util.tree_leaves(params))
