"""Tests for jaxfuse.methods.jsr (JSR, Zhang et al. 2013; JSRSD, Liu et al. 2017).

* Oracles: scikit-learn's ``orthogonal_mp`` (else a NumPy OMP written here)
  for the batched OMP; NumPy's SVD and the KSVD-Box formulas for one atom
  update; per-patch NumPy loops written from the reference MATLAB
  (``fusion_JSR.m``, ``fusion_JSR_saliency.m``) for the fusion rules, the
  local saliency and the running-halving patch reassembly.
* Properties: shapes, odd sizes, determinism given a seed, keyword-only
  options, clear ValueErrors, K-SVD lowering the representation error.
* If ../shared/data is present: TNO pair 08 fused with both methods and
  compared pixel by pixel with the published re-runs.
"""

from __future__ import annotations

import inspect
import math

import jax
import numpy as np
import pytest

from conftest import TNO21, needs_tno21
from jaxfuse.methods import jsr

PUBLISHED = TNO21.parent / "tno21_fused"

# Shapes are chosen so that tests share compiled programs (a compile costs
# seconds, a run here milliseconds): OMP codes 1024 signals per call, K-SVD
# pads its training set to a multiple of 1024, so the small pair below, the
# K-SVD test and the TNO pair all use the reference's 256 atoms and sparsity
# 16; the OMP tests use 24 atoms and sparsity 4 (fewer near ties between
# float32 and float64).
SMALL = dict(ksvd_iters=2)
N, K, T = 1024, 24, 4
SHAPE = (41, 47)                                                 # odd sizes; 336 training patches


def _pair(shape=SHAPE, seed=0):
    """Two smooth-ish random 0–255 images (a smooth field plus noise)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(2):
        coarse = rng.uniform(0, 255, (shape[0] // 4 + 2, shape[1] // 4 + 2))
        up = np.kron(coarse, np.ones((4, 4)))[:shape[0], :shape[1]]
        out.append(np.clip(up + rng.normal(0, 12, shape), 0, 255).astype(np.float32))
    return out


def _unit_dict(rng, n, k):
    d = rng.normal(size=(n, k))
    return (d / np.linalg.norm(d, axis=0)).astype(np.float32)


# ---------------------------------------------------------------- OMP

def _np_omp(d, x, t):
    """Textbook OMP in float64 (greedy pick, least squares on the support)."""
    support, coef, r = [], np.zeros(0), x.copy()
    for _ in range(t):
        support.append(int(np.argmax(np.abs(d.T @ r))))
        coef = np.linalg.lstsq(d[:, support], x, rcond=None)[0]
        r = x - d[:, support] @ coef
    out = np.zeros(d.shape[1])
    out[support] = coef
    return out


@pytest.fixture(scope="module")
def omp_case():
    rng = np.random.default_rng(0)
    d = _unit_dict(rng, 49, K)
    x = rng.normal(size=(N, 49)).astype(np.float32)
    x[0] = 0                                                     # nothing to code
    x[1] = d[:, 3]                                               # one atom exactly
    return x, d, jsr.omp(x, d, sparsity=T)


def test_omp_matches_independent_omp(omp_case):
    x, d, codes = omp_case
    ours = np.asarray(jsr.to_dense(codes, K))[2:]
    try:
        from sklearn.linear_model import orthogonal_mp
        want = orthogonal_mp(d.astype(np.float64), x[2:].T.astype(np.float64), n_nonzero_coefs=T).T
    except ImportError:
        want = np.stack([_np_omp(d.astype(np.float64), xi.astype(np.float64), T) for xi in x[2:]])
    np.testing.assert_allclose(ours, want, atol=2e-4)
    assert np.all(np.sum(ours != 0, axis=1) == T)
    # Atoms come in the order OMP picks them: the first is the best correlated.
    first = np.argmax(np.abs(x[2:] @ d), axis=1)
    np.testing.assert_array_equal(np.asarray(codes.indices)[2:, 0], first)


def test_omp_stops_like_omp_box(omp_case):
    _, _, codes = omp_case
    ind, coef = np.asarray(codes.indices), np.asarray(codes.coefs)
    np.testing.assert_array_equal(ind[0], [K] * T)               # all slots empty
    np.testing.assert_array_equal(coef[0], 0)
    assert ind[1, 0] == 3 and abs(coef[1, 0] - 1) < 1e-5
    # After the exact fit the residual correlations are ~1e-8 (< 1e-7 = √1e-14): stop.
    assert np.all(ind[1, 1:] == K) and np.all(coef[1, 1:] == 0)


# ---------------------------------------------------------------- K-SVD

def _atom_problem(omp_case):
    x, d, codes = omp_case
    dense = np.asarray(jsr.to_dense(codes, K), np.float64)
    j = int(np.argmax(np.sum(dense != 0, axis=0)))             # the most used atom
    users = dense[:, j] != 0
    x64, d64 = x.astype(np.float64), d.astype(np.float64)
    e = (x64 - dense @ d64.T + np.outer(dense[:, j], d64[:, j]))[users]
    return x, d, codes, dense, j, users, e                      # e: E_jᵀ, users in rows


def test_ksvd_atom_update_exact_matches_svd(omp_case):
    x, d, codes, dense, j, users, e = _atom_problem(omp_case)
    atom, new = jsr.ksvd_update_atom(x, d, codes, j, exact=True)
    u, s, vt = np.linalg.svd(e.T, full_matrices=False)
    sign = np.sign(np.dot(np.asarray(atom), u[:, 0]))
    np.testing.assert_allclose(sign * np.asarray(atom), u[:, 0], atol=1e-4)
    new_dense = np.asarray(jsr.to_dense(new, K))
    np.testing.assert_allclose(sign * new_dense[users, j], s[0] * vt[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(new_dense[~users, j], 0)      # the support does not change
    others = np.delete(np.arange(K), j)
    np.testing.assert_array_equal(new_dense[:, others], dense[:, others])


def test_ksvd_atom_update_approximate_matches_ksvd_box(omp_case):
    x, d, codes, dense, j, users, e = _atom_problem(omp_case)
    atom, new = jsr.ksvd_update_atom(x, d, codes, j)
    g = dense[users, j]
    want = e.T @ g                                               # E γᵀ, then normalised
    want /= np.linalg.norm(want)
    np.testing.assert_allclose(np.asarray(atom), want, atol=1e-5)
    np.testing.assert_allclose(np.asarray(jsr.to_dense(new, K))[users, j], e @ want, rtol=1e-4,
                               atol=1e-4)
    # One alternating step never does worse than the old pair, nor better than the SVD.
    s = np.linalg.svd(e, compute_uv=False)
    err_new = np.linalg.norm(e - np.outer(e @ want, want))
    err_old = np.linalg.norm(e - np.outer(g, d[:, j]))
    assert np.sum(s[1:] ** 2) - 1e-6 <= err_new ** 2 <= err_old ** 2


def test_ksvd_learns_and_is_deterministic():
    rng = np.random.default_rng(1)
    x = np.abs(rng.normal(size=(400, 49))).astype(np.float32)
    x[:, :7] += 3 * rng.normal(size=(400, 1)).astype(np.float32) ** 2   # some shared structure
    kw = dict(dict_size=256, sparsity=16)
    d1 = np.asarray(jsr.ksvd(x, iterations=3, seed=3, **kw))
    d2 = np.asarray(jsr.ksvd(x, iterations=3, seed=3, **kw))
    d0 = np.asarray(jsr.ksvd(x, iterations=0, seed=3, **kw))
    np.testing.assert_array_equal(d1, d2)
    np.testing.assert_allclose(np.linalg.norm(d1, axis=0), 1, atol=1e-5)
    # Iteration 0 is KSVD-Box's initialisation: normalised training signals.
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert np.all(np.min(np.linalg.norm(xn[:, :, None] - d0[None], axis=1), axis=0) < 1e-6)

    def rmse(d):
        dense = np.asarray(jsr.to_dense(jsr.omp(x, d, sparsity=16), 256))
        return np.sqrt(np.mean((x - dense @ d.T) ** 2))
    assert rmse(d1) < 0.85 * rmse(d0)                            # measured: 0.089 vs 0.117
    assert not np.array_equal(d1, np.asarray(jsr.ksvd(x, iterations=3, seed=4, **kw)))


def test_ksvd_needs_enough_signals():
    with pytest.raises(ValueError, match="fewer than"):
        jsr.ksvd(np.ones((10, 4), np.float32), dict_size=16)


# ---------------------------------------------------------------- fusion rules

def test_joint_dictionary_layout(rng):
    d = _unit_dict(rng, 6, 5)
    dj = np.asarray(jsr.joint_dictionary(d))
    assert dj.shape == (12, 15)
    np.testing.assert_allclose(np.linalg.norm(dj, axis=0), 1, atol=1e-6)
    np.testing.assert_allclose(dj[:6, :5], d / math.sqrt(2), atol=1e-7)
    np.testing.assert_allclose(dj[6:, :5], d / math.sqrt(2), atol=1e-7)
    np.testing.assert_array_equal(dj[:6, 5:10], d)
    np.testing.assert_array_equal(dj[6:, 10:], d)
    np.testing.assert_array_equal(dj[6:, 5:10], 0)
    np.testing.assert_array_equal(dj[:6, 10:], 0)


def test_fuse_coefficients_matches_reference_loops(rng):
    c, u1, u2 = (rng.normal(size=(7, 9)).astype(np.float32) for _ in range(3))
    u1[2] = 0
    u2[2] = 0                                                   # 0/0: weight 0 here
    sal1, sal2 = rng.uniform(0, 3, 7).astype(np.float32), rng.uniform(0, 3, 7).astype(np.float32)
    got = np.asarray(jax.jit(jsr.fuse_coefficients)(c, u1, u2))
    sd_rule = jax.jit(lambda c, u1, u2, s1, s2: jsr.fuse_coefficients(
        c, u1, u2, common_scale=1 / math.sqrt(2), saliency1=s1, saliency2=s2))
    got_sd = np.asarray(sd_rule(c, u1, u2, sal1, sal2))
    for i in range(7):                                          # fusion_JSR.m, per patch
        n1, n2 = np.abs(u1[i]).sum(), np.abs(u2[i]).sum()
        w1, w2 = (n1 / max(n1, n2), n2 / max(n1, n2)) if max(n1, n2) > 0 else (0, 0)
        np.testing.assert_allclose(got[i], c[i] + w1 * u1[i] + w2 * u2[i], rtol=1e-6, atol=1e-6)
        m = max(sal1[i], sal2[i])                               # fusion_JSR_saliency.m
        want = c[i] / math.sqrt(2) + sal1[i] / m * u1[i] + sal2[i] / m * u2[i]
        np.testing.assert_allclose(got_sd[i], want, rtol=1e-6, atol=1e-6)


def _random_codes(rng, pr, pc, t, k):
    ind = np.full((pr, pc, t), -1, np.int32)
    val = np.zeros((pr, pc, t), np.float32)
    dense = np.zeros((pr, pc, k))
    for i in range(pr):
        for j in range(pc):
            n = rng.integers(0, t + 1)
            at = rng.choice(k, n, replace=False)
            ind[i, j, :n], val[i, j, :n] = at, rng.normal(size=n)
            dense[i, j, at] = val[i, j, :n]
    return ind, val, dense


def test_local_saliency_matches_reference_loop(rng):
    ind, val, dense = _random_codes(rng, 9, 12, 4, 10)
    got = np.asarray(jax.jit(lambda a, b: jsr.local_saliency(a, b, n_atoms=10))(ind, val))
    want = np.zeros((9, 12))
    for i in range(2, 7):                                       # interior positions only
        for j in range(2, 10):
            d = 0.0
            for p in range(i - 2, i + 3):
                for q in range(j - 2, j + 3):
                    if p != i or q != j:
                        du = np.sqrt(np.sum((dense[i, j] - dense[p, q]) ** 2))
                        d += du / (1 + 2 * np.sqrt((p - i) ** 2 + (q - j) ** 2))
            want[i, j] = 1 - np.exp(-d / 24)
    np.testing.assert_allclose(got, want, atol=2e-6)


def test_sequential_average_matches_reference_loop(rng):
    pr, pc, p = 6, 9, 4
    v = rng.uniform(0, 1, (pr, pc, p, p)).astype(np.float32)
    want = np.zeros((pr + p - 1, pc + p - 1))
    for i in range(pr):                                         # raster order, as the MATLAB loop
        for j in range(pc):
            want[i:i + p, j:j + p] = (v[i, j] + want[i:i + p, j:j + p]) / 2
    got = np.asarray(jax.jit(jsr.sequential_average)(v))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert abs(got[0, 0] - v[0, 0, 0, 0] / 2) < 1e-7             # the dark top-left corner


# ---------------------------------------------------------------- whole methods

@pytest.fixture(scope="module")
def small_fusions():
    ir, vis = _pair()
    return ir, vis, {m: np.asarray(getattr(jsr, f"fuse_{m}")(ir, vis, **SMALL))
                     for m in ("jsr", "jsrsd")}


@pytest.mark.parametrize("method", ["jsr", "jsrsd"])
def test_shapes_range_and_determinism(small_fusions, method):
    ir, vis, out = small_fusions
    f = out[method]
    assert f.shape == ir.shape == SHAPE and f.dtype == np.float32 and np.isfinite(f).all()
    assert 0 < f.mean() < 300
    fn = getattr(jsr, f"fuse_{method}")
    np.testing.assert_array_equal(np.asarray(fn(ir, vis, **SMALL)), f)          # same seed
    assert not np.array_equal(np.asarray(fn(ir, vis, **SMALL, seed=1)), f)      # another seed
    # The dictionary the method trains, passed in, gives the same image.
    d = jsr.learn_dictionary(ir / 255, vis / 255, **SMALL)
    assert d.shape == (49, 256)
    np.testing.assert_array_equal(np.asarray(fn(ir, vis, dictionary=d)), f)


def test_jsr_brighter_than_jsrsd_by_the_common_part(small_fusions):
    # JSR adds D·c, JSRSD D·c/√2 (the reference's scalings): JSR is brighter.
    _, _, out = small_fusions
    assert out["jsr"].mean() > out["jsrsd"].mean()


def test_errors_and_keyword_only():
    for fn in (jsr.fuse_jsr, jsr.fuse_jsrsd, jsr.omp, jsr.ksvd, jsr.local_saliency,
               jsr.fuse_coefficients, jsr.learn_dictionary):
        spec = inspect.getfullargspec(fn)
        assert not spec.defaults, f"{fn.__name__}: options must be keyword-only"
    with pytest.raises(ValueError, match="one shape"):
        jsr.fuse_jsr(np.zeros((20, 20)), np.zeros((20, 21)))
    with pytest.raises(ValueError, match="at least 7"):
        jsr.fuse_jsrsd(np.zeros((6, 20)), np.zeros((6, 20)))
    with pytest.raises(ValueError, match="non-finite"):
        jsr.fuse_jsr(np.full((20, 20), np.nan), np.zeros((20, 20)))
    with pytest.raises(ValueError, match="dictionary"):
        jsr.omp(np.zeros((3, 5)), np.zeros((4, 6)))
    with pytest.raises(ValueError, match="dictionary"):
        jsr.fuse_jsr(np.zeros((20, 20)), np.zeros((20, 20)), dictionary=np.zeros((36, 8)))
    with pytest.raises(ValueError, match="sparsity"):
        jsr.fuse_jsrsd(np.zeros((20, 20)), np.zeros((20, 20)), sparsity=0)
    assert jsr.OUTPUT_STEP == "round"


# ---------------------------------------------------------------- the published re-runs

TNO_PAIR = "08"                                                  # 280 × 280, the smallest
# Mean absolute difference (0–255, after the output step) to the published
# re-runs, with the reference's settings but 5 K-SVD iterations (50 take too
# long for a unit test). Measured: seed 0 JSR 6.31, JSRSD 8.17; seed 1 5.92,
# 7.91 (with 50 iterations, seed 0: 5.62, 7.62; the published re-run is one
# draw of MATLAB's randperm, our seeds others). Bounds: the worst plus 10 %.
TNO_BOUNDS = {"jsr": 7.0, "jsrsd": 9.0}


@needs_tno21
@pytest.mark.skipif(not PUBLISHED.is_dir(), reason=f"needs the published re-runs at {PUBLISHED}")
def test_tno_pair_close_to_published_rerun():
    from PIL import Image
    ir, vis = (np.asarray(Image.open(TNO21 / s / f"{TNO_PAIR}.png"), np.float32)
               for s in ("ir", "vis"))
    for method, bound in TNO_BOUNDS.items():
        fused = getattr(jsr, f"fuse_{method}")(ir, vis, ksvd_iters=5)    # one K-SVD: cached
        out = np.clip(np.rint(np.asarray(fused)), 0, 255)
        ref = np.asarray(Image.open(PUBLISHED / method / f"{TNO_PAIR}.png"), np.float64)
        mad = np.abs(out - ref).mean()
        assert mad < bound, f"{method}: mean abs difference {mad:.2f} to the published re-run"
        # Measured: our mean 2.2–2.9 grey levels above the re-run's.
        gap = out.mean() - ref.mean()
        assert abs(gap) < 5, f"{method}: mean {gap:+.1f} grey levels from the re-run's"
