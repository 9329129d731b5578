"""numba_cpu.gemm and its NumPy twin: equal np.matmul on the three layouts Linear uses (x @ W^T, dY @ W,
dY^T @ x: transposed views read in place), on edge sizes (rows not a multiple of 8,
columns not a multiple of the panel width, K over several slabs), with and without a
bias; 1 and 2 threads give identical bits; bad input gets a clear error."""
from __future__ import annotations

import re

import numpy as np
import pytest

from minitensor.kernels.numpy_ref import gemm as gemm_ref

gemm_module = pytest.importorskip("minitensor.kernels.numba_cpu.gemm")
gemm = gemm_module.gemm
IMPLS = {"ref": gemm_ref.gemm, "numba": gemm}

# (M, K, N): the step's shapes in small, plus every edge case of the blocking
SHAPES = [
    (64, 32, 96),                       # whole micro-tiles and panels only
    (37, 19, 45),                       # ragged rows, columns and K
    (8, 1, 32),                         # K = 1
    (1, 5, 1),                          # a single output element
    (13, gemm_module.KC * 2 + 7, 70),   # three K slabs: partial sums go through out
    (200, 64, 40),                      # the dates task's output projection, in small
    (45, 70, 150),                      # dY^T packed (5 panels), with ragged rows
]
LAYOUTS = ["fwd", "dX", "dW"]


def operands(layout: str, M: int, K: int, N: int, dtype, seed: int = 0):
    """a (M, K), b (K, N) laid out as Linear has them (views, never copies)."""
    rng = np.random.default_rng(seed)
    if layout == "fwd":    # x @ W^T: b is the transposed view of W (N, K)
        w = rng.standard_normal((N, K)).astype(dtype)
        return rng.standard_normal((M, K)).astype(dtype), w.T
    if layout == "dX":     # dY @ W: both C-ordered
        return rng.standard_normal((M, K)).astype(dtype), rng.standard_normal((K, N)).astype(dtype)
    # dY^T @ x: a is the transposed view of dY (K, M)
    return rng.standard_normal((K, M)).astype(dtype).T, rng.standard_normal((K, N)).astype(dtype)


def assert_matches_matmul(out, a, b, bias=None):
    """float64: 1e-12 relative; float32: within K float32 roundings of |a| @ |b| of the exact
    product (the rounding-error bound of any summation order), and so of np.matmul's."""
    exact = a.astype(np.float64) @ b.astype(np.float64)
    scale = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
    if bias is not None:
        exact = exact + bias
        scale = scale + np.abs(bias)
    assert out.shape == exact.shape and out.dtype == a.dtype and out.flags.c_contiguous
    if a.dtype == np.float64:
        np.testing.assert_allclose(out, exact, rtol=1e-12, atol=1e-12 * scale.max())
        return
    bound = (a.shape[1] + 1) * np.finfo(np.float32).eps * scale
    assert np.all(np.abs(out - exact) <= bound)
    expected = np.matmul(a, b) + (bias if bias is not None else 0)
    assert np.all(np.abs(out - expected) <= 2 * bound)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("M,K,N", SHAPES)
def test_gemm_equals_matmul(M, K, N, layout, dtype):
    a, b = operands(layout, M, K, N, dtype)
    assert_matches_matmul(gemm(a, b, threads=1), a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_gemm_bias_is_added(layout, dtype):
    a, b = operands(layout, 37, 300, 45, dtype)
    bias = np.random.default_rng(1).standard_normal(45).astype(dtype)
    assert_matches_matmul(gemm(a, b, bias), a, b, bias)


@pytest.mark.parametrize("N", [70, 150])      # 3 panels; 5 (dY^T packed per thread)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_gemm_same_bits_on_1_and_2_threads(layout, dtype, N):
    a, b = operands(layout, 203, 600, N, dtype)   # 26 micro-rows, 3 slabs, ragged edges
    one = gemm(a, b, threads=1)
    two = gemm(a, b, threads=2)
    np.testing.assert_array_equal(one, two)
    assert_matches_matmul(two, a, b)


def test_gemm_reads_views_in_place_and_copies_other_layouts():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((45, 33)).astype(np.float32)
    flat, rs, cs = gemm_module._flat(w.T)          # F-ordered view: no copy
    assert np.shares_memory(flat, w) and (rs, cs) == (1, 33)
    a = rng.standard_normal((40, 66)).astype(np.float32)[::2, ::2]   # strided: copied
    b = rng.standard_normal((33, 17)).astype(np.float32)
    assert_matches_matmul(gemm(a, b), a, b)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_gemm_equals_its_numpy_twin(layout):
    a, b = operands(layout, 45, 300, 70, np.float64)
    bias = np.random.default_rng(3).standard_normal(70)
    expected = gemm_ref.gemm(a, b, bias)
    assert expected.flags.c_contiguous
    np.testing.assert_allclose(gemm(a, b, bias), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("impl", list(IMPLS))
def test_gemm_empty_dimensions(impl):
    gemm = IMPLS[impl]
    a = np.zeros((3, 0), np.float32)
    b = np.zeros((0, 4), np.float32)
    np.testing.assert_array_equal(gemm(a, b), np.zeros((3, 4), np.float32))
    out = gemm(a, b, np.ones(4, np.float32))
    np.testing.assert_array_equal(out, np.ones((3, 4), np.float32))
    assert out.dtype == np.float32
    assert gemm(np.zeros((0, 5)), np.zeros((5, 2))).shape == (0, 2)


@pytest.mark.parametrize("impl", list(IMPLS))
def test_gemm_bad_input_names_the_problem(impl):
    gemm = IMPLS[impl]
    a = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"gemm: a \(3, 4\) and b \(5, 2\)"):
        gemm(a, np.zeros((5, 2), np.float32))
    with pytest.raises(TypeError, match="float32 and float64"):
        gemm(a, np.zeros((4, 2), np.float64))
    with pytest.raises(TypeError, match="int64"):
        gemm(np.zeros((3, 4), np.int64), np.zeros((4, 2), np.int64))
    with pytest.raises(ValueError, match="bias"):
        gemm(a, np.zeros((4, 2), np.float32), np.zeros(3, np.float32))


def test_micro_kernel_is_512_bit_fmas():
    """The point of _simd: the inner loop is zmm FMAs even where LLVM's vectorizer would
    pick 256 bits. Compiled afresh (cached code carries no assembly)."""
    import numba
    from numba import njit

    cpu = numba.config.CPU_FEATURES or ""
    try:
        import llvmlite.binding as llvm
        has_avx512 = llvm.get_host_cpu_features().get("avx512f", False)
    except Exception:  # pragma: no cover
        has_avx512 = "+avx512f" in cpu
    if not has_avx512:
        pytest.skip("no AVX-512 on this CPU: LLVM splits the vectors (correct, slower)")
    kernel = njit(gemm_module._micro_kernel.py_func)
    a = np.zeros(8 * 64, np.float32)
    panel = np.zeros(64 * 32, np.float32)
    c = np.zeros(8 * 32, np.float32)
    kernel(64, a, 0, 64, 1, panel, 0, 32, c, 0, 32, gemm_module.INIT_ZERO, c, 0)
    asm = next(iter(kernel.inspect_asm().values()))
    assert len(re.findall(r"vfmadd\d+ps\s+[^\n]*zmm", asm)) >= 16
