"""Tests for the textbook metrics CE, NMI, QNCIE, TE, EI, FMI_gradient, FMI_edge, MSE/RMSE.

Each metric is compared with an independent computation: scikit-learn,
SciPy or scikit-image where they compute the same quantity, otherwise a
plain per-pixel / per-bin loop of the published formula (or of the MATLAB
code it names) written here. Properties: identical inputs give the ideal
value, constant images are finite, too-small images raise naming the metric
and the size, values stay within their bounds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import ndimage, stats
from skimage import feature as skfeature
from skimage.metrics import mean_squared_error
from sklearn.metrics import normalized_mutual_info_score

from jaxfuse import metrics as M
from jaxfuse.metrics import entropy as E
from jaxfuse.metrics import gradient as G
from jaxfuse.metrics import information as I


def _triple(rng, shape, lo=0, hi=256):
    return tuple(rng.integers(lo, hi, shape).astype(np.float64) for _ in range(3))


def _levels(x):
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def _pdf(x):
    h = np.zeros(256)
    for v in _levels(x).ravel():
        h[v] += 1
    return h / h.sum()


def _joint_pdf(x, y):
    h = np.zeros((256, 256))
    for u, v in zip(_levels(x).ravel(), _levels(y).ravel()):
        h[u, v] += 1
    return h / h.sum()


NEW = {  # name in error messages -> function, minimum size
    "CE": (E.ce, 1), "NMI": (E.nmi, 1), "QNCIE": (E.qncie, 1), "TE": (E.te, 1),
    "MSE_fusion": (E.mse_fusion, 1), "RMSE_fusion": (E.rmse_fusion, 1), "EI": (G.ei, 3),
    "FMI_gradient": (I.fmi_gradient, 3), "FMI_edge": (I.fmi_edge, 3),
}


# ---------------------------------------------------------------------------
# CE

def test_ce_matches_scipy_relative_entropy_when_fused_covers_every_level(rng):
    a, b, _ = _triple(rng, (32, 40))
    f = rng.permutation(np.arange(32 * 40) % 256).reshape(32, 40).astype(float)  # all 256 levels
    ref = 0.5 * (stats.entropy(_pdf(a), _pdf(f), base=2) + stats.entropy(_pdf(b), _pdf(f), base=2))
    assert E.ce(a, b, f) == pytest.approx(ref, rel=1e-12)
    assert E.ce(a, b, f) >= 0


def test_ce_skips_levels_missing_from_fused_as_the_authors_loop():
    rng = np.random.default_rng(5)
    a, b = rng.integers(0, 256, (2, 20, 24)).astype(float)
    f = rng.integers(60, 120, (20, 24)).astype(float)  # many source levels absent from F

    def loop(x):  # metricsCross_entropy.m's cross_entropy, bin by bin
        p1, p2 = _pdf(x), _pdf(f)
        r = 0.0
        for k in range(256):
            if p1[k] != 0 and p2[k] != 0:
                r += p1[k] * math.log2(p1[k] / p2[k])
        return r

    assert E.ce(a, b, f) == pytest.approx(0.5 * (loop(a) + loop(b)), rel=1e-12, abs=1e-15)


def test_ce_rounds_float_levels_like_en():
    a = np.array([[0.4, 2.5], [10.49, 254.6]])
    assert E.ce(a, a, _levels(a).astype(float)) == 0.0


# ---------------------------------------------------------------------------
# NMI

def test_nmi_is_the_sum_of_sklearn_arithmetic_nmis(rng):
    a, b, f = _triple(rng, (30, 33))
    f = np.clip(0.5 * a + 0.5 * b + rng.normal(0, 8, a.shape), 0, 255)
    fl = _levels(f).ravel()
    ref = sum(normalized_mutual_info_score(_levels(x).ravel(), fl, average_method="arithmetic")
              for x in (a, b))
    assert E.nmi(a, b, f) == pytest.approx(ref, rel=1e-10)


def test_nmi_follows_hossnys_formula_with_plain_numpy(rng):
    a, b, f = _triple(rng, (16, 18), 0, 40)

    def h(p):
        p = p[p > 0]
        return -np.sum(p * np.log2(p))

    total = 0.0
    for x in (a, b):
        j = _joint_pdf(x, f)
        hx, hf, hxf = h(j.sum(1)), h(j.sum(0)), h(j.ravel())
        total += (hx + hf - hxf) / (hx + hf)
    assert E.nmi(a, b, f) == pytest.approx(2 * total, rel=1e-12)


def test_nmi_constant_conventions():
    c = np.full((8, 8), 50.0)
    x = np.arange(64.0).reshape(8, 8)
    assert E.nmi(c, c, c) == 2.0  # both constant: each term 1 (scikit-learn's convention)
    assert normalized_mutual_info_score(np.zeros(5), np.zeros(5)) == 1.0
    assert E.nmi(x, c, c) == 1.0  # only one of a pair constant: that term 0


# ---------------------------------------------------------------------------
# QNCIE

def _qncie_loop(a, b, f):
    """metricWang.m (Liu's toolbox) without its normalize1 stretch."""
    def ncc(x, y):
        hxy = _joint_pdf(x, y)
        mx, my = hxy.sum(0), hxy.sum(1)
        lb = math.log2(256)
        hx = -sum(p * math.log2(p) for p in mx if p > 0) / lb
        hy = -sum(p * math.log2(p) for p in my if p > 0) / lb
        hj = -sum(p * math.log2(p) for p in hxy.ravel() if p > 0) / lb
        return hx + hy - hj

    r = np.array([[1, ncc(a, b), ncc(a, f)], [ncc(a, b), 1, ncc(b, f)], [ncc(a, f), ncc(b, f), 1]])
    lam = np.real(np.linalg.eig(r)[0])
    return 1 + sum(v / 3 * math.log2(v / 3) for v in lam if v > 0) / math.log2(256)


def test_qncie_matches_liu_loop(rng):
    a, b, _ = _triple(rng, (24, 30))
    f = np.clip(0.6 * a + 0.4 * b + rng.normal(0, 5, a.shape), 0, 255)
    assert E.qncie(a, b, f) == pytest.approx(_qncie_loop(a, b, f), rel=1e-12)


def test_qncie_identical_inputs():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (64, 64)).astype(float)  # 4096 pixels: 16 per rank
    assert E.qncie(x, x, x, binning="ranks") == pytest.approx(1.0, abs=1e-12)
    y = rng.integers(0, 256, (100, 100)).astype(float)
    assert E.qncie(y, y, y, binning="ranks") == pytest.approx(1.0, abs=1e-5)
    # levels: NCC(X, X) = EN/8, R = [[1, h, h], [h, 1, h], [h, h, 1]]
    h = M.en(None, None, x) / 8
    lam = np.array([1 + 2 * h, 1 - h, 1 - h]) / 3
    assert E.qncie(x, x, x) == pytest.approx(1 + np.sum(lam * np.log2(lam)) / 8, rel=1e-12)


def test_qncie_ranks_are_equal_count():
    x = np.array([[3.0, 1.0], [2.0, 2.0]])
    assert E._ranks(x).tolist() == [[192, 0], [64, 128]]  # ties in raster order


def test_qncie_rejects_unknown_binning():
    x = np.zeros((4, 4))
    with pytest.raises(ValueError, match="QNCIE: binning"):
        E.qncie(x, x, x, binning="rank")


# ---------------------------------------------------------------------------
# TE

def _tsallis_loop(x, y, q):
    h = _joint_pdf(x, y)
    px, py = h.sum(1), h.sum(0)
    s = 0.0
    for i in range(256):
        for j in range(256):
            if h[i, j] > 0:
                s += h[i, j] ** q / (px[i] * py[j]) ** (q - 1)
    return (1 - s) / (1 - q)


def test_te_matches_cvejic_formula_loop(rng):
    a, b, _ = _triple(rng, (12, 14), 0, 50)
    f = np.clip(a + b - 20 + rng.integers(-3, 4, a.shape), 0, 255)
    for q in (1.85, 0.5, 3.0):
        ref = _tsallis_loop(a, f, q) + _tsallis_loop(b, f, q)
        assert E.te(a, b, f, q=q) == pytest.approx(ref, rel=1e-10)
    assert E.TSALLIS_Q == 1.85


def test_te_identical_inputs_give_twice_the_tsallis_entropy_of_order_2_minus_q(rng):
    x = rng.integers(0, 256, (20, 20)).astype(float)
    p = _pdf(x)
    p = p[p > 0]
    q = 1.85
    s = (1 - np.sum(p ** (2 - q))) / ((2 - q) - 1)
    assert E.te(x, x, x) == pytest.approx(2 * s, rel=1e-12)


def test_te_q1_is_shannon_mi_in_nats(rng):
    a, b, f = _triple(rng, (16, 16), 0, 30)
    assert E.te(a, b, f, q=1.0) == pytest.approx(M.mi(a, b, f, base="nats"), rel=1e-10)
    assert E.te(a, b, f, q=1.0 + 1e-7) == pytest.approx(E.te(a, b, f, q=1.0), rel=1e-5)


@pytest.mark.parametrize("q", [0, -1, float("nan"), "1.85"])
def test_te_rejects_bad_q(q):
    x = np.zeros((4, 4))
    with pytest.raises(ValueError, match="TE: q"):
        E.te(x, x, x, q=q)


# ---------------------------------------------------------------------------
# MSE / RMSE

def test_mse_rmse_against_skimage_and_psnr(rng):
    a, b, f = _triple(rng, (17, 23))
    mab = [mean_squared_error(x, f) for x in (a, b)]
    assert E.mse_fusion(a, b, f) == pytest.approx(np.mean(mab), rel=1e-14)
    assert E.rmse_fusion(a, b, f) == pytest.approx(np.mean(np.sqrt(mab)), rel=1e-14)
    assert E.rmse_fusion(a, b, f) <= math.sqrt(E.mse_fusion(a, b, f))
    assert M.psnr_fusion(a, b, f) == pytest.approx(
        10 * math.log10(255.0 ** 2 / E.mse_fusion(a, b, f)), rel=1e-12)
    z, o = np.zeros((3, 3)), np.full((3, 3), 255.0)
    assert E.mse_fusion(z, z, o) == 65025.0 and E.rmse_fusion(z, o, o) == 127.5


# ---------------------------------------------------------------------------
# EI

def test_ei_matches_scipy_sobel_and_a_matlab_loop(rng):
    f = rng.integers(0, 256, (9, 13)).astype(float)
    gx, gy = ndimage.sobel(f, 0, mode="nearest"), ndimage.sobel(f, 1, mode="nearest")
    ref = np.mean(np.hypot(gx, gy))
    assert G.ei(None, None, f) == pytest.approx(ref, rel=1e-13)
    # imfilter(F, fspecial('sobel'), 'replicate') and with its transpose, pixel by pixel
    w = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], float)
    H, W = f.shape
    tot = 0.0
    for r in range(H):
        for c in range(W):
            gx = gy = 0.0
            for i in range(3):
                for j in range(3):
                    v = f[min(max(r + i - 1, 0), H - 1), min(max(c + j - 1, 0), W - 1)]
                    gx += w[i, j] * v
                    gy += w.T[i, j] * v
            tot += math.sqrt(gx * gx + gy * gy)
    assert G.ei(f, f, f) == pytest.approx(tot / (H * W), rel=1e-13)


def test_ei_of_a_step():
    f = np.zeros((6, 6))
    f[:, 3:] = 100.0
    # two columns respond with |Gx| = 4·100; the rest are 0
    assert G.ei(None, None, f) == pytest.approx(2 * 6 * 400 / 36)


# ---------------------------------------------------------------------------
# FMI_gradient, FMI_edge

def _matlab_gradient_loop(x):
    """gradient(x) with one output: d/dx along each row."""
    m, n = x.shape
    g = np.empty_like(x)
    for r in range(m):
        g[r, 0] = x[r, 1] - x[r, 0]
        g[r, n - 1] = x[r, n - 1] - x[r, n - 2]
        for c in range(1, n - 1):
            g[r, c] = (x[r, c + 1] - x[r, c - 1]) / 2
    return g


def _matlab_sobel_edge_loop(a):
    """edge(a): Sobel, cutoff 4·mean(b), thinning as computeEdgesWithThinningPortable."""
    m, n = a.shape
    op = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]]) / 8
    xm, ym = op.T, op
    bx, by = np.zeros((m, n)), np.zeros((m, n))
    for r in range(m):
        for c in range(n):
            for i in range(3):
                for j in range(3):
                    v = a[min(max(r + i - 1, 0), m - 1), min(max(c + j - 1, 0), n - 1)]
                    bx[r, c] += xm[i, j] * v
                    by[r, c] += ym[i, j] * v
    b = bx * bx + by * by
    cutoff = 4 * b.sum() / b.size
    bx, by = np.abs(bx), np.abs(by)
    e = np.zeros((m, n))
    tol = 100 * np.finfo(float).eps
    for r in range(m):
        for c in range(n):
            b1 = True if c - 1 < 0 else b[r, c - 1] <= b[r, c]
            b2 = True if c + 1 > n - 1 else b[r, c] > b[r, c + 1]
            b3 = True if r - 1 < 0 else b[r - 1, c] <= b[r, c]
            b4 = True if r + 1 > m - 1 else b[r, c] > b[r + 1, c]
            e[r, c] = (b[r, c] > cutoff) and ((bx[r, c] >= by[r, c] - tol and b1 and b2)
                                              or (by[r, c] >= bx[r, c] - tol and b3 and b4))
    return e


def _fmi_window_loop(A, B, F):
    """fmi.m's sliding-window loop (w = 3), its formulas written out."""
    def norm(s):
        return np.ones(9) if s.max() == s.min() else (s - s.min()) / (s.max() - s.min())

    def nfmi(s, t):
        p, q = s / s.sum(), t / t.sum()
        pc, qc = np.cumsum(p), np.cumsum(q)
        pt, qt = p - p.mean(), q - q.mean()
        cov = np.sum(pt * qt)
        c = 0.0 if cov == 0 else cov / math.sqrt(np.sum(pt * pt) * np.sum(qt * qt))
        i = np.arange(1, 10)
        psd = math.sqrt(max(np.sum(i * i * p) - np.sum(i * p) ** 2, 0))
        qsd = math.sqrt(max(np.sum(i * i * q) - np.sum(i * q) ** 2, 0))
        Q, P = qc[:, None], pc[None, :]
        if c >= 0:
            bound = 0.5 * (Q + P - np.abs(Q - P))
            flat = c == 0 or psd == 0 or qsd == 0
            phi = 0.0 if flat else c / (np.sum(bound - Q * P) / (qsd * psd))
        else:
            bound = 0.5 * (Q + P - 1 + np.abs(Q + P - 1))
            phi = 0.0 if (psd == 0 or qsd == 0) else c / (np.sum(bound - Q * P) / (qsd * psd))
        up = np.zeros((10, 10))
        up[1:, 1:] = bound
        cell = up[1:, 1:] - up[:-1, 1:] - up[1:, :-1] + up[:-1, :-1]
        j = phi * cell + (1 - phi) * q[:, None] * p[None, :]
        nz = j != 0
        hj = np.sum(-j[nz] * np.log2(np.abs(j[nz])))
        hp = -np.sum(p[p != 0] * np.log2(p[p != 0]))
        hq = -np.sum(q[q != 0] * np.log2(q[q != 0]))
        mi = hp + hq - hj
        return 0.0 if mi == 0 else 2 * mi / (hp + hq)

    m, n = A.shape
    vals = []
    for r in range(1, m - 1):
        for c in range(1, n - 1):
            a, b, f = (X[r - 1:r + 2, c - 1:c + 2].flatten(order="F") for X in (A, B, F))
            if np.array_equal(a, f):
                fa = 1.0
            else:
                f = norm(f)  # fmi.m overwrites fSub here, and the b branch sees it
                fa = nfmi(norm(a), f)
            fb = 1.0 if np.array_equal(b, f) else nfmi(norm(b), norm(f))
            vals.append((fa + fb) / 2)
    return float(np.mean(vals))


def _edgy_triple():
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[:12, :14]
    ir = np.where((yy - 6) ** 2 + (xx - 7) ** 2 < 16, 200.0, 30.0) + rng.integers(0, 20, (12, 14))
    vis = np.where(xx > 5, 150.0, 60.0) + rng.integers(0, 40, (12, 14))
    fused = np.clip(0.5 * ir + 0.5 * vis, 0, 255).round()
    fused[:4, :5] = ir[:4, :5]  # identical windows
    vis[8:, :5] = 90.0  # flat regions
    fused[8:, :5] = 90.0
    return ir, vis, fused


def test_sobel_edge_map_matches_matlab_loop():
    rng = np.random.default_rng(4)
    for x in (*_edgy_triple(), rng.integers(0, 256, (9, 11)).astype(float),
              np.tile(np.arange(10.0) * 20, (7, 1))):
        assert np.array_equal(I._matlab_sobel_edges(x), _matlab_sobel_edge_loop(x / 255.0))


@pytest.mark.parametrize("feature", ["gradient", "edge"])
def test_fmi_gradient_and_edge_match_fmi_m_loop(feature):
    ir, vis, fused = _edgy_triple()
    feat = ((lambda x: _matlab_gradient_loop(x / 255.0)) if feature == "gradient"
            else (lambda x: _matlab_sobel_edge_loop(x / 255.0)))
    ref = _fmi_window_loop(feat(ir), feat(vis), feat(fused))
    fn = I.fmi_gradient if feature == "gradient" else I.fmi_edge
    assert fn(ir, vis, fused) == pytest.approx(ref, rel=1e-12)
    assert M.fmi(ir, vis, fused, feature=feature) == fn(ir, vis, fused)


def test_gradient_feature_is_numpy_gradient_along_rows(rng):
    x = rng.integers(0, 256, (5, 7)).astype(float)
    assert np.allclose(I._fmi_features(x, "gradient"), _matlab_gradient_loop(x / 255.0), rtol=0,
                       atol=1e-15)


def test_canny_edges_agree_with_skimage_on_simple_shapes():
    sq = np.zeros((24, 24))
    sq[6:18, 6:18] = 200.0
    assert np.array_equal(I._matlab_canny_edges(sq).astype(bool),
                          skfeature.canny(sq, sigma=math.sqrt(2)))
    yy, xx = np.mgrid[:40, :40]
    disk = np.where((yy - 19.5) ** 2 + (xx - 20.2) ** 2 < 121, 180.0, 20.0)
    ours = I._matlab_canny_edges(disk).astype(bool)
    ref = skfeature.canny(disk, sigma=math.sqrt(2))
    # the same closed contour, within one pixel of each other
    near = ndimage.binary_dilation
    assert ours.sum() > 40 and abs(int(ours.sum()) - int(ref.sum())) <= 0.15 * ref.sum()
    assert np.all(near(ref, np.ones((3, 3)))[ours]) and np.all(near(ours, np.ones((3, 3)))[ref])
    assert not I._matlab_canny_edges(np.full((9, 9), 7.0)).any()


def test_fmi_edge_canny_and_options(rng):
    ir, vis, fused = _edgy_triple()
    v = I.fmi_edge(ir, vis, fused, method="canny")
    assert 0 <= v <= 1 and v != I.fmi_edge(ir, vis, fused)
    assert I.fmi_edge(fused, fused, fused, method="canny") == 1.0
    with pytest.raises(ValueError, match="FMI_edge: edge_method"):
        I.fmi_edge(ir, vis, fused, method="prewitt")
    with pytest.raises(ValueError, match="FMI: feature must be one of"):
        M.fmi(ir, vis, fused, feature="edges")


# ---------------------------------------------------------------------------
# Contract properties shared by all new metrics

IDEAL = {"CE": 0.0, "NMI": 2.0, "MSE_fusion": 0.0, "RMSE_fusion": 0.0, "FMI_gradient": 1.0,
         "FMI_edge": 1.0}


@pytest.mark.parametrize("name", sorted(IDEAL))
def test_identical_inputs_are_ideal(name, rng):
    x = rng.integers(0, 256, (12, 13)).astype(float)
    assert NEW[name][0](x, x, x) == pytest.approx(IDEAL[name], abs=1e-12)


@pytest.mark.parametrize("name", sorted(NEW))
def test_constant_images_are_finite(name, rng):
    fn = NEW[name][0]
    c, d = np.full((8, 9), 0.0), np.full((8, 9), 255.0)
    x = rng.integers(0, 256, (8, 9)).astype(float)
    for trip in ((c, c, c), (c, d, c), (x, c, d), (c, x, x), (d, d, x)):
        v = fn(*trip)
        assert isinstance(v, float) and math.isfinite(v)


@pytest.mark.parametrize("name", sorted(NEW))
def test_too_small_and_bad_shapes_raise_naming_the_metric(name):
    fn, k = NEW[name]
    if k > 1:
        s = np.zeros((k - 1, 10))
        with pytest.raises(ValueError, match=rf"^{name}: images must be at least {k}x{k} pixels"):
            fn(s, s, s)
        fn(np.zeros((k, k)), np.zeros((k, k)), np.zeros((k, k)))  # the minimum works
    else:
        assert math.isfinite(fn(np.ones((1, 1)), np.zeros((1, 1)), np.ones((1, 1))))
    with pytest.raises(ValueError, match=rf"^{name}: ir, vis and fused must have the same shape"):
        fn(np.zeros((5, 5)), np.zeros((5, 6)), np.zeros((5, 5)))
    with pytest.raises(ValueError, match=rf"^{name}: fused has values"):
        fn(np.zeros((5, 5)), np.zeros((5, 5)), np.full((5, 5), 256.0))


def test_rgb_is_converted_by_bt601(rng):
    a, b, f = _triple(rng, (6, 7))
    rgb = np.stack([f, f, f], axis=-1)
    for fn in (E.ce, E.nmi, E.qncie, E.te, E.mse_fusion, G.ei):
        assert fn(a, b, rgb) == pytest.approx(fn(a, b, f), rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.integers(1, 9), st.integers(1, 9), st.integers(1, 256))
def test_bounds(seed, h, w, levels):
    rng = np.random.default_rng(seed)
    a, b, f = (rng.integers(0, levels, (h, w)).astype(float) for _ in range(3))
    assert -1e-12 <= E.nmi(a, b, f) <= 2 + 1e-12
    assert 1 - math.log(3, 256) - 1e-12 <= E.qncie(a, b, f) <= 1 + 1e-12
    assert 1 - math.log(3, 256) - 1e-12 <= E.qncie(a, b, f, binning="ranks") <= 1 + 1e-12
    assert E.te(a, b, f) >= 0 and E.te(a, b, f, q=0.5) >= 0
    assert 0 <= E.rmse_fusion(a, b, f) <= math.sqrt(E.mse_fusion(a, b, f)) + 1e-9 <= 255 + 1e-9
    if h >= 3 and w >= 3:
        assert 0 <= I.fmi_edge(a, b, f) <= 1 and 0 <= I.fmi_gradient(a, b, f) <= 1
        assert G.ei(None, None, f) >= 0
