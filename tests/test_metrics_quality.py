"""Qy, Qp, Qw, Qe and phase congruency against plain per-window computations.

The references here loop over windows (and, for phase congruency, build
Kovesi's filters element by element and transform with explicit DFT
matrices), sharing no code with :mod:`jaxfuse.metrics.quality`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from jaxfuse.metrics import quality as Q

FLAT_RTOL = 1e-10  # the module's flat-window rule, restated


def _scene(seed: int, shape=(24, 28)) -> np.ndarray:
    """Rectangles of random grey levels plus mild noise: edges, corners and texture."""
    rng = np.random.default_rng(seed)
    h, w = shape
    x = np.full(shape, rng.uniform(40, 200))
    for _ in range(6):
        r0, c0 = rng.integers(0, h - 4), rng.integers(0, w - 4)
        r1, c1 = rng.integers(r0 + 3, h + 1), rng.integers(c0 + 3, w + 1)
        x[r0:r1, c0:c1] = rng.uniform(0, 255)
    x += rng.normal(0, 6, shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _triple(seed: int, shape=(24, 28)):
    a, b = _scene(seed, shape), _scene(seed + 100, shape)
    rng = np.random.default_rng(seed + 200)
    f = np.clip(0.5 * a + 0.5 * b + rng.normal(0, 4, shape), 0, 255)  # a float fused image
    return a, b, f


def _gauss(size: int, sigma: float) -> np.ndarray:
    w = np.empty((size, size))
    c = (size - 1) / 2
    for i in range(size):
        for j in range(size):
            w[i, j] = math.exp(-((i - c) ** 2 + (j - c) ** 2) / (2 * sigma * sigma))
    return w / w.sum()


def _window_stats(x, y, w):
    """Weighted mean, variance (flat → 0) of x and y and their covariance."""
    mx, my = np.sum(w * x), np.sum(w * y)
    vx, vy = np.sum(w * (x - mx) ** 2), np.sum(w * (y - my) ** 2)
    fx, fy = vx <= FLAT_RTOL * np.sum(w * x * x), vy <= FLAT_RTOL * np.sum(w * y * y)
    vx, vy = (0.0 if fx else vx), (0.0 if fy else vy)
    cxy = 0.0 if (fx or fy) else np.sum(w * (x - mx) * (y - my))
    return mx, my, vx, vy, cxy


def _lam(va, vb):
    return 0.5 if va + vb == 0 else va / (va + vb)


# ---------------------------------------------------------------------------
# Plain references.

def _qy_loop(a, b, f, c1=(0.01 * 255) ** 2, c2=(0.03 * 255) ** 2):
    a, b, f = (np.asarray(x, np.float64) for x in (a, b, f))
    w = _gauss(7, 1.5)
    vals = []
    for i in range(a.shape[0] - 6):
        for j in range(a.shape[1] - 6):
            wa, wb, wf = (x[i:i + 7, j:j + 7] for x in (a, b, f))

            def ssim(x, y):
                mx, my, vx, vy, cxy = _window_stats(x, y, w)
                return (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))

            sab, saf, sbf = ssim(wa, wb), ssim(wa, wf), ssim(wb, wf)
            _, _, va, vb, _ = _window_stats(wa, wb, w)
            lam = _lam(va, vb)
            vals.append(lam * saf + (1 - lam) * sbf if sab >= 0.75 else max(saf, sbf))
    return float(np.mean(vals))


def _q0(x, y, w):
    mx, my, vx, vy, cxy = _window_stats(x, y, w)
    d1, d2 = vx + vy, mx * mx + my * my
    if d1 > 0 and d2 > 0:
        return 4 * cxy * mx * my / (d1 * d2)
    if d1 == 0 and d2 > 0:
        return 2 * mx * my / d2
    return 1.0


def _qw_loop(a, b, f):
    a, b, f = (np.asarray(x, np.float64) for x in (a, b, f))
    w = np.full((8, 8), 1 / 64)
    num = den = 0.0
    plain = []
    for i in range(a.shape[0] - 7):
        for j in range(a.shape[1] - 7):
            wa, wb, wf = (x[i:i + 8, j:j + 8] for x in (a, b, f))
            _, _, va, vb, _ = _window_stats(wa, wb, w)
            lam = _lam(va, vb)
            q = lam * _q0(wa, wf, w) + (1 - lam) * _q0(wb, wf, w)
            num += max(va, vb) * q
            den += max(va, vb)
            plain.append(q)
    return num / den if den > 0 else float(np.mean(plain))


def _sobel_loop(x):
    x = np.asarray(x, np.float64)
    kx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)
    out = np.empty((x.shape[0] - 2, x.shape[1] - 2))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            win = x[i:i + 3, j:j + 3]
            out[i, j] = math.hypot(np.sum(kx * win), np.sum(kx.T * win))
    return out


def _kovesi_range(n):
    """Kovesi's xrange, then ifftshift by index arithmetic."""
    if n % 2:
        r = np.arange(-(n - 1) / 2, (n - 1) / 2 + 1) / (n - 1)
    else:
        r = np.arange(-n / 2, n / 2) / n
    return np.array([r[(p + n // 2) % n] for p in range(n)])


def _dft(n, inverse=False):
    j = np.arange(n)
    m = np.exp((2j if inverse else -2j) * np.pi * np.outer(j, j) / n)
    return m / n if inverse else m


def _phasecong_loop(im, nscale=4, norient=6, min_wl=3.0, mult=2.1, sigma_onf=0.55, k=2.0,
                    cutoff=0.5, g=10.0):
    """Kovesi's phasecong3 step by step (plus the overall PC), explicit DFTs."""
    im = np.asarray(im, np.float64)
    rows, cols = im.shape
    eps = 1e-4
    xr, yr = _kovesi_range(cols), _kovesi_range(rows)
    radius = np.empty((rows, cols))
    theta = np.empty((rows, cols))
    lp = np.empty((rows, cols))
    for i in range(rows):
        for j in range(cols):
            radius[i, j] = math.hypot(xr[j], yr[i])
            theta[i, j] = math.atan2(-yr[i], xr[j])
            lp[i, j] = 1 / (1 + (radius[i, j] / 0.45) ** 30)
    radius[0, 0] = 1
    fr, fc, ir, ic = _dft(rows), _dft(cols), _dft(rows, True), _dft(cols, True)
    spec = fr @ im @ fc.T
    tot_e = np.zeros((rows, cols))
    tot_a = np.zeros((rows, cols))
    cx2 = np.zeros((rows, cols))
    cy2 = np.zeros((rows, cols))
    cxy = np.zeros((rows, cols))
    for o in range(norient):
        angl = o * math.pi / norient
        ds = np.sin(theta) * math.cos(angl) - np.cos(theta) * math.sin(angl)
        dc = np.cos(theta) * math.cos(angl) + np.sin(theta) * math.sin(angl)
        dth = np.minimum(np.abs(np.arctan2(ds, dc)) * norient / 2, math.pi)
        spread = (np.cos(dth) + 1) / 2
        eo = []
        for s in range(nscale):
            fo = 1 / (min_wl * mult ** s)
            lg = np.exp(-np.log(radius / fo) ** 2 / (2 * math.log(sigma_onf) ** 2)) * lp
            lg[0, 0] = 0
            eo.append(ir @ (spec * lg * spread) @ ic.T)
        sum_an = sum(np.abs(z) for z in eo)
        max_an = np.maximum.reduce([np.abs(z) for z in eo])
        sum_e = sum(z.real for z in eo)
        sum_o = sum(z.imag for z in eo)
        tau = np.median(np.abs(eo[0])) / math.sqrt(math.log(4))
        xe = np.sqrt(sum_e ** 2 + sum_o ** 2) + eps
        me, mo = sum_e / xe, sum_o / xe
        energy = np.zeros((rows, cols))
        for z in eo:
            e, od = z.real, z.imag
            energy += e * me + od * mo - np.abs(e * mo - od * me)
        tt = tau * (1 - (1 / mult) ** nscale) / (1 - 1 / mult)
        t = tt * math.sqrt(math.pi / 2) + k * tt * math.sqrt((4 - math.pi) / 2)
        energy = np.maximum(energy - t, 0)
        width = (sum_an / (max_an + eps) - 1) / (nscale - 1)
        weight = 1 / (1 + np.exp((cutoff - width) * g))
        pc_o = weight * energy / (sum_an + eps)
        tot_e += weight * energy
        tot_a += sum_an
        cx, cy = pc_o * math.cos(angl), pc_o * math.sin(angl)
        cx2 += cx ** 2
        cy2 += cy ** 2
        cxy += cx * cy
    cx2, cy2, cxy = cx2 / (norient / 2), cy2 / (norient / 2), 4 * cxy / norient
    den = np.sqrt(cxy ** 2 + (cx2 - cy2) ** 2) + eps
    return tot_e / (tot_a + eps), (cy2 + cx2 + den) / 2, (cy2 + cx2 - den) / 2


def _qp_loop(a, b, f):
    feats = [_phasecong_loop(x) for x in (a, b, f)]
    (pa, Ma, ma), (pb, Mb, mb), (pf, Mf, mf) = feats
    first = pa > pb
    m1, m2 = pa > 0.1, pb > 0.1
    m3 = np.where(first, pa, pb) > 0.1
    w = _gauss(11, 1.5)
    h, wd = pa.shape
    count = sum(bool(m3[i, j]) for i in range(5, h - 5) for j in range(5, wd - 5))
    if count == 0:
        return 1.0
    result = 1.0
    for x1, x2, xf in ((pa, pb, pf), (Ma, Mb, Mf), (ma, mb, mf)):
        maps = ((x1 * m1, m1), (x2 * m2, m2), (np.where(first, x1, x2) * m3, m3))
        total = 0.0
        for i in range(5, h - 5):
            for j in range(5, wd - 5):
                sl = (slice(i - 5, i + 6), slice(j - 5, j + 6))
                wf = xf[sl]
                muf = np.sum(w * wf)
                vf = np.sum(w * wf * wf) - muf * muf
                best = -np.inf
                for x, mask in maps:
                    if not mask[i, j]:
                        c = 0.0
                    else:
                        wx = x[sl]
                        mux = np.sum(w * wx)
                        vx = np.sum(w * wx * wx) - mux * mux
                        cov = np.sum(w * wx * wf) - mux * muf
                        c = (cov + 1e-4) / (math.sqrt(abs(vx * vf)) + 1e-4)
                    best = max(best, c)
                total += best
        result *= total / count
    return result


# ---------------------------------------------------------------------------
# Agreement with the references.

@pytest.mark.parametrize("seed", [0, 1])
def test_qy_matches_window_loop(seed):
    a, b, f = _triple(seed)
    assert Q.qy(a, b, f) == pytest.approx(_qy_loop(a, b, f), abs=1e-10)
    kit = dict(c1=2e-16, c2=2e-16)  # metricYang.m's constants
    assert Q.qy(a, b, f, **kit) == pytest.approx(_qy_loop(a, b, f, **kit), abs=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_qw_matches_window_loop(seed):
    a, b, f = _triple(seed)
    assert Q.qw(a, b, f) == pytest.approx(_qw_loop(a, b, f), abs=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_qe_matches_window_loop(seed):
    a, b, f = _triple(seed)
    ea, eb, ef = _sobel_loop(a), _sobel_loop(b), _sobel_loop(f)
    edge = _qw_loop(ea, eb, ef)
    assert Q.qe(a, b, f) == pytest.approx(edge, abs=1e-10)
    whole = _qw_loop(a, b, f)
    assert Q.qe(a, b, f, alpha=0.0) == pytest.approx(whole, abs=1e-10)
    assert Q.qe(a, b, f, alpha=0.3) == pytest.approx(
        max(whole, 0) ** 0.7 * max(edge, 0) ** 0.3, abs=1e-10)


@pytest.mark.parametrize("shape", [(24, 28), (25, 27)])
def test_phasecong_matches_plain_version(shape):
    x = _scene(3, shape)
    pc, big, small = Q.phasecong(x)
    rpc, rbig, rsmall = _phasecong_loop(x)
    np.testing.assert_allclose(pc, rpc, rtol=0, atol=1e-10)
    np.testing.assert_allclose(big, rbig, rtol=0, atol=1e-10)
    np.testing.assert_allclose(small, rsmall, rtol=0, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_qp_matches_window_loop(seed):
    a, b, f = _triple(seed)
    assert (Q.phasecong(a).pc > 0.1).any() and (Q.phasecong(b).pc > 0.1).any()
    assert Q.qp(a, b, f) == pytest.approx(_qp_loop(a, b, f), abs=1e-10)


# ---------------------------------------------------------------------------
# Phase congruency sanity.

def test_phasecong_of_a_step_edge():
    x = np.zeros((64, 64))
    x[:, 33:] = 255.0
    x[:, 32] = 127.5  # the edge centred on column 32
    pc, big, small = Q.phasecong(x)
    assert pc[:, 32].min() > 0.85  # close to 1 on the edge (the frequency-spread weight caps it)
    assert np.ptp(pc[:, 32]) < 1e-12  # the same all along it
    assert pc[:, 36:58].max() < 0.03 and pc[:, 6:29].max() < 0.03  # flat areas
    assert big[:, 32].min() > 0.5 and big[:, 36:58].max() < 1e-3
    assert small[:, 32].max() < 0.25 * big[:, 32].min()  # an edge, not a corner
    # A flat image has no phase congruency at all.
    flat = Q.phasecong(np.full((30, 41), 77.0))
    assert np.abs(flat.pc).max() < 1e-9 and np.abs(flat.M).max() <= 1e-4


def test_phasecong_rejects_bad_input():
    with pytest.raises(ValueError, match="phasecong"):
        Q.phasecong(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="phasecong"):
        Q.phasecong(np.full((10, 10), np.nan))
    with pytest.raises(ValueError, match="nscale"):
        Q.phasecong(np.zeros((10, 10)), nscale=1)


# ---------------------------------------------------------------------------
# Properties.

def test_identical_inputs():
    x = _scene(7, (48, 52))
    assert Q.qy(x, x, x) == pytest.approx(1.0, abs=1e-12)
    assert Q.qw(x, x, x) == pytest.approx(1.0, abs=1e-12)
    assert Q.qe(x, x, x) == pytest.approx(1.0, abs=1e-12)
    # Qp: the sources' feature maps are masked (PC > 0.1) and the fused map is
    # not, so windows across a mask boundary correlate below 1: a value a
    # little under 1, still above a degraded fusion's.
    ideal = Q.qp(x, x, x)
    assert 0.8 < ideal < 1.0
    blurred = (x[:-2, :-2] + x[1:-1, 1:-1] + x[2:, 2:]) / 3.0
    xc = x[1:-1, 1:-1]
    assert Q.qp(xc, xc, blurred) < Q.qp(xc, xc, xc)
    # Constant identical inputs: the ideal value everywhere (Qp: no features, 1).
    c = np.full((20, 20), 93, np.uint8)
    for fn in (Q.qy, Q.qw, Q.qe, Q.qp):
        assert fn(c, c, c) == pytest.approx(1.0, abs=1e-12), fn.__name__


@pytest.mark.parametrize("vals", [(0, 0, 0), (0, 255, 128), (10, 200, 0), (100.3, 57.9, 80.1)])
def test_constant_images_are_finite(vals):
    a, b, f = (np.full((16, 18), v, np.float64) for v in vals)
    for fn in (Q.qy, Q.qw, Q.qe, Q.qp):
        assert math.isfinite(fn(a, b, f)), fn.__name__
    # Flat windows keep Q0's luminance term only; no saliency anywhere → plain mean, λ = 1/2.
    va, vb, vf = vals

    def lum(x, y):
        return 1.0 if x == y == 0 else 2 * x * y / (x * x + y * y)

    assert Q.qw(a, b, f) == pytest.approx(0.5 * (lum(va, vf) + lum(vb, vf)), abs=1e-12)
    assert Q.qe(a, b, f) == 1.0  # all edge images are 0: Q0 of black windows is 1
    assert Q.qp(a, b, f) == 1.0  # no feature to preserve


def test_constant_fused_with_textured_sources_is_finite():
    a, b, _ = _triple(4, (30, 30))
    c = np.full(a.shape, 128.0)
    for fn in (Q.qy, Q.qw, Q.qe, Q.qp):
        assert math.isfinite(fn(a, b, c)) and math.isfinite(fn(c, c, a)), fn.__name__


MIN_SIZES = {"Qy": (Q.qy, 7), "Qw": (Q.qw, 8), "Qe": (Q.qe, 10), "Qp": (Q.qp, 11)}


@pytest.mark.parametrize("name", sorted(MIN_SIZES))
def test_too_small_raises_naming_metric_and_size(name):
    fn, m = MIN_SIZES[name]
    rng = np.random.default_rng(5)
    small = [rng.integers(0, 256, (m - 1, m + 3)).astype(np.uint8) for _ in range(3)]
    with pytest.raises(ValueError) as e:
        fn(*small)
    assert name in str(e.value) and f"images must be at least {m}x{m} pixels" in str(e.value)
    ok = [rng.integers(0, 256, (m, m)).astype(np.uint8) for _ in range(3)]
    assert math.isfinite(fn(*ok))


def test_bad_inputs_raise_naming_metric():
    x = np.zeros((20, 20))
    for name, fn in (("Qy", Q.qy), ("Qw", Q.qw), ("Qe", Q.qe), ("Qp", Q.qp)):
        with pytest.raises(ValueError, match=name):
            fn(x, x, np.zeros((20, 21)))
        with pytest.raises(ValueError, match=name):
            fn(x, x, x + 300)
    with pytest.raises(ValueError, match="Qe"):
        Q.qe(x, x, x, alpha=1.5)
    with pytest.raises(ValueError, match="Qy"):
        Q.qy(x, x, x, c1=0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_values_in_range_on_random_images(seed):
    rng = np.random.default_rng(seed)
    shape = (40, 45)
    imgs = [rng.integers(0, 256, shape).astype(np.uint8) for _ in range(3)]
    scenes = list(_triple(seed, shape))
    for a, b, f in (imgs, scenes, (scenes[0], scenes[1], imgs[2])):
        for fn in (Q.qy, Q.qw, Q.qe, Q.qp):
            v = fn(a, b, f)
            assert -1.0 - 1e-12 <= v <= 1.0 + 1e-12, (fn.__name__, v)
        assert Q.qe(a, b, f, alpha=0.5) >= 0.0


def test_symmetric_in_the_sources_and_dtype_blind():
    a, b, f = _triple(9, (32, 36))
    for fn in (Q.qy, Q.qw, Q.qe):
        assert fn(a, b, f) == pytest.approx(fn(b, a, f), abs=1e-12), fn.__name__
    for fn in (Q.qy, Q.qw, Q.qe, Q.qp):
        assert fn(a, b, np.rint(f).astype(np.uint8)) == fn(a.astype(np.float32), b.astype(np.int64),
                                                          np.rint(f)), fn.__name__
