"""One-register SIMD vectors for jitted code: the 512-bit type and the operations GEMM needs.

Why not let LLVM vectorize plain loops? On recent Intel CPUs (Skylake-X and later) LLVM
tunes its vectorizers for 256-bit vectors ("prefer-vector-width=256"), so Numba's loops
become ymm code: at most half the FMA throughput of an AVX-512 core. A value of LLVM type
``<16 x float>`` is still legal and is compiled to one zmm register, so a kernel written
with these vectors gets 512-bit FMAs (``vfmadd231ps ... zmm``) whatever the tuning says.
On a machine without AVX-512, LLVM splits each vector into two ymm (or four xmm)
registers: the code stays correct, only slower.

    vzeros(arr)            a vector of arr.dtype, all lanes 0
    vload(arr, i)          arr[i : i + lanes] as a vector (arr 1-D contiguous; unaligned)
    vstore(arr, i, v)      arr[i : i + lanes] = v
    vbroadcast(arr, i)     arr[i] in every lane
    vfma(a, b, c)          a * b + c, lane by lane, one fused multiply-add each (one
                           rounding, as the FMA kernels of np.matmul's BLAS)
    prefetch_for_write(arr, i)   fetch the cache line of arr[i] ahead of a store to it
    vload_tile(arr, i, ld, w)    the 8 x 2-vector tile arr[i + r ld + (0 | w) ...], r < 8,
                                 as 16 vectors (row by row): a GEMM's register tile
    vstore_tile(arr, i, ld, w, t)   the same tile's stores, t as vload_tile returns it

A vector holds 64 bytes: 16 float32 or 8 float64 (``lanes(dtype)``). There is no bounds
check and no negative-index wraparound (plain indexing costs 3 integer instructions per
load for it): the caller guarantees 0 <= i and i + lanes <= arr.size.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba import njit
from numba.extending import intrinsic, models, register_model

from ._math import _compiles_for_avx512

VECTOR_BYTES = 64  # one AVX-512 register
# The register-tiled kernels (weight_grad, narrow_product) pay off only where a vector is
# one register: elsewhere each is split in two and their 16-vector tile needs 32 of the
# 16 AVX2 registers (it spills), so their ``fits`` leave the products to BLAS there.
NATIVE_512 = _compiles_for_avx512()


def lanes(dtype) -> int:
    """How many elements of ``dtype`` one vector holds (16 float32, 8 float64)."""
    return VECTOR_BYTES // np.dtype(dtype).itemsize


class SimdVector(types.Type):
    """Numba type of one 64-byte vector of ``dtype`` (float32 or float64)."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.lanes = VECTOR_BYTES // (dtype.bitwidth // 8)
        super().__init__(name=f"SimdVector({dtype}x{self.lanes})")


@register_model(SimdVector)
class _SimdVectorModel(models.PrimitiveModel):
    """Stored as LLVM's <lanes x dtype>: kept in one register, never in memory."""

    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.lanes))


def _vector_pointer(context, builder, array_type, array, index, vector_type):
    """Address of array[index], as a pointer to a vector."""
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [index]), vector_type.as_pointer())


@intrinsic
def vzeros(typingctx, array):
    vector = SimdVector(array.dtype)

    def codegen(context, builder, sig, args):
        return ir.Constant(context.get_value_type(vector), None)
    return vector(array), codegen


@intrinsic
def vload(typingctx, array, index):
    vector = SimdVector(array.dtype)

    def codegen(context, builder, sig, args):
        pointer = _vector_pointer(context, builder, sig.args[0], args[0], args[1],
                                  context.get_value_type(vector))
        return builder.load(pointer, align=array.dtype.bitwidth // 8)
    return vector(array, index), codegen


@intrinsic
def vstore(typingctx, array, index, value):
    def codegen(context, builder, sig, args):
        pointer = _vector_pointer(context, builder, sig.args[0], args[0], args[1],
                                  context.get_value_type(sig.args[2]))
        builder.store(args[2], pointer, align=array.dtype.bitwidth // 8)
        return context.get_dummy_value()
    return types.none(array, index, value), codegen


@intrinsic
def vbroadcast(typingctx, array, index):
    vector = SimdVector(array.dtype)

    def codegen(context, builder, sig, args):
        vector_type = context.get_value_type(vector)
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        x = builder.load(builder.gep(data, [args[1]]))
        one = builder.insert_element(ir.Constant(vector_type, ir.Undefined), x,
                                     ir.Constant(ir.IntType(32), 0))
        zeros = ir.Constant(ir.VectorType(ir.IntType(32), vector.lanes), [0] * vector.lanes)
        return builder.shuffle_vector(one, ir.Constant(vector_type, ir.Undefined), zeros)
    return vector(array, index), codegen


@intrinsic
def vfma(typingctx, a, b, c):
    if not isinstance(a, SimdVector) or b != a or c != a:
        return None

    def codegen(context, builder, sig, args):
        vector_type = context.get_value_type(a)
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vector_type, [vector_type] * 3),
            f"llvm.fma.v{a.lanes}f{a.dtype.bitwidth}")
        return builder.call(fma, list(args))
    return a(a, b, c), codegen


@intrinsic
def prefetch_for_write(typingctx, array, index):
    """Ask the cache for the line holding array[index] ahead of a store to it."""
    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        i8p = ir.IntType(8).as_pointer()
        address = builder.bitcast(builder.gep(data, [args[1]]), i8p)
        i32 = ir.IntType(32)
        prefetch = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0i8")
        # rw = 1 (write), locality = 3 (keep in every cache level), cache type 1 (data)
        flags = [ir.Constant(i32, 1), ir.Constant(i32, 3), ir.Constant(i32, 1)]
        builder.call(prefetch, [address] + flags)
        return context.get_dummy_value()
    return types.none(array, index), codegen


# A register tile is 16 separate vector values (Numba keeps a vector in a register only
# as its own variable), so its loads and stores are written out once, here.
@njit(inline="always")
def vload_tile(arr, i, ld, w):
    return (vload(arr, i), vload(arr, i + w), vload(arr, i + ld), vload(arr, i + ld + w),
            vload(arr, i + 2 * ld), vload(arr, i + 2 * ld + w),
            vload(arr, i + 3 * ld), vload(arr, i + 3 * ld + w),
            vload(arr, i + 4 * ld), vload(arr, i + 4 * ld + w),
            vload(arr, i + 5 * ld), vload(arr, i + 5 * ld + w),
            vload(arr, i + 6 * ld), vload(arr, i + 6 * ld + w),
            vload(arr, i + 7 * ld), vload(arr, i + 7 * ld + w))


@njit(inline="always")
def vstore_tile(arr, i, ld, w, t):
    vstore(arr, i, t[0])
    vstore(arr, i + w, t[1])
    vstore(arr, i + ld, t[2])
    vstore(arr, i + ld + w, t[3])
    vstore(arr, i + 2 * ld, t[4])
    vstore(arr, i + 2 * ld + w, t[5])
    vstore(arr, i + 3 * ld, t[6])
    vstore(arr, i + 3 * ld + w, t[7])
    vstore(arr, i + 4 * ld, t[8])
    vstore(arr, i + 4 * ld + w, t[9])
    vstore(arr, i + 5 * ld, t[10])
    vstore(arr, i + 5 * ld + w, t[11])
    vstore(arr, i + 6 * ld, t[12])
    vstore(arr, i + 6 * ld + w, t[13])
    vstore(arr, i + 7 * ld, t[14])
    vstore(arr, i + 7 * ld + w, t[15])


@njit(inline="always")
def fma_tile(t, a, ai, a_row, a_step, b, bi, b_step, w, steps):
    """The register tile's sum, ``steps`` steps of it, on the tile t (as vload_tile
    returns it); returns the new tile:

        for each step:  b0, b1 = b[bi : bi + w], b[bi + w : bi + 2w]
                        t[r] += a[ai + r * a_row] * (b0, b1)     r < 8: broadcast, 2 FMAs
                        ai += a_step;  bi += b_step

    Every element of the tile is one chain of FMAs in step order. Inlined, the 16
    vectors stay in registers (2 loads and 8 broadcasts per 16 FMAs)."""
    (c00, c01, c10, c11, c20, c21, c30, c31,
     c40, c41, c50, c51, c60, c61, c70, c71) = t
    for _ in range(steps):
        b0, b1 = vload(b, bi), vload(b, bi + w)
        x = vbroadcast(a, ai)
        c00, c01 = vfma(x, b0, c00), vfma(x, b1, c01)
        x = vbroadcast(a, ai + a_row)
        c10, c11 = vfma(x, b0, c10), vfma(x, b1, c11)
        x = vbroadcast(a, ai + 2 * a_row)
        c20, c21 = vfma(x, b0, c20), vfma(x, b1, c21)
        x = vbroadcast(a, ai + 3 * a_row)
        c30, c31 = vfma(x, b0, c30), vfma(x, b1, c31)
        x = vbroadcast(a, ai + 4 * a_row)
        c40, c41 = vfma(x, b0, c40), vfma(x, b1, c41)
        x = vbroadcast(a, ai + 5 * a_row)
        c50, c51 = vfma(x, b0, c50), vfma(x, b1, c51)
        x = vbroadcast(a, ai + 6 * a_row)
        c60, c61 = vfma(x, b0, c60), vfma(x, b1, c61)
        x = vbroadcast(a, ai + 7 * a_row)
        c70, c71 = vfma(x, b0, c70), vfma(x, b1, c71)
        ai += a_step
        bi += b_step
    return (c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71)
