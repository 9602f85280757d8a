"""Training losses: L = L_ssim + L_pixel (paper Eq. 2–4), two SSIM choices.

Images are NHWC float, 0–255, C = 1; every function returns one value per
image (shape ``(N,)``); average it for a scalar loss.

* ``"ssim"`` (default): ``1 − SSIM(O/255, I/255)`` with dm-pix's SSIM
  (11×11 Gaussian window, σ = 1.5, K1 = 0.01, K2 = 0.03, data range 1), as the
  paper writes the loss (Eq. 4).
* ``"msssim"``: ``1 − MS-SSIM(O, I)`` as the authors' code computes it
  (:func:`authors_msssim`), which is what their released model was trained with.

The pixel term is the MSE on the 0–1 scale, ``mean(((O − I)/255)²)``, weight 1.
Why: the authors divide the 0–255 MSE once more by C·H·W; for their 256×256
gray training image C·H·W = 65,536 ≈ 255² = 65,025, so their term equals the
0–1-scale MSE to within 0.8 %, and the paper's Table III reports MSE on that
scale too. Writing it as the 0–1 MSE keeps that balance at every image size
(the authors' form shrinks with the image), whereas the plain 0–255 MSE
(~10²–10³ at the start) would swamp the SSIM term (≤ 1) and the model would
ignore structure. The pixel term is small next to the SSIM term by design,
as in the authors' runs.
"""

from __future__ import annotations

import functools

import dm_pix as pix
import jax
import jax.numpy as jnp
from jax import lax

MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
LOSSES = ("ssim", "msssim")
MIN_SIZE = {"ssim": 11, "msssim": 176}  # shortest image side each loss needs


def _check(a, b):
    a = jnp.asarray(a, jnp.float32)
    b = jnp.asarray(b, jnp.float32)
    if a.ndim != 4 or a.shape != b.shape:
        raise ValueError(f"expected two NHWC images of one shape, got {a.shape} and {b.shape}")
    return a, b


def pixel_loss(output: jax.Array, target: jax.Array) -> jax.Array:
    """MSE on the 0–1 scale per image: mean(((O − I)/255)²) over H, W, C."""
    output, target = _check(output, target)
    return jnp.mean(jnp.square((output - target) / 255.0), axis=(1, 2, 3))


def ssim(output: jax.Array, target: jax.Array) -> jax.Array:
    """dm-pix SSIM of 0–255 images (scaled to 0–1), per image."""
    output, target = _check(output, target)
    if min(output.shape[1:3]) < 11:
        raise ValueError(f"SSIM needs images of at least 11×11, got {output.shape[1:3]}")
    return pix.ssim(output / 255.0, target / 255.0, max_val=1.0, filter_size=11,
                    filter_sigma=1.5, k1=0.01, k2=0.03)


def _gaussian_1d(size: int, sigma: float = 1.5) -> jax.Array:
    x = jnp.arange(size, dtype=jnp.float32) - size // 2
    g = jnp.exp(-(x ** 2) / (2.0 * sigma ** 2))
    return g / jnp.sum(g)


def _blur_valid(x: jax.Array, size: int) -> jax.Array:
    """'valid' filtering with the separable size×size Gaussian (σ 1.5), NHWC C=1."""
    g = _gaussian_1d(size)
    dn = ("NHWC", "HWIO", "NHWC")
    x = lax.conv_general_dilated(x, g.reshape(size, 1, 1, 1), (1, 1), "VALID", dimension_numbers=dn)
    return lax.conv_general_dilated(x, g.reshape(1, size, 1, 1), (1, 1), "VALID", dimension_numbers=dn)


def _ssim_cs(a: jax.Array, b: jax.Array, data_range: jax.Array):
    """Per-image mean SSIM and contrast-sensitivity maps, authors' definition."""
    size = min(11, a.shape[1], a.shape[2])  # the window shrinks to the image
    stats = _blur_valid(jnp.concatenate([a, b, a * a, b * b, a * b]), size)
    mu1, mu2, e11, e22, e12 = jnp.split(stats, 5)
    s11, s22, s12 = e11 - mu1 ** 2, e22 - mu2 ** 2, e12 - mu1 * mu2
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    v1 = 2.0 * s12 + c2
    v2 = s11 + s22 + c2
    cs = jnp.mean(v1 / v2, axis=(1, 2, 3))
    ssim_map = (2.0 * mu1 * mu2 + c1) * v1 / ((mu1 ** 2 + mu2 ** 2 + c1) * v2)
    return jnp.mean(ssim_map, axis=(1, 2, 3)), cs


def authors_msssim(output: jax.Array, target: jax.Array) -> jax.Array:
    """MS-SSIM exactly as the authors' training code computes it, per image.

    Five scales (weights 0.0448, 0.2856, 0.3001, 0.2363, 0.1333), Gaussian
    window 11 ('valid', shrunk to the image if smaller), σ 1.5, 2×2 average
    pooling between scales. The data range comes from ``output`` at each call:
    L = max_val − min_val with max_val = 255 if max(output) > 128 else 1 and
    min_val = −1 if min(output) < −0.5 else 0 (over the whole batch, as the
    authors' code). SSIM and CS are mapped (x + 1)/2 and combined as
    Π_{i=1..4} cs_i^{w_i} · ssim_5^{w_5}, so the last SSIM enters four times:
    a quirk of that code, not Wang's formula.
    """
    output, target = _check(output, target)
    if min(output.shape[1:3]) < 176:
        raise ValueError(f"MS-SSIM needs images of at least 176×176, got {output.shape[1:3]}")
    max_val = jnp.where(jnp.max(output) > 128, 255.0, 1.0)
    min_val = jnp.where(jnp.min(output) < -0.5, -1.0, 0.0)
    data_range = lax.stop_gradient(max_val - min_val)
    a, b = output, target
    sims, css = [], []
    for level in range(len(MSSSIM_WEIGHTS)):
        s, c = _ssim_cs(a, b, data_range)
        sims.append(s)
        css.append(c)
        if level + 1 < len(MSSSIM_WEIGHTS):
            a, b = _avg_pool2(a), _avg_pool2(b)
    w = jnp.asarray(MSSSIM_WEIGHTS)
    sims = (jnp.stack(sims, axis=-1) + 1.0) / 2.0
    css = (jnp.stack(css, axis=-1) + 1.0) / 2.0
    last = sims[..., -1:] ** w[-1]
    return jnp.prod(css[..., :-1] ** w[:-1] * last, axis=-1)


def _avg_pool2(x: jax.Array) -> jax.Array:
    """2×2 average pooling, stride 2, odd rows/columns dropped (PyTorch's avg_pool2d)."""
    n, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


@functools.partial(jax.jit, static_argnames=("kind",))
def loss_terms(output: jax.Array, target: jax.Array, *, kind: str = "ssim",
               ssim_weight: float = 1.0) -> dict:
    """Per-image ``{"pixel", "ssim", "total"}`` loss terms; ``ssim`` is 1 − (MS-)SSIM.

    ``total = ssim_weight · ssim + pixel`` (λ of DenseFuse's loss; 1 for Res2NetFuse).
    """
    if kind == "ssim":
        structural = 1.0 - ssim(output, target)
    elif kind == "msssim":
        structural = 1.0 - authors_msssim(output, target)
    else:
        raise ValueError(f"unknown loss {kind!r}; choose from {', '.join(LOSSES)}")
    pixel = pixel_loss(output, target)
    return {"pixel": pixel, "ssim": structural, "total": pixel + ssim_weight * structural}
