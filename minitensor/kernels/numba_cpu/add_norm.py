"""The Transformer's "Add & Norm" box in Numba: residual add, dropout on the branch and
layer norm in one pass over each row (twins of ``numpy_ref/add_norm.py``).

Unfused, post-norm is three kernels, each a full pass over (tokens, D) forward and
backward: dropout writes y * mask, the add writes r, layer norm reads r. Here a row of
r = x + dropout(y) is built and normalized while it sits in L1; backward makes dx and
dy in the same pass over the row. The mask is the dropout kernel's (a hash of (seed,
flat index), ``pointwise._dropout_factor``) and the layer-norm arithmetic is
``rows.py``'s, operation for operation, so the results are bit-identical to Dropout ->
Add -> LayerNorm.

Each kernel exists with and without the mask, and the mask is hashed in a loop of its
own: a runtime "masked?" flag inside the row loops, or the mask hashed row by row or
block by block between the layer-norm loops, measured 170-370 us at (1024, 128) on one
core, against ~140 us for these separate loops (LLVM vectorizes each simple loop well;
the mixed ones it did not).
"""
from __future__ import annotations

import numpy as np

from numba import njit, prange

from ..buffers import empty
from ._background_compile import asked_ahead, compile_ahead
from ._math import _JIT, _row_sum, _row_sum_sq_dev, _rows
from ._threads import launch, parallel_kernel
from .pointwise import _dropout_factor, _mask_args, dropout_backward
from .rows import _LN_CHUNKS, _layer_norm_row_sums, ask_for_norm_backward, layer_norm_backward

# Work estimates for the thread policy (``launch``), in layer-norm-forward elements
# (rows.py's unit: ~0.35 ns), measured at (1024, 128) float32 on one core: the mask's
# hash ~0.5 ns an element, the fused forward ~0.6 ns, the fused backward ~0.8 ns.
_MASK_COST, _FORWARD_COST, _BACKWARD_COST = 1, 2, 2


@parallel_kernel(**_JIT)
def _keep_flat(seed, threshold, scale, zero, keep):
    for k in prange(keep.shape[0]):
        keep[k] = _dropout_factor(seed, k, threshold, scale, zero) != zero


@njit(**_JIT)
def _normalize_row(r, i, w, b, eps, c, out, mean, rstd):
    """out[i] = (r[i] - mean) * rstd * w + b, with mean[i] and rstd[i] stored: rows.py's
    layer norm, operation for operation (so the bits are those of LayerNorm on r).
    mean[i] and rstd[i] are stored after the row's loops, not between them: a store to
    an array LLVM cannot tell apart from r or out kept the last loop from vectorizing
    (the serial twin measured 3.7x slower at (1000, 64))."""
    mu = _row_sum(r, i) / c
    var = _row_sum_sq_dev(r, i, mu) / c                # the variance, rounded to dtype
    rs = np.reciprocal(np.sqrt(var + eps))
    for j in range(r.shape[1]):
        out[i, j] = (r[i, j] - mu) * rs * w[j] + b[j]
    mean[i] = mu
    rstd[i] = rs


@parallel_kernel(**_JIT)
def _add_norm_rows(x, y, w, b, eps, c, r, out, mean, rstd):
    n = x.shape[1]
    for i in prange(x.shape[0]):
        for j in range(n):
            r[i, j] = x[i, j] + y[i, j]
        _normalize_row(r, i, w, b, eps, c, out, mean, rstd)


@parallel_kernel(**_JIT)
def _add_dropout_norm_rows(x, y, keep, scale, zero, w, b, eps, c, r, out, mean, rstd):
    n = x.shape[1]
    for i in prange(x.shape[0]):
        for j in range(n):
            r[i, j] = x[i, j] + y[i, j] * (scale if keep[i, j] else zero)
        _normalize_row(r, i, w, b, eps, c, out, mean, rstd)


def add_norm_forward(x, y, weight, bias, eps, p, seed):
    """LayerNorm(x + dropout(y)) over the last axis (see numpy_ref.add_norm_forward).

        for each flat index k in parallel:      (only when 0 < p < 1)
            keep[k] = hash(seed, k) >= ceil(p * 2^53)
        for each row i in parallel:             # x, y seen as (R, C)
            r[i] = x[i] + y[i] * (scale if keep[i] else 0)          (x[i] + y[i] if p == 0)
            mean = sum(r[i]) / C;  rstd = 1 / sqrt(sum((r[i] - mean)^2) / C + eps)
            out[i] = (r[i] - mean) * rstd * weight + bias

    Optimizations: two kernels instead of three, and none with p == 0 (no dropped-y
    array; r is normalized while its row is in L1 and kept for backward, as layer norm
    keeps its input). The mask is hashed once, here, and kept as one byte per element
    (as PyTorch keeps its dropout mask): hashing it again in backward would cost ~0.5 ns
    an element, more than the whole layer-norm forward.
    """
    # x (..., C), y (..., C), weight (C,) | None, bias (C,) | None -> out (..., C)
    dt = x.dtype.type
    c = x.shape[-1]
    x2 = _rows(x)
    w = np.ones(c, x.dtype) if weight is None else np.ascontiguousarray(weight)
    b = np.zeros(c, x.dtype) if bias is None else np.ascontiguousarray(bias)
    r = empty(x2.shape, x2.dtype)
    out = empty(x.shape, x.dtype)
    mean = np.empty(x2.shape[0], dtype=x.dtype)
    rstd = np.empty(x2.shape[0], dtype=x.dtype)
    out2 = out.reshape(-1, c)
    keep, scale = None, dt(1)
    if 0 < p < 1:
        seed_, threshold, scale, zero = _mask_args(p, seed, x.dtype)
        keep = empty(x2.shape, np.bool_)
        launch(_keep_flat, _MASK_COST * x2.size, seed_, threshold, scale, zero, keep.reshape(-1))
        launch(_add_dropout_norm_rows, _FORWARD_COST * x2.size, x2, _rows(y), keep, scale, zero,
               w, b, dt(eps), dt(c), r, out2, mean, rstd)
        # the backward's kernel compiles in the background meanwhile (rows.py's reason)
        if not asked_ahead(_add_dropout_norm_backward_rows.serial):
            compile_ahead(_add_dropout_norm_backward_rows.serial, r, r, w, mean, rstd, dt(c),
                          keep, scale, dt(0), r, r, r, r)
    else:   # p == 1 drops the whole branch: r = x + 0, as after dropout's zeros
        y2 = _rows(y) if p == 0 else np.zeros_like(x2)
        launch(_add_norm_rows, _FORWARD_COST * x2.size, x2, y2, w, b, dt(eps), dt(c), r, out2,
               mean, rstd)
        ask_for_norm_backward(r, w, mean, rstd)      # its backward is layer norm's
    return out, ((r, mean, rstd, weight, bias is not None), keep, scale, p)


@parallel_kernel(**_JIT)
def _add_dropout_norm_backward_rows(dout, r, w, mean, rstd, c, keep, scale, zero, dr, dy,
                                    dw_part, db_part):
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
                d = rs * ((dout[i, j] * w[j] - m_g) - xhat * m_gx)
                dr[i, j] = d
                dy[i, j] = d * (scale if keep[i, j] else zero)   # dropout's backward
                dw_part[k, j] += dout[i, j] * xhat
                db_part[k, j] += dout[i, j]


def add_norm_backward(dout, cache):
    """Gradients of add_norm (see numpy_ref.add_norm_backward).

        for each chunk k of rows in parallel:
            for each row i of chunk k:
                dr[i] = layer norm's dx at r (rows.layer_norm_backward, same arithmetic)
                dy[i] = dr[i] * (scale if keep[i] else 0)
                dw_part[k] += dout[i] * xhat[i];  db_part[k] += dout[i]
        dx = dr;  dweight, dbias = sum_k dw_part[k], sum_k db_part[k]

    Optimizations: dx, dy, dweight and dbias in one pass; with p == 0 this is layer
    norm's backward itself, and dy is dx (as an add's backward: the engine never
    writes into a gradient it did not allocate). A constant number of dweight/dbias
    chunks, so the result does not depend on the thread count.
    """
    # dout (..., C) -> dx (..., C), dy (..., C), dweight (C,) | None, dbias (C,) | None
    norm_cache, keep, scale, p = cache
    if keep is None:
        dr, dweight, dbias = layer_norm_backward(dout, norm_cache)
        return dr, (np.zeros_like(dr) if p == 1 else dr), dweight, dbias
    r, mean, rstd, weight, has_bias = norm_cache
    dt = r.dtype.type
    rows, c = r.shape
    w = np.ones(c, r.dtype) if weight is None else np.ascontiguousarray(weight)
    dr = empty(dout.shape, r.dtype)
    dy = empty(dout.shape, r.dtype)
    chunks = max(1, min(rows, _LN_CHUNKS))
    dw_part = np.zeros((chunks, c), dtype=r.dtype)
    db_part = np.zeros((chunks, c), dtype=r.dtype)
    launch(_add_dropout_norm_backward_rows, _BACKWARD_COST * r.size, _rows(dout), r, w, mean,
           rstd, dt(c), keep, scale, dt(0), dr.reshape(-1, c), dy.reshape(-1, c), dw_part,
           db_part)
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
    out = empty(x.shape, x.dtype)
    launch(_add_dropout_flat, x.size * (1 + _MASK_COST), np.ascontiguousarray(x).reshape(-1),
           np.ascontiguousarray(y).reshape(-1), *_mask_args(p, seed, x.dtype), out.reshape(-1))
    return out, (p, seed)


def add_dropout_backward(dout, cache):
    """dx = dout; dy = dout * mask (the dropout kernel's backward, mask regenerated)."""
    # dout (...) -> dx (...), dy (...)
    return dout, dropout_backward(dout, cache)
