"""numba_cpu.weight_grad: Linear's dW = dY^T X read in place, against float64 and its twin,
and the same bits from every path of linear_backward (threads, needs)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from minitensor import kernels  # noqa: E402
from minitensor.kernels.numba_cpu import linalg, weight_grad as W  # noqa: E402
from minitensor.kernels.numpy_ref import linalg as ref_linalg  # noqa: E402
from minitensor.kernels.numpy_ref import weight_grad as ref_weight_grad  # noqa: E402

# (N, in, out): the default task's, config S's, sums shorter than / equal to / past one
# pass (KC), a single row tile
SHAPES = [(704, 64, 64), (512, 256, 64), (1024, 128, 384), (5, 32, 8), (128, 64, 16),
          (300, 96, 24), (W.KC * 2 + 1, 32, 8)]


def _operands(N, I, O, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((N, O)).astype(dtype),          # g = dY
            rng.standard_normal((N, I)).astype(dtype),          # x
            rng.standard_normal((O, I)).astype(dtype))          # weight


@pytest.mark.parametrize("N,I,O", SHAPES)
def test_matches_float64_and_its_numpy_twin(N, I, O):
    g, x, _ = _operands(N, I, O)
    assert W.fits(g, x) == W.NATIVE_512     # (run below either way: right on every CPU)
    dw = np.full((O, I), np.nan, np.float32)
    W.weight_grad(g, x, dw)
    exact = g.astype(np.float64).T @ x.astype(np.float64)
    # float32 sums of N products: error bounded by ~N eps |g|^T |x|
    bound = N * np.finfo(np.float32).eps * (np.abs(g).T.astype(np.float64) @ np.abs(x))
    assert np.all(np.abs(dw - exact) <= bound)
    twin = np.empty_like(dw)
    ref_weight_grad.weight_grad(g, x, twin)
    np.testing.assert_allclose(dw, twin, rtol=2e-4, atol=2e-4 * np.abs(exact).max())


def test_fits_only_where_measured_faster(monkeypatch):
    g, x, _ = _operands(64, 64, 64)
    if not W.NATIVE_512:
        pytest.skip("no 512-bit vectors on this CPU: dW stays with BLAS")
    assert W.fits(g, x)
    assert not W.fits(g.astype(np.float64), x.astype(np.float64))     # float32 only
    assert not W.fits(*_operands(64, 64, 1000)[:2])                    # long rows: BLAS
    assert not W.fits(*_operands(64, 512, 64)[:2])
    assert not W.fits(*_operands(64, 64, 60)[:2])                      # not 8 rows a tile
    assert not W.fits(*_operands(64, 48, 64)[:2])                      # not 32 columns a tile
    assert not W.fits(np.asfortranarray(g), x)                         # rows not contiguous
    assert not W.fits(g[:0], x[:0])
    monkeypatch.setattr(W, "NATIVE_512", False)      # AVX2: the tile would spill, BLAS wins
    assert not W.fits(g, x)


@pytest.mark.parametrize("N,I,O", [(704, 64, 64), (1024, 128, 384), (64, 32, 16)])
def test_linear_backward_same_bits_on_every_path(N, I, O):
    """1 or 2 threads (side by side or one after the other), with or without dX: one dW."""
    g, x, weight = _operands(N, I, O, seed=1)
    results = []
    for threads in (1, 2):
        with kernels.threads(threads):
            results.append(linalg.linear_backward(g, x, weight, (True, True, True)))
            results.append(linalg.linear_backward(g, x, weight, (False, True, False)))
    first = results[0]
    for dx, dw, db in results:
        np.testing.assert_array_equal(dw, first[1])
        if dx is not None:
            np.testing.assert_array_equal(dx, first[0])
            np.testing.assert_array_equal(db, first[2])
    want = ref_linalg.linear_backward(g, x, weight, (True, True, True))
    for got, expected in zip(first, want):
        np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-4 * np.abs(expected).max())
