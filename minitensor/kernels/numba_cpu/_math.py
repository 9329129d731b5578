"""The jitted helpers every Numba kernel shares: one exp, one erf, one tanh, row reductions.

Kernels in the other files of this package import these by name. Why they exist:

* ``exp`` is our own (``_exp64``/``_exp32``: range reduction plus a polynomial, within
  1 ulp in both dtypes, exact at 0, -inf, overflow and underflow). Numba's ``np.exp``
  is a scalar libm call that blocks vectorization; this one vectorizes, which is most
  of the speed of the softmax family and of attention. On a CPU with AVX-512 its last
  step, times 2^k, is one instruction (``_ldexp``, below). GELU's ``_erf``/``_tanh``
  follow the same idea.
* Sums go through small helpers compiled with ``fastmath={"reassoc", "contract"}`` so
  the reduction vectorizes; neither flag changes how inf or NaN behave. No kernel uses
  ``nnan``/``ninf`` (rows may hold -inf). Max-reductions call ``llvm.maximum`` (NaN
  propagates, as in ``np.max``), which LLVM vectorizes where an if/else max would not.
* Numba promotes ``float32 op int`` and ``float32 op 1.0`` to float64, so scalars the
  float32 kernels need are passed in already cast to the array dtype, or read back from
  a float32 array, to keep float32 kernels in float32.

The helpers that have an ``@overload`` are plain Python functions too: that body is what
runs under ``NUMBA_DISABLE_JIT=1`` (``_exp`` is then ``np.exp``). Numba's cache does not
notice an edit to this file in the kernels that call it; the package's ``__init__``
clears the cache when it does (``_cache.py``).
"""
from __future__ import annotations

import math

import llvmlite.binding as llvm
import llvmlite.ir as llvm_ir
import numpy as np
from numba import njit, types
from numba.core import cgutils, config
from numba.extending import intrinsic, overload

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


def _compiles_for_avx512() -> bool:
    """Whether Numba compiles for a CPU with AVX-512 (NUMBA_CPU_FEATURES, when set, decides)."""
    features = config.CPU_FEATURES
    if features is None:
        features = llvm.get_host_cpu_features().flatten()
    return "+avx512f" in features.split(",")


# On AVX-512, llvm.ldexp becomes one instruction (vscalef) that vectorizes; elsewhere it
# becomes a call to libm's ldexp per element, and the exps below scale in two steps instead.
_ONE_STEP_LDEXP = _compiles_for_avx512()


@intrinsic
def _ldexp(typingctx, x, n):
    """x * 2^n rounded once, like math.ldexp: subnormal results are correctly rounded, too
    large ones are inf (llvm.ldexp; n must fit in 32 bits)."""
    if x not in (types.float32, types.float64) or not isinstance(n, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        xv, nv = args
        i32 = llvm_ir.IntType(32)
        if nv.type.width > 32:
            nv = builder.trunc(nv, i32)
        elif nv.type.width < 32:
            nv = builder.sext(nv, i32)
        ty = _llvm_float(x)
        name = "llvm.ldexp.f64.i32" if x == types.float64 else "llvm.ldexp.f32.i32"
        fn = cgutils.get_or_insert_function(builder.module, llvm_ir.FunctionType(ty, [ty, i32]), name)
        return builder.call(fn, [xv, nv])
    return x(x, n), codegen


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
    harmless: it just flows through r). x is clamped first: -inf -> 0, +inf -> inf.

    p * 2^k must be rounded once, so that subnormal results and the overflow edge come
    out right. With AVX-512 that is _ldexp, one instruction. Elsewhere 2^k is applied as
    two factors 2^(k//2) * 2^(k - k//2): the first product is exact, the second rounds
    once. Both ways give the same bits; the one-step way is 15-25% faster.

    Below the clamp (-inf: masked softmax entries) the result is an exact 0 (in the
    two-step way, the second factor is), and x is set to 0 so that nothing on the way
    underflows: an underflowing multiply or vscalef takes a ~100-cycle microcode assist
    on x86 (a causal softmax, half its entries -inf, ran 3.5x slower that way; LLVM
    computes both sides of the final select, so "0 if below" alone does not avoid it).
    """
    below = x < -746.0                   # exp(-746) rounds to 0; NaN passes both tests
    x = 0.0 if below else x              # the result will be 0: compute exp(0), which cannot underflow
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
    if _ONE_STEP_LDEXP:                  # a constant to Numba: the other way is compiled out
        return 0.0 if below else _ldexp(p, k)
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
    ~2.5 ulp off): the same scheme with Cephes' expf polynomial, and the same two ways
    to apply 2^k."""
    below = x < _LO32                   # -inf: an exact 0, no underflow (see _exp64)
    x = _ZERO32 if below else x
    x = _HI32 if x > _HI32 else x
    kr = x * _LOG2E32 + _ROUND32
    kf = kr - _ROUND32
    r = (x - kf * _LN2HI32) - kf * _LN2LO32
    p = ((((_EP0 * r + _EP1) * r + _EP2) * r + _EP3) * r + _EP4) * r + _EP5
    p = p * (r * r) + r + _ONE32
    # Numba widens int32 math to int64: np.int32(...) narrows back so it stays 32-bit.
    k = np.int32(_float_to_bits(kr) - _ROUND32_BITS)
    if _ONE_STEP_LDEXP:
        return _ZERO32 if below else _ldexp(p, k)
    k1 = np.int32(k >> 1)
    s1 = _bits_to_float(np.int32((k1 + 127) << 23))
    s2 = _ZERO32 if below else _bits_to_float(np.int32((k - k1 + 127) << 23))
    return p * s1 * s2


# One exp for every kernel. (The fused attention kernels used to carry a second one,
# np.floor plus an add to the exponent bits, <= 2 ulp, flushing results below exp(-708)
# to 0; this one is <= 1 ulp and keeps subnormal results, and with AVX-512 it is as fast
# in a loop: ~0.27 ns per float32 element, ~0.8 ns per float64 one, on 1 core. Only
# subnormal results are slow, ~8 and ~19 ns: a microcode assist makes them.)
# "Same bits" above holds for the function compiled on its own. _exp32 allows FMA
# contraction ("contract"), and LLVM decides it per call site, so inlined into another
# kernel a result can move by 1 ulp: after the merge the materialized attention kernel's
# float32 weights differed from the old build by <= 1.2e-7. Float64 is unaffected.


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

# ------------------------------------------------------------------- tanh, erf (GELU)


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
    the jitted scalar helpers (and a loop over _exp that vectorizes, to time it)."""
    for i in range(x.shape[0]):
        if which == 0:
            out[i] = _exp(x[i])
        elif which == 1:
            out[i] = _erf(x[i])
        else:
            out[i] = _tanh(x[i])
