"""The fast-FMI kernel in JAX: the sum of the kit's per-window FMI over a chunk of windows.

:func:`_fmi_chunk_sum` is jitted once and called by
:func:`jaxfuse.metrics.information.fmi` with float64 enabled for the call.
The kernel works on lists of nine (N,) vectors (the values of N windows,
column-major) and is written out element by element, so XLA fuses it into a
few loops instead of materialising 9x9xN temporaries; optimization barriers
stop it from re-computing shared intermediates inside every consumer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

_TINY = 1e-300  # log2(|x| + tiny): finite at 0, unchanged for |x| > 1e-284


def _ssum(xs):
    """Sum of a list of arrays; nine terms are added in NumPy's pairwise order.

    The order matters for the kit's exact tests: for two constant windows
    both pdfs are uniform, and ``mean(p) == 1/9`` exactly (so ``c = 0``) only
    in this order, ((x0+x1)+(x2+x3))+((x4+x5)+(x6+x7))+x8, not left to right.
    """
    if len(xs) == 9:
        return (((xs[0] + xs[1]) + (xs[2] + xs[3])) + ((xs[4] + xs[5]) + (xs[6] + xs[7]))) + xs[8]
    s = xs[0]
    for v in xs[1:]:
        s = s + v
    return s


def _log2(x):
    # MATLAB's real(-p.*log2(p)) is -p·log2|p| for the (rare) negative cells.
    return jnp.log2(jnp.abs(x) + _TINY)


def _minmax(x):
    """Min-max normalises a window; a constant window becomes all ones (kit)."""
    mx, mn = x[0], x[0]
    for v in x[1:]:
        mx, mn = jnp.maximum(mx, v), jnp.minimum(mn, v)
    d = mx - mn
    flat = d == 0
    d = jnp.where(flat, 1.0, d)
    return [jnp.where(flat, 1.0, (v - mn) / d) for v in x]


def _marginals(x):
    """pdf, CDF, log2 pdf, entropy, mean and sd of the 1-based index, per window."""
    sx = _ssum(x)
    p = [v / sx for v in x]
    pc = [p[0]]
    for v in p[1:]:
        pc.append(pc[-1] + v)
    lp = [_log2(v) for v in p]
    h = -_ssum([a * b for a, b in zip(p, lp)])
    e1 = _ssum([(i + 1.0) * v for i, v in enumerate(p)])
    e2 = _ssum([(i + 1.0) ** 2 * v for i, v in enumerate(p)])
    sd = jnp.sqrt(jnp.maximum(e2 - e1 * e1, 0.0))  # population sd
    return dict(p=p, pc=pc, lp=lp, h=h, e1=e1, sd=sd)


def _nfmi(src, fus):
    """Normalised MI ``2·MI/(H_X + H_F)`` of a source and the fused window.

    ``src``, ``fus``: :func:`_marginals` of min-max-normalised windows. As the
    kit's analysis_fmi: Pearson correlation ``c`` of the two pdfs; the joint
    pdf mixes the product ``q_i p_j`` with the Fréchet upper (c ≥ 0) or lower
    (c < 0) bound ``U`` as ``φ·U + (1 − φ)·q_i p_j``, ``φ = c / corr(U)``;
    entropies in bits. Written differently, equal up to rounding:

    * fused value i holds ``[Q_{i-1}, Q_i]`` of the unit interval, source value
      j holds ``[P_{j-1}, P_j]`` (upper bound) or ``[1-P_j, 1-P_{j-1}]``
      (lower bound); ``U_ij`` is their overlap (the kit's 2-D differences of
      ``min(Q_i, P_j)`` or ``max(Q_i + P_j - 1, 0)``), and ``corr(U)`` comes
      from ``E[ij]`` under ``U`` (the kit's Hoeffding sum);
    * ``U`` is non-zero on a monotone staircase of at most 17 cells, one per
      anti-diagonal (after reversing the source order for the lower bound),
      so the joint entropy is the closed-form entropy of ``(1 − φ)·q_i p_j``
      over all 81 cells plus a correction on ≤ 17 cells: 17 logarithms
      instead of 81.
    """
    p, lp, pc, hp = src["p"], src["lp"], src["pc"], src["h"]
    q, lq, qc, hq = fus["p"], fus["lp"], fus["pc"], fus["h"]
    mp, mq = _ssum(p) / 9.0, _ssum(q) / 9.0
    pt = [v - mp for v in p]
    qt = [v - mq for v in q]
    s = _ssum([a * b for a, b in zip(pt, qt)])
    den = jnp.sqrt(_ssum([a * a for a in pt]) * _ssum([b * b for b in qt]))
    c = jnp.where(s == 0, 0.0, s / jnp.where(s == 0, 1.0, den))
    pos = c >= 0
    zero = jnp.zeros_like(c)
    pprev = [zero] + pc[:-1]
    qprev = [zero] + qc[:-1]
    # Source intervals re-indexed left to right: k = j (c >= 0) or 8 - j (c < 0).
    pr = [jnp.where(pos, p[k], p[8 - k]) for k in range(9)]
    lpr = [jnp.where(pos, lp[k], lp[8 - k]) for k in range(9)]
    lo = [jnp.where(pos, pprev[k], 1.0 - pc[8 - k]) for k in range(9)]
    hi = [jnp.where(pos, pc[k], 1.0 - pprev[8 - k]) for k in range(9)]
    jv = [jnp.where(pos, k + 1.0, 9.0 - k) for k in range(9)]
    (q, lq, qc, qprev, pr, lpr, lo, hi, jv, c, pos) = lax.optimization_barrier(
        (q, lq, qc, qprev, pr, lpr, lo, hi, jv, c, pos))
    e_ij = None
    u_d, qp_d, l_d = [None] * 17, [None] * 17, [None] * 17
    for i in range(9):
        for k in range(9):
            u = jnp.maximum(jnp.minimum(qc[i], hi[k]) - jnp.maximum(qprev[i], lo[k]), 0.0)
            t = ((i + 1.0) * jv[k]) * u
            e_ij = t if e_ij is None else e_ij + t
            on = u > 0
            qp = jnp.where(on, q[i] * pr[k], 0.0)
            ll = jnp.where(on, lq[i] + lpr[k], 0.0)
            d = i + k
            if u_d[d] is None:
                u_d[d], qp_d[d], l_d[d] = u, qp, ll
            else:
                u_d[d], qp_d[d], l_d[d] = u_d[d] + u, qp_d[d] + qp, l_d[d] + ll
    cov = e_ij - fus["e1"] * src["e1"]
    psd, qsd = src["sd"], fus["sd"]
    ok = jnp.where(pos, c != 0, True) & (psd != 0) & (qsd != 0) & (cov != 0)
    corr = jnp.where(ok, cov, 1.0) / jnp.where(ok, qsd * psd, 1.0)
    coef = jnp.where(ok, c / corr, 0.0)
    w = 1.0 - coef
    lw = _log2(w)
    sq, sp = _ssum(q), _ssum(pr)
    # Σ over all 81 cells of -(w q_i p_j)·log2|w q_i p_j|, in closed form ...
    h_joint = -w * (lw * sq * sp - sp * hq - sq * hp)
    # ... plus, on the staircase, the true cell minus its product-only value.
    for d in range(17):
        g = w * qp_d[d]
        jd = coef * u_d[d] + g
        h_joint = h_joint - jd * _log2(jd) + g * (lw + l_d[d])
    m = hp + hq - h_joint
    hs = hp + hq
    return jnp.where(m == 0, 0.0, 2.0 * m / jnp.where(hs == 0, 1.0, hs))


@jax.jit
def _fmi_chunk_sum(a, b, f, n_valid):
    """Sum of the FMI values of the first ``n_valid`` of N raw windows, each ``(9, N)``."""
    A, B, F = ([x[i] for i in range(9)] for x in (a, b, f))
    ident_a = _ssum([(x != y).astype(jnp.int32) for x, y in zip(A, F)]) == 0
    fn = _minmax(F)
    fus = _marginals(fn)
    fmi_a = jnp.where(ident_a, 1.0, _nfmi(_marginals(_minmax(A)), fus))
    # Kit quirk: the IR branch normalises the fused window in place, so the
    # VIS branch compares its window with the *normalised* fused window (or
    # the raw one when the IR branch took its "identical" shortcut).
    seen = [jnp.where(ident_a, x, y) for x, y in zip(F, fn)]
    ident_b = _ssum([(x != y).astype(jnp.int32) for x, y in zip(B, seen)]) == 0
    fmi_b = jnp.where(ident_b, 1.0, _nfmi(_marginals(_minmax(B)), fus))
    vals = 0.5 * (fmi_a + fmi_b)
    return jnp.sum(jnp.where(jnp.arange(a.shape[1]) < n_valid, vals, 0.0))
