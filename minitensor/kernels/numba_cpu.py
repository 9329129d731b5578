"""Numba kernels: @njit twins of ``numpy_ref``, same names, signatures and caches' meaning.

Each public function is a plain-Python wrapper that makes the arrays contiguous, views
them as (rows, C) and calls a jitted core; the cores run ``prange`` over rows (rows
write disjoint memory) with scalar loops inside that LLVM can vectorize. Each core is
compiled twice (``_threads.parallel_kernel``) and ``_threads.launch`` runs small inputs
on the calling thread, where waking a second thread would cost more than it saves. See
``numpy_ref`` for the contract; the tests hold the two files together.

Why the code looks the way it does:

* ``exp`` is our own (``_exp64``/``_exp32``: range reduction plus a polynomial, within
  1 ulp in both dtypes, exact at 0, -inf, overflow and underflow). Numba's ``np.exp``
  is a scalar libm call that blocks vectorization; this one vectorizes, which is most
  of the speed of the softmax family. GELU's ``_erf``/``_tanh`` follow the same idea.
* Sums go through small helpers compiled with ``fastmath={"reassoc", "contract"}`` so
  the reduction vectorizes; neither flag changes how inf or NaN behave. No kernel uses
  ``nnan``/``ninf`` (rows may hold -inf). Max-reductions call ``llvm.maximum`` (NaN
  propagates, as in ``np.max``), which LLVM vectorizes where an if/else max would not.
* Numba promotes ``float32 op int`` and ``float32 op 1.0`` to float64, so scalars the
  float32 kernels need are passed in already cast to the array dtype, or read back from
  a float32 array, to keep float32 kernels in float32.
* Everything jitted lives in this file with ``cache=True`` (a second process pays no
  compile time; Numba's cache does not see edits to helpers in other files).
  Debug with ``NUMBA_DISABLE_JIT=1``; ``parallel_check.py`` prints the parallel
  diagnostics.
"""
from __future__ import annotations

import math

import llvmlite.ir as llvm_ir
import numpy as np
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ._malloc import keep_freed_memory
from ._threads import blas_single_threaded, launch, parallel_kernel

# The fast path also keeps freed memory mapped between training steps instead of
# faulting it in again every step (~12% of a Transformer step; see _malloc.py).
keep_freed_memory()

# Every function is cached on disk, and divides with NumPy's semantics (x / 0 -> inf or
# NaN, as numpy_ref): Numba's default Python semantics would test every divisor and
# raise ZeroDivisionError, and that branch alone stops a loop from vectorizing.
_JIT = dict(cache=True, error_model="numpy")
_SUM_FLAGS = {"reassoc", "contract"}     # lets LLVM vectorize a sum; inf/NaN unaffected
# Work estimate for the thread policy (_threads.launch): an element of an exp/erf-based
# kernel costs about 4 of a layer norm's (softmax 1.4 ns, layer norm 0.4 ns, one core).
_EXP_COST = 4


def _rows(a):
    """(..., C) array -> C-contiguous (R, C) view (a copy only when ``a`` is not contiguous)."""
    return np.ascontiguousarray(a).reshape(-1, a.shape[-1])


# ------------------------------------------------------- bit casts, max, typed zero


def _llvm_float(ty):
    return llvm_ir.DoubleType() if ty == types.float64 else llvm_ir.FloatType()


@intrinsic
def _float_to_bits(typingctx, x):
    """The IEEE bits of a float as a same-width signed int (a reinterpretation, not a conversion)."""
    if x not in (types.float32, types.float64):
        return None
    int_ty = types.int64 if x == types.float64 else types.int32

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_ir.IntType(int_ty.bitwidth))
    return int_ty(x), codegen


@intrinsic
def _bits_to_float(typingctx, bits):
    """Inverse of _float_to_bits: int64 -> float64, int32 -> float32."""
    if bits not in (types.int32, types.int64):
        return None
    float_ty = types.float64 if bits == types.int64 else types.float32

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], _llvm_float(float_ty))
    return float_ty(bits), codegen


@intrinsic
def _llvm_maximum(typingctx, a, b):
    """llvm.maximum: NaN-propagating max; LLVM vectorizes reductions over it."""
    if a != b or a not in (types.float32, types.float64):
        return None

    def codegen(context, builder, signature, args):
        ty = _llvm_float(a)
        name = "llvm.maximum.f64" if a == types.float64 else "llvm.maximum.f32"
        fn = cgutils.get_or_insert_function(builder.module, llvm_ir.FunctionType(ty, [ty, ty]), name)
        return builder.call(fn, args)
    return a(a, b), codegen


# The three helpers below are plain Python functions (what runs under NUMBA_DISABLE_JIT=1)
# with an @overload giving their jitted version.


def _fmax(a, b):
    """max(a, b), NaN wins (np.maximum). Jitted: llvm.maximum, because an if/else max
    blocks vectorization of a reduction unless fastmath includes nnan."""
    return np.maximum(a, b)


@overload(_fmax)
def _fmax_jit(a, b):
    return lambda a, b: _llvm_maximum(a, b)


def _zero(a):
    """0 in the dtype of array ``a`` (a 0.0 literal would turn float32 sums into float64)."""
    return a.dtype.type(0)


@overload(_zero)
def _zero_jit(a):
    if a.dtype == types.float32:
        return lambda a: _ZERO32
    return lambda a: 0.0


# ------------------------------------------------------------------- vectorizable exp

_F32 = np.float32                         # float32 constants: globals keep their type in Numba
_ZERO32 = _F32(0.0)
_ROUND64 = 6755399441055744.0             # 1.5 * 2^52: adding it rounds to an integer,
                                          # which then sits in the low mantissa bits
_ROUND32 = _F32(12582912.0)               # 1.5 * 2^23
_ROUND64_BITS = np.int64(np.float64(_ROUND64).view(np.int64))
_ROUND32_BITS = np.int32(_ROUND32.view(np.int32))


@njit(**_JIT, fastmath={"contract"})
def _exp64(x):
    """exp(x) in float64, <= 1 ulp from np.exp; branch-free so loops calling it vectorize.

    exp(x) = 2^k * exp(r), k = round(x / ln2), r = x - k ln2 (ln2 in two parts so r is
    exact), exp(r) by its Taylor polynomial to r^13 (|r| <= ln2/2: error < 1e-17).
    k is read from the bits of x/ln2 + 1.5*2^52 (no float->int conversion, so NaN is
    harmless: it just flows through r). 2^k is applied as two factors
    2^(k//2) * 2^(k - k//2), so subnormal results and the overflow edge come out right.
    x is clamped first: -inf -> 0, +inf -> inf.

    Below the clamp (-inf: masked softmax entries) the second factor is replaced by an
    exact 0. Computing the 0 by underflow works too, but an underflowing multiply takes
    a ~100-cycle microcode assist on x86: a causal softmax (half its entries -inf) ran
    3.5x slower that way.
    """
    below = x < -746.0
    x = -746.0 if below else x           # exp(-746) rounds to 0; NaN passes both tests
    x = 710.0 if x > 710.0 else x        # exp(710) overflows to inf
    kr = x * 1.4426950408889634 + _ROUND64
    kf = kr - _ROUND64
    r = (x - kf * 6.93147180369123816490e-01) - kf * 1.90821492927058770002e-10
    p = 1.6059043836821613e-10           # 1/13!
    p = p * r + 2.08767569878681e-09     # 1/12!
    p = p * r + 2.505210838544172e-08
    p = p * r + 2.755731922398589e-07
    p = p * r + 2.7557319223985893e-06
    p = p * r + 2.48015873015873e-05
    p = p * r + 0.0001984126984126984
    p = p * r + 0.001388888888888889
    p = p * r + 0.008333333333333333
    p = p * r + 0.041666666666666664
    p = p * r + 0.16666666666666666
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    k = _float_to_bits(kr) - _ROUND64_BITS
    k1 = k >> 1
    s2 = 0.0 if below else _bits_to_float((k - k1 + 1023) << 52)
    return p * _bits_to_float((k1 + 1023) << 52) * s2


_LO32, _HI32, _LOG2E32, _ONE32 = _F32(-104.0), _F32(89.0), _F32(1.4426950408889634), _F32(1.0)
_LN2HI32, _LN2LO32 = _F32(0.693359375), _F32(-2.12194440e-4)
_EP0, _EP1, _EP2, _EP3, _EP4, _EP5 = (_F32(1.9875691500e-4), _F32(1.3981999507e-3),
                                      _F32(8.3334519073e-3), _F32(4.1665795894e-2),
                                      _F32(1.6666665459e-1), _F32(5.0000001201e-1))


@njit(**_JIT, fastmath={"contract"})
def _exp32(x):
    """exp(x) in float32 within 1 ulp of the exact value (np.exp's float32 is itself up to
    ~2.5 ulp off): the same scheme with Cephes' expf polynomial."""
    below = x < _LO32                   # -inf: an exact 0 factor, no underflow (see _exp64)
    x = _LO32 if below else x
    x = _HI32 if x > _HI32 else x
    kr = x * _LOG2E32 + _ROUND32
    kf = kr - _ROUND32
    r = (x - kf * _LN2HI32) - kf * _LN2LO32
    p = ((((_EP0 * r + _EP1) * r + _EP2) * r + _EP3) * r + _EP4) * r + _EP5
    p = p * (r * r) + r + _ONE32
    k = np.int32(_float_to_bits(kr) - _ROUND32_BITS)   # Numba widens int32 math to int64:
    k1 = np.int32(k >> 1)                               # narrow back so it stays 32-bit
    s1 = _bits_to_float(np.int32((k1 + 127) << 23))
    s2 = _ZERO32 if below else _bits_to_float(np.int32((k - k1 + 127) << 23))
    return p * s1 * s2


def _exp(x):
    """exp(x). Jitted: _exp32 for float32, _exp64 otherwise (chosen at compile time)."""
    return np.exp(x)


@overload(_exp)
def _exp_jit(x):
    if x == types.float32:
        return lambda x: _exp32(x)
    return lambda x: _exp64(x)




# ------------------------------------------------------------------------ row helpers
# Helpers take (x, i) and index x[i, j] rather than a row view x[i]: a view costs a
# reference-count increment/decrement per row, which shows at C = 64.


@njit(**_JIT)
def _row_max(x, i):
    """max(x[i, :]), NaN-propagating like np.max."""
    m = x[i, 0]
    for j in range(x.shape[1]):
        m = _fmax(m, x[i, j])
    return m


@njit(**_JIT, fastmath=_SUM_FLAGS)
def _row_sum(x, i):
    """sum(x[i, :])."""
    s = _zero(x)
    for j in range(x.shape[1]):
        s += x[i, j]
    return s


@njit(**_JIT, fastmath=_SUM_FLAGS)
def _row_dot(a, b, i):
    """sum(a[i, :] * b[i, :])."""
    s = _zero(a)
    for j in range(a.shape[1]):
        s += a[i, j] * b[i, j]
    return s


@njit(**_JIT, fastmath=_SUM_FLAGS)
def _row_sum_sq_dev(x, i, mu):
    """sum((x[i, :] - mu)^2)."""
    s = _zero(x)
    for j in range(x.shape[1]):
        s += (x[i, j] - mu) * (x[i, j] - mu)
    return s


@njit(**_JIT, fastmath=_SUM_FLAGS)
def _row_sum_exp(x, i, m):
    """sum(exp(x[i, :] - m)), the exponentials not stored."""
    s = _zero(x)
    for j in range(x.shape[1]):
        s += _exp(x[i, j] - m)
    return s


@njit(**_JIT, fastmath=_SUM_FLAGS)
def _row_exp_store_sum(x, i, m, y):
    """y[i, :] = exp(x[i, :] - m); returns their sum (one pass)."""
    s = _zero(x)
    for j in range(x.shape[1]):
        e = _exp(x[i, j] - m)
        y[i, j] = e
        s += e
    return s


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
    y = np.empty(x.shape, dtype=x.dtype)
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
    dx = np.empty(y.shape, dtype=y.dtype)
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
    out = np.empty(x.shape, dtype=x.dtype)
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
    dx = np.empty(out.shape, dtype=out.dtype)
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
    dlogits = np.empty_like(logits)
    launch(_cross_entropy_backward_rows, _EXP_COST * logits.size, logits, t, valid, lse, g, dt(1 - eps),
           dt(eps / c), dlogits)
    return dlogits


# ------------------------------------------------------------------------- layer norm


@parallel_kernel(**_JIT)
def _layer_norm_rows(x, w, b, eps, c, out, mean, rstd):
    for i in prange(x.shape[0]):
        mean[i] = _row_sum(x, i) / c
        mu = mean[i]
        rstd[i] = _row_sum_sq_dev(x, i, mu) / c           # the variance, rounded to dtype
        rstd[i] = np.reciprocal(np.sqrt(rstd[i] + eps))
        rs = rstd[i]
        for j in range(x.shape[1]):
            out[i, j] = (x[i, j] - mu) * rs * w[j] + b[j]


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
    out = np.empty(x.shape, dtype=x.dtype)
    mean = np.empty(x2.shape[0], dtype=x.dtype)
    rstd = np.empty(x2.shape[0], dtype=x.dtype)
    launch(_layer_norm_rows, x2.size, x2, w, b, dt(eps), dt(c), out.reshape(-1, c), mean, rstd)
    return out, (x2, mean, rstd, weight, bias is not None)


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
    dx = np.empty(dout.shape, dtype=x2.dtype)
    chunks = max(1, min(rows, _LN_CHUNKS))
    dw_part = np.zeros((chunks, c), dtype=x2.dtype)
    db_part = np.zeros((chunks, c), dtype=x2.dtype)
    launch(_layer_norm_backward_rows, x2.size, _rows(dout), x2, w, mean, rstd, dt(c),
           dx.reshape(-1, c), dw_part, db_part)
    dweight = dw_part.sum(axis=0) if weight is not None else None
    dbias = db_part.sum(axis=0) if has_bias else None
    return dx, dweight, dbias


# ------------------------------------------------------------------------------- GELU


def _tanh(x):
    """tanh(x). Jitted: (1 - e) / (1 + e) with e = exp(-2|x|) from the vectorizable exp;
    its error is ~1e-16 absolute (not relative near 0), which is what GELU needs."""
    return np.tanh(x)


@overload(_tanh, jit_options=_JIT)
def _tanh_jit(x):
    one, two = (np.float32(1), np.float32(2)) if x == types.float32 else (1.0, 2.0)

    def impl(x):
        e = _exp(-two * abs(x))
        t = (one - e) / (one + e)
        return t if x >= 0 else -t
    return impl


_ERF_P = tuple(_F32(c) for c in (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
                                  -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
                                  -1.60960333262415e-02))
_ERF_Q = tuple(_F32(c) for c in (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
                                  -7.37332916720468e-03, -1.42647390514189e-02))
_F4 = _F32(4.0)


@njit(**_JIT)
def _erf32(x):
    """erf in float32 as x P(x^2) / Q(x^2) on [-4, 4] (Eigen's rational approximation,
    also XLA's): |error| < 5e-7, vectorizable. Outside [-4, 4] erf is +-1 in float32."""
    p0, p1, p2, p3, p4, p5, p6 = _ERF_P
    q0, q1, q2, q3, q4 = _ERF_Q
    x = _F4 if x > _F4 else x
    x = -_F4 if x < -_F4 else x
    z = x * x
    p = (((((p0 * z + p1) * z + p2) * z + p3) * z + p4) * z + p5) * z + p6
    q = (((q0 * z + q1) * z + q2) * z + q3) * z + q4
    y = x * p / q
    y = _ONE32 if y > _ONE32 else y                      # the rational overshoots by ~4e-7
    return -_ONE32 if y < -_ONE32 else y


def _erf(x):
    """erf(x). Jitted: _erf32 (vectorizable, float32 accuracy) for float32; math.erf, a
    scalar libm call accurate to float64, otherwise."""
    return math.erf(x)


@overload(_erf, jit_options=_JIT)
def _erf_jit(x):
    if x == types.float32:
        return lambda x: _erf32(x)
    return lambda x: math.erf(x)


@njit(**_JIT)
def _math_array(x, which, out):
    """out = exp | erf | tanh (which = 0 | 1 | 2) of a 1-D array: the tests' handle on
    the jitted scalar helpers."""
    for i in range(x.shape[0]):
        if which == 0:
            out[i] = _exp(x[i])
        elif which == 1:
            out[i] = _erf(x[i])
        else:
            out[i] = _tanh(x[i])


def _gelu_consts(dtype):
    """GELU's constants in the array dtype (Numba would widen float32 math on Python floats)."""
    return np.array([0.5, 1.0, math.sqrt(2 / math.pi), 0.044715, 3 * 0.044715,
                     1 / math.sqrt(2), 1 / math.sqrt(2 * math.pi)], dtype=dtype)


@parallel_kernel(**_JIT)
def _gelu_tanh_flat(x, k, out):
    half, one, c, kappa = k[0], k[1], k[2], k[3]
    for i in prange(x.shape[0]):
        v = x[i]
        out[i] = half * v * (one + _tanh(c * (v + kappa * v * v * v)))


@parallel_kernel(**_JIT)
def _gelu_erf_flat(x, k, out):
    half, one, sqrt1_2 = k[0], k[1], k[5]
    for i in prange(x.shape[0]):
        v = x[i]
        out[i] = half * v * (one + _erf(v * sqrt1_2))


def gelu_forward(x, approximate):
    """GELU elementwise (see numpy_ref.gelu_forward).

        for each element i in parallel:
            out[i] = 0.5 x (1 + erf(x / sqrt 2))   or   0.5 x (1 + tanh(sqrt(2/pi)(x + k x^3)))

    Optimizations: one fused pass (NumPy needs ~6 temporaries); vectorized in float32
    (tanh from the vectorizable exp, erf from a rational approximation with |error| <
    5e-7) and for 'tanh' in float64; float64 'none' calls math.erf (scalar libm, exact
    to float64), so it is parallel but not vectorized.
    """
    # x (...) -> out (...); cache (x flat, approximate)
    xf = np.ascontiguousarray(x).reshape(-1)
    out = np.empty(x.shape, dtype=x.dtype)
    core = _gelu_tanh_flat if approximate == "tanh" else _gelu_erf_flat
    launch(core, _EXP_COST * xf.size, xf, _gelu_consts(x.dtype), out.reshape(-1))
    return out, (xf, approximate)


@parallel_kernel(**_JIT)
def _gelu_tanh_backward_flat(dout, x, k, dx):
    half, one, c, kappa, kappa3 = k[0], k[1], k[2], k[3], k[4]
    for i in prange(x.shape[0]):
        v = x[i]
        t = _tanh(c * (v + kappa * v * v * v))
        dx[i] = dout[i] * (half * (one + t) + half * v * (one - t * t) * c * (one + kappa3 * v * v))


@parallel_kernel(**_JIT)
def _gelu_erf_backward_flat(dout, x, k, dx):
    half, one, sqrt1_2, inv_sqrt_2pi = k[0], k[1], k[5], k[6]
    for i in prange(x.shape[0]):
        v = x[i]
        dx[i] = dout[i] * (half * (one + _erf(v * sqrt1_2)) + v * _exp(-half * v * v) * inv_sqrt_2pi)


def gelu_backward(dout, cache):
    """dx = dout * gelu'(x) (see numpy_ref.gelu_backward).

        for each element i in parallel:
            dx[i] = dout[i] * (Phi(x) + x phi(x))     (or the tanh formula's derivative)
    """
    # dout (...), x flat -> dx (...)
    xf, approximate = cache
    dx = np.empty(dout.shape, dtype=xf.dtype)
    core = _gelu_tanh_backward_flat if approximate == "tanh" else _gelu_erf_backward_flat
    launch(core, _EXP_COST * xf.size, np.ascontiguousarray(dout).reshape(-1), xf, _gelu_consts(xf.dtype),
           dx.reshape(-1))
    return dx


# ------------------------------------------------------------------------------- ReLU


@parallel_kernel(**_JIT)
def _relu_flat(x, out):
    z = _zero(x)
    for i in prange(x.shape[0]):
        v = x[i]
        out[i] = v if (v > z or v != v) else z      # NaN stays NaN, -0.0 gives +0.0 (np.maximum)


def relu_forward(x):
    """max(x, 0) elementwise (see numpy_ref.relu_forward).

        for each element i in parallel: out[i] = x[i] if x[i] > 0 or isnan(x[i]) else 0

    Optimizations: one pass; the select compiles to a vector blend (no branch).
    """
    # x (...) -> out (...); cache (out,)
    if x.dtype.kind != "f":
        out = np.maximum(x, 0)                   # integer input: NumPy's is as fast
        return out, (out,)
    out = np.empty(x.shape, dtype=x.dtype)
    launch(_relu_flat, x.size, np.ascontiguousarray(x).reshape(-1), out.reshape(-1))
    return out, (out,)


@parallel_kernel(**_JIT)
def _relu_backward_flat(dout, out, dx):
    z = _zero(out)
    for i in prange(out.shape[0]):
        dx[i] = z if out[i] <= z else dout[i]


def relu_backward(dout, cache):
    """dx = dout where out > 0 (or NaN), else 0 (see numpy_ref.relu_backward).

        for each element i in parallel: dx[i] = 0 if out[i] <= 0 else dout[i]

    Optimizations: a vector blend. NumPy's np.where with a data-dependent mask branches
    per element and measured ~8x slower on ReLU's half-zero outputs ((32, 32, 512)
    float32: 2.6 ms against 0.3 ms for a multiply by the mask).
    """
    # dout (...), out (...) -> dx (...)
    (out,) = cache
    if out.dtype.kind != "f" or dout.dtype != out.dtype or dout.shape != out.shape:
        return np.where(out <= 0, 0, dout)
    dx = np.empty(out.shape, dtype=out.dtype)
    launch(_relu_backward_flat, out.size, np.ascontiguousarray(dout).reshape(-1), out.reshape(-1),
           dx.reshape(-1))
    return dx


# ---------------------------------------------------------------------------- dropout

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_U30, _U27, _U31, _U11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


@njit(**_JIT)
def _dropout_factor(seed, i, threshold, scale, zero):
    """scale if flat index i is kept, else zero: splitmix64(seed ^ (i * golden)) >> 11
    compared with ceil(p * 2^53). Shared by dropout and multi-head attention's dropout."""
    z = (seed ^ (np.uint64(i) * _GOLDEN)) + _GOLDEN     # splitmix64 of (seed, i)
    z = (z ^ (z >> _U30)) * _MIX1
    z = (z ^ (z >> _U27)) * _MIX2
    z = z ^ (z >> _U31)
    return scale if (z >> _U11) >= threshold else zero


@parallel_kernel(**_JIT)
def _dropout_flat(x, seed, threshold, scale, zero, out):
    for i in prange(x.shape[0]):
        out[i] = x[i] * _dropout_factor(seed, i, threshold, scale, zero)


def dropout_forward(x, p, seed):
    """Inverted dropout with a counter-based mask (see numpy_ref.dropout_forward).

        for each flat index i in parallel:
            z = splitmix64(seed ^ (i * golden))
            out[i] = x[i] * (1/(1-p) if (z >> 11) >= ceil(p * 2^53) else 0)

    Optimizations: the mask is hashed on the fly (no RNG state, no mask array, same
    bits as NumPy's); backward regenerates it instead of storing it.
    """
    # x (...) -> out (...); cache (p, seed)
    if p == 0:
        return x, (p, seed)
    if p == 1:
        return np.zeros_like(x), (p, seed)
    dt = x.dtype.type
    out = np.empty(x.shape, dtype=x.dtype)
    launch(_dropout_flat, x.size, np.ascontiguousarray(x).reshape(-1),
           np.uint64(seed & 0xFFFFFFFFFFFFFFFF), np.uint64(math.ceil(p * 2.0**53)),
           dt(1 / (1 - p)), dt(0), out.reshape(-1))
    return out, (p, seed)


def dropout_backward(dout, cache):
    """dx = dout * keep / (1 - p), the mask regenerated from (seed, index)."""
    # dout (...) -> dx (...)
    p, seed = cache
    out, _ = dropout_forward(dout, p, seed)
    return out


# ------------------------------------------ attention over merged heads, with dropout


@njit(**_JIT)
def _row_all_neginf(m, i):
    """True when every entry of m[i, :] is -inf (a query that may see no key)."""
    for j in range(m.shape[1]):
        if m[i, j] != -np.inf:
            return False
    return True


# The three tile copies index columns with an unsigned number: with a signed one Numba
# adds a negative-index check per element, which stops the copy loop from vectorizing
# (measured 4x slower on 32x32 tiles).


@njit(**_JIT)
def _load_cols(src, b, col, out):
    """out (T, W) = src[b, :, col:col + W] (src C-contiguous: unit-stride rows)."""
    c = np.uint64(col)
    for i in range(out.shape[0]):
        for d in range(out.shape[1]):
            out[i, d] = src[b, i, c + np.uint64(d)]


@njit(**_JIT)
def _load_cols_t(src, b, col, out):
    """out (W, T) = src[b, :, col:col + W]^T."""
    c = np.uint64(col)
    for i in range(out.shape[1]):
        for d in range(out.shape[0]):
            out[d, i] = src[b, i, c + np.uint64(d)]


@njit(**_JIT)
def _store_cols(x, dst, b, col):
    """dst[b, :, col:col + W] = x (T, W)."""
    c = np.uint64(col)
    for i in range(x.shape[0]):
        for d in range(x.shape[1]):
            dst[b, i, c + np.uint64(d)] = x[i, d]


@parallel_kernel(**_JIT)
def _mh_sdpa_fwd(qsrc, ksrc, vsrc, cols, dk, dv, mask, has_mask, scale, seed, threshold, dscale,
                 zero, p, out):
    B, heads, L, S = p.shape
    for bh in prange(B * heads):
        b, h = bh // heads, bh % heads
        # Head h's columns, copied into contiguous tiles. Every product below has its
        # operands laid out as BLAS's "nn", "tn" or "tt": OpenBLAS took 1.3 us for a
        # 32x32x32 "nt" product (C @ F) against 0.45 us for the others.
        qs, kt = np.empty((L, dk), p.dtype), np.empty((dk, S), p.dtype)
        vs = np.empty((S, dv), p.dtype)
        _load_cols(qsrc, b, cols[0] + h * dk, qs)
        _load_cols_t(ksrc, b, cols[1] + h * dk, kt)
        _load_cols(vsrc, b, cols[2] + h * dv, vs)
        sc = np.dot(qs, kt)                                            # (L, S) scores
        mh = mask[b if mask.shape[0] > 1 else 0, h if mask.shape[1] > 1 else 0]   # (L, S) | dummy
        blocked = np.zeros(L, np.bool_)
        for i in range(L):                               # * scale + mask
            if has_mask and not _row_all_neginf(mh, i):
                for j in range(S):
                    sc[i, j] = sc[i, j] * scale + mh[i, j]
            else:                                        # no mask, or a row it blocks
                blocked[i] = has_mask
                for j in range(S):
                    sc[i, j] *= scale
        # softmax as _softmax_rows, into p (not in place: LLVM's alias check then fails
        # and the exp-sum loop runs scalar, 3x slower)
        ph = p[b, h]                                                   # (L, S)
        t = np.empty(L, sc.dtype)
        per = _rows_per_block(S)
        for lo in range(0, L, per):
            _softmax_block(sc, lo, min(L, lo + per), t, ph)
        dropped = sc                                     # the scores are no longer needed
        for i in range(L):
            if blocked[i]:                               # no visible key: weights 0
                for j in range(S):
                    ph[i, j] = zero
            base = ((b * heads + h) * L + i) * S
            for j in range(S):
                dropped[i, j] = ph[i, j] * _dropout_factor(seed, base + j, threshold, dscale, zero)
        _store_cols(np.dot(dropped, vs), out, b, h * dv)               # (L, Dv)


def _compact_head_mask(mask, shape, dtype):
    """The additive mask as a contiguous (B|1, H|1, L, S) array: broadcast batch/head axes
    stay length 1 (never copied per head), the last two are materialized."""
    if mask is None:
        return np.zeros((1, 1, 1, 1), dtype), False
    m = np.asarray(mask)
    m = m.reshape((1,) * (4 - m.ndim) + m.shape)
    index = tuple(slice(0, 1) if (n == 1 or st == 0) else slice(None)
                  for n, st in zip(m.shape[:2], m.strides[:2]))
    m = m[index]
    return np.ascontiguousarray(np.broadcast_to(m, m.shape[:2] + shape[2:]), dtype=dtype), True


def _dropout_consts(p, dtype):
    """(threshold, scale, zero) of the dropout mask: p = 0 keeps everything (x * 1 is
    exact), p = 1 keeps nothing."""
    dt = dtype.type
    if p >= 1:
        return np.uint64(2**64 - 1), dt(0), dt(0)
    return np.uint64(math.ceil(p * 2.0**53)), dt(1 / (1 - p)), dt(0)


# For each layout (see numpy_ref._unpack_qkv): which input holds q, k and v.
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


def multi_head_sdpa_forward(inputs, layout, num_heads, mask, scale, dropout_p, seed):
    """Attention per head on heads-merged arrays (see numpy_ref.multi_head_sdpa_forward).

        for (b, h) in parallel:                     # q (B, L, H*D), k (B, S, H*D), v (B, S, H*Dv)
            q_h, k_h^T, v_h = head h's columns, copied into tiles      # (L, D), (D, S), (S, Dv)
            p[b, h] = q_h k_h^T;  each row: * scale + mask, softmax     # (L, S), kept for backward
            out[b, :, head h's columns] = dropout(p[b, h]) v_h

    Optimizations: one task per (b, h), writing only its own p[b, h] and its head's
    columns of out (no races); the head split/merge happens on (T, D) tiles inside the
    task, read straight from the packed projections (unit-stride rows), instead of as
    whole-array transposes in the graph; scores, softmax and dropout in one pass over
    each row while it is in L1; the two products are BLAS calls on contiguous tiles
    (one BLAS thread: see _threads.py).
    """
    # inputs (layout) -> out (B, L, H*Dv); cache (p, scale, dropout_p, seed, H, layout, *arrays)
    dtype = inputs[0].dtype
    arrays = [np.ascontiguousarray(x, dtype=dtype) for x in inputs]
    cols, width, width_v = _qkv_columns(arrays, layout)
    qi, ki, vi = _QKV_INPUT[layout]
    B, L = arrays[0].shape[:2]
    S = arrays[ki].shape[1]
    mask4, has_mask = _compact_head_mask(mask, (B, num_heads, L, S), dtype)
    threshold, dscale, zero = _dropout_consts(dropout_p, dtype)
    p = np.empty((B, num_heads, L, S), dtype)
    out = np.empty((B, L, width_v), dtype)
    dk, dv = width // num_heads, width_v // num_heads
    with blas_single_threaded():
        # work: the products' multiply-adds
        launch(_mh_sdpa_fwd, p.size * (dk + dv), arrays[qi], arrays[ki], arrays[vi], cols, dk, dv,
               mask4, has_mask, dtype.type(scale), np.uint64(seed & 0xFFFFFFFFFFFFFFFF),
               threshold, dscale, zero, p, out)
    return out, (p, scale, dropout_p, seed, num_heads, layout, *arrays)


@parallel_kernel(**_JIT)
def _mh_sdpa_bwd(dout, qsrc, ksrc, vsrc, cols, dk, dv, p, scale, seed, threshold, dscale, zero,
                 dqdst, dkdst, dvdst):
    B, heads, L, S = p.shape
    for bh in prange(B * heads):
        b, h = bh // heads, bh % heads
        qc, kc, vc = cols[0] + h * dk, cols[1] + h * dk, cols[2] + h * dv
        qs, ks = np.empty((L, dk), p.dtype), np.empty((S, dk), p.dtype)
        vt, dos = np.empty((dv, S), p.dtype), np.empty((L, dv), p.dtype)
        _load_cols(qsrc, b, qc, qs)
        _load_cols(ksrc, b, kc, ks)
        _load_cols_t(vsrc, b, vc, vt)                   # (Dv, S): an "nn" product below
        _load_cols(dout, b, h * dv, dos)
        ph = p[b, h]                                                   # (L, S)
        factor = np.empty_like(ph)                       # the dropout mask, regenerated
        dropped = np.empty_like(ph)
        for i in range(L):
            base = ((b * heads + h) * L + i) * S
            for j in range(S):
                factor[i, j] = _dropout_factor(seed, base + j, threshold, dscale, zero)
                dropped[i, j] = ph[i, j] * factor[i, j]
        _store_cols(np.dot(dropped.T, dos), dvdst, b, vc)             # dv_h (S, Dv)
        ds = np.dot(dos, vt)                                           # (L, S) d dropped
        for i in range(L):
            for j in range(S):
                ds[i, j] = ds[i, j] * factor[i, j]                     # d p (dropout backward)
            r = _row_dot(ds, ph, i)                                    # softmax backward
            for j in range(S):
                ds[i, j] = ph[i, j] * (ds[i, j] - r) * scale
        _store_cols(np.dot(ds, ks), dqdst, b, qc)                     # dq_h (L, D)
        _store_cols(np.dot(ds.T, qs), dkdst, b, kc)                   # dk_h (S, D)


def multi_head_sdpa_backward(dout, cache):
    """Gradients of multi_head_sdpa_forward, packed like the inputs (see numpy_ref).

        for (b, h) in parallel:
            f = dropout factors of p[b, h] (regenerated);  dv_h = (p f)^T dout_h
            dp = (dout_h v_h^T) f;  ds = p (dp - rowsum(dp p)) * scale
            dq_h = ds k_h;  dk_h = ds^T q_h          # written into head h's columns

    Optimizations: as the forward; each task writes its own head's columns of the
    gradient arrays, which are laid out like the inputs: a packed qkv gets one gradient
    array with no concatenation.
    """
    # dout (B, L, H*Dv) -> one gradient per input, same shapes
    p, scale, dropout_p, seed, heads, layout, *arrays = cache
    dtype = p.dtype
    cols, width, width_v = _qkv_columns(arrays, layout)
    qi, ki, vi = _QKV_INPUT[layout]
    threshold, dscale, zero = _dropout_consts(dropout_p, dtype)
    grads = [np.empty(a.shape, dtype) for a in arrays]    # every column is written below
    dk, dv = width // heads, width_v // heads
    with blas_single_threaded():
        launch(_mh_sdpa_bwd, p.size * (dk + dv), np.ascontiguousarray(dout, dtype), arrays[qi],
               arrays[ki], arrays[vi], cols, dk, dv, p, dtype.type(scale),
               np.uint64(seed & 0xFFFFFFFFFFFFFFFF), threshold, dscale, zero, grads[qi], grads[ki],
               grads[vi])
    return tuple(grads)


# -------------------------------------------------------------------------- embedding


@parallel_kernel(**_JIT)
def _gather_rows(weight, idx, out):
    for n in prange(idx.shape[0]):
        r = idx[n]
        for j in range(weight.shape[1]):
            out[n, j] = weight[r, j]


def embedding_forward(weight, indices):
    """Row lookup (see numpy_ref.embedding_forward).

        for each position n in parallel:
            out[n, :] = weight[indices[n], :]
    """
    # weight (V, D), indices (...) int -> out (*indices.shape, D); cache (indices flat, V)
    v, d = weight.shape
    idx = np.ascontiguousarray(indices, dtype=np.int64).reshape(-1)
    out = np.empty(indices.shape + (d,), dtype=weight.dtype)
    launch(_gather_rows, out.size, np.ascontiguousarray(weight), idx, out.reshape(-1, d))
    return out, (idx, v)


_EMB_BLOCK = 64   # columns per parallel task in the scatter-add


@parallel_kernel(**_JIT)
def _scatter_add_rows(dout, idx, dweight, block):
    d = dout.shape[1]
    for b in prange((d + block - 1) // block):
        lo = b * block
        hi = min(d, lo + block)
        for n in range(idx.shape[0]):
            r = idx[n]
            for j in range(lo, hi):
                dweight[r, j] += dout[n, j]


def embedding_backward(dout, cache, padding_idx):
    """Scatter-add into a zero (V, D) gradient (see numpy_ref.embedding_backward).

        for each block of columns in parallel:          # threads own disjoint columns
            for each position n:  dweight[indices[n], block] += dout[n, block]
        dweight[padding_idx] = 0

    Optimizations: parallel over column blocks instead of positions, so repeated indices
    never race; accumulation order per element is the index order, as np.add.at.
    """
    # dout (*indices.shape, D) -> dweight (V, D)
    idx, v = cache
    d = dout.shape[-1]
    dweight = np.zeros((v, d), dtype=dout.dtype)
    launch(_scatter_add_rows, dout.size, _rows(dout), idx, dweight, _EMB_BLOCK)
    if padding_idx is not None:
        dweight[padding_idx] = 0
    return dweight


from .attention_numba import attention_forward, attention_backward  # noqa: E402,F401
from .matmul_numba import linear, linear_backward, matmul, matmul_tiled  # noqa: E402,F401
