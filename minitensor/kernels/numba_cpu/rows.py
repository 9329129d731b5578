"""Row kernels in Numba: softmax, log-softmax, cross-entropy, layer norm (twins of
``numpy_ref/rows.py``).

Each public function is a plain-Python wrapper that makes the arrays contiguous, views
them as (rows, C) and calls a jitted core; the cores run ``prange`` over rows (rows
write disjoint memory) with scalar loops inside that LLVM can vectorize, built from the
shared helpers of ``_math.py``. Each core is compiled twice (``_threads.parallel_kernel``)
and ``_threads.launch`` runs small inputs on the calling thread.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..buffers import empty
from ._background_compile import asked_ahead, compile_ahead
from ._math import (_EXP_COST, _JIT, _SUM_FLAGS, _exp, _row_dot, _row_exp_store_sum, _row_max,
                    _row_sum, _row_sum_exp, _row_sum_sq_dev, _rows, _zero)
from ._threads import launch, parallel_kernel

# ---------------------------------------------------------------------------- softmax


_BLOCK = 1024   # elements per block of rows; see _rows_per_block


@njit(**_JIT)
def _rows_per_block(c):
    """Rows handled together, phase by phase (all maxima, then all sums, then all writes).
    Short rows gain ~20% from the tighter loops (C = 64); long rows (C >= 1024) get one
    row per block, i.e. plain row-at-a-time."""
    return max(1, _BLOCK // c)


@njit(**_JIT)
def _softmax_block(x, lo, hi, t, y):
    """y[lo:hi] = softmax(x[lo:hi]) row by row, phase by phase; t (>= hi,) is scratch: the
    row max, then 1 / row sum. Doing all the maxima, then all the exp-sums, then all the
    scalings lets independent rows overlap: one short row at a time is a chain of
    dependent reductions (3.5x slower at C = 32). y may be x itself, but in place LLVM's
    runtime alias check fails and the exp-sum loop runs scalar (3x slower)."""
    for i in range(lo, hi):
        t[i] = _row_max(x, i)
    for i in range(lo, hi):
        t[i] = np.reciprocal(_row_exp_store_sum(x, i, t[i], y))   # np.reciprocal keeps float32
    for i in range(lo, hi):
        inv = t[i]
        for j in range(x.shape[1]):
            y[i, j] *= inv


@parallel_kernel(**_JIT)
def _softmax_rows(x, y):
    rows, c = x.shape
    per = _rows_per_block(c)
    t = np.empty(rows, x.dtype)
    for b in prange((rows + per - 1) // per):
        _softmax_block(x, b * per, min(rows, (b + 1) * per), t, y)


def softmax_forward(x):
    """Softmax over the last axis (see numpy_ref.softmax_forward).

        for each block of rows in parallel:     # x (R, C)
            for each row r: m[r] = max(x[r])
            for each row r: y[r] = exp(x[r] - m[r]);  t[r] = 1 / sum(y[r])
            for each row r: y[r] *= t[r]

    Optimizations: blocks of rows in parallel; two passes over x[r] (max, then
    exp+store+sum) and one over y[r], all while the block is in L1; multiply by the
    reciprocal instead of dividing (a vector divide costs ~10 multiplies; the result
    moves by at most 1 ulp).
    """
    # x (..., C) -> y (..., C); cache (y,)
    y = empty(x.shape, x.dtype)
    launch(_softmax_rows, _EXP_COST * x.size, _rows(x), y.reshape(-1, x.shape[-1]))
    return y, (y,)


@parallel_kernel(**_JIT)
def _softmax_backward_rows(dout, y, dx):
    for i in prange(y.shape[0]):
        s = _row_dot(dout, y, i)
        for j in range(y.shape[1]):
            dx[i, j] = y[i, j] * (dout[i, j] - s)


def softmax_backward(dout, cache):
    """dx = y * (dout - sum(dout * y)) per row.

        for each row r in parallel:
            s = dot(dout[r], y[r]);  dx[r] = y[r] * (dout[r] - s)

    Optimizations: rows in parallel; one vectorized dot and one vectorized pass per row.
    """
    # dout (..., C), y (..., C) -> dx (..., C)
    (y,) = cache
    dx = empty(y.shape, y.dtype)
    launch(_softmax_backward_rows, y.size, _rows(dout), _rows(y), dx.reshape(-1, y.shape[-1]))
    return dx


@parallel_kernel(**_JIT)
def _log_softmax_rows(x, out):
    rows, c = x.shape
    per = _rows_per_block(c)
    m = np.empty(rows, x.dtype)
    log_s = np.empty(rows, x.dtype)
    for b in prange((rows + per - 1) // per):
        lo, hi = b * per, min(rows, (b + 1) * per)
        for i in range(lo, hi):
            m[i] = _row_max(x, i)
        for i in range(lo, hi):
            log_s[i] = np.log(_row_sum_exp(x, i, m[i]))
        for i in range(lo, hi):
            mi, li = m[i], log_s[i]
            for j in range(c):
                out[i, j] = (x[i, j] - mi) - li


def log_softmax_forward(x):
    """Log-softmax over the last axis (see numpy_ref.log_softmax_forward).

        for each block of rows in parallel:
            for each row r: m[r] = max(x[r])
            for each row r: log_s[r] = log(sum(exp(x[r] - m[r])))
            for each row r: out[r] = (x[r] - m[r]) - log_s[r]

    Optimizations: blocks of rows in parallel, phase by phase while in L1; the
    exponentials are summed, never stored.
    """
    # x (..., C) -> out (..., C); cache (out,)
    out = empty(x.shape, x.dtype)
    launch(_log_softmax_rows, _EXP_COST * x.size, _rows(x), out.reshape(-1, x.shape[-1]))
    return out, (out,)


@parallel_kernel(**_JIT)
def _log_softmax_backward_rows(dout, out, dx):
    for i in prange(out.shape[0]):
        s = _row_sum(dout, i)
        for j in range(out.shape[1]):
            dx[i, j] = dout[i, j] - _exp(out[i, j]) * s


def log_softmax_backward(dout, cache):
    """dx = dout - exp(out) * sum(dout) per row.

        for each row r in parallel:
            s = sum(dout[r]);  dx[r] = dout[r] - exp(out[r]) * s

    Optimizations: rows in parallel; vectorized exp.
    """
    # dout (..., C), out (..., C) -> dx (..., C)
    (out,) = cache
    dx = empty(out.shape, out.dtype)
    launch(_log_softmax_backward_rows, _EXP_COST * out.size, _rows(dout), _rows(out),
           dx.reshape(-1, out.shape[-1]))
    return dx


# ---------------------------------------------------------------------- cross-entropy


@parallel_kernel(**_JIT)
def _cross_entropy_rows(logits, t, valid, eps, one_minus_eps, c, loss, lse):
    for i in prange(logits.shape[0]):
        m = _row_max(logits, i)
        lse[i] = m + np.log(_row_sum_exp(logits, i, m))
        if valid[i]:
            loss[i] = lse[i] - logits[i, t[i]]
            if eps > 0:
                loss[i] = one_minus_eps * loss[i] + eps * (lse[i] - _row_sum(logits, i) / c)
        else:
            loss[i] = 0


def cross_entropy_forward(logits, target, ignore_index, label_smoothing, reduction):
    """Fused log-softmax + NLL + label smoothing (see numpy_ref.cross_entropy_forward).

        for each row i in parallel:             # logits (N, C)
            m = max(x[i]);  lse[i] = m + log(sum(exp(x[i] - m)))
            loss[i] = (1-eps) (lse[i] - x[i, t_i]) + eps (lse[i] - mean(x[i]))  or 0 if ignored

    Optimizations: one read of the logits, nothing of size N*C written; backward
    recomputes the probabilities from the saved lse.
    """
    # logits (N, C), target (N,) int -> loss (N,) or 0-d
    dt = logits.dtype.type
    logits = np.ascontiguousarray(logits)
    n, c = logits.shape
    valid = np.ascontiguousarray(target != ignore_index)
    t = np.ascontiguousarray(np.where(valid, target, 0), dtype=np.int64)
    loss = np.empty(n, dtype=logits.dtype)
    lse = np.empty(n, dtype=logits.dtype)
    eps = label_smoothing
    launch(_cross_entropy_rows, _EXP_COST * logits.size, logits, t, valid, dt(eps), dt(1 - eps),
           dt(c), loss, lse)
    count = int(valid.sum())
    if reduction == "none":
        out = loss
    elif reduction == "sum":
        out = np.asarray(loss.sum(), dtype=logits.dtype)
    else:  # 'mean'
        out = np.asarray(loss.sum() / count if count else np.nan, dtype=logits.dtype)
    return out, (logits, t, valid, lse, eps, reduction, count)


@parallel_kernel(**_JIT)
def _cross_entropy_backward_rows(logits, t, valid, lse, g, one_minus_eps, eps_over_c, dlogits):
    for i in prange(logits.shape[0]):
        if valid[i]:
            li, gi = lse[i], g[i]
            for j in range(logits.shape[1]):
                dlogits[i, j] = (_exp(logits[i, j] - li) - eps_over_c) * gi
            ti = t[i]
            dlogits[i, ti] = (_exp(logits[i, ti] - li) - (one_minus_eps + eps_over_c)) * gi
        else:
            for j in range(logits.shape[1]):
                dlogits[i, j] = 0


def cross_entropy_backward(dloss, cache):
    """dlogits = (softmax(logits) - smoothed one-hot) * per-row upstream factor.

        for each row i in parallel:
            g = dloss[i] | dloss | dloss / count   (0 for ignored rows)
            dlogits[i, c] = (exp(x[i, c] - lse[i]) - eps/C - (1-eps)[c == t_i]) * g

    Optimizations: one pass over the row, vectorized exp, probabilities never stored.
    """
    # dloss (N,) or 0-d -> dlogits (N, C)
    logits, t, valid, lse, eps, reduction, count = cache
    dt = logits.dtype.type
    n, c = logits.shape
    g = np.empty(n, dtype=logits.dtype)         # per-row upstream factor
    g[...] = dloss
    if reduction == "mean":
        g /= max(count, 1)
    dlogits = empty(logits.shape, logits.dtype)
    launch(_cross_entropy_backward_rows, _EXP_COST * logits.size, logits, t, valid, lse, g, dt(1 - eps),
           dt(eps / c), dlogits)
    return dlogits


# ------------------------------------------------------------------------- layer norm


@parallel_kernel(**_JIT)
def _layer_norm_rows(x, w, b, eps, c, out, mean, rstd):
    for i in prange(x.shape[0]):
        mu = _row_sum(x, i) / c
        var = _row_sum_sq_dev(x, i, mu) / c               # the variance, rounded to dtype
        rs = np.reciprocal(np.sqrt(var + eps))
        for j in range(x.shape[1]):
            out[i, j] = (x[i, j] - mu) * rs * w[j] + b[j]
        # stored last: a store between the loops (to an array LLVM cannot tell apart
        # from out) kept the normalizing loop from vectorizing, 2-3.7x slower
        mean[i] = mu
        rstd[i] = rs


def layer_norm_forward(x, weight, bias, eps):
    """Layer norm over the last axis (see numpy_ref.layer_norm_forward).

        for each row r in parallel:
            mean = sum(x[r]) / C;  var = sum((x[r] - mean)^2) / C;  rstd = 1/sqrt(var + eps)
            out[r] = (x[r] - mean) * rstd * weight + bias

    Optimizations: rows in parallel; two vectorized reductions and one vectorized pass
    per row, all on a row that stays in L1. None weight/bias run as ones/zeros (x*1 and
    x+0 are exact, so results match numpy_ref's skipped multiply/add).
    """
    # x (..., C), weight (C,) | None, bias (C,) | None -> out (..., C)
    dt = x.dtype.type
    c = x.shape[-1]
    x2 = _rows(x)
    w = np.ones(c, x.dtype) if weight is None else np.ascontiguousarray(weight)
    b = np.zeros(c, x.dtype) if bias is None else np.ascontiguousarray(bias)
    out = empty(x.shape, x.dtype)
    mean = np.empty(x2.shape[0], dtype=x.dtype)
    rstd = np.empty(x2.shape[0], dtype=x.dtype)
    launch(_layer_norm_rows, x2.size, x2, w, b, dt(eps), dt(c), out.reshape(-1, c), mean, rstd)
    ask_for_norm_backward(x2, w, mean, rstd)
    return out, (x2, mean, rstd, weight, bias is not None)


def ask_for_norm_backward(x2, w, mean, rstd) -> None:
    """On an empty cache, have layer norm's backward kernel (its serial twin: what the
    first backward runs) compiled in the background for the types it will be called
    with (dout, dx and the partial sums are C-ordered like x2), while the rest of the
    first forward runs. Asked once; later calls cost a set lookup."""
    if not asked_ahead(_layer_norm_backward_rows.serial):
        compile_ahead(_layer_norm_backward_rows.serial, x2, x2, w, mean, rstd,
                      x2.dtype.type(x2.shape[1]), x2, x2, x2)


@njit(**_JIT, fastmath=_SUM_FLAGS)
def _layer_norm_row_sums(d, x, w, i, mu, rs):
    """(sum(g), sum(g * xhat)) over row i, with g = d * w and xhat = (x - mu) * rs."""
    s_g = s_gx = _zero(x)
    for j in range(x.shape[1]):
        g = d[i, j] * w[j]
        s_g += g
        s_gx += g * ((x[i, j] - mu) * rs)
    return s_g, s_gx


@parallel_kernel(**_JIT)
def _layer_norm_backward_rows(dout, x, w, mean, rstd, c, dx, dw_part, db_part):
    rows = x.shape[0]
    chunks = dw_part.shape[0]
    per = (rows + chunks - 1) // chunks
    for k in prange(chunks):
        for i in range(k * per, min(rows, (k + 1) * per)):
            mu, rs = mean[i], rstd[i]
            s_g, s_gx = _layer_norm_row_sums(dout, x, w, i, mu, rs)
            m_g = s_g / c
            m_gx = s_gx / c
            for j in range(x.shape[1]):
                xhat = (x[i, j] - mu) * rs
                dx[i, j] = rs * ((dout[i, j] * w[j] - m_g) - xhat * m_gx)
                dw_part[k, j] += dout[i, j] * xhat
                db_part[k, j] += dout[i, j]


_LN_CHUNKS = 16   # row chunks with private dweight/dbias partials; a constant, so the
                  # summation order (and the result) does not depend on the thread count


def layer_norm_backward(dout, cache):
    """Gradients of layer norm (see numpy_ref.layer_norm_backward).

        for each chunk k of rows in parallel:
            for each row r of chunk k:
                s_g, s_gx = sum(dout[r] * w), sum(dout[r] * w * xhat[r])
                dx[r] = rstd[r] * (dout[r] * w - s_g / C - xhat[r] * s_gx / C)
                dw_part[k] += dout[r] * xhat[r];  db_part[k] += dout[r]
        dweight, dbias = sum_k dw_part[k], sum_k db_part[k]

    Optimizations: rows in parallel; dweight/dbias accumulate in per-chunk buffers (no
    shared writes inside prange) and are reduced once at the end; xhat is recomputed
    from the saved mean/rstd instead of being stored.
    """
    # dout (..., C) -> dx (..., C), dweight (C,) | None, dbias (C,) | None
    x2, mean, rstd, weight, has_bias = cache
    dt = x2.dtype.type
    rows, c = x2.shape
    w = np.ones(c, x2.dtype) if weight is None else np.ascontiguousarray(weight)
    dx = empty(dout.shape, x2.dtype)
    chunks = max(1, min(rows, _LN_CHUNKS))
    dw_part = np.zeros((chunks, c), dtype=x2.dtype)
    db_part = np.zeros((chunks, c), dtype=x2.dtype)
    launch(_layer_norm_backward_rows, x2.size, _rows(dout), x2, w, mean, rstd, dt(c),
           dx.reshape(-1, c), dw_part, db_part)
    dweight = dw_part.sum(axis=0) if weight is not None else None
    dbias = db_part.sum(axis=0) if has_bias else None
    return dx, dweight, dbias
