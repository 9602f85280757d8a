"""Losses against independent references: scikit-image SSIM, a NumPy MS-SSIM."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.signal import correlate2d
from skimage.metrics import structural_similarity

from jaxfuse import losses


def _pair(rng, h=40, w=48):
    a = rng.uniform(0, 255, (h, w)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 25, (h, w)), 0, 255).astype(np.float32)
    return a, b


def test_ssim_matches_scikit_image(rng):
    a, b = _pair(rng)
    got = float(jax.jit(losses.ssim)(a[None, :, :, None], b[None, :, :, None])[0])
    # scikit-image with Gaussian weights (σ 1.5, 11 taps), population covariance,
    # data range 1: its cropped mean is the 'valid' mean dm-pix computes.
    want = structural_similarity(a / 255.0, b / 255.0, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=1.0)
    assert got == pytest.approx(want, abs=1e-5)


def test_pixel_loss_is_mse_on_unit_scale(rng):
    a, b = _pair(rng)
    got = float(losses.pixel_loss(a[None, :, :, None], b[None, :, :, None])[0])
    assert got == pytest.approx(np.mean(((a.astype(np.float64) - b) / 255) ** 2), rel=1e-5)


def _np_msssim(img1, img2):
    """The authors' MS-SSIM, re-written in NumPy from SPEC.md's description."""
    w = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
    max_val = 255 if img1.max() > 128 else 1
    min_val = -1 if img1.min() < -0.5 else 0
    L = max_val - min_val
    sims, css = [], []
    for _ in range(5):
        size = min(11, *img1.shape)
        g = np.exp(-((np.arange(size) - size // 2) ** 2) / (2 * 1.5 ** 2))
        g /= g.sum()
        win = np.outer(g, g)
        f = lambda x: correlate2d(x, win, mode="valid")  # noqa: E731
        mu1, mu2 = f(img1), f(img2)
        s11 = f(img1 * img1) - mu1 ** 2
        s22 = f(img2 * img2) - mu2 ** 2
        s12 = f(img1 * img2) - mu1 * mu2
        c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
        v1, v2 = 2 * s12 + c2, s11 + s22 + c2
        css.append(np.mean(v1 / v2))
        sims.append(np.mean((2 * mu1 * mu2 + c1) * v1 / ((mu1 ** 2 + mu2 ** 2 + c1) * v2)))
        pool = lambda x: x[: x.shape[0] // 2 * 2, : x.shape[1] // 2 * 2].reshape(  # noqa: E731
            x.shape[0] // 2, 2, x.shape[1] // 2, 2).mean((1, 3))
        img1, img2 = pool(img1), pool(img2)
    sims = (np.array(sims) + 1) / 2
    css = (np.array(css) + 1) / 2
    return np.prod(css[:-1] ** w[:-1] * sims[-1] ** w[-1])


def test_authors_msssim_matches_numpy(rng):
    a, b = _pair(rng, 181, 190)  # odd sizes exercise the pooling's dropped row/column
    got = float(jax.jit(losses.authors_msssim)(b[None, :, :, None], a[None, :, :, None])[0])
    want = _np_msssim(b.astype(np.float64), a.astype(np.float64))
    assert got == pytest.approx(want, rel=1e-5)


def test_msssim_identical_is_one_and_data_range_switches(rng):
    a, _ = _pair(rng, 176, 176)
    x = a[None, :, :, None]
    assert float(losses.authors_msssim(x, x)[0]) == pytest.approx(1.0, abs=1e-6)
    small = x / 255.0  # output max ≤ 128: the authors' code switches to data range 1
    want = _np_msssim(small[0, :, :, 0].astype(np.float64) * 0.9, small[0, :, :, 0].astype(np.float64))
    assert float(losses.authors_msssim(small * 0.9, small)[0]) == pytest.approx(want, rel=1e-5)


def test_too_small_images_raise():
    x = jnp.zeros((1, 10, 40, 1))
    with pytest.raises(ValueError, match="11"):
        losses.ssim(x, x)
    y = jnp.zeros((1, 175, 300, 1))
    with pytest.raises(ValueError, match="176"):
        losses.authors_msssim(y, y)


@pytest.mark.parametrize("kind", losses.LOSSES)
def test_loss_gradients_finite_on_flat_images(kind):
    x = jnp.full((1, 176, 176, 1), 128.0)
    g = jax.grad(lambda o: jnp.mean(losses.loss_terms(o, x, kind=kind)["total"]))(x + 1.0)
    assert np.all(np.isfinite(np.asarray(g)))
    t = losses.loss_terms(x, x, kind=kind)
    assert float(t["total"][0]) == pytest.approx(0.0, abs=1e-6)
