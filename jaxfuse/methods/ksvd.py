"""K-SVD dictionary learning (KSVD-Box 13's ``ksvd``), as JSR and JSRSD train their dictionaries.

The approximate atom update by default (``exact=True``: the SVD update),
dead-atom replacement and ``cleardict`` as KSVD-Box does them; the coding
step is :func:`jaxfuse.methods.sparse.omp`. :mod:`jaxfuse.methods.jsr` says
how the fusion uses it.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxfuse.methods.sparse import CHUNK, SPARSITY, SparseCodes, _omp_batched

#: Number of atoms of the K-SVD dictionary (``dic_size``).
DICT_SIZE = 256
#: K-SVD iterations (``params.iternum``).
KSVD_ITERATIONS = 50
#: KSVD-Box's default mutual-coherence threshold of ``cleardict``.
MU_THRESH = 0.99
# KSVD-Box: an atom used by fewer signals is cleared; dead-atom candidates.
_USE_THRESH = 4
_DEAD_CANDIDATES = 5000
# Users of an atom visited per step of the K-SVD atom update.
_BLOCK = 1024


def _atom_entries(order, start, count, block, b, n_entries):
    """Block ``b`` of an atom's sorted entries; the padding entry past its end."""
    e = jax.lax.dynamic_slice(order, (start + b * block,), (block,))
    valid = jnp.arange(block) + b * block < count
    return jnp.where(valid, e, n_entries), valid


def _optimize_atom(resid, vals, order, start, count, d_j, *, t, block, exact):
    """KSVD-Box's ``optimize_atom`` for an atom with ``count > 0`` users.

    ``resid`` is ``X − DΓ`` (signals in rows) and ``vals`` the flattened
    ``(N·T)`` coefficients, each with one trailing zero (the target of the
    padding entries, so that every gather and scatter is in bounds);
    ``order`` holds the entries sorted by atom: the atom's users are entries
    ``order[start : start+count]``, visited in blocks of ``block``.
    Returns the new atom and the updated ``resid`` and ``vals``.
    """
    n = resid.shape[1]
    n_entries = vals.shape[0] - 1
    n_blocks = (count + block - 1) // block
    inb = "promise_in_bounds"

    def gather(b, resid, vals):
        e, valid = _atom_entries(order, start, count, block, b, n_entries)
        sig = e // t                                       # the padding entry -> the zero row
        gam = jnp.where(valid, vals.at[e].get(mode=inb), 0.0)
        rows = jnp.where(valid[:, None], resid.at[sig].get(mode=inb), 0.0)
        return e, sig, valid, gam, rows

    if exact:
        def acc(b, m):
            _, _, _, gam, rows = gather(b, resid, vals)
            err = rows + gam[:, None] * d_j[None, :]       # rows of E_j = X - DΓ + d_j γ_j
            return m + err.T @ err
        m = jax.lax.fori_loop(0, n_blocks, acc, jnp.zeros((n, n), resid.dtype))
        _, vecs = jnp.linalg.eigh(m)
        atom = vecs[:, -1]                                 # top left singular vector of E_j
    else:
        def acc(b, carry):
            a, g2 = carry
            _, _, _, gam, rows = gather(b, resid, vals)
            return a + rows.T @ gam, g2 + gam @ gam
        a, g2 = jax.lax.fori_loop(0, n_blocks, acc, (jnp.zeros((n,), resid.dtype), 0.0))
        atom = a + d_j * g2                                # E_j γ_jᵀ
        atom = atom / jnp.linalg.norm(atom)
    proj = atom @ d_j

    def update(b, carry):
        resid, vals = carry
        e, sig, valid, gam, rows = gather(b, resid, vals)
        g = jnp.where(valid, rows @ atom + proj * gam, 0.0)   # γ_j = atomᵀ E_j
        new_rows = rows + gam[:, None] * d_j[None, :] - g[:, None] * atom[None, :]
        return (resid.at[sig].set(new_rows, mode=inb), vals.at[e].set(g, mode=inb))

    resid, vals = jax.lax.fori_loop(0, n_blocks, update, (resid, vals))
    return atom, resid, vals


def _pad_one(a):
    """``a`` with one trailing zero row (or element)."""
    return jnp.concatenate([a, jnp.zeros((1,) + a.shape[1:], a.dtype)])


def _sort_by_atom(ind, k_atoms, block):
    """Entries of the codes sorted by atom, each atom's start and count."""
    flat = ind.reshape(-1)
    order = jnp.argsort(flat, stable=True).astype(jnp.int32)
    counts = jnp.bincount(flat, length=k_atoms + 1)[:k_atoms].astype(jnp.int32)
    starts = (jnp.cumsum(counts) - counts).astype(jnp.int32)
    order = jnp.concatenate([order, jnp.full((block,), flat.shape[0], jnp.int32)])
    return order, starts, counts


def _normalized(v):
    return v / jnp.linalg.norm(v)


@functools.partial(jax.jit, static_argnames=("dict_size",))
def _ksvd_init(x, valid, key, *, dict_size):
    """KSVD-Box's initial dictionary: random signals of squared norm > 1e-6, normalised."""
    usable = valid & (jnp.sum(x * x, axis=1) > 1e-6)
    prio = jnp.where(usable, jax.random.uniform(key, (x.shape[0],)), 2.0)
    return jax.vmap(_normalized)(x[jnp.argsort(prio)[:dict_size]]).T


@functools.partial(jax.jit, static_argnames=("exact", "block"))
def _ksvd_update(x, valid, d, ind, coef, resid, key, mu_thresh, *, exact, block):
    """One K-SVD dictionary update (after the sparse coding), then ``cleardict``."""
    n_sig = x.shape[0]
    dict_size = d.shape[1]
    t = ind.shape[1]
    k_perm, k_dead = jax.random.split(key)
    order, starts, counts = _sort_by_atom(ind, dict_size, block)
    vals = _pad_one(coef.reshape(-1))
    resid = _pad_one(resid)
    perm = jax.random.permutation(k_perm, dict_size)

    def live(j, d, resid, vals, unused, replaced):
        atom, resid, vals = _optimize_atom(resid, vals, order, starts[j], counts[j], d[:, j],
                                           t=t, block=block, exact=exact)
        return d.at[:, j].set(atom), resid, vals, unused, replaced

    def dead(j, d, resid, vals, unused, replaced):
        # Worst-represented of up to 5000 random unused signals.
        u = jnp.where(unused, jax.random.uniform(jax.random.fold_in(k_dead, j), (n_sig,)), 2.0)
        cand = jax.lax.top_k(-u, min(_DEAD_CANDIDATES, n_sig))[1]
        err = jnp.where(unused[cand], jnp.sum(resid[cand] ** 2, axis=1), -jnp.inf)
        i = cand[jnp.argmax(err)]
        return (d.at[:, j].set(_normalized(x[i])), resid, vals, unused.at[i].set(False),
                replaced.at[j].set(True))

    def atom_step(jj, carry):
        j = perm[jj]
        return jax.lax.cond(counts[j] > 0, live, dead, j, *carry)

    d, resid, vals, unused, replaced = jax.lax.fori_loop(
        0, dict_size, atom_step, (d, resid, vals, valid, jnp.zeros((dict_size,), bool)))

    # cleardict: coherent or rarely used atoms -> worst-represented unused signals.
    err = jnp.sum(resid[:-1] * resid[:-1], axis=1)
    used = (jnp.abs(vals[:-1]) > 1e-7).astype(jnp.int32)
    usecount = jnp.zeros((dict_size + 1,), jnp.int32).at[ind.reshape(-1)].add(used)[:dict_size]

    def clear(j, carry):
        d, unused = carry
        gj = (d.T @ d[:, j]).at[j].set(0.0)
        bad = ((jnp.max(gj * gj) > mu_thresh ** 2) | (usecount[j] < _USE_THRESH)) & ~replaced[j]
        i = jnp.argmax(jnp.where(unused, err, -jnp.inf))
        d = jnp.where(bad, d.at[:, j].set(_normalized(x[i])), d)
        return d, jnp.where(bad, unused.at[i].set(False), unused)

    d, _ = jax.lax.fori_loop(0, dict_size, clear, (d, unused))
    return d


def _ksvd_padded(x, valid, *, dict_size, sparsity, iterations, seed, exact, mu_thresh):
    """K-SVD on padded signals (``valid`` marks the real ones); Python loop over iterations."""
    key = jax.random.key(seed)
    k_init, k_loop = jax.random.split(key)
    xd = jnp.asarray(x)
    d = _ksvd_init(xd, valid, k_init, dict_size=dict_size)
    for it in range(iterations):
        ind, coef, resid = _omp_batched(x, d, sparsity=sparsity)
        d = _ksvd_update(xd, valid, d, ind, coef, resid, jax.random.fold_in(k_loop, it),
                         jnp.float32(mu_thresh), exact=bool(exact), block=_BLOCK)
    return d


def ksvd(signals: ArrayLike, *, dict_size: int = DICT_SIZE, sparsity: int = SPARSITY,
         iterations: int = KSVD_ITERATIONS, seed: int = 0, exact: bool = False,
         mu_thresh: float = MU_THRESH) -> jax.Array:
    """K-SVD dictionary training, as KSVD-Box 13's ``ksvd`` in sparsity mode.

    M. Aharon, M. Elad, A. Bruckstein, "K-SVD", IEEE TSP 54(11), 2006; the
    batch-OMP implementation of R. Rubinstein, M. Zibulevsky, M. Elad,
    Technion CS-2008-08. Initial atoms: ``dict_size`` random signals of
    squared norm > 1e-6, normalised. Each iteration: batch OMP
    (:func:`omp`) of every signal; every atom updated in a random order
    (approximate update unless ``exact``; an unused atom is replaced by the
    worst-represented of 5000 random unused signals); ``cleardict``.

    Args:
      signals: ``(N, n)`` training signals, one per row; ``N ≥ dict_size``.
      dict_size: number of atoms ``K``.
      sparsity: OMP atoms per signal.
      iterations: K-SVD iterations.
      seed: seeds the initial atoms, the atom order and the dead-atom draws.
      exact: SVD atom update instead of KSVD-Box's default alternating step.
      mu_thresh: ``cleardict`` coherence threshold (1 or more: no clearing
        for coherence; rarely used atoms are still replaced).

    Returns:
      ``(n, K)`` float32 dictionary with unit-norm columns.
    """
    x = np.asarray(signals, np.float32)
    if x.ndim != 2:
        raise ValueError(f"ksvd needs (N, n) signals, got shape {x.shape}")
    usable = int(np.sum(np.sum(x.astype(np.float64) ** 2, axis=1) > 1e-6))
    if usable < dict_size:
        raise ValueError(f"ksvd: {usable} training signals of non-zero norm, fewer than the "
                         f"{dict_size} atoms to train")
    if not 1 <= sparsity <= dict_size:
        raise ValueError(f"ksvd: sparsity must be in 1..{dict_size}, got {sparsity}")
    # Zero signals pad the set to a multiple of CHUNK (one compiled update per
    # multiple, not per size); they are never coded, used nor drawn.
    n_pad = -(-x.shape[0] // CHUNK) * CHUNK
    xp = np.zeros((n_pad, x.shape[1]), np.float32)
    xp[:x.shape[0]] = x
    valid = jnp.asarray(np.arange(n_pad) < x.shape[0])
    return _ksvd_padded(xp, valid, dict_size=int(dict_size), sparsity=int(sparsity),
                        iterations=int(iterations), seed=int(seed), exact=exact,
                        mu_thresh=float(mu_thresh))


def ksvd_update_atom(signals: ArrayLike, dictionary: ArrayLike, codes: SparseCodes, atom: int, *,
                     exact: bool = False) -> tuple[jax.Array, SparseCodes]:
    """One K-SVD atom update (the step :func:`ksvd` applies to every atom).

    With ``E = X − DΓ + d_j γ_j`` restricted to the signals that use atom
    ``j``: the approximate update (KSVD-Box's default) sets
    ``d_j = Eγ_jᵀ / ‖Eγ_jᵀ‖`` then ``γ_j = d_jᵀE``; the exact one takes the
    top singular pair of ``E``. The atom must have at least one user.

    Args:
      signals: ``(N, n)`` signals.
      dictionary: ``(n, K)`` dictionary.
      codes: the signals' :class:`SparseCodes`.
      atom: the atom ``j`` to update.
      exact: SVD update.

    Returns:
      The new ``(n,)`` atom and the codes with row ``j`` of Γ replaced.
    """
    x = jnp.asarray(signals, jnp.float32)
    d = jnp.asarray(dictionary, jnp.float32)
    ind, coef = jnp.asarray(codes.indices, jnp.int32), jnp.asarray(codes.coefs, jnp.float32)
    if not bool(jnp.any(ind == atom)):
        raise ValueError(f"ksvd_update_atom: atom {atom} has no users")
    new, vals = _update_one_atom(x, d, ind, coef, jnp.int32(atom), exact=bool(exact))
    return new, SparseCodes(ind, vals.reshape(coef.shape))


@functools.partial(jax.jit, static_argnames=("exact",))
def _update_one_atom(x, d, ind, coef, atom, *, exact):
    block = 64
    recon = jnp.einsum("nt,ntd->nd", coef, jnp.concatenate([d.T, jnp.zeros((1, d.shape[0]))])[ind])
    order, starts, counts = _sort_by_atom(ind, d.shape[1], block)
    new, _, vals = _optimize_atom(_pad_one(x - recon), _pad_one(coef.reshape(-1)), order,
                                  starts[atom], counts[atom], d[:, atom], t=ind.shape[1],
                                  block=block, exact=exact)
    return new, vals[:-1]
