"""The Transformer's "Add & Norm" box in Numba: residual add, dropout on the branch and
layer norm in one pass over each row (twins of ``numpy_ref/add_norm.py``).

Unfused, post-norm is three kernels, each a full pass over (tokens, D) forward and
backward: dropout writes y * mask, the add writes r, layer norm reads r. Here one row
of r = x + dropout(y) is built while it sits in L1 and normalized at once; backward
turns the layer-norm gradient into dx and dy in the same pass over the row. The mask is
the dropout kernel's (``pointwise._dropout_factor``: a hash of (seed, flat index)), and
the layer-norm arithmetic is ``rows.py``'s, operation for operation, so the results
are bit-identical to Dropout -> Add -> LayerNorm.
"""
from __future__ import annotations

import math

import numpy as np

from numba import prange

from ._math import _JIT, _row_sum, _row_sum_sq_dev, _rows
from ._threads import launch, parallel_kernel
from .pointwise import _dropout_factor, dropout_backward
from .rows import _LN_CHUNKS, _layer_norm_row_sums

# Work estimate for the thread policy: hashing an element's mask costs about one
# layer-norm element (splitmix64: 3 multiplies, 3 shifts, 4 xors; vectorized).
_MASK_COST = 1


def _mask_args(p, seed, dtype):
    """The dropout kernel's arguments (seed, threshold, scale, zero) in their Numba types."""
    dt = np.dtype(dtype).type
    return (np.uint64(seed & 0xFFFFFFFFFFFFFFFF), np.uint64(math.ceil(p * 2.0**53)),
            dt(1 / (1 - p)), dt(0))


@parallel_kernel(**_JIT)
def _add_norm_rows(x, y, w, b, masked, seed, threshold, scale, zero, eps, c, r, out, mean, rstd):
    n = x.shape[1]
    for i in prange(x.shape[0]):
        if masked:
            base = i * n
            for j in range(n):
                r[i, j] = x[i, j] + y[i, j] * _dropout_factor(seed, base + j, threshold, scale, zero)
        else:
            for j in range(n):
                r[i, j] = x[i, j] + y[i, j]
        mean[i] = _row_sum(r, i) / c                       # from here on: rows.py's layer norm
        mu = mean[i]
        rstd[i] = _row_sum_sq_dev(r, i, mu) / c
        rstd[i] = np.reciprocal(np.sqrt(rstd[i] + eps))
        rs = rstd[i]
        for j in range(n):
            out[i, j] = (r[i, j] - mu) * rs * w[j] + b[j]


def add_norm_forward(x, y, weight, bias, eps, p, seed):
    """LayerNorm(x + dropout(y)) over the last axis (see numpy_ref.add_norm_forward).

        for each row i in parallel:             # x, y seen as (R, C)
            r[i] = x[i] + y[i] * mask(seed, i*C + c)      (x[i] + y[i] when p == 0)
            mean = sum(r[i]) / C;  rstd = 1 / sqrt(sum((r[i] - mean)^2) / C + eps)
            out[i] = (r[i] - mean) * rstd * weight + bias

    Optimizations: one kernel instead of three (no dropped-y array; r written once and
    kept for backward, as layer norm keeps its input); the row stays in L1 from the add
    to the output; the mask is hashed on the fly and not hashed at all when p == 0.
    """
    # x (..., C), y (..., C), weight (C,) | None, bias (C,) | None -> out (..., C)
    dt = x.dtype.type
    c = x.shape[-1]
    x2 = _rows(x)
    if p == 1:                                   # the whole branch dropped, as dropout's zeros
        y2, p_run = np.zeros_like(x2), 0.0
    else:
        y2, p_run = _rows(y), p
    w = np.ones(c, x.dtype) if weight is None else np.ascontiguousarray(weight)
    b = np.zeros(c, x.dtype) if bias is None else np.ascontiguousarray(bias)
    r = np.empty_like(x2)
    out = np.empty(x.shape, dtype=x.dtype)
    mean = np.empty(x2.shape[0], dtype=x.dtype)
    rstd = np.empty(x2.shape[0], dtype=x.dtype)
    masked = p_run > 0
    launch(_add_norm_rows, x2.size * (1 + _MASK_COST * masked), x2, y2, w, b, masked,
           *_mask_args(p_run, seed, x.dtype), dt(eps), dt(c), r, out.reshape(-1, c), mean, rstd)
    return out, ((r, mean, rstd, weight, bias is not None), p, seed)


@parallel_kernel(**_JIT)
def _add_norm_backward_rows(dout, r, w, mean, rstd, c, masked, seed, threshold, scale, zero,
                            dr, dy, dw_part, db_part):
    rows, n = r.shape
    chunks = dw_part.shape[0]
    per = (rows + chunks - 1) // chunks
    for k in prange(chunks):
        for i in range(k * per, min(rows, (k + 1) * per)):
            mu, rs = mean[i], rstd[i]                      # rows.py's layer-norm backward
            s_g, s_gx = _layer_norm_row_sums(dout, r, w, i, mu, rs)
            m_g = s_g / c
            m_gx = s_gx / c
            for j in range(n):
                xhat = (r[i, j] - mu) * rs
                dr[i, j] = rs * ((dout[i, j] * w[j] - m_g) - xhat * m_gx)
                dw_part[k, j] += dout[i, j] * xhat
                db_part[k, j] += dout[i, j]
            if masked:                                     # dy = dr * mask, while dr[i] is in L1
                base = i * n
                for j in range(n):
                    dy[i, j] = dr[i, j] * _dropout_factor(seed, base + j, threshold, scale, zero)


def add_norm_backward(dout, cache):
    """Gradients of add_norm (see numpy_ref.add_norm_backward).

        for each chunk k of rows in parallel:
            for each row i of chunk k:
                dr[i] = layer norm's dx (rows.layer_norm_backward, same arithmetic)
                dw_part[k] += dout[i] * xhat[i];  db_part[k] += dout[i]
                dy[i] = dr[i] * mask(seed, i*C + c)
        dx = dr;  dweight, dbias = sum_k dw_part[k], sum_k db_part[k]

    Optimizations: one pass for dx, dy, dweight and dbias; with p == 0 dy is dx itself
    (as an add's backward: the engine never writes into a gradient it did not allocate);
    a constant number of dweight/dbias chunks, so the result does not depend on the
    thread count.
    """
    # dout (..., C) -> dx (..., C), dy (..., C), dweight (C,) | None, dbias (C,) | None
    (r, mean, rstd, weight, has_bias), p, seed = cache
    dt = r.dtype.type
    rows, c = r.shape
    w = np.ones(c, r.dtype) if weight is None else np.ascontiguousarray(weight)
    dr = np.empty(dout.shape, dtype=r.dtype)
    masked = 0 < p < 1
    dy = np.empty_like(dr) if masked else dr
    chunks = max(1, min(rows, _LN_CHUNKS))
    dw_part = np.zeros((chunks, c), dtype=r.dtype)
    db_part = np.zeros((chunks, c), dtype=r.dtype)
    launch(_add_norm_backward_rows, r.size * (1 + _MASK_COST * masked), _rows(dout), r, w, mean,
           rstd, dt(c), masked, *_mask_args(p if masked else 0.0, seed, r.dtype),
           dr.reshape(-1, c), dy.reshape(-1, c), dw_part, db_part)
    if p == 1:
        dy = np.zeros_like(dr)
    dweight = dw_part.sum(axis=0) if weight is not None else None
    dbias = db_part.sum(axis=0) if has_bias else None
    return dr, dy, dweight, dbias


# ------------------------------------------------------------------ pre-norm's residual


@parallel_kernel(**_JIT)
def _add_dropout_flat(x, y, seed, threshold, scale, zero, out):
    for i in prange(x.shape[0]):
        out[i] = x[i] + y[i] * _dropout_factor(seed, i, threshold, scale, zero)


def add_dropout_forward(x, y, p, seed):
    """x + dropout(y) (see numpy_ref.add_dropout_forward).

        for each flat index i in parallel:
            out[i] = x[i] + y[i] * mask(seed, i)

    Optimizations: one pass instead of two (no dropped-y array); p == 0 is a plain add.
    """
    # x (...), y (...) same shape -> out (...); cache (p, seed)
    if p == 0:
        return x + y, (p, seed)
    if p == 1:
        return x + np.zeros_like(y), (p, seed)
    out = np.empty(x.shape, dtype=x.dtype)
    launch(_add_dropout_flat, x.size * (1 + _MASK_COST), np.ascontiguousarray(x).reshape(-1),
           np.ascontiguousarray(y).reshape(-1), *_mask_args(p, seed, x.dtype), out.reshape(-1))
    return out, (p, seed)


def add_dropout_backward(dout, cache):
    """dx = dout; dy = dout * mask (the dropout kernel's backward, mask regenerated)."""
    # dout (...) -> dx (...), dy (...)
    return dout, dropout_backward(dout, cache)
