"""Tests for jaxfuse.metrics.

* Reference: every value in ``../shared/data/reference_metrics/tno21.json``
  (5 methods × 21 TNO pairs × 9 metrics, computed by the MATLAB kit under
  Octave and an independent port) is compared with ours: 1e-6 relative, Qabf
  within 0.01 per pair and 0.003 on the mean (1e-8 where the value came from
  Octave itself, whose conv2 summation order we follow).
* Cross-checks against independent implementations: scikit-image,
  scikit-learn, and straightforward loop versions of the kit's MATLAB code
  written here (per window / per pixel, no vectorisation tricks).
* Properties: constant images are finite, identical inputs are ideal,
  too-small images raise, RGB is converted by BT.601, x64 stays off globally.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import signal

from jaxfuse import metrics as M
from jaxfuse.metrics import information as I

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REF_FILE = DATA / "reference_metrics" / "tno21.json"
NO_DATA = f"reference data absent: {REF_FILE} not found (expected ../shared/data beside the repo)"

# Reference-JSON key -> our metric name ("MI" in the file is the real MI).
REF_TO_OURS = {"EN": "EN", "MI_2EN": "MI_2EN", "MI": "MI_real", "SCD": "SCD", "SSIM_a": "SSIM_a",
               "MS_SSIM": "MS_SSIM", "FMI_dct": "FMI_dct", "FMI_w": "FMI_w", "Qabf": "Qabf"}


def _load_ref():
    if not REF_FILE.exists():
        return None
    return json.loads(REF_FILE.read_text())


REF = _load_ref()


def _ref_cases():
    if REF is None:
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=NO_DATA))]
    cases = []
    for method, entry in REF["methods"].items():
        keys = sorted({k for v in entry["per_pair"].values() for k, x in v.items()
                       if isinstance(x, (int, float))})
        cases += [pytest.param(method, k, id=f"{method}-{k}") for k in keys]
    return cases


@pytest.fixture(scope="module")
def computed():
    """Our values for every (method, pair) of the reference file, computed once."""
    if REF is None:
        pytest.skip(NO_DATA)
    from jaxfuse.io import load_image
    names = sorted(set(REF_TO_OURS.values()))
    out: dict[str, dict[str, dict[str, float]]] = {}
    sources = {}
    for method, entry in REF["methods"].items():
        fused_dir = DATA / entry["fused_dir"]
        out[method] = {}
        for pair in entry["per_pair"]:
            if pair not in sources:
                sources[pair] = (load_image(DATA / "tno21" / "ir" / f"{pair}.png", gray=True),
                                 load_image(DATA / "tno21" / "vis" / f"{pair}.png", gray=True))
            ir, vis = sources[pair]
            fused = load_image(fused_dir / f"{pair}.png", gray=True)
            out[method][pair] = M.score_pair(ir, vis, fused, metrics=names)
    return out


@pytest.mark.parametrize("method,key", _ref_cases())
def test_matches_reference_kit(computed, method, key):
    entry = REF["methods"][method]
    assert key in REF_TO_OURS, f"reference has a metric the test does not know: {key}"
    ours_name = REF_TO_OURS[key]
    bad = []
    ours_all = []
    for pair, vals in entry["per_pair"].items():
        if key not in vals:
            continue
        ref, ours = vals[key], computed[method][pair][ours_name]
        ours_all.append(ours)
        if key == "Qabf":
            tol = 1e-8 if vals.get("Qabf_source") == "octave" else 0.01
            ok = abs(ours - ref) <= tol
        else:
            ok = abs(ours - ref) <= 1e-6 * abs(ref)
        if not ok:
            bad.append(f"{pair}: ours {ours!r} ref {ref!r}")
    assert not bad, f"{method} {key} differs on {len(bad)} pair(s):\n" + "\n".join(bad)
    mean_ref = entry.get("mean21", {}).get(key)
    if mean_ref is not None:
        assert len(ours_all) == 21
        mean = math.fsum(ours_all) / len(ours_all)
        if key == "Qabf":
            assert abs(mean - mean_ref) <= 0.003
        else:
            assert abs(mean - mean_ref) <= 1e-6 * abs(mean_ref)


def test_mi_kit_is_twice_en_and_real_mi_is_not():
    rng = np.random.default_rng(1)
    a, b, f = (rng.integers(0, 256, (30, 40)).astype(np.uint8) for _ in range(3))
    assert M.mi_kit(a, b, f) == 2 * M.en(a, b, f)
    assert M.mi(a, b, f) < M.mi_kit(a, b, f)
    assert M.score_pair(a, b, f, metrics=["MI"], convention="paper")["MI"] == M.mi_kit(a, b, f)
    assert M.score_pair(a, b, f, metrics=["MI"], convention="standard")["MI"] == M.mi(a, b, f)


# ---------------------------------------------------------------------------
# Cross-checks with scikit-image / scikit-learn / NumPy.

def _textured(seed, shape=(48, 52)):
    """A smooth random image with edges, flat patches and full 0-255 range (uint8)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]]
    img = 128 + 60 * np.sin(x / (3 + seed)) * np.cos(y / 5) + rng.normal(0, 20, shape)
    img[5:15, 5:20] = 40 + 10 * seed          # flat patch
    img[30:, 30:] += 70                         # step edge
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def test_en_matches_skimage():
    from skimage.measure import shannon_entropy
    f = _textured(0)
    assert M.en(None, None, f) == pytest.approx(shannon_entropy(f, base=2), rel=1e-12)


def test_mi_matches_sklearn_and_numpy():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    a, b, f = _textured(1), _textured(2), _textured(3)

    def numpy_mi(x, y):  # straightforward: joint histogram, Σ p log2 p/(px py)
        h, _, _ = np.histogram2d(x.ravel(), y.ravel(), bins=256, range=[[0, 256], [0, 256]])
        p = h / h.sum()
        px, py = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
        nz = p > 0
        return float(np.sum(p[nz] * np.log2(p[nz] / (px @ py)[nz])))

    nats = sklearn_metrics.mutual_info_score(a.ravel(), f.ravel()) + \
        sklearn_metrics.mutual_info_score(b.ravel(), f.ravel())
    assert M.mi(a, b, f, base="nats") == pytest.approx(nats, rel=1e-10)
    assert M.mi(a, b, f) == pytest.approx(numpy_mi(a, f) + numpy_mi(b, f), rel=1e-10)
    assert M.mi(a, b, f) == pytest.approx(nats / math.log(2), rel=1e-10)


def _fspecial_gauss(size, sigma):
    # Written out independently of jaxfuse: MATLAB fspecial('gaussian').
    r = (size - 1) / 2
    y, x = np.mgrid[-r: r + 1, -r: r + 1]
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(float).eps * h.max()] = 0
    return h / h.sum()


def _ssim_loop(x, y):
    """MATLAB ssim: explicit replicate padding and an 11x11 window at every pixel."""
    x, y = x / 255.0, y / 255.0
    w = _fspecial_gauss(11, 1.5)
    xp, yp = np.pad(x, 5, mode="edge"), np.pad(y, 5, mode="edge")
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            a, b = xp[i:i + 11, j:j + 11], yp[i:i + 11, j:j + 11]
            mx, my = np.sum(w * a), np.sum(w * b)
            vx = np.sum(w * a * a) - mx * mx
            vy = np.sum(w * b * b) - my * my
            cxy = np.sum(w * a * b) - mx * my
            out[i, j] = ((2 * mx * my + 1e-4) * (2 * cxy + 9e-4)) / ((mx * mx + my * my + 1e-4) * (vx + vy + 9e-4))
    return out


def test_ssim_matches_loop_and_skimage_interior():
    from skimage.metrics import structural_similarity
    from jaxfuse.metrics.structural import _ssim_map
    a, b = _textured(4, (24, 30)), _textured(5, (24, 30))
    loop = _ssim_loop(a.astype(float), b.astype(float))
    assert M.ssim(a, b) == pytest.approx(loop.mean(), rel=1e-12)
    _, sk_map = structural_similarity(a / 255.0, b / 255.0, gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False, data_range=1.0, full=True)
    ours = _ssim_map(a / 255.0, b / 255.0)
    # Away from the borders the two agree; skimage's mean crops 5 pixels, ours doesn't.
    np.testing.assert_allclose(ours[5:-5, 5:-5], sk_map[5:-5, 5:-5], rtol=0, atol=1e-12)
    f = _textured(6, (24, 30))
    assert M.ssim_a(a, b, f) == pytest.approx(0.5 * (M.ssim(f, a) + M.ssim(f, b)), rel=1e-15)


def test_psnr_mse_match_skimage():
    from skimage.metrics import mean_squared_error, peak_signal_noise_ratio
    a, b = _textured(7), _textured(8)
    assert M.mse(a, b) == pytest.approx(mean_squared_error(a / 255.0, b / 255.0), rel=1e-12)
    assert M.psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), rel=1e-12)
    f = _textured(9)
    m = 0.5 * (mean_squared_error(a.astype(float), f.astype(float)) +
               mean_squared_error(b.astype(float), f.astype(float)))
    assert M.psnr_fusion(a, b, f) == pytest.approx(10 * math.log10(255 ** 2 / m), rel=1e-12)


def test_statistics_match_numpy():
    a, b, f = (_textured(s).astype(float) for s in (10, 11, 12))
    assert M.sd(a, b, f) == pytest.approx(np.std(f), rel=1e-12)
    r = lambda x, y: np.corrcoef(x.ravel(), y.ravel())[0, 1]  # noqa: E731
    assert M.cc(a, b, f) == pytest.approx((r(f, a) + r(f, b)) / 2, rel=1e-12)
    assert M.scd(a, b, f) == pytest.approx(r(f - b, a) + r(f - a, b), rel=1e-12)
    # SF, AG by explicit loops.
    H, W = f.shape
    rf = sum((f[i, j] - f[i, j - 1]) ** 2 for i in range(H) for j in range(1, W)) / (H * (W - 1))
    cf = sum((f[i, j] - f[i - 1, j]) ** 2 for i in range(1, H) for j in range(W)) / ((H - 1) * W)
    assert M.sf(a, b, f) == pytest.approx(math.sqrt(rf + cf), rel=1e-12)
    ag = sum(math.sqrt(((f[i, j + 1] - f[i, j]) ** 2 + (f[i + 1, j] - f[i, j]) ** 2) / 2)
             for i in range(H - 1) for j in range(W - 1)) / ((H - 1) * (W - 1))
    assert M.ag(a, b, f) == pytest.approx(ag, rel=1e-12)


# ---------------------------------------------------------------------------
# Loop versions of the kit's MATLAB code.

def _fmi_loop(ima, imb, imf, feature):
    """analysis_fmi, window by window, in the kit's own formulas (no reformulation)."""
    import pywt
    import scipy.fft

    def feat(x):
        x = x / 255.0
        if feature == "none":
            return x
        if feature == "dct":
            return scipy.fft.dctn(x, norm="ortho")
        ca, (ch, cv, cd) = pywt.dwt2(x, "dmey", mode="symmetric")
        m = np.block([[ca, ch], [cv, cd]])
        return np.ones_like(m) if m.max() == m.min() else (m - m.min()) / (m.max() - m.min())

    def norm(s):
        return np.ones(9) if s.max() == s.min() else (s - s.min()) / (s.max() - s.min())

    def nfmi(aSub, fSub):
        aPdf, fPdf = aSub / aSub.sum(), fSub / fSub.sum()
        aCdf, fCdf = np.cumsum(aPdf), np.cumsum(fPdf)
        at, ft = aPdf - aPdf.mean(), fPdf - fPdf.mean()
        c = 0.0 if np.sum(at * ft) == 0 else np.sum(at * ft) / math.sqrt(np.sum(at * at) * np.sum(ft * ft))
        i = np.arange(1, 10)
        aSd = math.sqrt(max(np.sum(i * i * aPdf) - np.sum(i * aPdf) ** 2, 0))
        fSd = math.sqrt(max(np.sum(i * i * fPdf) - np.sum(i * fPdf) ** 2, 0))
        F, A = fCdf[:, None], aCdf[None, :]
        if c >= 0:
            bound = 0.5 * (F + A - np.abs(F - A))
            mix = 0.0 if (c == 0 or aSd == 0 or fSd == 0) else c / (np.sum(bound - F * A) / (fSd * aSd))
        else:
            bound = 0.5 * (F + A - 1 + np.abs(F + A - 1))
            mix = 0.0 if (aSd == 0 or fSd == 0) else c / (np.sum(bound - F * A) / (fSd * aSd))
        up = np.zeros((10, 10))
        up[1:, 1:] = bound
        cell = up[1:, 1:] - up[:-1, 1:] - up[1:, :-1] + up[:-1, :-1]
        jpdf = mix * cell + (1 - mix) * fPdf[:, None] * aPdf[None, :]
        nz = jpdf != 0
        hj = np.sum(-jpdf[nz] * np.log2(np.abs(jpdf[nz])))
        ha = -np.sum(aPdf[aPdf != 0] * np.log2(aPdf[aPdf != 0]))
        hf = -np.sum(fPdf[fPdf != 0] * np.log2(fPdf[fPdf != 0]))
        mi = ha + hf - hj
        return 0.0 if mi == 0 else 2 * mi / (ha + hf)

    A, B, F = feat(ima), feat(imb), feat(imf)
    m, n = A.shape
    vals = []
    for p in range(1, m - 1):
        for q in range(1, n - 1):
            a = A[p - 1:p + 2, q - 1:q + 2].flatten(order="F")
            b = B[p - 1:p + 2, q - 1:q + 2].flatten(order="F")
            f = F[p - 1:p + 2, q - 1:q + 2].flatten(order="F")
            if np.array_equal(a, f):
                fa = 1.0
            else:
                f = norm(f)  # the kit overwrites fSub here ...
                fa = nfmi(norm(a), f)
            fb = 1.0 if np.array_equal(b, f) else nfmi(norm(b), norm(f))  # ... and compares with it
            vals.append((fa + fb) / 2)
    return float(np.mean(vals))


@pytest.mark.parametrize("feature,shape", [("none", (9, 11)), ("dct", (9, 11)), ("wavelet", (3, 4))])
def test_fmi_matches_kit_loop(feature, shape):
    rng = np.random.default_rng(3)
    ir = rng.integers(0, 256, shape).astype(float)
    vis = rng.integers(0, 256, shape).astype(float)
    fused = rng.integers(0, 256, shape).astype(float)
    if feature == "none":  # exercise the identical / constant / quirk branches
        fused[:4, :4] = ir[:4, :4]
        vis[:4, :4] = ir[:4, :4]
        vis[4:, 6:] = 100.0
        fused[5:, 6:] = 100.0
        ir[-3:, -3:] = 7.0
    ours = M.fmi(ir, vis, fused, feature=feature)
    assert ours == pytest.approx(_fmi_loop(ir, vis, fused, feature), rel=1e-12)


def _mef_ssim_loop(imgs, fI):
    """analysis_ms_ssim with mef_ssim's per-window loops, as in the kit."""
    eps = np.finfo(float).eps
    win = _fspecial_gauss(11, 1.5).flatten(order="F")

    def one(seq, f):
        s1, s2, K = seq.shape
        box = np.ones((11, 11)) / 121
        mu = np.stack([signal.correlate2d(seq[:, :, k], box, "valid") for k in range(K)], -1)
        sig = np.stack([signal.correlate2d(seq[:, :, k] ** 2, box, "valid") for k in range(K)], -1) - mu ** 2
        ed = np.sqrt(np.maximum(121 * sig, 0)) + 0.001
        q = []
        for i in range(5, s1 - 5):
            for j in range(5, s2 - 5):
                vecs = seq[i - 5:i + 6, j - 5:j + 6, :].reshape(121, K, order="F")
                den = sum(np.linalg.norm(vecs[:, k] - mu[i - 5, j - 5, k]) for k in range(K))
                tot = vecs.sum(1)
                R = (np.linalg.norm(tot - tot.mean()) + eps) / (den + eps)
                R = 1 - eps if R > 1 else (eps if R < 0 else R)
                p = min(math.tan(math.pi / 2 * R), 10)
                w = (ed[i - 5, j - 5] / 11) ** p + eps
                w = w / w.sum()
                r = sum(w[k] * (vecs[:, k] - mu[i - 5, j - 5, k]) / ed[i - 5, j - 5, k] for k in range(K))
                if np.linalg.norm(r) > 0:
                    r = r / np.linalg.norm(r) * ed[i - 5, j - 5].max()
                fv = f[i - 5:i + 6, j - 5:j + 6].flatten(order="F")
                m1, m2 = np.sum(win * r), np.sum(win * fv)
                v1, v2 = np.sum(win * (r - m1) ** 2), np.sum(win * (fv - m2) ** 2)
                c12 = np.sum(win * (r - m1) * (fv - m2))
                q.append((2 * c12 + (0.03 * 255) ** 2) / (v1 + v2 + (0.03 * 255) ** 2))
        return np.mean(q)

    def down(x):
        xp = np.pad(x, ((0, 1), (0, 1)), mode="symmetric")
        return signal.correlate2d(xp, np.ones((2, 2)) / 4, "valid")[::2, ::2]

    weight = np.array([0.0448, 0.2856, 0.3001])
    weight = weight / weight.sum()
    seq, f = np.stack(imgs, -1).astype(float), fI.astype(float)
    Q = []
    for level in range(3):
        if level:
            seq = np.stack([down(seq[:, :, k]) for k in range(seq.shape[2])], -1)
            f = down(f)
        Q.append(one(seq, f))
    return float(np.prod(np.array(Q) ** weight))


def test_mef_ssim_matches_kit_loop():
    ir, vis, fused = _textured(13, (44, 47)), _textured(14, (44, 47)), _textured(15, (44, 47))
    vis[20:35, 0:15] = 90  # flat in one source only
    ir[20:35, 0:15] = 200
    ours = M.mef_ssim(ir, vis, fused)
    assert ours == pytest.approx(_mef_ssim_loop([ir, vis], fused), rel=1e-9)


def _qabf_loop(pA, pB, pF, kit=True):
    """analysis_Qabf pixel by pixel (conv2 'same' by SciPy; exact on {0, 255} images)."""
    h1 = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], float)
    h3 = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)

    def edges(p):
        sx, sy = signal.convolve2d(p, h3, "same"), signal.convolve2d(p, h1, "same")
        g = np.sqrt(sx ** 2 + sy ** 2)
        a = np.zeros_like(g)
        for i in range(g.shape[0]):
            for j in range(g.shape[1]):
                a[i, j] = math.pi / 2 if sx[i, j] == 0 else math.atan(sy[i, j] / sx[i, j])
        return g, a

    (gA, aA), (gB, aB), (gF, aF) = edges(pA / 255), edges(pB / 255), edges(pF / 255)

    def q(gX, aX):
        Q = np.zeros_like(gX)
        for i in range(gX.shape[0]):
            for j in range(gX.shape[1]):
                if gX[i, j] > gF[i, j]:
                    G = gF[i, j] / gX[i, j]
                elif gX[i, j] == gF[i, j]:
                    G = gF[i, j] if kit else 1.0
                else:
                    G = gX[i, j] / gF[i, j]
                A = 1 - abs(aX[i, j] - aF[i, j]) / (math.pi / 2)
                Q[i, j] = 0.9994 / (1 + math.exp(-15 * (G - 0.5))) * 0.9879 / (1 + math.exp(-22 * (A - 0.8)))
        return Q

    return float(np.sum(q(gA, aA) * gA + q(gB, aB) * gB) / np.sum(gA + gB))


@pytest.mark.parametrize("kit", [True, False])
def test_qabf_matches_kit_loop(kit):
    rng = np.random.default_rng(4)
    ir, vis, fused = ((rng.random((14, 17)) < 0.4) * 255.0 for _ in range(3))
    fused[:6] = ir[:6]  # equal gradients: the kit's G = gF quirk
    assert M.qabf(ir, vis, fused, kit=kit) == pytest.approx(_qabf_loop(ir, vis, fused, kit), rel=1e-12)


def _nabf_loop(f, I1, I2, scale):
    """analysis_nabf (Kumar) pixel by pixel."""
    vt = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 8
    ht = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]) / 8

    def sob(x):
        p, q = x.shape
        e = np.zeros((p + 2, q + 2))
        e[1:-1, 1:-1] = x
        e[0, :], e[-1, :] = e[2, :], e[-3, :]
        e[:, 0], e[:, -1] = e[:, 2], e[:, -3]
        gv, gh = np.zeros_like(x), np.zeros_like(x)
        for i in range(p):
            for j in range(q):
                # sum(sum(W .* k)) of MATLAB: column sums first.
                gv[i, j] = np.sum(np.sum(e[i:i + 3, j:j + 3] * vt, axis=0))
                gh[i, j] = np.sum(np.sum(e[i:i + 3, j:j + 3] * ht, axis=0))
        return gv, gh

    def ang(gv, gh):
        out = np.zeros_like(gv)
        for i in range(gv.shape[0]):
            for j in range(gv.shape[1]):
                if gv[i, j] == 0 and gh[i, j] == 0:
                    out[i, j] = 0
                elif gh[i, j] == 0:
                    out[i, j] = math.copysign(math.pi / 2, gv[i, j])
                else:
                    out[i, j] = math.atan(gv[i, j] / gh[i, j])
        return out

    (gvA, ghA), (gvB, ghB), (gvF, ghF) = sob(I1 * scale), sob(I2 * scale), sob(f * scale)
    gA, gB, gF = (np.sqrt(gh ** 2 + gv ** 2) for gv, gh in ((gvA, ghA), (gvB, ghB), (gvF, ghF)))
    aA, aB, aF = ang(gvA, ghA), ang(gvB, ghB), ang(gvF, ghF)
    num = den = 0.0
    for i in range(gF.shape[0]):
        for j in range(gF.shape[1]):
            qs, ws = [], []
            for gX, aX in ((gA, aA), (gB, aB)):
                if gX[i, j] == 0 or gF[i, j] == 0:
                    g = 0.0
                elif gX[i, j] > gF[i, j]:
                    g = gF[i, j] / gX[i, j]
                else:
                    g = gX[i, j] / gF[i, j]
                a = abs(abs(aX[i, j] - aF[i, j]) - math.pi / 2) * 2 / math.pi
                qg = 0.9999 / (1 + math.exp(-19 * (g - 0.5)))
                qa = 0.9995 / (1 + math.exp(-22 * (a - 0.5)))
                qs.append(math.sqrt(qg * qa))
                ws.append(gX[i, j] ** 1.5 if gX[i, j] >= 2 else 0.001)
            na = gF[i, j] > gA[i, j] and gF[i, j] > gB[i, j]
            num += na * ((1 - qs[0]) * ws[0] + (1 - qs[1]) * ws[1])
            den += ws[0] + ws[1]
    return num / den


@pytest.mark.parametrize("scale", [1 / 255, 1.0])
def test_nabf_matches_kit_loop(scale):
    ir, vis, fused = _textured(16, (15, 18)), _textured(17, (15, 18)), _textured(18, (15, 18))
    assert M.nabf(ir, vis, fused, scale=scale) == pytest.approx(
        _nabf_loop(fused.astype(float), ir.astype(float), vis.astype(float), scale), rel=1e-9, abs=1e-12)


def _vifp_plain(ref, dist):
    """vifp_mscale of Sheikh & Bovik, with scipy's correlate2d."""
    num = den = 0.0
    for scale in range(1, 5):
        N = 2 ** (4 - scale + 1) + 1
        win = _fspecial_gauss(N, N / 5)
        if scale > 1:
            ref = signal.correlate2d(ref, win, "valid")[::2, ::2]
            dist = signal.correlate2d(dist, win, "valid")[::2, ::2]
        mu1, mu2 = signal.correlate2d(ref, win, "valid"), signal.correlate2d(dist, win, "valid")
        s1 = signal.correlate2d(ref * ref, win, "valid") - mu1 ** 2
        s2 = signal.correlate2d(dist * dist, win, "valid") - mu2 ** 2
        s12 = signal.correlate2d(ref * dist, win, "valid") - mu1 * mu2
        s1[s1 < 0] = 0
        s2[s2 < 0] = 0
        g = s12 / (s1 + 1e-10)
        sv = s2 - g * s12
        g[s1 < 1e-10] = 0
        sv[s1 < 1e-10] = s2[s1 < 1e-10]
        s1[s1 < 1e-10] = 0
        g[s2 < 1e-10] = 0
        sv[s2 < 1e-10] = 0
        sv[g < 0] = s2[g < 0]
        g[g < 0] = 0
        sv[sv <= 1e-10] = 1e-10
        num += np.sum(np.log10(1 + g ** 2 * s1 / (sv + 2)))
        den += np.sum(np.log10(1 + s1 / 2))
    return num / den


def test_vif_matches_plain_version():
    ir, vis, fused = (_textured(s, (50, 56)).astype(float) for s in (19, 20, 21))
    assert M.vif(ir, vis, fused) == pytest.approx(_vifp_plain(ir, fused) + _vifp_plain(vis, fused), rel=1e-9)


# ---------------------------------------------------------------------------
# Properties.

ALL_NAMES = M.metric_names()
BIG_ENOUGH = 48  # >= every metric's minimum size (MS_SSIM 44, VIF 41)


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))
def test_constant_images_give_finite_values(v1, v2, v3):
    shape = (BIG_ENOUGH, BIG_ENOUGH)
    for conv in M.CONVENTIONS:
        vals = M.score_pair(np.full(shape, v1, np.uint8), np.full(shape, v2, np.uint8),
                            np.full(shape, v3, np.uint8), metrics=M.metric_names(conv),
                            convention=conv)
        assert all(math.isfinite(v) for v in vals.values()), vals


def test_constant_fused_with_textured_sources_is_finite():
    a, b = _textured(22), _textured(23)
    f = np.full(a.shape, 128, np.uint8)
    vals = M.score_pair(a, b, f, metrics=ALL_NAMES)
    assert all(math.isfinite(v) for v in vals.values()), vals
    vals = M.score_pair(f, f, a, metrics=ALL_NAMES)
    assert all(math.isfinite(v) for v in vals.values()), vals


def test_identical_inputs_give_ideal_values():
    x = _textured(24)
    v = M.score_pair(x, x, x, metrics=ALL_NAMES)
    assert v["SSIM_a"] == pytest.approx(1.0, abs=1e-12)
    assert v["FMI_dct"] == v["FMI_w"] == v["FMI_pixel"] == 1.0
    assert v["CC"] == pytest.approx(1.0, abs=1e-12)
    assert v["Nabf"] == 0.0
    assert v["VIF"] == pytest.approx(2.0, abs=1e-9)  # 1 per source
    assert v["PSNR"] == M.PSNR_MAX_DB
    assert v["MS_SSIM"] == pytest.approx(1.0, abs=1e-3)  # the kit's +0.001 contrast offset
    assert v["MI_real"] == pytest.approx(2 * v["EN"], rel=1e-12)  # MI(F, F) = H(F)
    # Qabf: the sigmoids cap it at Tg/(1+e^{kg(1-Dg)})·Ta/(1+e^{ka(1-Da)}); the kit's
    # G = gF quirk keeps identical images below that, kit=False reaches it.
    cap = 0.9994 / (1 + math.exp(-15 * 0.5)) * 0.9879 / (1 + math.exp(-22 * 0.2))
    assert M.qabf(x, x, x, kit=False) == pytest.approx(cap, rel=1e-12)
    assert M.qabf(x, x, x) < cap
    assert M.ssim(x, x) == pytest.approx(1.0, abs=1e-12)
    assert M.mse(x, x) == 0.0
    assert M.psnr(x, x) == M.PSNR_MAX_DB


MIN_SIZES = {"EN": 1, "MI": 1, "MI_2EN": 1, "MI_real": 1, "SCD": 1, "SD": 1, "PSNR": 1, "CC": 1,
             "SF": 2, "AG": 2, "Qabf": 3, "Nabf": 3, "FMI_dct": 3, "FMI_w": 3, "FMI_pixel": 3,
             "SSIM_a": 11, "MS_SSIM": 44, "VIF": 41}


def test_min_sizes_cover_every_metric():
    assert set(MIN_SIZES) == set(ALL_NAMES)


@pytest.mark.parametrize("name", [n for n, s in MIN_SIZES.items() if s > 1])
def test_too_small_raises_naming_metric_and_size(name):
    m = MIN_SIZES[name]
    canon, _ = M.resolve_metric(name)
    rng = np.random.default_rng(5)
    small = [rng.integers(0, 256, (m - 1, m + 3)).astype(np.uint8) for _ in range(3)]
    with pytest.raises(ValueError) as e:
        M.score_pair(*small, metrics=[name])
    assert canon in str(e.value) and f"{m}x{m}" in str(e.value)
    ok = [rng.integers(0, 256, (m, m)).astype(np.uint8) for _ in range(3)]
    assert math.isfinite(M.score_pair(*ok, metrics=[name])[canon])


def test_reconstruction_min_size():
    with pytest.raises(ValueError, match="SSIM.*11x11"):
        M.ssim(np.zeros((10, 20)), np.zeros((10, 20)))


def test_rgb_is_converted_with_bt601():
    rng = np.random.default_rng(6)
    rgb = [rng.integers(0, 256, (48, 50, 3)).astype(np.uint8) for _ in range(3)]
    gray = [x.astype(float) @ np.array([0.299, 0.587, 0.114]) for x in rgb]
    got = M.score_pair(*rgb, metrics=ALL_NAMES)
    want = M.score_pair(*gray, metrics=ALL_NAMES)
    assert got == want
    assert M.ssim(rgb[0], rgb[1]) == M.ssim(gray[0], gray[1])
    # (H, W, 1) is grayscale; uint8 and float inputs agree.
    one = [x[..., :1] for x in rgb]
    assert M.score_pair(*one, metrics=ALL_NAMES) == M.score_pair(*[x[..., 0].astype(np.float32) for x in rgb],
                                                                 metrics=ALL_NAMES)


@pytest.mark.parametrize("bad,match", [
    (np.zeros((20, 20, 4)), "2-D grayscale"),
    (np.zeros(20), "2-D grayscale"),
    (np.full((20, 20), 256.0), r"0-255"),
    (np.full((20, 20), -1.0), r"0-255"),
    (np.full((20, 20), np.nan), "NaN"),
    (np.zeros((20, 20), bool), "numeric"),
    (np.zeros((20, 21)), "same shape"),
])
def test_bad_inputs_raise(bad, match):
    good = np.zeros((20, 20))
    with pytest.raises(ValueError, match=match):
        M.scd(good, good, bad)


def test_unknown_metric_and_convention():
    x = np.zeros((20, 20))
    with pytest.raises(ValueError, match="unknown metric 'FOO'"):
        M.score_pair(x, x, x, metrics=["FOO"])
    with pytest.raises(ValueError, match="unknown convention"):
        M.score_pair(x, x, x, convention="kit")
    assert list(M.score_pair(x, x, x, metrics=["qabf", "en", "mi_kit"])) == ["Qabf", "EN", "MI_2EN"]


def test_default_sets():
    x = _textured(25)
    assert tuple(M.score_pair(x, x, x)) == M.PAPER_METRICS
    assert tuple(M.score_pair(x, x, x, convention="standard")) == M.STANDARD_METRICS


def test_fmi_is_deterministic_across_threads_and_leaves_x64_off(monkeypatch):
    import jax
    import jax.numpy as jnp
    a, b, f = _textured(26, (70, 80)), _textured(27, (70, 80)), _textured(28, (70, 80))
    before = jax.config.jax_enable_x64
    monkeypatch.setattr(I, "_FMI_THREADS", 1)
    one = M.fmi_dct(a, b, f)
    monkeypatch.setattr(I, "_FMI_THREADS", 3)
    assert M.fmi_dct(a, b, f) == one
    # x64 is enabled inside the call only; the caller's setting is untouched.
    assert jax.config.jax_enable_x64 == before
    assert jnp.ones(1).dtype == (jnp.float64 if before else jnp.float32)


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2 ** 32 - 1))
def test_bounded_metrics_stay_in_range(seed):
    rng = np.random.default_rng(seed)
    a, b, f = (rng.integers(0, 256, (16, 19)).astype(np.uint8) for _ in range(3))
    v = M.score_pair(a, b, f, metrics=["FMI_pixel", "FMI_dct", "SSIM_a", "CC", "SCD", "Qabf", "Nabf", "EN"])
    assert 0 <= v["FMI_pixel"] <= 1 and 0 <= v["FMI_dct"] <= 1
    assert -1 <= v["SSIM_a"] <= 1 and -1 <= v["CC"] <= 1 and -2 <= v["SCD"] <= 2
    assert 0 <= v["Qabf"] < 1 and 0 <= v["Nabf"] <= 1 and 0 <= v["EN"] <= 8
    assert M.ssim(a, f) == pytest.approx(M.ssim(f, a), rel=1e-12)
