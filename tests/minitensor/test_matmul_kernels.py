"""matmul kernels: numpy_ref.linalg.matmul and numba_cpu.linalg.matmul equal np.matmul on every
shape class (1-D, 2-D, broadcast batches, non-contiguous, both float dtypes); the
teaching kernel matmul_tiled equals np.dot on odd sizes."""
from __future__ import annotations

import numpy as np
import pytest

from minitensor.kernels.numpy_ref import linalg as linalg_ref

matmul_numba = pytest.importorskip("minitensor.kernels.numba_cpu.linalg")

IMPLS = {"ref": linalg_ref.matmul, "numba": matmul_numba.matmul}
RTOL = {np.float32: 1e-5, np.float64: 1e-12}

shape_pairs = [
    ((4,), (4,)),  # 1-D @ 1-D -> scalar
    ((4,), (4, 3)),  # 1-D @ 2-D
    ((3, 4), (4,)),  # 2-D @ 1-D
    ((3, 4), (4, 5)),
    ((7, 4), (2, 4, 5)),  # 2-D @ batched
    ((2, 3, 4), (4,)),  # batched @ 1-D
    ((2, 1, 3, 4), (5, 4, 6)),  # broadcasting batches
    ((6, 3, 4), (4, 5)),  # batch folded into rows
    ((128, 32, 32), (128, 32, 32)),  # many small slices: the prange path
    ((1, 64, 64), (32, 64, 64)),  # broadcast a over a big batch
    ((2, 3, 0, 4), (4, 5)),  # empty
    ((0, 3), (3, 2)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sa,sb", shape_pairs)
@pytest.mark.parametrize("impl", list(IMPLS))
def test_matmul_equals_numpy(impl, sa, sb, dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(sa).astype(dtype)
    b = rng.standard_normal(sb).astype(dtype)
    out = IMPLS[impl](a, b)
    expected = np.matmul(a, b)
    assert np.shape(out) == expected.shape and np.result_type(out) == expected.dtype
    np.testing.assert_allclose(out, expected, rtol=RTOL[dtype], atol=RTOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("impl", list(IMPLS))
def test_matmul_non_contiguous_and_broadcast_views(impl, dtype):
    rng = np.random.default_rng(1)
    f = IMPLS[impl]
    a = rng.standard_normal((40, 3, 33)).astype(dtype).transpose(1, 2, 0)  # (3, 33, 40)
    b = rng.standard_normal((3, 17, 40)).astype(dtype).swapaxes(-1, -2)  # (3, 40, 17)
    np.testing.assert_allclose(f(a, b), np.matmul(a, b), rtol=RTOL[dtype], atol=RTOL[dtype])
    a2 = rng.standard_normal((50, 30)).astype(dtype)[::2, ::3]  # strided 2-D
    b2 = rng.standard_normal((10, 9)).astype(dtype)
    np.testing.assert_allclose(f(a2, b2), np.matmul(a2, b2), rtol=RTOL[dtype], atol=RTOL[dtype])
    # zero-stride operand, as np.broadcast_to (or Tensor.expand) makes it
    a3 = np.broadcast_to(rng.standard_normal((1, 48, 32)).astype(dtype), (64, 48, 32))
    b3 = rng.standard_normal((64, 32, 48)).astype(dtype)
    np.testing.assert_allclose(f(a3, b3), np.matmul(a3, b3), rtol=RTOL[dtype], atol=RTOL[dtype])
    # batched, transposed views, big enough for the prange path
    a4 = rng.standard_normal((48, 64, 32)).astype(dtype).transpose(1, 0, 2)  # (64, 48, 32)
    b4 = rng.standard_normal((64, 48, 32)).astype(dtype).swapaxes(-1, -2)  # (64, 32, 48)
    np.testing.assert_allclose(f(a4, b4), np.matmul(a4, b4), rtol=RTOL[dtype], atol=RTOL[dtype])


def test_batched_prange_path_is_taken(monkeypatch):
    calls = []
    original = matmul_numba._batched_dot
    monkeypatch.setattr(matmul_numba, "_batched_dot",
                        lambda *args: calls.append(1) or original(*args))
    rng = np.random.default_rng(4)
    a = rng.standard_normal((2, 1, 64, 32))
    b = rng.standard_normal((16, 32, 64))
    np.testing.assert_allclose(matmul_numba.matmul(a, b), np.matmul(a, b), rtol=1e-12)
    assert calls, "(2, 1, 64, 32) @ (16, 32, 64) should use the prange-over-batch kernel"


@pytest.mark.parametrize("impl", list(IMPLS))
def test_matmul_mixed_dtypes_promote_like_numpy(impl):
    a = np.ones((64, 8, 8), np.float32)
    b = np.ones((64, 8, 8), np.float64)
    out = IMPLS[impl](a, b)
    assert out.dtype == np.matmul(a, b).dtype == np.float64
    np.testing.assert_array_equal(out, np.matmul(a, b))


def test_matmul_shape_error_is_numpy_s():
    with pytest.raises(ValueError):
        matmul_numba.matmul(np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(ValueError):
        matmul_numba.matmul(np.ones((8, 2, 3)), np.ones((8, 4, 5)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 5, 7), (65, 129, 257), (130, 70, 300)])
def test_matmul_tiled_equals_dot(m, k, n, dtype):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    out = matmul_numba.matmul_tiled(a, b)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, np.dot(a, b), rtol=RTOL[dtype], atol=RTOL[dtype] * np.sqrt(k))


def test_matmul_tiled_non_contiguous_and_errors():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((9, 13)).T  # (13, 9), Fortran order
    b = rng.standard_normal((9, 4))
    np.testing.assert_allclose(matmul_numba.matmul_tiled(a, b), a @ b, rtol=1e-12)
    with pytest.raises(ValueError, match="matmul_tiled"):
        matmul_numba.matmul_tiled(np.ones((2, 3)), np.ones((2, 3)))


# ------------------------------------------ thread policy: row blocks and product pairs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_big_products_split_over_threads_equal_numpy(threads, dtype):
    """Big 2-D products are split into row blocks (one per thread), folded batches and
    Linear's transposed weight included; each element is still one BLAS dot product over
    the whole shared dimension, so 1 and 2 threads give identical bits."""
    numba = pytest.importorskip("numba")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((420, 160)).astype(dtype)
    w = rng.standard_normal((130, 160)).astype(dtype)
    assert x.shape[0] * x.shape[1] * w.shape[0] >= matmul_numba.PARALLEL_MIN_MACS
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        got = [matmul_numba.matmul(x, w.T), matmul_numba.matmul(x.reshape(3, 140, 160), w.T)]
    finally:
        numba.set_num_threads(before)
    np.testing.assert_allclose(got[0], x @ w.T, rtol=RTOL[dtype], atol=RTOL[dtype] * 20)
    np.testing.assert_array_equal(got[1], got[0].reshape(3, 140, 130))
    numba.set_num_threads(1)
    try:
        np.testing.assert_array_equal(matmul_numba.matmul(x, w.T), got[0])
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_linear_kernels_equal_numpy_ref(threads, dtype):
    """linear / linear_backward (bias added per row block; dX and dW side by side with
    dbias on 2 threads) against the NumPy twin, on big, small, non-contiguous, bias-free
    and partial-gradient calls."""
    numba = pytest.importorskip("numba")
    from minitensor.kernels import numba_cpu, numpy_ref
    rng = np.random.default_rng(8)
    x = rng.standard_normal((400, 130)).astype(dtype)
    w = rng.standard_normal((150, 130)).astype(dtype)
    b = rng.standard_normal(150).astype(dtype)
    g = rng.standard_normal((400, 150)).astype(dtype)
    cases = [(x, w, b, g, (True, True, True)), (x, w, None, g, (True, True, False)),
             (x[:3], w, b, g[:3], (True, True, True)), (x.T.copy().T, w, b, g, (False, True, True)),
             (x, w[:, ::2].copy()[:, :65], None, g, (True, False, False)),
             (np.asfortranarray(x), w, b, np.asfortranarray(g), (True, True, True))]
    tol = RTOL[dtype] * 50
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        for xi, wi, bi, gi, needs in cases:
            xi = xi[:, :wi.shape[1]]
            got, want = numba_cpu.linear(xi, wi, bi), numpy_ref.linear(xi, wi, bi)
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
            grads = numba_cpu.linear_backward(gi, xi if needs[1] else None,
                                              wi if needs[0] else None, needs)
            ref_grads = numpy_ref.linear_backward(gi, xi, wi, needs)
            for a, r, needed in zip(grads, ref_grads, needs):
                assert (a is None) == (r is None) == (not needed)
                if needed:
                    assert a.shape == r.shape and a.dtype == r.dtype
                    np.testing.assert_allclose(a, r, rtol=tol, atol=tol * np.abs(r).max())
    finally:
        numba.set_num_threads(before)


def test_numba_matmul_never_uses_numpys_threaded_blas(monkeypatch):
    """Float products go through Numba's np.dot (one BLAS thread per Numba thread), never
    np.matmul, whose threaded OpenBLAS spins idle threads (see _threads.py)."""
    calls = []
    real = np.matmul
    monkeypatch.setattr(matmul_numba.np, "matmul", lambda *a: calls.append(1) or real(*a))
    rng = np.random.default_rng(9)
    for sa, sb in [((64, 32), (32, 48)), ((2, 64, 32), (32, 48)), ((8, 16, 32), (8, 32, 16)),
                   ((3, 1, 20, 30), (4, 30, 10)), ((400, 300), (300, 200))]:
        a, b = rng.standard_normal(sa).astype(np.float32), rng.standard_normal(sb).astype(np.float32)
        out = matmul_numba.matmul(a, b)
        np.testing.assert_allclose(out, real(a, b), rtol=1e-4, atol=1e-4)
    assert not calls


def test_blas_held_at_one_thread_only_inside_blocks_which_nest():
    """blas_single_threaded: the BLAS Numba calls runs on 1 thread inside the block and at
    its own count after it; an inner block (a product inside the engine's backward scope)
    leaves the outer one's setting alone; an exception restores it too."""
    pytest.importorskip("threadpoolctl")
    from minitensor.kernels.numba_cpu import _threads
    controls = _threads._blas_controls()
    if not controls:
        pytest.skip("no BLAS library besides NumPy's is loaded")
    get = controls[0][0]
    _, set_ = controls[0]
    own = get()
    set_(2)                                     # a count the blocks must change and restore
    try:
        with _threads.blas_single_threaded():
            assert get() == 1
            with _threads.blas_single_threaded():
                assert get() == 1
            assert get() == 1                   # the inner block did not restore early
        assert get() == 2
        with pytest.raises(RuntimeError):
            with matmul_numba.blas_scope():     # the engine's scope around a backward pass
                assert get() == 1
                raise RuntimeError("inside")
        assert get() == 2
    finally:
        set_(own)
