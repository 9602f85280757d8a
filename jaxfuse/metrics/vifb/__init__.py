"""The ``vifb`` convention: VIFB's 13 metrics, exactly as its MATLAB code computes them.

VIFB (X. Zhang, P. Ye, G. Xiao, "VIFB: A Visible and Infrared Image Fusion
Benchmark", CVPR Workshops 2020; repository ``xingchenzhang/VIFB``) scores a
fused image with ``compute_metrics.m``, which reads the visible, infrared and
fused JPEGs with ``imread`` and calls ``metrics<Name>(imgVI, imgIR, fused)``
from its ``metrics/`` folder. Files read and reproduced here:
``compute_metrics.m``, ``metrics/metricsAvg_gradient.m``,
``metricsCross_entropy.m``, ``metricsEdge_intensity.m``, ``metricsEntropy.m``,
``metricsMutinf.m``, ``metricsPsnr.m``, ``metricsQabf.m``, ``metricsQcb.m``,
``metricsQcv.m``, ``metricsRmse.m``, ``metricsSpatial_frequency.m``,
``metricsSsim.m`` and ``metricsVariance.m`` (each file holds its own helpers:
``normalize1``, ``gaussian2d``, ``contrast``, ``mutinf``, ``mse``, ...).

Our functions take jaxfuse's order ``(ir, vis, fused)`` and call VIFB's
``(vis, ir, fused)`` internally. Images are kept as read: ``(H, W)`` grey or
``(H, W, 3)`` colour, 0–255 grey levels. :func:`load` reads files as
MATLAB's ``imread`` does (see there).

Colour handling (``b`` = channels of the fused image, ``b1`` = channels of the
infrared image, as each ``metrics*.m`` tests them):

* ``b == 1``: the metric runs once on the whole images; a colour source is
  turned grey inside the metric where the file does so (``rgb2gray``), on
  ``uint8`` data (rounded) or ``double`` data (not rounded) depending on what
  the file converted first. Qcb and Qcv have no such conversion and MATLAB
  errors on a colour source there; so do we (ValueError).
* ``b == 3, b1 == 1``: channel ``k`` of the visible and fused images against
  the whole grey infrared image; the three values are averaged.
* ``b == 3, b1 == 3``: channel ``k`` of all three, averaged.
* A grey visible image with a colour fused image is an error in VIFB (it
  indexes ``img1(:,:,k)``, k = 2, 3); we raise ValueError for every metric
  that has this channel loop (all but Avg_gradient, Edge_intensity and
  Spatial_frequency, which look at the fused image only).

VIFB's infrared JPEGs are three-channel files with equal channels;
``imread`` returns them ``(H, W, 3)`` and so does :func:`load` (unlike
:func:`jaxfuse.io.load_image`, which makes them ``(H, W)``). For the
infrared image this changes nothing (channel k of equal channels is the grey
image), but a fused or visible image with equal channels must stay
three-channel: with ``b == 1`` Qabf would score ``rgb2gray`` of the colour
visible image instead of its three channels, and Spatial_frequency would
not see the three channels side by side (below).

Quirks of VIFB's code, all kept:

* **Spatial_frequency** does ``[m, n] = size(fused)`` on an ``H×W×3`` array,
  so ``n = 3W``, and indexes ``fused(i, j)`` with ``j`` up to ``3W``: the
  frequency is that of the three channels placed side by side
  (``[R G B]``, ``H×3W``), the two seams included, divided by ``H·3W``.
  Its row and column sums are divided by ``m·n`` (not by the number of
  differences).
* **Avg_gradient** uses MATLAB's ``gradient`` (central differences inside,
  one-sided at the borders), sums ``sqrt((dx² + dy²)/2)`` over all ``H·W``
  pixels and divides by ``(H−1)(W−1)``.
* **Edge_intensity**: Sobel (``fspecial('sobel')`` and its transpose) with
  ``imfilter(..., 'replicate')`` per channel, mean gradient magnitude over
  all pixels and channels.
* **Entropy**: 256-bin histogram of ``floor(F)``, ``-Σ p log2 p``.
* **Cross_entropy**: ``(CE(VI, F) + CE(IR, F))/2`` with
  ``CE(X, F) = Σ pX log2(pX / pF)`` over the bins where **both**
  histograms are non-zero (bins where only ``pX`` is non-zero are skipped,
  so it is finite, unlike a true relative entropy).
* **Mutinf**: ``MI(VI, F) + MI(IR, F)`` in **nats** (natural log), each
  image first stretched to [0, 1] by its own min and max, then
  ``int16(x·255)`` (round half away) into 256 bins; a constant image goes
  into bin 1.
* **Psnr** and **Rmse** use ``mse(a, b) = sqrt(Σ (a − b)²) / (H·W)``: the
  Euclidean norm of the error divided by the pixel count, not a mean square
  error. ``Rmse = (mse(VI, F) + mse(IR, F))/2`` and
  ``Psnr = 20 log10(255 / sqrt((mse(VI, F) + mse(IR, F))/2))``; hence the
  typical values ``Rmse ≈ 0.1``, ``Psnr ≈ 58 dB``.
* **Qabf** (Xydeas–Petrović): the wrapper converts the fused image to
  ``double`` and then ``255*im2double(...)`` multiplies all three images by
  255 (``im2double`` leaves ``double`` data alone). Sobel by ``conv2``
  (zero padding), angle ``atan(Sy/Sx)`` (``π/2`` where ``Sx == 0``), and
  where ``gX == gF`` it sets ``G = gF`` (not 1): with the ×255 scale that
  is ≥ 255 and the strength sigmoid saturates at ``Tg``; where both are 0
  it is 0. Even ``fused == vis == ir`` scores
  ``Tg·Ta/(1 + exp(ka·(1 − Da))) ≈ 0.9753``, not 1.
* **Qcb** (Chen–Blum) and **Qcv** (Chen–Varshney): Z. Liu's
  ``metricChenBlum.m`` / ``metricChen.m`` as VIFB copied them; see
  :func:`qcb_gray` and :func:`qcv_gray`. Their frequency-domain filters are
  symmetric, so MATLAB's ``ifft2`` gives real images; we filter with real
  FFTs. Qcv's ``blkproc`` pads the last block row/column with zeros and its
  ``mean2`` divides those partial blocks by 256 as well.
* **Ssim**: ``ssim(VI, F) + ssim(IR, F)`` (a **sum**, ideal 2), Wang et
  al.'s SSIM with an 11×11 Gaussian (σ = 1.5), ``filter2(..., 'valid')``,
  ``C1 = (0.01·255)²``, ``C2 = (0.03·255)²``, mean of the map.
* **Variance** is the population **standard deviation** (``sqrt`` of the
  mean squared deviation), not a variance.
* ``rgb2gray`` (``b == 1`` with a colour source): weights 0.298936021293775,
  0.587043074451121, 0.114020904255103; rounded to integers when the file
  passes it ``uint8`` data (Cross_entropy, Mutinf, Ssim), not rounded when
  it passes ``double`` data (Psnr, Rmse, Qabf). Two caveats on that
  ``double`` path, which VIFB's own runs never take (all its fused images
  are colour): ``rgb2gray.m`` of MATLAB releases up to about R2013 clamps
  ``double`` results to [0, 1], which would turn these 0–255 sources almost
  white; we follow the documented weighted sum of current releases. And the
  weights sum to ``1 − 1e−15``, so the grey of an equal-channel image is not
  exactly integral; Qabf's exact tests ``Sx == 0`` then depend on the last
  bit of the conversion (Octave's rounded weights, which sum to exactly 1,
  give Qabf values about 1e−3 apart on such images).

Where VIFB's formulas give NaN or Inf, we return finite values instead
(identical inputs keep the ideal value where one exists):

* Psnr with ``fused == vis == ir`` (error 0): VIFB gives ``Inf``; we give
  ``20 log10(255 · sqrt(2·H·W))``, the value for a one-grey-level error at
  one pixel of one source, which no other integer image can exceed.
* Qabf when the sources have no gradient at all (``0/0``): 0.
* Qcb and Qcv on a constant image: ``normalize1`` divides by ``max − min =
  0`` (NaN, unless the image is all 0); we map a constant image to zeros.
  Qcb's local contrast ``buff/buff1 − 1`` where the wider Gaussian blur
  ``buff1`` is exactly 0: we take contrast 0. Its preservation ratio
  ``min/max`` of two zero contrasts: 1 (equal contrast), and the saliency
  weights of two zero source contrasts: 1/2 each. So identical inputs give
  the ideal Qcb = 1, constant ones included.
* Qcv when both sources have no gradient (``Σ λ = 0``): equal weights, i.e.
  the mean of the block distortions; identical inputs keep the ideal 0.

Cross_entropy (ideal 0), Entropy, Mutinf, Ssim (ideal 2), Variance, Rmse
(ideal 0), Avg_gradient, Edge_intensity and Spatial_frequency are finite for
constant images as VIFB writes them.

Non-integer inputs (e.g. a float fused image from a model) are rounded to
grey levels first (half away from zero, as MATLAB's ``uint8``): VIFB only
ever scores 8-bit files, and its histograms need integer levels.

Numerics: float64 throughout, except where float32 is exact or far below
the printed digits: Sobel and gradient sums of grey levels (integers and
halves below 2^24, exact), and Qabf's two sigmoids (relative error ~1e-8;
its exact tests ``Sx == 0`` and ``gX == gF`` stay in float64, on exact
integer sums). Dot products avoid BLAS (its threads cost more than they
save on a busy machine). Filters: Qcb's and Qcv's CSFs as real FFTs,
Qcb's 31×31 Gaussians as zero-padded FFT convolution (1e-10 relative to
``filter2``), SSIM's window as two 1-D passes. Against GNU Octave running
VIFB's ``.m`` files all values agree to 3e-8 relative.

Speed: source-only work (histograms, filtered sources, source gradients)
does not depend on the fused image; :class:`VifbPair` keeps it for one
infrared/visible pair and scores any number of fused images
(:func:`score_many`).

Layout: ``_matlab`` (reading, input checks and the MATLAB helpers),
``_pair`` (:class:`VifbPair`, its caches and VIFB's channel loop),
``_metrics`` (the metrics but Qcb and Qcv, on a pair) and ``_perceptual``
(Qcb and Qcv, on a pair and as :func:`qcb_gray` / :func:`qcv_gray`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterable

from numpy.typing import ArrayLike

from jaxfuse.metrics.conventions import Convention
from jaxfuse.metrics.vifb._matlab import _RGB2GRAY, _image, load  # noqa: F401 - _RGB2GRAY: for tests
from jaxfuse.metrics.vifb._pair import DEFAULTS, MIN_SIZE, VifbPair, _Fused
from jaxfuse.metrics.vifb._perceptual import qcb_gray, qcv_gray

LOWER_IS_BETTER = frozenset({"Cross_entropy", "Qcv", "Rmse"})
"""VIFB's paper marks these three as better when smaller."""


def _score_one(name: str, ir, vis, fused) -> float:
    pair = VifbPair(ir, vis, metric=name)
    return pair._one(name, _Fused(_image(fused, name, "fused")))


def avg_gradient(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsAvg_gradient``: mean over channels of ``Σ sqrt((dx² + dy²)/2) / ((H−1)(W−1))``.

    ``dx, dy`` from MATLAB's ``gradient`` (central differences, one-sided at
    the borders); the sum runs over all ``H·W`` pixels. Only ``fused`` is
    used; the sources are checked for size. 0 for a constant image.
    Reference: G. Cui et al., Opt. Commun. 341, 2015.
    """
    return _score_one("Avg_gradient", ir, vis, fused)


def cross_entropy(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsCross_entropy``: ``(CE(VI, F) + CE(IR, F))/2`` per channel, averaged.

    ``CE(X, F) = Σ pX log2(pX/pF)`` over the grey levels where both
    histograms are non-zero (bits). Lower is better; 0 for identical inputs.
    Reference: D. M. Bulanon et al., Biosyst. Eng. 103(1), 2009.
    """
    return _score_one("Cross_entropy", ir, vis, fused)


def edge_intensity(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsEdge_intensity``: mean Sobel magnitude of ``fused`` (replicated borders).

    Over all pixels and channels; only ``fused`` is used. 0 for a constant
    image. Reference: B. Rajalingam, R. Priya, IJESI, 2018.
    """
    return _score_one("Edge_intensity", ir, vis, fused)


def entropy(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsEntropy``: Shannon entropy (bits) of each fused channel, averaged.

    256-bin histogram. VIFB's channel loop still indexes the visible image,
    so a grey ``vis`` with a colour ``fused`` is refused as in VIFB.
    0 for a constant image. Reference: J. W. Roberts et al., J. Appl.
    Remote Sens. 2, 2008.
    """
    return _score_one("Entropy", ir, vis, fused)


def mutinf(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsMutinf``: ``MI(VI, F) + MI(IR, F)`` in nats, per channel, averaged.

    Each image is stretched by its own min/max to 256 bins first.
    Reference: G. Qu, D. Zhang, P. Yan, Electron. Lett. 38(7), 2002.
    """
    return _score_one("Mutinf", ir, vis, fused)


def psnr(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsPsnr``: ``20 log10(255/sqrt((e(VI, F) + e(IR, F))/2))``, ``e = ‖a − f‖₂/(H·W)``.

    Per channel, averaged. Identical inputs: ``20 log10(255·sqrt(2HW))``
    instead of VIFB's Inf (see the module notes). Reference: P. Jagalingam,
    A. V. Hegde, Aquatic Procedia 4, 2015.
    """
    return _score_one("Psnr", ir, vis, fused)


def qabf(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsQabf``: Xydeas–Petrović edge preservation, per channel, averaged.

    On 255 × the grey levels, with ``G = gF`` where ``gX == gF`` (module
    notes). 0 when the sources have no gradient. Identical inputs give
    ``≈ 0.9753``, the most this formula reaches. Reference: C. S. Xydeas,
    V. Petrović, Electron. Lett. 36(4), 2000.
    """
    return _score_one("Qabf", ir, vis, fused)


def qcb(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsQcb``: :func:`qcb_gray` per channel, averaged (ideal 1)."""
    return _score_one("Qcb", ir, vis, fused)


def qcv(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsQcv``: :func:`qcv_gray` per channel, averaged (lower is better, ideal 0)."""
    return _score_one("Qcv", ir, vis, fused)


def rmse(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsRmse``: ``(e(VI, F) + e(IR, F))/2`` with ``e = ‖a − f‖₂/(H·W)``, per channel, averaged.

    Not a root mean square error (see the module notes). Lower is better;
    0 for identical inputs. Reference: P. Jagalingam, A. V. Hegde, Aquatic
    Procedia 4, 2015.
    """
    return _score_one("Rmse", ir, vis, fused)


def spatial_frequency(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsSpatial_frequency``: ``sqrt(RF + CF)``, sums of squared differences / (m·n).

    A colour image is taken as its three channels side by side (``H×3W``,
    module notes). Only ``fused`` is used; 0 for a constant grey image.
    Reference: A. M. Eskicioglu, P. S. Fisher, IEEE Trans. Commun. 43(12), 1995.
    """
    return _score_one("Spatial_frequency", ir, vis, fused)


def ssim(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsSsim``: ``SSIM(VI, F) + SSIM(IR, F)`` per channel, averaged (ideal 2).

    11×11 Gaussian window (σ = 1.5), valid region only, at least 11×11
    pixels. Reference: Z. Wang et al., IEEE Trans. Image Process. 13(4), 2004.
    """
    return _score_one("Ssim", ir, vis, fused)


def variance(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIFB ``metricsVariance``: population standard deviation of each fused channel, averaged.

    Despite the name, a standard deviation (0–255 scale). 0 for a constant
    image. Reference: Y.-J. Rao, Meas. Sci. Technol. 8(4), 1997.
    """
    return _score_one("Variance", ir, vis, fused)


def score_many(ir: ArrayLike, vis: ArrayLike, fused_images: Iterable[ArrayLike],
               metrics: Iterable[str] | None = None, *, workers: int = 1) -> list[dict[str, float]]:
    """Scores several fused images of one pair, reusing the source-only work.

    Args:
      ir, vis: the pair, as for :class:`VifbPair`.
      fused_images: the fused images (arrays as :func:`load` returns them).
      metrics: VIFB names (default: all 13).
      workers: threads scoring fused images side by side (NumPy and the
        FFTs release the GIL); the first image is scored alone so that the
        source-only work is done once.

    Returns:
      One ``{name: value}`` per fused image, in order.
    """
    pair = VifbPair(ir, vis)
    names = None if metrics is None else list(metrics)
    images = list(fused_images)
    if workers <= 1 or len(images) < 3:
        return [pair.score(f, names) for f in images]
    first = pair.score(images[0], names)
    with ThreadPoolExecutor(max_workers=workers) as ex:
        rest = list(ex.map(lambda f: pair.score(f, names), images[1:]))
    return [first] + rest


FUNCTIONS = {
    "Avg_gradient": avg_gradient,
    "Cross_entropy": cross_entropy,
    "Edge_intensity": edge_intensity,
    "Entropy": entropy,
    "Mutinf": mutinf,
    "Psnr": psnr,
    "Qabf": qabf,
    "Qcb": qcb,
    "Qcv": qcv,
    "Rmse": rmse,
    "Spatial_frequency": spatial_frequency,
    "Ssim": ssim,
    "Variance": variance,
}

CONVENTION = Convention(
    name="vifb",
    summary="VIFB's 13 MATLAB metrics (compute_metrics.m), colour per channel, quirks included",
    functions=FUNCTIONS,
    defaults=DEFAULTS,
    load=load,
    aliases={"AG": "Avg_gradient", "CE": "Cross_entropy", "EI": "Edge_intensity", "EN": "Entropy",
             "MI": "Mutinf", "PSNR": "Psnr", "QABF": "Qabf", "QCB": "Qcb", "QCV": "Qcv", "RMSE": "Rmse",
             "SF": "Spatial_frequency", "SSIM": "Ssim", "SD": "Variance"},
    lower_is_better=LOWER_IS_BETTER,
    note="VIFB's MATLAB code: Ssim is a sum (ideal 2), Mutinf in nats, Variance is a std, Rmse/Psnr use ||e||/N",
    pair_scorer=VifbPair,
)

__all__ = ["CONVENTION", "DEFAULTS", "FUNCTIONS", "LOWER_IS_BETTER", "MIN_SIZE", "VifbPair", "load",
           "score_many", "qcb_gray", "qcv_gray", "avg_gradient", "cross_entropy", "edge_intensity",
           "entropy", "mutinf", "psnr", "qabf", "qcb", "qcv", "rmse", "spatial_frequency", "ssim",
           "variance"]
