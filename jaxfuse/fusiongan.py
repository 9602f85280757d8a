"""FusionGAN: a generator that fuses an infrared/visible pair, trained against a discriminator.

J. Ma, W. Yu, P. Liang, C. Li, J. Jiang, "FusionGAN: A generative adversarial
network for infrared and visible image fusion", Information Fusion 48,
11–26, 2019; the authors' TensorFlow code (``model.py``, ``utils.py``,
``main.py``, ``test_one_image.py`` of ``jiayi-ma/FusionGAN``) settles what
the paper leaves open. One of the Res2NetFuse paper's comparison methods
(its Table IV), and an architecture of jaxfuse (``"fusiongan"`` in
:data:`jaxfuse.model.ARCH_SPECS`): ``jaxfuse train --arch fusiongan
--pairs-dataset DIR`` trains it, ``jaxfuse fuse --checkpoint WORKDIR`` fuses
with it (strategy ``"generator"``: the network is the fusion rule).

Convention: images enter as elsewhere in jaxfuse (NHWC float32, 0–255) and
are normalised to ``(x − 127.5) / 127.5`` for the networks; the generator's
``tanh`` output is mapped back with ``· 127.5 + 127.5``.

Architecture (code = paper Sec. 3.3; every convolution VALID, with bias,
kernels spectrally normalised in training, see below)::

    generator  (input: infrared ‖ visible, 2 channels)
      conv 5×5   2 → 256, batch norm, leaky ReLU (0.2)
      conv 5×5 256 → 128, batch norm, leaky ReLU
      conv 3×3 128 →  64, batch norm, leaky ReLU
      conv 3×3  64 →  32, batch norm, leaky ReLU
      conv 1×1  32 →   1, tanh                          925,633 parameters
    discriminator  (input: one 120×120 image, the visible one or the fused one)
      conv 3×3 stride 2   1 →  32, leaky ReLU           (no batch norm)
      conv 3×3 stride 2  32 →  64, batch norm, leaky ReLU
      conv 3×3 stride 2  64 → 128, batch norm, leaky ReLU
      conv 3×3 stride 2 128 → 256, batch norm, leaky ReLU   120 → 59 → 29 → 14 → 6
      linear 6·6·256 → 1 (no activation)                397,953 parameters

The five VALID convolutions shrink an image by 12 pixels, so training feeds
132×132 patches and compares the 120×120 output with the patches' centres,
and fusing edge-pads each side by 6 pixels (``test_one_image.py``).

Settings (paper / authors' code → here):

=============================  ==========================================  =========================
setting                        paper / authors' code                       jaxfuse
=============================  ==========================================  =========================
generator loss                 V_G + λ·L_content, λ = 100                  same (:data:`LAMBDA`)
adversarial term (generator)   mean (D(I_f) − c)², c ~ U[0.7, 1.2)          same, fresh c each step
discriminator loss             mean (D(I_v) − a)² + mean (D(I_f) − b)²,     same, fresh a, b each
                               a ~ U[0.7, 1.2), b ~ U[0, 0.3)              discriminator step
content loss                   mean (I_f − I_r)² + ξ·mean (∇I_f − ∇I_v)²   same; I_r the infrared
                               over the 120×120 label patches              image (:func:`content_loss`)
ξ                              5 in the code                               5 (:data:`XI`); see note
∇                              Laplacian [[0,1,0],[1,−4,1],[0,1,0]],        same (:func:`laplacian`)
                               zero "same" padding
discriminator steps            2 per generator step                        2 (``d_steps``)
optimiser                      Adam (TF defaults), lr 1e-4, both nets      optax.adam, lr 1e-4
batch / epochs                 32 / 10                                     ``batch`` / ``epochs``;
                                                                           the shipped run: see its
                                                                           README
patches                        132 input, 120 label, stride 14, every      same, over every pair of
                               patch of every training image               ``pairs_dataset``
patch order                    h5 file order, the same every epoch, the    a fresh permutation per
                               last partial batch dropped                  epoch (seed, epoch); the
                                                                           last partial batch dropped
training data                  45 TNO pairs (paper)                        any pairs folder; shipped:
                                                                           RoadScene (never TNO)
initialisation                 kernels truncated normal σ 1e-3, biases 0   same
batch norm (training)          batch statistics, decay 0.9, ε 1e-5,        same; moving averages in
                               scale and offset learnt                     ``batch_stats``
spectral normalisation         every kernel of both nets, one power        same; see note
                               iteration per forward pass
colour                         gray (scipy ``imread(flatten=True)``: the   the colour path: luma Y
                               BT.601 luma of an RGB file)                 (:mod:`jaxfuse.color`)
test-time padding              edge, 6 pixels each side                    same
test-time batch norm           batch statistics of the one test image      same (per image)
output step                    ``· 127.5 + 127.5``, then scipy             min–max stretch of
                               ``imsave``: min–max to 0–255, rounded       :func:`jaxfuse.fusion.to_uint8`
                                                                           (truncates; see note)
=============================  ==========================================  =========================

Notes:

* ξ: the code multiplies the gradient term by 5 (``g_loss_2``); the paper
  states its own value in Sec. 4.1, which could not be checked here, so the
  code's value is used.
* The authors' code runs the generator three times per iteration (in each of
  the two discriminator steps and in the generator step) with the same
  weights; here it runs once per iteration and the two discriminator steps
  score that output. Its power iterations are kept: three per iteration, as
  the authors' three forward passes made. The discriminator's vector is
  advanced by the pass over the visible patches of each discriminator step
  (the authors' ``update_collection=None``); its pass over the fused patches
  does not (``'NO_OPS'``).
* Test time, as ``test_one_image.py`` does it (``authors_test=True``, the
  default): batch norm uses the statistics of the image being fused (the
  layers are built with ``is_training`` left at True), and — because that
  script reloads only the kernels and biases — its scale and offset are
  their initial 1 and 0 and the kernels are the raw, un-normalised ones.
  Batch statistics absorb a kernel's scale in layers 1–4; in layer 5 the raw
  kernel is the normalised one times its spectral norm. ``authors_test=False``
  instead fuses with the network as it was trained (learnt scale and offset,
  normalised kernels), still with per-image statistics.
* Output step: scipy's ``imsave`` of a float array rounds after the
  min–max stretch; jaxfuse's networks share one output step, which
  truncates: the two differ by at most one grey level.
* Adam: TF's ε sits outside the bias correction (ε̂), optax's inside; both
  1e-8, a difference far below anything measurable here.

Checkpoints (:mod:`jaxfuse.checkpoint`): the ``params`` item is the
generator, ``{"generator": ...}``, what :func:`jaxfuse.checkpoint.load_params`
returns and :func:`jaxfuse.model.fuse` takes; the ``opt`` item holds the rest
of the training state (the discriminator, both networks' ``batch_stats``,
both Adam states). The data order and the soft labels are functions of
``(seed, step)``, so a resumed run continues bit for bit.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import time
import warnings
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from jaxfuse import __version__, checkpoint, color, io, model, xla
from jaxfuse.cli import progress_bar
from jaxfuse.errors import JaxfuseError

# ----------------------------------------------------------------------------- the recipe

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


# ----------------------------------------------------------------------------- the networks

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
    """A VALID convolution with bias whose kernel is spectrally normalised (:func:`_kernel`)."""
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


# ----------------------------------------------------------------------------- the losses

def laplacian(images: jax.Array) -> jax.Array:
    """The authors' ``gradient``: the 4-neighbour Laplacian with zero "same" padding, NHWC, C=1."""
    images = _check(images, "images", 1)
    kernel = jnp.asarray(LAPLACIAN, jnp.float32)[:, :, None, None]
    return lax.conv_general_dilated(images, kernel, (1, 1), "SAME",
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))


def content_loss(fused: jax.Array, ir: jax.Array, vis: jax.Array, *, xi: float = XI) -> jax.Array:
    """L_content per image: mean (I_f − I_r)² + ξ · mean (∇I_f − ∇I_v)², ``(N,)``.

    All three ``(N, H, W, 1)`` on the networks' scale (:func:`normalize`).
    The authors' scalar is the mean over the batch.
    """
    fused, ir, vis = (_check(a, n, 1) for a, n in ((fused, "fused"), (ir, "ir"), (vis, "vis")))
    if not fused.shape == ir.shape == vis.shape:
        raise ValueError(f"fused {fused.shape}, ir {ir.shape} and vis {vis.shape} must have one shape")
    intensity = jnp.mean(jnp.square(fused - ir), axis=(1, 2, 3))
    grad = jnp.mean(jnp.square(laplacian(fused) - laplacian(vis)), axis=(1, 2, 3))
    return intensity + xi * grad


def discriminator_loss(d_real: jax.Array, d_fake: jax.Array, real_labels: jax.Array,
                       fake_labels: jax.Array) -> jax.Array:
    """The discriminator's least-squares loss per image: (D(I_v) − a)² + (D(I_f) − b)², ``(N,)``.

    All four ``(N, 1)``; the authors' scalar is the mean over the batch.
    """
    return jnp.square(d_real - real_labels)[:, 0] + jnp.square(d_fake - fake_labels)[:, 0]


def adversarial_loss(d_fake: jax.Array, labels: jax.Array) -> jax.Array:
    """The generator's adversarial term per image: (D(I_f) − c)², ``(N,)``."""
    return jnp.square(d_fake - labels)[:, 0]


def soft_labels(key: jax.Array, n: int, which: tuple[float, float]) -> jax.Array:
    """``(n, 1)`` labels uniform in ``[lo, hi)`` (:data:`REAL_LABELS`, :data:`FAKE_LABELS`)."""
    return jax.random.uniform(key, (n, 1), jnp.float32, *which)


# ----------------------------------------------------------------------------- the data

@dataclasses.dataclass
class PairPatches:
    """Every training patch of a pairs folder, cut on demand.

    Attributes:
      names: the pairs' names.
      images: per pair, ``(H, W, 2)`` float32 on the networks' scale
        (infrared, visible luma).
      index: ``(P, 3)`` int32 rows ``(pair, y, x)``, the patches' top-left corners.
      patch: the patches' side.
      sha256: a digest of the names and pixels (what a resumed run must match).
    """
    names: list
    images: list
    index: np.ndarray
    patch: int
    sha256: str

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Patches ``rows`` of :attr:`index` as ``(ir, vis)``, each ``(B, patch, patch, 1)``."""
        p = self.patch
        out = np.stack([self.images[i][y:y + p, x:x + p] for i, y, x in self.index[rows]])
        return out[..., :1], out[..., 1:]


def load_pair_patches(folder, *, patch: int = PATCH, stride: int = STRIDE) -> PairPatches:
    """The patches of every pair in ``folder`` (:func:`jaxfuse.io.find_pairs` layouts).

    The infrared image is read as gray; a colour visible image is reduced to
    its luma Y exactly as the colour path does before fusing
    (:func:`jaxfuse.fusion.fuse_pair`). Patches start every ``stride``
    pixels, as the authors cut them; a pair smaller than ``patch`` gives none.

    Raises:
      JaxfuseError: a missing or pair-less folder, any pair that cannot be
        read or paired, or no pair as large as one patch.
    """
    from jaxfuse import pipeline
    pairs, problems = io.find_pairs(folder)
    if problems:
        path, problem = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise JaxfuseError(path, f"{problem}{more}; a training set must pair every image")
    names, images, index = [], [], []
    h = hashlib.sha256()
    for i, pair in enumerate(pairs):
        ir, vis = pipeline.load_pair(pair)
        y = color.rgb_to_ycbcr(vis)[..., 0].astype(np.float32) if vis.ndim == 3 else vis
        img = np.stack([ir, y], axis=-1).astype(np.float32)
        img = (img - 127.5) / 127.5
        names.append(pair.name)
        images.append(img)
        h.update(pair.name.encode() + b"\0" + np.asarray(img.shape, np.int64).tobytes() + img.tobytes())
        ys = range(0, img.shape[0] - patch + 1, stride)
        xs = range(0, img.shape[1] - patch + 1, stride)
        index += [(i, yy, xx) for yy in ys for xx in xs]
    if not index:
        raise JaxfuseError(folder, f"no pair is as large as one {patch}×{patch} training patch")
    return PairPatches(names, images, np.asarray(index, np.int32), patch, h.hexdigest())


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The patch order of one epoch: a permutation of ``range(n)`` drawn from ``(seed, epoch)``."""
    return np.random.default_rng([seed, epoch]).permutation(n)


# ----------------------------------------------------------------------------- training

@dataclasses.dataclass(frozen=True)
class GANConfig:
    """Everything that defines a FusionGAN training run (defaults: the authors' recipe).

    ``steps`` counts generator steps (each after ``d_steps`` discriminator
    steps); None runs ``epochs`` full passes over the patches.
    """
    pairs_dataset: str
    epochs: int = EPOCHS
    steps: int | None = None
    batch: int = BATCH
    lr: float = LR
    seed: int = 0
    d_steps: int = D_STEPS
    patch: int = PATCH
    checkpoint_every: int = 100

    def validate(self) -> None:
        """Raises JaxfuseError naming the first bad setting."""
        if self.epochs < 1:
            raise _bad("epochs", f"must be a positive integer, got {self.epochs}")
        if self.steps is not None and self.steps < 1:
            raise _bad("steps", f"must be a positive integer, got {self.steps}")
        if self.batch < 1:
            raise _bad("batch", f"must be a positive integer, got {self.batch}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise _bad("lr", f"must be a positive number, got {self.lr}")
        if self.d_steps < 1:
            raise _bad("d_steps", f"must be a positive integer, got {self.d_steps}")
        if self.patch < MIN_PATCH:
            raise _bad("patch", f"{self.patch} is below the {MIN_PATCH} pixels the discriminator's "
                       "four stride-2 convolutions need")
        if self.checkpoint_every < 1:
            raise _bad("checkpoint_every", f"must be positive, got {self.checkpoint_every}")

    @property
    def model_config(self) -> model.ModelConfig:
        return model.arch_spec("fusiongan").config()


HISTORY_KEYS = ("discriminator", "adversarial", "content", "total")
PANELS = (("discriminator", "discriminator loss"),
          ("adversarial", "generator: adversarial term"),
          ("content", "generator: content loss (L_content)"),
          ("total", f"generator loss (adversarial + {LAMBDA:g}·content)"))


def init_state(config: GANConfig) -> dict:
    """The training state pytree: both networks' variables, both Adam states, the step."""
    g, d = init_variables(jax.random.key(config.seed), patch=config.patch)
    opt = optax.adam(config.lr)
    return {"g": g["params"], "d": d["params"], "g_stats": g["batch_stats"],
            "d_stats": d["batch_stats"], "g_opt": opt.init(g["params"]),
            "d_opt": opt.init(d["params"]), "step": jnp.zeros((), jnp.int32)}


@functools.lru_cache(maxsize=None)
def make_train_step(lr: float, d_steps: int = D_STEPS):
    """A jitted ``step(state, ir, vis, key) -> (state, terms)``; the state is donated.

    ``ir``, ``vis``: ``(B, P, P, 1)`` patches on the networks' scale. One step
    is ``d_steps`` discriminator updates on the generator's current output,
    then one generator update against the updated discriminator.
    """
    opt = optax.adam(lr)
    gen, disc = Generator(), Discriminator()

    def d_loss_fn(d, stats, real, fake, key):
        ka, kb = jax.random.split(key)
        d_real, new = disc.apply({"params": d, "batch_stats": stats}, real, update=True,
                                 mutable=["batch_stats"])
        d_fake = disc.apply({"params": d, "batch_stats": stats}, fake)
        n = real.shape[0]
        loss = jnp.mean(discriminator_loss(d_real, d_fake, soft_labels(ka, n, REAL_LABELS),
                                           soft_labels(kb, n, FAKE_LABELS)))
        return loss, new["batch_stats"]

    def step(state, ir, vis, key):
        crop = lambda a: a[:, PAD:a.shape[1] - PAD, PAD:a.shape[2] - PAD]  # noqa: E731
        ir_label, vis_label = crop(ir), crop(vis)
        x = jnp.concatenate([ir, vis], axis=-1)
        keys = jax.random.split(key, d_steps + 1)

        def run_gen(g):
            out, new = gen.apply({"params": g, "batch_stats": state["g_stats"]}, x, mode="train",
                                 mutable=["batch_stats"])
            return out, new["batch_stats"]

        fused, gen_vjp, g_stats = jax.vjp(run_gen, state["g"], has_aux=True)
        fake = lax.stop_gradient(fused)

        def d_step(carry, k):
            d, d_stats, d_opt = carry
            (loss, d_stats), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
                d, d_stats, vis_label, fake, k)
            updates, d_opt = opt.update(grads, d_opt, d)
            return (optax.apply_updates(d, updates), d_stats, d_opt), loss

        # A scan, not an unrolled loop: one copy of the discriminator step to compile.
        (d, d_stats, d_opt), d_losses = lax.scan(
            d_step, (state["d"], state["d_stats"], state["d_opt"]), keys[:d_steps])

        def g_loss_fn(f):
            d_fake = disc.apply({"params": d, "batch_stats": d_stats}, f)
            adv = jnp.mean(adversarial_loss(d_fake, soft_labels(keys[-1], f.shape[0], REAL_LABELS)))
            content = jnp.mean(content_loss(f, ir_label, vis_label))
            total = adv + LAMBDA * content
            return total, {"adversarial": adv, "content": content, "total": total}

        (_, terms), df = jax.value_and_grad(g_loss_fn, has_aux=True)(fused)
        (g_grads,) = gen_vjp(df)
        updates, g_opt = opt.update(g_grads, state["g_opt"], state["g"])
        g = optax.apply_updates(state["g"], updates)
        terms["discriminator"] = d_losses[-1]
        new_state = {"g": g, "d": d, "g_stats": g_stats, "d_stats": d_stats, "g_opt": g_opt,
                     "d_opt": d_opt, "step": state["step"] + 1}
        return new_state, terms

    return xla.jit(step, donate_argnums=(0,))


def _opt_item(state: dict) -> dict:
    """The training state beside the generator's parameters: the checkpoint's ``opt`` item."""
    return {k: state[k] for k in ("d", "g_stats", "d_stats", "g_opt", "d_opt")}


def _identity(config: GANConfig, data: PairPatches) -> dict:
    """What must match for a resumed run to continue the same run."""
    d = dataclasses.asdict(config)
    for k in ("steps", "epochs", "checkpoint_every"):
        d.pop(k)
    d["recipe"] = RECIPE
    d["pairs_sha256"] = data.sha256
    return d


def _sample(params: Params, data: PairPatches) -> np.ndarray:
    """infrared | visible | fused of the first training pair, uint8 RGB (for a look)."""
    from jaxfuse import fusion, pipeline
    img = data.images[0] * 127.5 + 127.5
    ir, vis = img[..., 0], img[..., 1]
    fused = fusion.fuse_pair(params, ir, vis, strategy="generator")
    return pipeline.overview_image([(ir, vis, fused)], height=min(240, ir.shape[0]))


def train_and_evaluate(config: GANConfig, workdir, *, resume: bool = False,
                       overwrite: bool = False, progress: bool = True,
                       keep_checkpoints: int | None = None, log=None) -> dict:
    """Trains FusionGAN on a pairs folder; writes checkpoints, curves and a summary to ``workdir``.

    Writes ``workdir/checkpoints/<step>/`` (Orbax: the generator as
    ``params``, the rest of the training state as ``opt``),
    ``loss_curves.png``, ``sample.png`` (infrared | visible | fused, the first
    training pair) and ``summary.json``. Arguments, resuming, Ctrl-C and
    errors as :func:`jaxfuse.training.train_and_evaluate`; ``steps`` and
    ``epochs`` may change on a resume.

    Returns:
      The summary dict.
    """
    from jaxfuse import training
    config.validate()
    if keep_checkpoints is None:
        keep_checkpoints = training.KEEP_CHECKPOINTS
    if keep_checkpoints < 0:
        raise _bad("keep_checkpoints", f"must be 0 (keep all) or positive, got {keep_checkpoints}")
    workdir = Path(workdir)
    training.check_workdir(workdir)
    data = load_pair_patches(config.pairs_dataset, patch=config.patch)
    per_epoch = len(data) // config.batch
    if per_epoch < 1:
        raise JaxfuseError(config.pairs_dataset, f"has {len(data)} patches, fewer than one "
                           f"{{batch}} of {config.batch}", settings=("batch",))
    total = config.steps if config.steps is not None else config.epochs * per_epoch
    ident = _identity(config, data)
    ckdir, resume_from, history = training.open_run(
        workdir, ident, total, resume=resume, overwrite=overwrite, keys=HISTORY_KEYS)

    state = init_state(config)
    elapsed_before = 0.0
    mngr = checkpoint.manager(ckdir, max_to_keep=keep_checkpoints or None)
    if resume_from is not None:
        params, meta, opt = checkpoint.restore(resume_from, config=config.model_config,
                                               with_opt_like=_opt_item(state))
        state = {"g": params["generator"], **opt, "step": jnp.asarray(meta["step"], jnp.int32)}
        # Orbax hands back arrays committed to a device; fresh ones are not, and jit
        # compiles the step again for the other kind. Same values, uncommitted.
        state = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a)), state)
        elapsed_before = float(meta.get("train_seconds", 0.0) or 0.0)
    start = int(state["step"])
    if log is not None and resume:
        log(f"resuming at step {start} of {total} from {resume_from}" if resume_from
            else f"nothing to resume in {ckdir}; starting at step 0 of {total}")

    train_step = make_train_step(config.lr, config.d_steps)
    base_key = jax.random.fold_in(jax.random.key(config.seed), 1)  # the labels' stream, apart from init's
    train = {**dataclasses.asdict(config), "recipe": RECIPE, "total_steps": total}
    save_meta = lambda step, secs: checkpoint.make_meta(  # noqa: E731
        config.model_config, step, train=train, identity=ident, history=history,
        train_seconds=secs)
    order, order_epoch = None, None
    t0 = time.perf_counter()
    saved = start if resume_from is not None else None
    bar = progress_bar(range(start, total), total=total, initial=start, desc="train fusiongan",
                       unit="step", enabled=progress)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*donated buffers were not usable.*")
            for i in bar:
                epoch, j = divmod(i, per_epoch)
                if order_epoch != epoch:
                    order, order_epoch = epoch_order(len(data), config.seed, epoch), epoch
                ir, vis = data.batch(order[j * config.batch:(j + 1) * config.batch])
                state, terms = train_step(state, ir, vis, jax.random.fold_in(base_key, i))
                terms = {k: float(v) for k, v in terms.items()}
                if not all(math.isfinite(v) for v in terms.values()):
                    raise JaxfuseError(config.pairs_dataset, f"loss became {terms['total']} at "
                                       f"step {i + 1}", hint="try a lower {lr}", settings=("lr",))
                for k in history:
                    history[k].append(terms[k])
                step = i + 1
                bar.set_postfix(d=f"{terms['discriminator']:.3f}", g=f"{terms['total']:.3f}",
                                refresh=False)
                if step % config.checkpoint_every == 0 or step == total:
                    checkpoint.save(mngr, step, {"generator": state["g"]}, save_meta(
                        step, elapsed_before + time.perf_counter() - t0), opt=_opt_item(state))
                    saved = step
    except KeyboardInterrupt:
        bar.close()
        saved = training.saved_after_interrupt(mngr, ckdir, saved)
        raise training._interrupted(history, saved, workdir, panels=PANELS) from None
    finally:
        bar.close()
    seconds = elapsed_before + time.perf_counter() - t0

    params = {"generator": state["g"]}
    if history["total"]:
        training._plot_curves(history, workdir / "loss_curves.png", panels=PANELS)
    io.save_image(workdir / "sample.png", _sample(params, data), overwrite=True)
    done = total - start
    summary = {
        "jaxfuse_version": __version__,
        "arch": "fusiongan",
        "config": dataclasses.asdict(config),
        "recipe": RECIPE,
        "dataset": {"pairs": len(data.names), "patches": len(data), "steps_per_epoch": per_epoch,
                    "epochs_run": total / per_epoch, "sha256": data.sha256},
        "steps": total,
        "final_loss": {k: (v[-1] if v else None) for k, v in history.items()},
        "train_seconds": seconds,
        "seconds_per_step_this_run": (time.perf_counter() - t0) / done if done else None,
        "backend": jax.default_backend(),
        "checkpoint": str(ckdir / str(total)),
    }
    io.atomic_write(workdir / "summary.json", lambda f: f.write(json.dumps(summary, indent=2).encode()))
    return summary
