"""Tests for the ``cddfuse`` convention (:mod:`jaxfuse.metrics.cddfuse`).

* Reference: every value in ``../shared/data/reference_metrics/tno21_cddfuse.json``
  (CDDFuse's ``utils/Evaluator.py`` run under its pinned package versions on
  5 methods × 21 TNO pairs, 12 metrics and its module-level ``VIFF``, per pair
  and mean) is compared with ours to 1e-5 relative, Qabf included.
* Cross-checks: scikit-learn's ``mutual_info_score``, scikit-image's SSIM
  called with ``data_range=2``, SciPy's ``uniform_filter``, exact integer
  arithmetic for the grey conversion, and OpenCV where it is installed.
* Properties: identical inputs, constant images, too-small images, input
  validation, RGB input, ``score_pair``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from jaxfuse.metrics import PSNR_MAX_DB, score_pair
from jaxfuse.metrics import cddfuse as C
from jaxfuse.metrics.conventions import get_convention

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REF_FILE = DATA / "reference_metrics" / "tno21_cddfuse.json"
TNO21 = DATA / "tno21"
FUSED = DATA / "tno21_fused"

RTOL = 1e-5
# The file's VIF_modfn is CDDFuse's module-level VIFF(), the same value as Evaluator.VIFF.
REF_KEYS = {**{k: k for k in C.FUNCTIONS}, "VIF_modfn": "VIF"}


def _missing_data() -> Path | None:
    for p in (REF_FILE, TNO21, FUSED):
        if not p.exists():
            return p
    return None


MISSING = _missing_data()
needs_ref = pytest.mark.skipif(MISSING is not None, reason=f"reference data absent: {MISSING} not found")


def _close(ours: float, ref: float) -> bool:
    return abs(ours - ref) <= RTOL * abs(ref) + 1e-12


@pytest.fixture(scope="module")
def reference():
    return json.loads(REF_FILE.read_text())


@pytest.fixture(scope="module")
def computed(reference):
    """Our 12 metrics for every (method, pair) of the reference file, computed once."""
    sources = {}
    out = {}
    for method, entry in reference["per_method"].items():
        out[method] = {}
        for pair in entry["per_pair"]:
            if pair not in sources:
                sources[pair] = (C.load(TNO21 / "ir" / f"{pair}.png"), C.load(TNO21 / "vis" / f"{pair}.png"))
            ir, vis = sources[pair]
            fused = C.load(FUSED / method / f"{pair}.png")
            out[method][pair] = C.CONVENTION.score(ir, vis, fused, list(C.FUNCTIONS))
    return out


@needs_ref
def test_reference_covers_every_metric(reference):
    assert "CDDFuse utils/Evaluator.py" in reference["source"]
    methods = reference["per_method"]
    assert len(methods) == 5
    for entry in methods.values():
        assert len(entry["per_pair"]) == 21
        for values in entry["per_pair"].values():
            assert set(values) == set(REF_KEYS)
        assert set(entry["mean"]) == set(REF_KEYS)


@needs_ref
@pytest.mark.parametrize("key", sorted(REF_KEYS))
def test_reference_per_pair(reference, computed, key):
    ours_name = REF_KEYS[key]
    bad = []
    for method, entry in reference["per_method"].items():
        for pair, values in entry["per_pair"].items():
            ours, ref = computed[method][pair][ours_name], values[key]
            if not _close(ours, ref):
                bad.append(f"{method}/{pair}: ours {ours!r}, CDDFuse {ref!r}")
    assert not bad, f"{key}: {len(bad)} of 105 values off by more than {RTOL} relative:\n" + "\n".join(bad)


@needs_ref
@pytest.mark.parametrize("key", sorted(REF_KEYS))
def test_reference_means(reference, computed, key):
    ours_name = REF_KEYS[key]
    for method, entry in reference["per_method"].items():
        pairs = list(entry["per_pair"])
        ours = float(np.mean([computed[method][p][ours_name] for p in pairs]))
        assert _close(ours, entry["mean"][key]), (key, method, ours, entry["mean"][key])


# ---------------------------------------------------------------------------
# The convention's table

def test_convention_table():
    conv = get_convention("cddfuse")
    assert conv is C.CONVENTION
    assert conv.defaults == ("EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM")
    assert conv.names() == ("EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM", "AG", "CC", "PSNR", "MSE")
    assert conv.lower_is_better == frozenset({"MSE"})
    assert conv.resolve("viff") == "VIF" and conv.resolve("qabf") == "Qabf"
    assert "sum" in conv.note and "nats" in conv.note
    assert C.REFERENCE_COMMIT in C.__doc__


def test_score_pair(rng):
    ir, vis, fused = (rng.integers(0, 256, (48, 56)).astype(np.float32) for _ in range(3))
    got = score_pair(ir, vis, fused, convention="cddfuse")
    assert list(got) == list(C.DEFAULTS)
    for name, value in got.items():
        assert value == C.FUNCTIONS[name](ir, vis, fused)
    some = score_pair(ir, vis, fused, metrics=["mse", "VIFF", "ag"], convention="cddfuse")
    assert list(some) == ["MSE", "VIF", "AG"]
    with pytest.raises(ValueError, match="unknown metric"):
        score_pair(ir, vis, fused, metrics=["SSIM_a"], convention="cddfuse")


# ---------------------------------------------------------------------------
# Properties

def _textured(rng, shape=(64, 72)):
    return rng.integers(0, 256, shape).astype(np.float32)


def test_identical_inputs(rng):
    x = _textured(rng)
    s = C.CONVENTION.score(x, x, x, list(C.FUNCTIONS))
    assert s["SSIM"] == 2.0
    assert s["VIF"] == pytest.approx(2.0, abs=1e-9)
    assert s["CC"] == pytest.approx(1.0, abs=1e-6)
    assert s["MSE"] == 0.0
    assert s["PSNR"] == PSNR_MAX_DB
    assert s["SCD"] == 0.0  # both differences are constant (zero): 0/0 counted 0
    # MI(F, F) = H(F) in nats, twice.
    p = np.bincount(x.astype(int).ravel()) / x.size
    p = p[p > 0]
    assert s["MI"] == pytest.approx(-2 * np.sum(p * np.log(p)), rel=1e-12)
    # The sigmoids never reach 1: Qg(G = gF >= 1) * Qa(A = 1).
    top = 0.9994 / (1 + np.exp(-15 * 0.5)) * 0.9879 / (1 + np.exp(-22 * 0.2))
    assert s["Qabf"] == pytest.approx(top, abs=1e-3)


@pytest.mark.parametrize("level", [0, 1, 128, 255])
def test_constant_images_finite(rng, level):
    k = np.full((48, 50), level, np.float32)
    t1, t2 = _textured(rng, k.shape), _textured(rng, k.shape)
    for triple in ((k, k, k), (t1, t2, k), (k, k, t1), (k, t1, t2)):
        s = C.CONVENTION.score(*triple, list(C.FUNCTIONS))
        assert all(np.isfinite(v) for v in s.values()), s
    same = C.CONVENTION.score(k, k, k, list(C.FUNCTIONS))
    assert same["SSIM"] == 2.0 and same["VIF"] == 2.0 and same["MI"] == 0.0 and same["CC"] == 0.0
    assert same["EN"] == 0.0 and same["SD"] == 0.0 and same["MSE"] == 0.0 and same["PSNR"] == PSNR_MAX_DB
    black = np.zeros_like(k)
    assert C.psnr(t1, t2, black) == -PSNR_MAX_DB
    assert C.qabf(black, black, t1) == 0.0  # no source edge at all: 0/0 counted 0


@pytest.mark.parametrize("name, shape, minimum", [
    ("SSIM", (6, 20), 7), ("VIF", (40, 64), 41), ("Qabf", (2, 9), 3),
    ("SF", (1, 9), 2), ("AG", (9, 1), 2)])
def test_too_small_raises(name, shape, minimum):
    x = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match=f"{name}: images must be at least {minimum}x{minimum} pixels"):
        C.FUNCTIONS[name](x, x, x)
    ok = np.zeros((max(shape[0], minimum), max(shape[1], minimum)), np.float32)
    assert np.isfinite(C.FUNCTIONS[name](ok, ok, ok))


@pytest.mark.parametrize("name", list(C.FUNCTIONS))
def test_validation_names_the_metric(rng, name):
    x = _textured(rng)
    with pytest.raises(ValueError, match=f"^{name}: .*same shape"):
        C.FUNCTIONS[name](x, x, x[:, :-1])
    with pytest.raises(ValueError, match=f"^{name}: .*0-255"):
        C.FUNCTIONS[name](x, x, x * 2)
    bad = x.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match=f"^{name}: .*NaN"):
        C.FUNCTIONS[name](x, x, bad)


def test_rgb_input_is_read_as_cddfuse_reads_it(rng):
    rgb = [rng.integers(0, 256, (44, 52, 3)).astype(np.uint8) for _ in range(3)]
    gray = [C.rgb_to_gray_cv2(x) for x in rgb]
    assert C.CONVENTION.score(*rgb, list(C.FUNCTIONS)) == C.CONVENTION.score(*gray, list(C.FUNCTIONS))


def test_uint8_and_float_inputs_agree(rng):
    ir, vis, fused = (rng.integers(0, 256, (45, 47)).astype(np.uint8) for _ in range(3))
    as_f = [x.astype(np.float64) for x in (ir, vis, fused)]
    assert C.CONVENTION.score(ir, vis, fused, list(C.FUNCTIONS)) == \
        C.CONVENTION.score(*as_f, list(C.FUNCTIONS))


# ---------------------------------------------------------------------------
# Cross-checks

@pytest.mark.filterwarnings("ignore:Clustering metrics expects discrete values")
def test_mi_matches_scikit_learn(rng):
    skm = pytest.importorskip("sklearn.metrics")
    ir, vis, fused = (rng.integers(0, 256, (60, 70)).astype(np.float32) for _ in range(3))
    fused[:20] = np.floor(fused[:20] / 32) * 32  # some empty levels
    want = skm.mutual_info_score(fused.ravel(), ir.ravel()) + skm.mutual_info_score(fused.ravel(), vis.ravel())
    assert C.mi(ir, vis, fused) == pytest.approx(want, rel=1e-13)
    # Non-integer values are labels too (the np.unique path).
    frac = fused + 0.25 * (fused < 255)
    want = skm.mutual_info_score(frac.ravel(), ir.ravel()) + skm.mutual_info_score(frac.ravel(), vis.ravel())
    assert C.mi(ir, vis, frac) == pytest.approx(want, rel=1e-13)


def test_uniform_filter_matches_scipy(rng):
    for shape in ((7, 7), (31, 9), (120, 97)):
        for x in (rng.integers(0, 256, shape).astype(np.float32) ** 2,
                  (rng.random(shape) * 255).astype(np.float32)):
            np.testing.assert_array_equal(C._uniform(x), ndimage.uniform_filter(x, C.SSIM_WIN))


def test_ssim_matches_scikit_image_with_data_range_2(rng):
    from skimage.metrics import structural_similarity
    ir, vis, fused = (rng.integers(0, 256, (70, 90)).astype(np.float32) for _ in range(3))
    fused[10:40, 10:50] = 200  # a flat area, where float32 rounding dominates the variances
    want = (structural_similarity(fused, ir, data_range=2) + structural_similarity(fused, vis, data_range=2))
    assert C.ssim(ir, vis, fused) == pytest.approx(want, rel=1e-12)


def test_gray_levels_unchanged():
    levels = np.arange(256, dtype=np.float32).reshape(16, 16)
    np.testing.assert_array_equal(C.rgb_to_gray_cv2(levels), levels)
    np.testing.assert_array_equal(C.rgb_to_gray_cv2(np.repeat(levels[..., None], 3, axis=-1)), levels)
    assert C.rgb_to_gray_cv2(levels).dtype == np.float32


def _decimal_gray(rgb: np.ndarray):
    """Exact integer arithmetic: 1000 × (0.299 R + 0.587 G + 0.114 B), and its tie pixels."""
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    thousand = 299 * r + 587 * g + 114 * b
    return thousand, thousand % 1000 == 500


def test_gray_conversion_against_integer_arithmetic(rng):
    rgb = rng.integers(0, 256, (300, 301, 3)).astype(np.uint8)
    thousand, tie = _decimal_gray(rgb)
    got = C.rgb_to_gray_cv2(rgb).astype(np.int64)
    nearest = (thousand + 500) // 1000  # exact away from ties
    np.testing.assert_array_equal(got[~tie], nearest[~tie])
    assert np.all((got[tie] == thousand[tie] // 1000) | (got[tie] == thousand[tie] // 1000 + 1))
    assert tie.sum() > 50  # the sample does contain ties


def test_gray_conversion_against_opencv(rng):
    cv2 = pytest.importorskip("cv2")
    rgb = rng.integers(0, 256, (400, 403, 3)).astype(np.uint8)
    bgr = np.ascontiguousarray(rgb[..., ::-1]).astype(np.float32)
    want = np.round(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))  # CDDFuse's image_read_cv2(..., 'GRAY')
    got = C.rgb_to_gray_cv2(rgb)
    _, tie = _decimal_gray(rgb)
    differ = got != want
    # Only pixels exactly halfway between two levels may differ (OpenCV's builds round them
    # their own way), and by one level.
    assert not np.any(differ & ~tie)
    assert np.all(np.abs(got - want)[differ] == 1)
    assert differ.sum() <= 0.1 * tie.sum()


def test_load_reads_as_image_read_cv2(tmp_path, rng):
    rgb = rng.integers(0, 256, (33, 41, 3)).astype(np.uint8)
    grey = rng.integers(0, 256, (33, 41)).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    Image.fromarray(grey).save(tmp_path / "g.png")
    c, g = C.load(tmp_path / "c.png"), C.load(tmp_path / "g.png")
    assert c.dtype == np.float32 and c.shape == (33, 41)
    np.testing.assert_array_equal(c, C.rgb_to_gray_cv2(rgb))
    np.testing.assert_array_equal(g, grey.astype(np.float32))
    assert C.CONVENTION.load is C.load
    try:
        import cv2
    except ImportError:
        return
    want = np.round(cv2.cvtColor(cv2.imread(str(tmp_path / "g.png")).astype("float32"), cv2.COLOR_BGR2GRAY))
    np.testing.assert_array_equal(g, want)
