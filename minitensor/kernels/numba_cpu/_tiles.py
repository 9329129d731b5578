"""Tile and layout helpers of the Numba attention kernels (``attention.py``).

    the flash kernels' tiles   _add_mask_and_causal, _blocks_t (BLOCK_Q, BLOCK_K)
    the multi-head kernels'    _load_cols(_t), _store_cols: one head's columns of a
                               packed (B, T, H*D) array <-> a contiguous (T, D) tile (or
                               its transpose); _gemm, _gemm_tn: their BLAS products;
                               _dropout_tile: the weights after dropout;
                               _masked_softmax, _softmax_dropout_backward: a head's
                               (L, S) tile in place; _one_query_weights, _weighted_rows:
                               the loops of the one-query (decoding) kernel
    masks                      _compact_mask_t, _compact_head_mask: the additive mask cut
                               to its own data (broadcast axes stay length 1, never copied)
    packed inputs              _QKV_INPUT, _qkv_columns: where q, k, v sit in each layout
    dropout                    _dropout_consts: the mask threshold and scale in the dtype
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._math import _JIT, _SUM_FLAGS, _exp, _row_dot, _row_max, _row_sum, _zero
from .pointwise import _dropout_factor

# Tile sizes (module globals are compile-time constants for Numba). Queries run along the
# vectorized axis, so the query block is the wider one. Measured on 2 AVX-512 cores.
BLOCK_Q = 128
BLOCK_K = 64

# 'contract' lets LLVM fuse a*b+c into one FMA (exact product, one rounding: never less
# accurate). No other fast-math flag: masks carry -inf, which 'ninf'/'nnan' would break.
_FASTMATH = {"contract"}


# ---------------------------------------------------------------- the flash kernels' tiles


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _add_mask_and_causal(sT, mask_t, has_mask, is_causal, b, h, q0, bq, k0, bk):
    """sT (bk, bq) += mask^T tile; causal: key j hidden from query i < j (sets -inf)."""
    if has_mask:
        mb = b if mask_t.shape[0] > 1 else 0
        mh = h if mask_t.shape[1] > 1 else 0
        per_query = mask_t.shape[3] > 1
        for jj in range(bk):
            mrow = mask_t[mb, mh, k0 + jj if mask_t.shape[2] > 1 else 0]  # (mq,)
            row = sT[jj]
            if per_query:
                for ii in range(bq):
                    row[ii] += mrow[q0 + ii]
            else:
                c = mrow[0]
                for ii in range(bq):
                    row[ii] += c
    if is_causal:
        for jj in range(bk):
            hidden = min(k0 + jj - q0, bq)  # queries q0 .. k0+jj-1 cannot see key k0+jj
            row = sT[jj]
            for ii in range(hidden):
                row[ii] = -np.inf


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _blocks_t(x, scale, out):
    """out (flat) <- x (T, C) * scale cut in row blocks of BLOCK_Q, each stored transposed
    (C, bq) and contiguous at offset q0 * C, so np.dot(k_blk, block) is a plain 'nn' GEMM
    (measured ~1.7x faster than np.dot(k_blk, x_blk.T) on these tile sizes)."""
    T, C = x.shape
    for q0 in range(0, T, BLOCK_Q):
        bq = min(BLOCK_Q, T - q0)
        blk = out[q0 * C:(q0 + bq) * C].reshape((C, bq))
        for ii in range(bq):
            for c in range(C):
                blk[c, ii] = x[q0 + ii, c] * scale


def _compact_mask_t(mask, shape, dtype):
    """The additive mask, un-broadcast to its own data and transposed: (mb, mh, mk, mq).

    Each axis is either full-size or 1; an axis with stride 0 (an np.broadcast_to view) or
    size 1 is reduced to 1, so a broadcast view is never copied to full size. The result
    has the size of the mask's distinct data (at most what the caller materialized).
    """
    if mask is None:
        return np.zeros((1, 1, 1, 1), dtype), False
    m = np.asarray(mask)
    m = m.reshape((1,) * (4 - m.ndim) + m.shape)
    np.broadcast_shapes(m.shape, shape)  # raises on a shape that does not broadcast
    index = tuple(slice(0, 1) if (n == 1 or st == 0) else slice(None)
                  for n, st in zip(m.shape, m.strides))
    m = m[index]
    return np.ascontiguousarray(np.swapaxes(m, 2, 3), dtype=dtype), True


# ---------------------------------------------------- the multi-head kernels' tiles
# The tile copies index columns with an unsigned number: with a signed one
# Numba adds a negative-index check per element, which stops the copy loop from
# vectorizing (measured 4x slower on 32x32 tiles). The transposing ones are left scalar on
# purpose: vectorized, they become gathers/scatters that cost ~0.3 s of LLVM time per
# call site in a cold compile; the kernels transpose as little as they can instead.


@njit(**_JIT)
def _load_cols(src, b, col, out):
    """out (T, W) = src[b, :, col:col + W] (src C-contiguous: unit-stride rows)."""
    c = np.uint64(col)
    for i in range(out.shape[0]):
        for d in range(out.shape[1]):
            out[i, d] = src[b, i, c + np.uint64(d)]


@njit(**_JIT)
def _load_cols_t(src, b, col, out):
    """out (W, T) = src[b, :, col:col + W]^T (src read row by row)."""
    for i in range(out.shape[1]):
        for d in range(out.shape[0]):
            out[d, i] = src[b, i, col + d]


@njit(**_JIT)
def _store_cols(x, dst, b, col):
    """dst[b, :, col:col + W] = x (T, W)."""
    c = np.uint64(col)
    for i in range(x.shape[0]):
        for d in range(x.shape[1]):
            dst[b, i, c + np.uint64(d)] = x[i, d]


@njit(**_JIT)
def _gemm(a, b, out):
    """out = a @ b, every operand a C-contiguous 2-D tile (one BLAS call). The kernels
    call np.dot only through here and _gemm_tn: each mix of layouts (a ``.T`` operand is
    F-ordered) is another specialization, ~0.5 s more of a cold compile."""
    np.dot(a, b, out)


@njit(**_JIT)
def _gemm_tn(a, b, out):
    """out = a^T @ b for C-contiguous tiles a (K, M), b (K, N): BLAS reads a transposed
    (no copy; the second and last np.dot specialization of the kernels)."""
    np.dot(a.T, b, out)


@njit(**_JIT)
def _dropout_tile(w, base, seed, threshold, scale, zero, factors, dropped):
    """The (L, S) weights w after dropout: w itself when nothing is dropped (p = 0),
    else ``dropped`` = w * factors, the factors (0 or 1/(1-p)) regenerated from the flat
    indices base .. base + L*S - 1 of the (B, H, L, S) weights and kept in ``factors``.
    Flat loops over the whole tile: long enough to vectorize the hash."""
    if threshold == 0:
        return w
    n = w.shape[0] * w.shape[1]
    wf, ff, df = w.reshape(n), factors.reshape(n), dropped.reshape(n)
    for x in range(n):
        ff[x] = _dropout_factor(seed, base + x, threshold, scale, zero)
        df[x] = wf[x] * ff[x]
    return dropped


# ------------------------------------------- per-tile softmax of the multi-head kernels


@njit(**_JIT)
def _masked_softmax(w, mask, b, h, has_mask, scale):
    """w (L, S) scores -> softmax(w * scale + mask) in place (mask (B|1, H|1, L|1, S)).
    A row whose keys are all masked -> zeros. The exponentials run over the flat tile."""
    L, S = w.shape
    mb, mh = b if mask.shape[0] > 1 else 0, h if mask.shape[1] > 1 else 0
    for i in range(L):
        mi = i if mask.shape[2] > 1 else 0
        if has_mask:
            for j in range(S):
                w[i, j] = w[i, j] * scale + mask[mb, mh, mi, j]
        else:
            for j in range(S):
                w[i, j] *= scale
        m = _row_max(w, i)
        if m == -np.inf:       # no visible key: exp(-inf - 0) = 0, then zeros below
            m = _zero(w)
        for j in range(S):
            w[i, j] -= m
    flat = w.reshape(L * S)
    for x in range(L * S):
        flat[x] = _exp(flat[x])
    for i in range(L):
        total = _row_sum(w, i)
        inv = np.reciprocal(total) if total > 0 else total     # a blocked row stays 0
        for j in range(S):
            w[i, j] *= inv


@njit(**_JIT, fastmath=_SUM_FLAGS)
def _one_query_weights(qsrc, ksrc, qc, kc, dk, mask, has_mask, scale, w, b, h):
    """w (1, S) <- the weights of the one query of head h (q columns qc.., k columns kc..).
    Plain loops: a (1, D) x (D, S) product is too small for a BLAS call to pay off."""
    for j in range(w.shape[1]):
        acc = _zero(w)
        for d in range(dk):
            acc += qsrc[b, 0, qc + np.uint64(d)] * ksrc[b, j, kc + np.uint64(d)]
        w[0, j] = acc
    _masked_softmax(w, mask, b, h, has_mask, scale)


@njit(**_JIT)
def _weighted_rows(w, src, b, col, out, ob, ocol, acc):
    """out[ob, 0, ocol:ocol+W] = w[0] @ src[b, :, col:col+W] (acc (W,) scratch)."""
    acc[:] = 0
    for j in range(w.shape[1]):
        x = w[0, j]
        for e in range(acc.shape[0]):
            acc[e] += x * src[b, j, col + np.uint64(e)]
    for e in range(acc.shape[0]):
        out[ob, 0, ocol + np.uint64(e)] = acc[e]


@njit(**_JIT)
def _softmax_dropout_backward(ds, w, factors, dropout, dweights, has_dweights, b, h, scale):
    """ds (L, S): the gradient of the dropped weights -> that of the scores, in place:
    dp = ds * factors (+ dweights[b, h]);  ds = w * (dp - rowsum(dp * w)) * scale."""
    L, S = ds.shape
    for i in range(L):
        if dropout:
            for j in range(S):
                ds[i, j] *= factors[i, j]
        if has_dweights:
            for j in range(S):
                ds[i, j] += dweights[b, h, i, j]
        r = _row_dot(ds, w, i)
        for j in range(S):
            ds[i, j] = w[i, j] * (ds[i, j] - r) * scale


def _compact_head_mask(mask, shape, dtype):
    """The additive mask as a contiguous (B|1, H|1, L|1, S) array: broadcast batch, head
    and query axes stay length 1 (a key padding mask is never copied per head or query),
    the key axis is materialized."""
    if mask is None:
        return np.zeros((1, 1, 1, 1), dtype), False
    m = np.asarray(mask)
    m = m.reshape((1,) * (4 - m.ndim) + m.shape)
    index = tuple(slice(0, 1) if (n == 1 or st == 0) else slice(None)
                  for n, st in zip(m.shape[:3], m.strides[:3]))
    m = m[index]
    m = np.ascontiguousarray(np.broadcast_to(m, m.shape[:3] + shape[3:]), dtype=dtype)
    # Numba compiles a kernel again for a read-only array (another type to it): a cached
    # read-only causal mask cost a second ~3 s compile of the attention kernel. A copy of
    # an (L, S) mask costs microseconds.
    return (m if m.flags.writeable else m.copy()), True


def _dropout_consts(p, dtype):
    """(threshold, scale, zero) of the dropout mask: p = 0 keeps everything (x * 1 is
    exact), p = 1 keeps nothing."""
    dt = dtype.type
    if p >= 1:
        return np.uint64(2**64 - 1), dt(0), dt(0)
    return np.uint64(math.ceil(p * 2.0**53)), dt(1 / (1 - p)), dt(0)


# For each layout (see kernels/layouts.py): which input holds q, k and v.
_QKV_INPUT = {"qkv": (0, 0, 0), "q,kv": (0, 1, 1), "q,k,v": (0, 1, 2)}


def _qkv_columns(arrays, layout):
    """(first column of q, of k, of v in the input holding it, head-columns width of
    q/k, of v) for the layout."""
    if layout == "qkv":
        e = arrays[0].shape[2] // 3
        return np.array([0, e, 2 * e]), e, e
    if layout == "q,kv":
        e = arrays[0].shape[2]
        return np.array([0, 0, e]), e, arrays[1].shape[2] - e
    return np.array([0, 0, 0]), arrays[0].shape[2], arrays[2].shape[2]
