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

# The parts, each a module of its own job: networks (the recipe's constants, generator,
# discriminator), losses, data (the training patches), training (step, run, resume).
from jaxfuse.fusiongan.networks import (  # noqa: F401
    PATCH, SHRINK, PAD, STRIDE, XI, LAMBDA, REAL_LABELS, FAKE_LABELS, D_STEPS, LR, BATCH,
    EPOCHS, LEAK, BN_DECAY, BN_EPS, INIT_STD, LAPLACIAN, GENERATOR_LAYERS,
    DISCRIMINATOR_LAYERS, RECEPTIVE_RADIUS, RECIPE, Params, disc_size, MIN_PATCH,
    spectral_normalize, SNConv, SNDense, BatchNorm, GENERATOR_MODES, Generator, Discriminator,
    init_variables, init_params, normalize, fuse_sources)
from jaxfuse.fusiongan.losses import (  # noqa: F401
    laplacian, content_loss, discriminator_loss, adversarial_loss, soft_labels)
from jaxfuse.fusiongan.data import (  # noqa: F401
    PairPatches, load_pair_patches, epoch_order)
from jaxfuse.fusiongan.training import (  # noqa: F401
    GANConfig, HISTORY_KEYS, PANELS, init_state, make_train_step, train_and_evaluate)
