"""Batch orthogonal matching pursuit: the sparse coding of JSR and JSRSD.

OMP-Box 10's Cholesky-based batch OMP (R. Rubinstein's ``omp``), as the
JSR reference code calls it: a fixed number of atoms per signal, no error
target, OMP-Box's early stops kept. Vectorised over chunks of
:data:`CHUNK` signals (one compiled program whatever the image size), with
the joint dictionary's structure used for a third of the correlation cost.
:mod:`jaxfuse.methods.jsr` says how the fusion uses it.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

#: OMP sparsity, in K-SVD and in the joint coding (``k``).
SPARSITY = 16
# OMP-Box stopping thresholds (ompcore.c).
_OMP_TINY = 1e-14
#: Signals sparse-coded per compiled call.
CHUNK = 1024


class SparseCodes(NamedTuple):
    """Sparse codes of ``N`` signals, at most ``T`` atoms each.

    Attributes:
      indices: ``(N, T)`` int32 atom numbers, in order of selection; unused
        slots hold the dictionary size (one past the last atom).
      coefs: ``(N, T)`` float32 coefficients, 0 in unused slots.
    """
    indices: jax.Array
    coefs: jax.Array


def to_dense(codes: SparseCodes, n_atoms: int) -> jax.Array:
    """``(N, n_atoms)`` dense coefficient matrix of ``codes`` (signals in rows)."""
    n = codes.indices.shape[0]
    return jnp.zeros((n, n_atoms + 1), codes.coefs.dtype).at[
        jnp.arange(n)[:, None], codes.indices].add(codes.coefs)[:, :n_atoms]


def _argmax_abs(a):
    """``argmax(|a|, axis=0)`` of a ``(K, C)`` array: first index of the maximum.

    A loop over the ``K`` rows, each step vectorised over the ``C``
    columns: XLA's CPU argmax (a variadic reduction) is several times
    slower.
    """
    m = jnp.abs(a)

    def step(k, state):
        best, idx = state
        better = m[k] > best                               # strict: the first maximum wins
        return jnp.where(better, m[k], best), jnp.where(better, k, idx)

    init = (jnp.full(m.shape[1:], -1.0, m.dtype), jnp.zeros(m.shape[1:], jnp.int32))
    return jax.lax.fori_loop(0, m.shape[0], step, init, unroll=8)[1]


def _omp_chunk(x, dictionary, gram, sparsity, correlate):
    """OMP-Box's Cholesky OMP on a ``(C, n)`` block of signals, vectorised.

    Keeps ``Linv``, the inverse of the Cholesky factor of the selected atoms'
    Gram matrix, and ``z = Linv · (Dᵀx)_I``, so that the coefficients are
    ``Linvᵀ z``; the residual correlations come from the residual (a dense
    matmul), not from ``G``: the same numbers. A signal that has stopped
    keeps its residual, so recomputing its correlations changes nothing.
    ``correlate`` maps ``(C, n)`` residuals to ``(K, C)`` correlations.
    """
    c, n = x.shape
    k_atoms = gram.shape[0]
    t = sparsity
    alpha0 = correlate(x)
    rows = jnp.arange(c)
    atoms = dictionary.T

    def body(k, state):
        ind, linv, z, dsel, alpha, active = state
        pos = _argmax_abs(alpha)
        a = alpha[pos, rows]
        already = jnp.any(ind == pos[:, None], axis=1)
        ok = active & ~already & (a * a >= _OMP_TINY)
        # Next row of the Cholesky factor: L w = G[I, pos].
        g = gram[pos[:, None], jnp.minimum(ind, k_atoms - 1)]
        g = jnp.where(jnp.arange(t) < k, g, 0.0)
        w = jnp.einsum("ctu,cu->ct", linv, g)
        one_minus = 1.0 - jnp.sum(w * w, axis=1)
        ok = ok & ((k == 0) | (one_minus > _OMP_TINY))
        s = jnp.where(k == 0, 1.0, jnp.sqrt(jnp.where(ok, one_minus, 1.0)))
        e_k = (jnp.arange(t) == k).astype(x.dtype)
        new_row = (e_k[None, :] - jnp.einsum("ct,ctu->cu", w, linv)) / s[:, None]
        zk = (alpha0[pos, rows] - jnp.sum(w * z, axis=1)) / s
        okc = ok[:, None]
        ind = ind.at[:, k].set(jnp.where(ok, pos, k_atoms))
        linv = linv.at[:, k, :].set(jnp.where(okc, new_row, 0.0))
        z = z.at[:, k].set(jnp.where(ok, zk, 0.0))
        dsel = dsel.at[:, k, :].set(jnp.where(okc, atoms[pos], 0.0))
        coef = jnp.einsum("ctu,ct->cu", linv, z)
        alpha = correlate(x - jnp.einsum("ct,ctn->cn", coef, dsel))
        return ind, linv, z, dsel, alpha, ok

    state = (jnp.full((c, t), k_atoms, jnp.int32), jnp.zeros((c, t, t), x.dtype),
             jnp.zeros((c, t), x.dtype), jnp.zeros((c, t, n), x.dtype), alpha0,
             jnp.ones((c,), bool))
    ind, linv, z, dsel, _, _ = jax.lax.fori_loop(0, t, body, state)
    coef = jnp.einsum("ctu,ct->cu", linv, z)
    return ind, coef, x - jnp.einsum("ct,ctn->cn", coef, dsel)


def joint_dictionary(dictionary: ArrayLike) -> jax.Array:
    """``[[D/√2, D, 0], [D/√2, 0, D]]``: common atoms, then each source's innovations.

    Args:
      dictionary: ``(n, K)`` dictionary ``D``.

    Returns:
      ``(2n, 3K)`` joint dictionary (unit-norm columns if ``D``'s are).
    """
    d = jnp.asarray(dictionary, jnp.float32)
    z = jnp.zeros_like(d)
    s = d / math.sqrt(2.0)
    return jnp.block([[s, d, z], [s, z, d]])


def _joint_correlate(d):
    """``D_Jᵀ[r₁; r₂] = [(Dᵀr₁ + Dᵀr₂)/√2, Dᵀr₁, Dᵀr₂]``: a third of the dense product.

    Residuals ``(C, 2n)`` in, correlations ``(3K, C)`` out.
    """
    n = d.shape[0]

    def correlate(r):
        a1, a2 = d.T @ r[:, :n].T, d.T @ r[:, n:].T
        return jnp.concatenate([(a1 + a2) / math.sqrt(2.0), a1, a2], axis=0)
    return correlate


@functools.partial(jax.jit, static_argnames=("sparsity", "joint"))
def _omp_chunk_jit(x, dictionary, gram, *, sparsity, joint):
    if joint:                       # the joint dictionary's innovation-1 block is D itself
        n, k = dictionary.shape[0] // 2, dictionary.shape[1] // 3
        correlate = _joint_correlate(dictionary[:n, k:2 * k])
    else:
        correlate = lambda r: dictionary.T @ r.T  # noqa: E731
    return _omp_chunk(x, dictionary, gram, sparsity, correlate)


def _omp_batched(x, dictionary, *, sparsity, joint=False, chunk=CHUNK):
    """Batch OMP of all rows of ``x`` (host array), ``chunk`` rows per call.

    One compiled program per chunk shape and dictionary, whatever the number
    of signals (image sizes differ; a program per size would cost a compile
    each). Returns host arrays ``(indices, coefs, residuals)``.
    """
    x = np.asarray(x, np.float32)
    n_sig = x.shape[0]
    dictionary = jnp.asarray(dictionary, jnp.float32)
    gram = dictionary.T @ dictionary
    size = chunk
    n_chunks = max(-(-n_sig // size), 1)
    xp = np.zeros((n_chunks * size, x.shape[1]), np.float32)
    xp[:n_sig] = x
    outs = [_omp_chunk_jit(xp[i * size:(i + 1) * size], dictionary, gram, sparsity=sparsity,
                           joint=joint) for i in range(n_chunks)]
    return tuple(np.concatenate([np.asarray(o[k]) for o in outs])[:n_sig] for k in range(3))


def omp(signals: ArrayLike, dictionary: ArrayLike, *, sparsity: int = SPARSITY,
        chunk: int = CHUNK) -> SparseCodes:
    """Orthogonal matching pursuit with a fixed number of atoms, batched.

    OMP-Box 10's ``omp(D, X, G, T)`` (Cholesky-based batch OMP): for each
    signal, pick the atom most correlated with the residual, project the
    signal on the picked atoms, repeat ``sparsity`` times. A signal stops
    early when the best atom is already picked or its correlation squared is
    below 1e-14, or when the new atom is linearly dependent on the picked
    ones (as OMP-Box does).

    Args:
      signals: ``(N, n)`` signals, one per row.
      dictionary: ``(n, K)`` dictionary with unit-norm columns.
      sparsity: atoms per signal ``T``.
      chunk: signals coded at once (memory ~ ``chunk · T · (n + T)`` floats).

    Returns:
      :class:`SparseCodes` with ``(N, T)`` indices and coefficients.
    """
    x = np.asarray(signals, np.float32)
    d = np.asarray(dictionary, np.float32)
    if x.ndim != 2 or d.ndim != 2 or x.shape[1] != d.shape[0]:
        raise ValueError(f"omp needs (N, n) signals and an (n, K) dictionary, got "
                         f"{x.shape} and {d.shape}")
    if not 1 <= sparsity <= d.shape[1]:
        raise ValueError(f"omp: sparsity must be in 1..{d.shape[1]}, got {sparsity}")
    ind, coef, _ = _omp_batched(x, d, sparsity=int(sparsity), chunk=int(chunk))
    return SparseCodes(jnp.asarray(ind), jnp.asarray(coef))
