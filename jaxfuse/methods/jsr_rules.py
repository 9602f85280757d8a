"""JSR's and JSRSD's fusion rules on joint sparse codes, synthesis and patch reassembly.

The weighting of the innovations (ℓ1 norms; JSRSD's saliency), the fused
patches ``D·γ`` and the reference's running-halving reassembly, steps 4–5 of
:mod:`jaxfuse.methods.jsr`.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxfuse.methods.ksvd import DICT_SIZE
from jaxfuse.methods.sparse import CHUNK, SparseCodes

#: JSRSD: weight of the local saliency (``0.4*sl + 0.6*sg``).
LOCAL_WEIGHT = 0.4
#: JSRSD: radius of the neighbourhood of patch centres (5 × 5).
SALIENCY_RADIUS = 2


def _patch_grid(img, size, step):
    """``(rows, cols, size·size)`` patches at a stride, flattened row by row."""
    h, w = img.shape
    pr, pc = (h - size) // step + 1, (w - size) // step + 1
    # Rows, then columns: 2·size slices (size² slices take XLA seconds to compile).
    rows = jnp.stack([img[a:a + (pr - 1) * step + 1:step] for a in range(size)], axis=1)
    cols = jnp.stack([rows[:, :, b:b + (pc - 1) * step + 1:step] for b in range(size)], axis=-1)
    return jnp.transpose(cols, (0, 2, 1, 3)).reshape(pr, pc, size * size)


def sequential_average(patches: ArrayLike) -> jax.Array:
    """The reference's patch reassembly: raster order, ``pixel = (patch + pixel)/2``.

    Equivalent closed form: a pixel covered by ``K`` patches ends as
    ``Σ_r 2^-(K-r) · patch_r`` (``r = 1..K`` in raster order of the patches'
    positions), starting from a zero image.

    Args:
      patches: ``(Pr, Pc, p, p)``: the patch with top-left corner ``(i, j)``
        at ``[i, j]`` (stride 1).

    Returns:
      ``(Pr + p − 1, Pc + p − 1)`` image.
    """
    v = jnp.asarray(patches, jnp.float32)
    if v.ndim != 4 or v.shape[2] != v.shape[3]:
        raise ValueError(f"sequential_average needs (Pr, Pc, p, p) patches, got {v.shape}")
    pr, pc, p, _ = v.shape
    h, w = pr + p - 1, pc + p - 1
    y = jnp.arange(h)[:, None]
    x = jnp.arange(w)[None, :]
    lo_y, lo_x = jnp.maximum(0, y - p + 1), jnp.maximum(0, x - p + 1)
    n_x = jnp.minimum(pc - 1, x) - lo_x + 1
    total = (jnp.minimum(pr - 1, y) - lo_y + 1) * n_x
    # Pixel (y, x) is pixel (a, b) of the patch at (y − a, x − b): pad so that
    # one (h, w) window per (a, b) holds those patch pixels (0 where none).
    vp = jnp.pad(v, ((p - 1, p - 1), (p - 1, p - 1), (0, 0), (0, 0)))

    def add(ab, out):
        a, b = ab // p, ab % p
        part = jax.lax.dynamic_slice(vp, (p - 1 - a, p - 1 - b, a, b), (h, w, 1, 1))[:, :, 0, 0]
        rank = (y - a - lo_y) * n_x + (x - b - lo_x)               # 0-based visiting order
        return out + jnp.exp2(-(total - rank).astype(jnp.float32)) * part

    return jax.lax.fori_loop(0, p * p, add, jnp.zeros((h, w), jnp.float32))


def _weights(s1, s2):
    """``s_i / max(s₁, s₂)``; 0 where both are 0 (NaN in the reference)."""
    m = jnp.maximum(s1, s2)
    safe = jnp.where(m > 0, m, 1.0)
    return jnp.where(m > 0, s1 / safe, 0.0), jnp.where(m > 0, s2 / safe, 0.0)


def _block_codes(codes: SparseCodes, k_atoms: int, block: int):
    """Innovation ``block`` (1 or 2) of joint codes as sparse codes over ``D``."""
    mine = (codes.indices // k_atoms) == block
    return (jnp.where(mine, codes.indices - block * k_atoms, -1),
            jnp.where(mine, codes.coefs, 0.0))


def local_saliency(indices: ArrayLike, coefs: ArrayLike, *, n_atoms: int = DICT_SIZE,
                   radius: int = SALIENCY_RADIUS) -> jax.Array:
    """JSRSD's local saliency ``sl = 1 − exp(−d)`` of one source's innovations.

    ``d(p) = (1/M) Σ_q ‖u(p) − u(q)‖₂ / (1 + 2‖p − q‖)`` over the ``M`` other
    patch positions ``q`` of the ``(2·radius+1)²`` neighbourhood of ``p``
    (``M = 24``); ``‖p − q‖`` in patch positions. Positions whose
    neighbourhood leaves the grid get 0 (they use the ℓ1 rule).

    Args:
      indices: ``(Pr, Pc, T)`` atom numbers of the innovation codes, below
        ``n_atoms`` (a negative number: an empty slot).
      coefs: ``(Pr, Pc, T)`` their coefficients.
      n_atoms: dictionary size.
      radius: neighbourhood radius (2 in the reference).

    Returns:
      ``(Pr, Pc)`` local saliency.
    """
    ind = jnp.asarray(indices, jnp.int32)
    val = jnp.asarray(coefs, jnp.float32)
    if ind.ndim != 3 or ind.shape != val.shape:
        raise ValueError(f"local_saliency needs (Pr, Pc, T) indices and coefficients, got "
                         f"{ind.shape} and {val.shape}")
    pr, pc, t = ind.shape
    r = radius
    h, w = pr - 2 * r, pc - 2 * r
    if h <= 0 or w <= 0:
        return jnp.zeros((pr, pc), jnp.float32)
    # Dense codes, one extra slot that stays 0 for the empty entries.
    width = n_atoms + 1
    slot = jnp.where(ind >= 0, ind, width - 1)
    val = jnp.where(ind >= 0, val, 0.0)
    dense = jnp.zeros((pr * pc, width), jnp.float32).at[
        jnp.arange(pr * pc)[:, None], slot.reshape(pr * pc, t)].add(val.reshape(pr * pc, t))
    dense = dense.reshape(-1)
    py, px = np.meshgrid(np.arange(r, r + h), np.arange(r, r + w), indexing="ij")
    centre = (py * pc + px)[..., None]
    sc, vc = slot[r:r + h, r:r + w], val[r:r + h, r:r + w]
    offsets = np.array([(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)
                        if dy or dx], np.int32)
    count = len(offsets)
    weights = jnp.asarray(1.0 / (1.0 + 2.0 * np.hypot(offsets[:, 0], offsets[:, 1])), jnp.float32)

    def add(i, acc):
        dy, dx = offsets[i, 0], offsets[i, 1]
        # ‖u_c − u_q‖² over supp(u_c), plus u_q's energy off supp(u_c): no cancellation.
        sq = jax.lax.dynamic_slice(slot, (r + dy, r + dx, 0), (h, w, t))
        vq = jax.lax.dynamic_slice(val, (r + dy, r + dx, 0), (h, w, t))
        q_at_c = dense[(centre + dy * pc + dx) * width + sc]
        c_at_q = dense[centre * width + sq]
        d2 = (jnp.sum((vc - q_at_c) ** 2, axis=-1)
              + jnp.sum(jnp.where(c_at_q == 0.0, vq * vq, 0.0), axis=-1))
        return acc + jnp.sqrt(d2) * weights[i]

    offsets = jnp.asarray(offsets)
    acc = jax.lax.fori_loop(0, count, add, jnp.zeros((h, w), jnp.float32))
    return jnp.zeros((pr, pc), jnp.float32).at[r:r + h, r:r + w].set(1.0 - jnp.exp(-acc / count))


def fuse_coefficients(common: ArrayLike, unique1: ArrayLike, unique2: ArrayLike, *,
                      common_scale: float = 1.0, saliency1: ArrayLike | None = None,
                      saliency2: ArrayLike | None = None) -> jax.Array:
    """The fused coefficients ``common_scale·c + w₁u₁ + w₂u₂`` of each patch.

    ``w_i = s_i / max(s₁, s₂)`` with ``s_i = ‖u_i‖₁`` (JSR) or the given
    saliencies (JSRSD); 0 where both are 0.

    Args:
      common, unique1, unique2: ``(N, K)`` dense coefficients (patches in
        rows) of the common part and of the two sources' innovations.
      common_scale: 1 for JSR, ``1/√2`` for JSRSD (the reference's scalings).
      saliency1, saliency2: ``(N,)`` per-patch saliencies; default the ℓ1
        norms.

    Returns:
      ``(N, K)`` fused coefficients.
    """
    c, u1, u2 = (jnp.asarray(a, jnp.float32) for a in (common, unique1, unique2))
    if c.ndim != 2 or c.shape != u1.shape or c.shape != u2.shape:
        raise ValueError(f"fuse_coefficients needs three (N, K) arrays of one shape, got "
                         f"{c.shape}, {u1.shape}, {u2.shape}")
    s1 = jnp.sum(jnp.abs(u1), axis=1) if saliency1 is None else jnp.asarray(saliency1, jnp.float32)
    s2 = jnp.sum(jnp.abs(u2), axis=1) if saliency2 is None else jnp.asarray(saliency2, jnp.float32)
    w1, w2 = _weights(s1, s2)
    return common_scale * c + w1[:, None] * u1 + w2[:, None] * u2


def _synthesize(coefs, atoms, d):
    """``D·γ`` for sparse codes (atom ``K``: empty), CHUNK patches at a time."""
    n_sig, t = coefs.shape
    n = d.shape[0]
    d_pad = jnp.concatenate([d.T, jnp.zeros((1, n), d.dtype)])
    size = min(CHUNK, n_sig)
    n_chunks = -(-n_sig // size)
    pad = n_chunks * size - n_sig
    c = jnp.pad(coefs, ((0, pad), (0, 0))).reshape(n_chunks, size, t)
    a = jnp.pad(atoms, ((0, pad), (0, 0)), constant_values=d.shape[1]).reshape(n_chunks, size, t)
    out = jax.lax.map(lambda ca: jnp.einsum("nt,ntd->nd", ca[0], d_pad[ca[1]]), (c, a))
    return out.reshape(-1, n)[:n_sig]


@functools.partial(jax.jit, static_argnames=("patch",))
def _joint_patches(i1, i2, *, patch):
    """``(Pr·Pc, 2p²)``: every patch of both images at stride 1, stacked ``[x₁; x₂]``."""
    g1, g2 = _patch_grid(i1, patch, 1), _patch_grid(i2, patch, 1)
    return jnp.concatenate([g1, g2], axis=-1).reshape(-1, 2 * g1.shape[-1])


@functools.partial(jax.jit, static_argnames=("grid", "saliency", "local_weight", "radius"))
def _combine(ind, coef, d, *, grid, saliency, local_weight, radius):
    """Fusion rule, synthesis and reassembly, from the joint codes of a ``grid`` of patches."""
    pr, pc = grid
    k_atoms = d.shape[1]
    patch = math.isqrt(d.shape[0])
    sparsity = ind.shape[1]
    codes = SparseCodes(ind, coef)
    (ia, va), (ib, vb) = _block_codes(codes, k_atoms, 1), _block_codes(codes, k_atoms, 2)
    n1, n2 = jnp.sum(jnp.abs(va), axis=1), jnp.sum(jnp.abs(vb), axis=1)
    if saliency:
        shape = (pr, pc, sparsity)
        sl1 = local_saliency(ia.reshape(shape), va.reshape(shape), n_atoms=k_atoms,
                             radius=radius).reshape(-1)
        sl2 = local_saliency(ib.reshape(shape), vb.reshape(shape), n_atoms=k_atoms,
                             radius=radius).reshape(-1)
        py, px = jnp.divmod(jnp.arange(pr * pc), pc)
        inner = ((py >= radius) & (py < pr - radius) & (px >= radius) & (px < pc - radius))
        s1 = jnp.where(inner, local_weight * sl1 + (1 - local_weight) * n1, n1)
        s2 = jnp.where(inner, local_weight * sl2 + (1 - local_weight) * n2, n2)
        c_scale = 1.0 / math.sqrt(2.0)
    else:
        s1, s2, c_scale = n1, n2, 1.0
    w1, w2 = _weights(s1, s2)
    blk = ind // k_atoms                                   # 0 common, 1/2 innovations, 3 empty
    scale = jnp.stack([jnp.full_like(w1, c_scale), w1, w2, jnp.zeros_like(w1)], axis=1)
    fused = jnp.take_along_axis(scale, blk, axis=1) * coef
    atoms = jnp.where(blk < 3, ind % k_atoms, k_atoms)
    patches = _synthesize(fused, atoms, d)
    return sequential_average(patches.reshape(pr, pc, patch, patch))
