"""numba_cpu.narrow_product: Linear's forward and dX products on a register tile, against
float64 and the NumPy twin, and the same bits from every path that uses it (row blocks,
threads, Linear against the fused Linear + activation)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from minitensor import kernels  # noqa: E402
from minitensor.kernels.numba_cpu import linalg, linear_act  # noqa: E402
from minitensor.kernels.numba_cpu import narrow_product as P  # noqa: E402
from minitensor.kernels.numpy_ref import narrow_product as ref_product  # noqa: E402

# (M, K, N): the default task's, config S's, rows not a whole number of tiles, fewer rows
# than one tile, a sum longer than fits allows (still right), the vocabulary's narrow sum
SHAPES = [(704, 64, 64), (512, 192, 64), (704, 64, 256), (704, 256, 64), (1024, 128, 128),
          (701, 64, 32), (5, 16, 32), (13, 300, 64), (700, 40, 64)]


def _operands(M, K, N, seed=0, transposed=True):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((N, K) if transposed else (K, N)).astype(np.float32)
    return a, b, rng.standard_normal(N).astype(np.float32)


def _exact(a, b, transposed, bias=None):
    B = (b.T if transposed else b).astype(np.float64)
    out = a.astype(np.float64) @ B
    return out if bias is None else out + bias
    

@pytest.mark.parametrize("transposed", [True, False])
@pytest.mark.parametrize("M,K,N", SHAPES)
def test_matches_float64_and_its_numpy_twin(M, K, N, transposed):
    a, b, bias = _operands(M, K, N, transposed=transposed)
    for has_bias in (True, False):
        out = np.full((M, N), np.nan, np.float32)
        P.product_rows(a, b, transposed, bias, has_bias, out, 0, M)
        exact = _exact(a, b, transposed, bias if has_bias else None)
        # float32 sums of K products (and the bias): error within ~(K + 1) eps of |terms|
        B = np.abs(b.T if transposed else b).astype(np.float64)
        bound = (K + 1) * np.finfo(np.float32).eps * (np.abs(a) @ B + np.abs(bias))
        assert np.all(np.abs(out - exact) <= bound)
        twin = np.empty_like(out)
        ref_product.product_rows(a, b, transposed, bias, has_bias, twin, 0, M)
        np.testing.assert_allclose(out, twin, rtol=2e-4, atol=2e-4 * np.abs(exact).max())


@pytest.mark.parametrize("transposed", [True, False])
def test_rows_outside_the_block_untouched_and_blocks_give_the_same_bits(transposed):
    a, b, bias = _operands(101, 64, 64, seed=2, transposed=transposed)
    whole = np.empty((101, 64), np.float32)
    P.product_rows(a, b, transposed, bias, True, whole, 0, 101)
    parts = np.full((101, 64), np.nan, np.float32)
    P.product_rows(a, b, transposed, bias, True, parts, 24, 61)
    assert np.isnan(parts[:24]).all() and np.isnan(parts[61:]).all()
    for lo, hi in ((0, 24), (61, 101)):             # one element's sum whatever its block
        P.product_rows(a, b, transposed, bias, True, parts, lo, hi)
    np.testing.assert_array_equal(parts, whole)


def test_fits_only_where_measured_faster(monkeypatch):
    a, w, _ = _operands(64, 64, 64)
    if not P.NATIVE_512:
        pytest.skip("no 512-bit vectors on this CPU: every product stays with BLAS")
    assert P.fits(a, w, True) and P.fits(a, w, False)
    assert not P.fits(a.astype(np.float64), w.astype(np.float64), True)   # float32 only
    assert not P.fits(*_operands(64, 64, 384)[:2], True)                   # wide: BLAS
    assert not P.fits(*_operands(64, 512, 64)[:2], True)                   # long sums: BLAS
    assert not P.fits(*_operands(64, 64, 40)[:2], True)                    # not 32 columns a panel
    assert not P.fits(np.asfortranarray(a), w, True)                       # rows not contiguous
    assert not P.fits(a, w[:, :32], True)                                  # K disagrees
    assert not P.fits(a[:0], w, True)
    monkeypatch.setattr(P, "NATIVE_512", False)      # AVX2: the tile would spill, BLAS wins
    assert not P.fits(a, w, True) and not P.fits(a, w, False)


@pytest.mark.parametrize("M,K,N", [(704, 64, 64), (704, 64, 256), (1024, 128, 128), (24, 64, 32)])
def test_linear_same_bits_at_1_and_2_threads_and_in_the_fused_relu(M, K, N):
    x, weight, bias = _operands(M, K, N, seed=3)
    outs = []
    for threads in (1, 2):
        with kernels.threads(threads):
            outs.append(linalg.linear(x, weight, bias))
            fused, _ = linear_act.linear_act_forward(x, weight, bias, "relu", 0.0, 0)
            np.testing.assert_array_equal(fused, np.maximum(outs[-1], 0))
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_allclose(outs[0], _exact(x, weight, True, bias), rtol=1e-4,
                               atol=1e-4 * np.abs(outs[0]).max())


@pytest.mark.parametrize("M,K,N", [(704, 64, 64), (704, 256, 64), (40, 64, 32)])
def test_linear_backward_dx_same_bits_on_every_path(M, K, N):
    """1 or 2 threads (side by side or one after the other), with or without dW: one dX."""
    rng = np.random.default_rng(4)
    g = rng.standard_normal((M, K)).astype(np.float32)        # dY (M, out = K)
    x = rng.standard_normal((M, N)).astype(np.float32)        # input (M, in = N)
    weight = rng.standard_normal((K, N)).astype(np.float32)   # (out, in)
    assert P.fits(g, weight, False) == P.NATIVE_512       # (else BLAS's, the same checks)
    dxs = []
    for threads in (1, 2):
        with kernels.threads(threads):
            dxs.append(linalg.linear_backward(g, x, weight, (True, True, True))[0])
            dxs.append(linalg.linear_backward(g, x, weight, (True, False, False))[0])
    for dx in dxs[1:]:
        np.testing.assert_array_equal(dx, dxs[0])
    np.testing.assert_allclose(dxs[0], _exact(g, weight, False), rtol=1e-4,
                               atol=1e-4 * np.abs(dxs[0]).max())
