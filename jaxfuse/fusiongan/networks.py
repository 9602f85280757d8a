"""FusionGAN's recipe constants and its two networks: the generator and the discriminator, with
spectral normalisation and batch norm as the authors' code has them.

:mod:`jaxfuse.fusiongan` says what every setting is and where it comes from.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxfuse import conv_native, model
from jaxfuse.errors import JaxfuseError

PATCH = 132  # the training patches' side (the authors' image_size)
SHRINK = 12  # pixels the five VALID convolutions remove: 4 + 4 + 2 + 2 + 0
PAD = SHRINK // 2  # test-time edge padding on each side
STRIDE = 14  # patch stride
XI = 5.0  # weight of the gradient term in the content loss (the code's value)
LAMBDA = 100.0  # weight of the content loss against the adversarial term
REAL_LABELS = (0.7, 1.2)  # soft labels: visible patches, and the generator's target
FAKE_LABELS = (0.0, 0.3)  # soft labels: fused patches (discriminator)
D_STEPS = 2  # discriminator steps per generator step
LR = 1e-4
BATCH = 32
EPOCHS = 10
LEAK = 0.2
BN_DECAY = 0.9
BN_EPS = 1e-5
INIT_STD = 1e-3
LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))

GENERATOR_LAYERS = ((5, 256), (5, 128), (3, 64), (3, 32), (1, 1))  # (kernel, channels out)
DISCRIMINATOR_LAYERS = (32, 64, 128, 256)  # 3×3, stride 2
RECEPTIVE_RADIUS = sum(k // 2 for k, _ in GENERATOR_LAYERS)  # 6

RECIPE = {"shrink": SHRINK, "stride": STRIDE, "xi": XI, "lambda": LAMBDA,
          "real_labels": list(REAL_LABELS), "fake_labels": list(FAKE_LABELS),
          "bn_decay": BN_DECAY, "bn_eps": BN_EPS, "leak": LEAK, "init_std": INIT_STD}
"""The fixed settings, recorded in every checkpoint and summary."""

Params = model.Params


def _bad(setting: str, problem: str) -> JaxfuseError:
    return JaxfuseError(None, "{%s} %s" % (setting, problem), settings=(setting,))


def disc_size(label: int) -> int:
    """The side of the discriminator's last feature map for a ``label``-sized input (120 → 6)."""
    for _ in DISCRIMINATOR_LAYERS:
        label = (label - 3) // 2 + 1
    return label


MIN_PATCH = next(p for p in range(SHRINK + 1, 200) if disc_size(p - SHRINK) >= 1)  # 43


def _l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
    return x / (jnp.sqrt(jnp.sum(x * x)) + eps)  # the authors' l2_norm


def spectral_normalize(kernel: jax.Array, u: jax.Array, *, n_power: int = 1):
    """The authors' ``weights_spectral_norm``: ``kernel / σ`` by power iteration.

    Args:
      kernel: any shape ``(..., C_out)``; the matrix is ``(-1, C_out)``.
      u: ``(1, C_out)``, the persistent power-iteration vector.
      n_power: iterations from ``u``.

    Returns:
      ``(kernel / σ, u_new)``. Gradients flow through σ, as in the authors'
      code (no stop-gradient on the power iteration).
    """
    mat = kernel.reshape(-1, kernel.shape[-1])
    v = None
    for _ in range(n_power):
        v = _l2_normalize(u @ mat.T)
        u = _l2_normalize(v @ mat)
    sigma = (v @ mat @ u.T)[0, 0]
    return kernel / sigma, u


def _kernel(module: nn.Module, shape, how: str, n_power: int, update: bool) -> jax.Array:
    """A kernel, spectrally normalised as ``how`` says.

    ``"power"``: by the stored power-iteration vector (training; ``update``
    stores the advanced vector); ``"exact"``: by the largest singular value;
    ``"none"``: the raw kernel (the authors' test script).
    """
    kernel = module.param("kernel", nn.initializers.truncated_normal(INIT_STD), shape)
    if how == "power" or module.is_initializing():
        u = module.variable("batch_stats", "u", lambda: jax.random.truncated_normal(
            module.make_rng("params"), -2.0, 2.0, (1, shape[-1]), jnp.float32))
    if module.is_initializing():
        return kernel
    if how == "power":
        kernel, u_new = spectral_normalize(kernel, u.value, n_power=n_power)
        if update:
            u.value = u_new
    elif how == "exact":
        kernel = kernel / jnp.linalg.norm(kernel.reshape(-1, shape[-1]), ord=2)
    elif how != "none":
        raise ValueError(f"unknown normalisation {how!r}")
    return kernel


class SNConv(nn.Module):
    """A VALID convolution with bias whose kernel is spectrally normalised (:func:`_kernel`).

    At stride 1 (the generator) on :func:`jaxfuse.conv_native.conv` when oneDNN's kernels
    are installed; the discriminator's stride-2 layers on XLA's.
    """
    features: int
    kernel_size: int
    stride: int = 1

    @nn.compact
    def __call__(self, x, *, how: str = "power", n_power: int = 1, update: bool = False):
        k = self.kernel_size
        kernel = _kernel(self, (k, k, x.shape[-1], self.features), how, n_power, update)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        if self.is_initializing():  # shapes only: init compiles no convolution (see _shaped)
            return _shaped(x, ((x.shape[1] - k) // self.stride + 1,
                               (x.shape[2] - k) // self.stride + 1, self.features))
        if self.stride == 1 and conv_native.enabled():  # the generator: oneDNN's kernels
            return conv_native.conv(x, kernel, bias, "VALID")
        y = lax.conv_general_dilated(x, kernel, (self.stride, self.stride), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + bias


class SNDense(nn.Module):
    """A linear layer with bias whose kernel is spectrally normalised."""
    features: int

    @nn.compact
    def __call__(self, x, *, how: str = "power", n_power: int = 1, update: bool = False):
        kernel = _kernel(self, (x.shape[-1], self.features), how, n_power, update)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        if self.is_initializing():
            return _shaped(x, (self.features,))
        return x @ kernel + bias


class BatchNorm(nn.Module):
    """TF's ``contrib.layers.batch_norm`` as the authors call it (decay 0.9, ε 1e-5, scale).

    ``stats="batch"``: statistics over ``(N, H, W)``, and the moving averages
    in ``batch_stats`` are updated when that collection is mutable;
    ``stats="image"``: each image's own statistics over ``(H, W)`` (a batch of
    one, as the authors fuse). ``affine=False`` leaves out the learnt scale and
    offset (the authors' test script never loads them).
    """

    @nn.compact
    def __call__(self, x, *, stats: str = "batch", affine: bool = True):
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones_init(), (c,))
        offset = self.param("bias", nn.initializers.zeros_init(), (c,))
        axes = {"batch": (0, 1, 2), "image": (1, 2)}[stats]
        if self.is_initializing():
            self.variable("batch_stats", "mean", lambda: jnp.zeros((c,), jnp.float32))
            self.variable("batch_stats", "var", lambda: jnp.ones((c,), jnp.float32))
            return x
        mean = jnp.mean(x, axes, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axes, keepdims=True)
        if stats == "batch" and self.is_mutable_collection("batch_stats"):
            ra_mean = self.variable("batch_stats", "mean")
            ra_var = self.variable("batch_stats", "var")
            ra_mean.value = BN_DECAY * ra_mean.value + (1 - BN_DECAY) * mean.reshape(c)
            ra_var.value = BN_DECAY * ra_var.value + (1 - BN_DECAY) * var.reshape(c)
        y = (x - mean) * lax.rsqrt(var + BN_EPS)
        return y * scale + offset if affine else y


def _shaped(x: jax.Array, shape: tuple) -> jax.Array:
    """Zeros of a layer's output shape, what a layer returns while Linen initialises it.

    Initialising only declares parameters (in the order the forward pass
    would, so the values are the same); computing the forward pass there
    made XLA spend most of a minute compiling an initialiser.
    """
    return jnp.zeros((x.shape[0],) + tuple(shape), x.dtype)


def _lrelu(x):
    return jnp.maximum(x, LEAK * x)


GENERATOR_MODES = ("train", "authors", "trained")


class Generator(nn.Module):
    """The fusion network: ``(N, H, W, 2)`` (infrared ‖ visible, normalised) → ``(N, H−12, W−12, 1)``.

    ``mode``: ``"train"`` (batch statistics over the batch, power-iteration
    normalisation, both advancing ``batch_stats`` when it is mutable),
    ``"authors"`` (the authors' test script: per-image statistics, no scale
    and offset, raw kernels) or ``"trained"`` (per-image statistics, learnt
    scale and offset, kernels divided by their spectral norm).
    """
    n_power: int = 1 + D_STEPS  # power iterations per training pass (see the module notes)

    @nn.compact
    def __call__(self, x, *, mode: str = "authors"):
        if mode not in GENERATOR_MODES:
            raise ValueError(f"mode must be one of {', '.join(GENERATOR_MODES)}, got {mode!r}")
        how = {"train": "power", "authors": "none", "trained": "exact"}[mode]
        stats = "batch" if mode == "train" else "image"
        h = x
        last = len(GENERATOR_LAYERS)
        for i, (k, f) in enumerate(GENERATOR_LAYERS, 1):
            h = SNConv(f, k, name=f"conv{i}")(h, how=how, n_power=self.n_power,
                                              update=mode == "train")
            if i < last:
                h = _lrelu(BatchNorm(name=f"bn{i}")(h, stats=stats, affine=mode != "authors"))
        return jnp.tanh(h)


class Discriminator(nn.Module):
    """``(N, L, L, 1)`` normalised images (L = 120 for the authors' patches) → ``(N, 1)`` scores.

    ``update``: advance the spectral-norm vectors and the batch-norm moving
    averages (when ``batch_stats`` is mutable). Batch norm always uses the
    batch's statistics, as the authors' discriminator does.
    """

    @nn.compact
    def __call__(self, x, *, update: bool = False):
        h = x
        for i, f in enumerate(DISCRIMINATOR_LAYERS, 1):
            h = SNConv(f, 3, 2, name=f"conv{i}")(h, update=update)
            if i > 1:
                h = BatchNorm(name=f"bn{i}")(h, stats="batch")
            h = _lrelu(h)
        h = h.reshape(h.shape[0], -1)
        return SNDense(1, name="linear5")(h, update=update)


def _check(x, what: str, channels: int) -> jax.Array:
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 4 or x.shape[-1] != channels:
        raise ValueError(f"{what} must be NHWC with C={channels}, got shape {x.shape}")
    return x


@jax.jit
def _init_generator(key: jax.Array):
    return Generator().init({"params": key}, jnp.zeros((1, SHRINK + 1, SHRINK + 1, 2)), mode="train")


@functools.partial(jax.jit, static_argnames=("patch",))
def _init_discriminator(key: jax.Array, *, patch: int):
    label = patch - SHRINK
    return Discriminator().init({"params": key}, jnp.zeros((1, label, label, 1)), update=True)


def init_variables(key: jax.Array, *, patch: int = PATCH):
    """The generator's and the discriminator's Linen variables ``({"params", "batch_stats"}, ...)``.

    ``patch``: the training patches' side, which sets the discriminator's
    linear layer (6·6·256 inputs for 132). Two compiled initialisers, so the
    generator's is shared with :func:`init_params` whatever the patch.
    """
    kg, kd = jax.random.split(key)
    return _init_generator(kg), _init_discriminator(kd, patch=patch)


def init_params(key: jax.Array) -> Params:
    """The generator's parameters ``{"generator": ...}``: what fuses (and what checkpoints hold).

    The same generator :func:`init_variables` makes from ``key``.
    """
    kg, _ = jax.random.split(key)
    return {"generator": _init_generator(kg)["params"]}


def normalize(images: jax.Array) -> jax.Array:
    """0–255 → the networks' ``[−1, 1]``: ``(x − 127.5) / 127.5``."""
    return (jnp.asarray(images, jnp.float32) - 127.5) / 127.5


def fuse_sources(params: Params, sources: jax.Array, *, authors_test: bool = True) -> jax.Array:
    """Fuses an infrared/visible stack: ``(2, N, H, W, 1)`` 0–255 → ``(N, H, W, 1)``, ~0–255.

    ``sources[0]`` is infrared, ``sources[1]`` visible (the generator's input
    channels, in the authors' order). Each side is edge-padded by 6 pixels,
    so the output has the input's size; each image is normalised by its own
    batch statistics, so images fused together give what each gives alone.
    The result is before the output step (:func:`jaxfuse.fusion.to_uint8`).

    Args:
      params: ``{"generator": ...}`` (:func:`init_params`, a checkpoint).
      authors_test: fuse as the authors' ``test_one_image.py`` does (see the
        module notes); False: with the network as it was trained.
    """
    sources = jnp.asarray(sources, jnp.float32)
    if sources.ndim != 5 or sources.shape[0] != 2 or sources.shape[-1] != 1:
        raise ValueError(f"FusionGAN fuses one infrared and one visible image: sources must be "
                         f"(2, N, H, W, 1), got {sources.shape}")
    x = normalize(jnp.concatenate([sources[0], sources[1]], axis=-1))
    x = jnp.pad(x, ((0, 0), (PAD, PAD), (PAD, PAD), (0, 0)), mode="edge")
    out = Generator().apply({"params": params["generator"]}, x,
                            mode="authors" if authors_test else "trained")
    return out * 127.5 + 127.5
