"""Matrix products for the Numba backend (twin of ``numpy_ref/linalg.py``): pick the
fastest path per shape.

``matmul(a, b)`` has exactly ``np.matmul``'s semantics and result dtype. It chooses:

    1-D operand, or not float32/float64     -> np.matmul
    2-D @ 2-D, and (..., M, K) @ (K, N)     -> one GEMM (the batch folded into the rows),
                                               rows split over the threads when big
    broadcast-batched slices                -> _batched_dot: prange over the batch, one
                                               single-threaded np.dot per slice

``linear(x, weight, bias)`` is Linear's x W^T + b with the bias added in the same pass;
``linear_backward`` computes its two independent products (dX = dY W, dW = dY^T X) one
per thread, with dbias alongside. Where they fit (float32, widths up to 256: the
Transformer's Linear layers at the default task's and config S's model width), the
three products run on our own register-tiled kernels instead of BLAS (forward and dX:
``narrow_product.py``, dW: ``weight_grad.py``), which measured 1.1-1.4x faster than
OpenBLAS there on one core.

Thread policy (see ``_threads.py``): Numba's thread pool owns the parallelism, and every
BLAS product is a single-threaded call (SciPy's OpenBLAS, which Numba's ``np.dot`` calls)
on a block of rows; our own kernels run on the calling thread the same way. NumPy's own BLAS is never used for float products here: a threaded
OpenBLAS keeps its idle threads spinning, and on a loaded 2-core machine that cost a
Transformer training step 5-8x (1.0-1.5 s instead of 0.19 s). Products too small to
pay for waking a second thread run on the calling thread.

Splitting rows never changes results: each output element is still one dot product
over the whole shared dimension (BLAS's, or one in-order FMA chain in our kernels), so
1 and N threads give identical numbers.

``matmul_tiled(a, b)`` is the teaching kernel: a readable cache-tiled 2-D matmul in plain
loops. It is tested, but the dispatcher does not use it (BLAS is faster on every shape
measured here).
"""
from __future__ import annotations

from contextlib import nullcontext

import numpy as np
from numba import get_num_threads, njit, prange

from ..buffers import empty
from ._background_compile import asked_ahead, compile_ahead, parallel_ready
from ._threads import blas_single_threaded
from .narrow_product import MR as _NARROW_ROWS
from .narrow_product import fits as _narrow_fits
from .narrow_product import product_rows as _narrow_product
from .weight_grad import fits as _weight_grad_fits
from .weight_grad import weight_grad as _weight_grad

# Products with fewer multiply-adds (M * K * N, summed over the batch) run on one
# thread; a Linear's backward runs dX and dW side by side from half as many. Chosen
# inside training steps, not from a product timed alone: alone, with its operands in
# cache and the second thread just woken, (704, 64) @ (64, 64) (2.9M) gains nothing
# from 2 threads; inside the dates task's step (operands coming from L3, the Numba
# threads kept busy by the step's other parallel kernels) a threshold of 2M instead of
# 8M took the step from 17.0 to 15.2 ms (2 idle cores, 5 alternated processes, medians).
PARALLEL_MIN_MACS = 1 << 21
# Batched slices share the threads from less total work: each thread runs whole slices,
# nothing is split (measured about even at (128, 64, 32) @ (128, 32, 64), 2M).
BATCHED_MIN_WORK = 1 << 21

# Tile sizes of the teaching kernel (rows of a, shared dim, columns of b).
TILE_M, TILE_K, TILE_N = 64, 128, 256

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


@njit(cache=True)
def _dot(a, b, out):
    """out = a @ b, one BLAS call on the calling thread (a, b C- or F-contiguous)."""
    np.dot(a, b, out)


@njit(cache=True, parallel=True)
def _dot_row_blocks(a, b, out, blocks):
    """out = a @ b with the rows of a (C-contiguous) cut into ``blocks`` blocks.

        for t in parallel: rows = block t;  out[rows] = dot(a[rows], b)   # one BLAS call

    Optimizations:
        - each thread writes its own rows of out (no races); a row block of a
          C-contiguous array is contiguous, so BLAS reads it in place.
        - BLAS limited to one thread by the caller (no oversubscription).
    """
    M = a.shape[0]
    per = (M + blocks - 1) // blocks
    for t in prange(blocks):
        lo = t * per
        hi = min(M, lo + per)
        if lo < hi:
            np.dot(a[lo:hi], b, out[lo:hi])


@njit(cache=True)
def _add_bias(out, bias, lo, hi):
    """out[lo:hi] += bias, row by row (a Numba loop: faster than NumPy's broadcast add)."""
    for i in range(lo, hi):
        for j in range(out.shape[1]):
            out[i, j] += bias[j]


@njit(cache=True)
def linear_rows(x, wt, bias, has_bias, out, lo, hi, narrow):
    """out[lo:hi] = x[lo:hi] @ wt (+ bias) on the calling thread: ``narrow_product``'s
    kernel when it fits (``narrow``: the bias starts each element's sum), else one BLAS
    call with the bias added after."""
    if narrow:
        _narrow_product(x, wt.T, True, bias, has_bias, out, lo, hi)
    else:
        np.dot(x[lo:hi], wt, out[lo:hi])
        if has_bias:
            _add_bias(out, bias, lo, hi)


@njit(cache=True)
def row_block(M, blocks, t):
    """(lo, hi): block t of M rows cut into ``blocks`` blocks, each a whole number of
    narrow_product's 8-row tiles (the last block takes the rest; it may be empty)."""
    per = ((M + blocks - 1) // blocks + _NARROW_ROWS - 1) // _NARROW_ROWS * _NARROW_ROWS
    lo = min(M, t * per)
    return lo, min(M, lo + per)


@njit(cache=True)
def _linear_serial(x, wt, bias, has_bias, out):
    """out = x @ wt (+ bias) on the calling thread, by BLAS (x C- or F-ordered)."""
    np.dot(x, wt, out)
    if has_bias:
        _add_bias(out, bias, 0, out.shape[0])


@njit(cache=True, parallel=True)
def _linear_row_blocks(x, wt, bias, has_bias, out, blocks, narrow):
    """out = x @ wt (+ bias), rows of x (C-contiguous) in ``blocks`` blocks.

        for t in parallel: rows = block t;  out[rows] = x[rows] @ wt + bias

    Optimizations: as _dot_row_blocks; each thread adds the bias to its own rows.
    """
    for t in prange(blocks):
        lo, hi = row_block(x.shape[0], blocks, t)
        if lo < hi:
            linear_rows(x, wt, bias, has_bias, out, lo, hi, narrow)


@njit(cache=True)
def _column_sums(g, out):
    """out[j] = sum_i g[i, j], rows added in order (NumPy's order for sum(axis=0))."""
    out[:] = 0
    for i in range(g.shape[0]):
        for j in range(g.shape[1]):
            out[j] += g[i, j]


@njit(cache=True)
def _weight_grad_into(g, x, dw, tiled):
    """dw = g^T @ x: weight_grad when it fits (``tiled``), else BLAS's transposed product."""
    if tiled:
        _weight_grad(g, x, dw)
    else:
        np.dot(g.T, x, dw)


@njit(cache=True)
def _input_grad_into(g, w, dx, narrow):
    """dx = g @ w: narrow_product's kernel when it fits (``narrow``), else BLAS."""
    if narrow:
        _narrow_product(g, w, False, dx[0], False, dx, 0, g.shape[0])   # (no bias: dx[0] unread)
    else:
        np.dot(g, w, dx)


@njit(cache=True, parallel=True)
def _linear_grads(g, w, x, dx, dw, db, need_db, tiled, narrow):
    """dx = g @ w (and db = column sums of g) and dw = g^T @ x, side by side.

        for t in parallel (2 tasks): t = 0: dx = g w (narrow_product when narrow, else
                                                BLAS); db = colsum(g)
                                     t = 1: dw = g^T x (weight_grad when tiled, else BLAS)

    Optimizations: the two products are independent and equally big, so with 2 threads
    each runs whole on its own thread: no operand is split or copied (splitting
    dW = dY^T X by rows would copy the F-ordered dY^T). BLAS is slower at the
    transposed product dW, so the dW thread finished last; ``weight_grad`` (where it
    fits) evens them out.
    """
    for t in prange(2):
        if t == 0:
            _input_grad_into(g, w, dx, narrow)
            if need_db:
                _column_sums(g, db)
        else:
            _weight_grad_into(g, x, dw, tiled)


@njit(cache=True, parallel=True)
def _batched_dot(a3, b3, ia, ib, out):
    """out[n] = a3[ia[n]] @ b3[ib[n]] for every n; a3 (na, M, K), b3 (nb, K, N) contiguous.

        for n in parallel: out[n] = dot(a3[ia[n]], b3[ib[n]])     # one BLAS call each

    Optimizations:
        - prange over the batch: slices are independent, out[n] is written by one thread.
        - broadcasting by index arrays (ia, ib): broadcast operands are never copied.
        - BLAS limited to one thread by the caller (no oversubscription).
    """
    for n in prange(out.shape[0]):
        np.dot(a3[ia[n]], b3[ib[n]], out[n])


@njit(cache=True)
def _batched_dot_serial(a3, b3, ia, ib, out):
    """_batched_dot on the calling thread, for batches too small to share."""
    for n in range(out.shape[0]):
        np.dot(a3[ia[n]], b3[ib[n]], out[n])


@njit(cache=True, parallel=True)
def _tiled(a, b, out):
    """out (M, N) = a (M, K) @ b (K, N) in cache tiles, out zero on entry.

        for i0 in parallel (row tiles): for k0 (K tiles): for j0 (column tiles):
            for i in tile: for k in tile:
                aik = a[i, k]
                for j in tile: out[i, j] += aik * b[k, j]      # unit stride: vectorizes

    Optimizations:
        - i-k-j order: the inner loop is an axpy over contiguous rows of b and out
          (no reduction in the inner loop, so it vectorizes without fast-math).
        - tiles keep a (TILE_M x TILE_K) block of a and a (TILE_K x TILE_N) block of b
          in L1/L2 while they are reused.
        - prange over row tiles: each thread owns whole rows of out.
    """
    M, K = a.shape
    N = b.shape[1]
    for t in prange((M + TILE_M - 1) // TILE_M):
        i0 = t * TILE_M
        i1 = min(i0 + TILE_M, M)
        for k0 in range(0, K, TILE_K):
            k1 = min(k0 + TILE_K, K)
            for j0 in range(0, N, TILE_N):
                j1 = min(j0 + TILE_N, N)
                for i in range(i0, i1):
                    orow = out[i]
                    for k in range(k0, k1):
                        aik = a[i, k]
                        brow = b[k]
                        for j in range(j0, j1):
                            orow[j] += aik * brow[j]


def matmul_tiled(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a (M, K) @ b (K, N) with the hand-tiled @njit kernel (the teaching version)."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul_tiled: shapes {a.shape} and {b.shape} are not (M, K), (K, N)")
    dtype = np.result_type(a, b)
    a = np.ascontiguousarray(a, dtype=dtype)
    b = np.ascontiguousarray(b, dtype=dtype)
    out = np.zeros((a.shape[0], b.shape[1]), dtype)
    _tiled(a, b, out)
    return out


def _compact_batch(x):
    """x with every zero-stride (broadcast) batch axis cut to length 1: no n-fold copy."""
    index = tuple(slice(0, 1) if st == 0 else slice(None) for st in x.strides[:-2])
    return x[index]


def _blas_ready(x: np.ndarray, dtype) -> np.ndarray:
    """x in ``dtype``, C- or F-contiguous (what BLAS reads in place); copies only otherwise.
    Transposed views such as ``weight.T`` are F-contiguous and are passed as they are."""
    if x.dtype != dtype:
        x = x.astype(dtype)
    if not (x.flags.c_contiguous or x.flags.f_contiguous):
        x = np.ascontiguousarray(x)
    return x


def _row_blocks(a: np.ndarray, macs: int) -> int:
    """How many row blocks to split ``a @ b`` into: 1 (this thread) for small products,
    or when a's rows are not contiguous (F order: a row block would be copied)."""
    if macs < PARALLEL_MIN_MACS or not a.flags.c_contiguous:
        return 1
    return min(get_num_threads(), a.shape[0])


def _matmul_2d(a: np.ndarray, b: np.ndarray, dtype) -> np.ndarray:
    """a (M, K) @ b (K, N) -> (M, N) in ``dtype`` (float32/float64), all dims > 0."""
    a, b = _blas_ready(a, dtype), _blas_ready(b, dtype)
    out = empty((a.shape[0], b.shape[1]), dtype)
    blocks = _row_blocks(a, a.shape[0] * a.shape[1] * b.shape[1])
    with blas_single_threaded():
        if blocks > 1 and parallel_ready(_dot_row_blocks, a, b, out, blocks):
            _dot_row_blocks(a, b, out, blocks)
        else:
            _dot(a, b, out)
    return out


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """out = a @ b, exactly ``np.matmul`` (1-D, 2-D, broadcast batches), fastest path per shape.

        for batch n (broadcast): out[n] = a[n] @ b[n]

    Optimizations:
        - 2-D, and (..., M, K) @ (K, N): fold the batch into M, one GEMM, its rows split
          over the threads when the product is big (_dot_row_blocks).
        - batched slices: prange over the batch (_batched_dot), BLAS one thread each;
          on the calling thread when the whole batch is small.
        - everything else (1-D operands, integer dtypes, empty): np.matmul.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    dtype = np.result_type(a, b)
    if a.ndim < 2 or b.ndim < 2 or dtype not in _FLOATS:
        return np.matmul(a, b)
    M, K = a.shape[-2:]
    K2, N = b.shape[-2:]
    if K != K2:
        return np.matmul(a, b)  # let NumPy raise its own shape error
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    n = int(np.prod(batch))
    if n == 0 or M == 0 or N == 0 or K == 0:
        return np.matmul(a, b)
    if b.ndim == 2 and (a.ndim == 2 or a.flags.c_contiguous):
        # (..., M, K) @ (K, N): one GEMM over all rows
        return _matmul_2d(a.reshape(-1, K), b, dtype).reshape(batch + (M, N))
    # Broadcasting by index: each operand keeps only its own slices (never copied n-fold).
    a, b = _compact_batch(a), _compact_batch(b)
    a3 = np.ascontiguousarray(a, dtype=dtype).reshape((-1, M, K))
    b3 = np.ascontiguousarray(b, dtype=dtype).reshape((-1, K, N))
    ia = np.broadcast_to(np.arange(a3.shape[0]).reshape(a.shape[:-2]), batch).ravel()
    ib = np.broadcast_to(np.arange(b3.shape[0]).reshape(b.shape[:-2]), batch).ravel()
    out = empty((n, M, N), dtype)
    parallel = n > 1 and n * M * K * N >= BATCHED_MIN_WORK and get_num_threads() > 1
    with blas_single_threaded():
        if parallel and parallel_ready(_batched_dot, a3, b3, ia, ib, out):
            _batched_dot(a3, b3, ia, ib, out)
        else:
            _batched_dot_serial(a3, b3, ia, ib, out)
    return out.reshape(batch + (M, N))


def blas_scope():
    """Context manager around a stretch of minitensor's own work (the engine wraps a whole
    backward pass in it): the BLAS Numba calls into is held at one thread once for all
    of it, and restored after (see _threads.py). The products inside still open their
    own blocks; nested, those cost nothing, where each alone sets the BLAS library's
    thread count twice (~5-10 us inside a training step, ~60 products a step)."""
    return blas_single_threaded()


def linear(x: np.ndarray, weight: np.ndarray, bias) -> np.ndarray:
    """x (N, in) @ weight (out, in)^T + bias (out,) | None -> (N, out), in one pass.

        for row block in parallel: out[rows] = x[rows] @ weight^T;  out[rows] += bias

    Optimizations: weight^T is an F-ordered view (BLAS reads it transposed, no copy);
    rows split over the threads when the product is big; the bias is added by each
    thread to its own block (faster than NumPy's broadcast add, and in parallel).
    """
    dtype = np.result_type(x, weight)
    if x.ndim != 2 or weight.ndim != 2 or dtype not in _FLOATS or min(x.shape + weight.shape) == 0:
        out = matmul(x, weight.T)
        if bias is not None:
            out += bias
        return out
    x, wt = _blas_ready(x, dtype), _blas_ready(weight.T, dtype)
    has_bias = bias is not None
    b = np.ascontiguousarray(bias, dtype=dtype) if has_bias else np.zeros(1, dtype)
    out = empty((x.shape[0], wt.shape[1]), dtype)
    _ask_for_backward_kernels(dtype)
    blocks = _row_blocks(x, x.shape[0] * x.shape[1] * wt.shape[1])
    narrow = _narrow_fits(x, wt.T, True)
    # (narrow: no BLAS call to hold at one thread)
    with nullcontext() if narrow else blas_single_threaded():
        if blocks > 1 and parallel_ready(_linear_row_blocks, x, wt, b, has_bias, out, blocks,
                                         narrow):
            _linear_row_blocks(x, wt, b, has_bias, out, blocks, narrow)
        elif narrow:       # (called from here, its arguments are never literals: one build)
            linear_rows(x, wt, b, has_bias, out, 0, x.shape[0], narrow)
        else:
            _linear_serial(x, wt, b, has_bias, out)
    return out


def _ask_for_backward_kernels(dtype) -> None:
    """At the first float32 forward product, ask for the kernels of Linear's backward
    products (dW's ``weight_grad``, dX's ``narrow_product``) to be compiled in the
    background: on an empty cache the first backward comes seconds later and finds them
    ready. Only their argument types matter (float32 C-ordered matrices), so small
    stand-ins ask for them whatever this layer's shapes are."""
    if dtype != np.float32 or asked_ahead(_weight_grad):
        return
    a, b = np.empty((8, 32), np.float32), np.empty((32, 32), np.float32)
    compile_ahead(_weight_grad, a, a, b)
    compile_ahead(_input_grad_into, a, b, a.copy(), True)
    compile_ahead(_weight_grad_into, a, a, b, True)
    compile_ahead(_column_sums, a, np.empty(32, np.float32))


def linear_backward(dout: np.ndarray, x, weight, needs: tuple):
    """(dx, dweight, dbias) of ``linear`` for dout (N, out); ``needs`` (3 bools) says
    which to compute (None for the others; x or weight may be None when not needed).

        dx = dout @ weight;  dweight = dout^T @ x;  dbias = column sums of dout
        (dx and dweight side by side, one thread each, when both are needed and big)

    Optimizations: see _linear_grads; dW by ``weight_grad`` where it fits (float32, widths
    up to 384: faster than BLAS's transposed product); below its size the same kernels run one
    after the other in one BLAS-limited block (the dates task's 704 x 64 x 64 products:
    two ``matmul`` calls cost ~25 us more in Python than the ~60 us of arithmetic).
    Other cases (one product needed, mixed dtypes): one ``matmul`` per product.
    """
    need_dx, need_dw, need_db = needs
    dtype = np.result_type(dout, *(a for a in (x, weight) if a is not None))
    both = need_dx and need_dw and dtype in _FLOATS and dout.ndim == 2 and \
        dout.dtype == x.dtype == weight.dtype and min(dout.shape + x.shape + weight.shape) > 0
    if not both:
        dx = None
        if need_dx and _narrow_fits(dout, weight, False):   # as below: the same numbers
            dx = empty((dout.shape[0], weight.shape[1]), dout.dtype)
            _input_grad_into(dout, weight, dx, True)
        elif need_dx:
            dx = matmul(dout, weight)
        dw = None
        if need_dw and _weight_grad_fits(dout, x):     # as below: the same numbers either way
            dw = empty((dout.shape[1], x.shape[1]), dout.dtype)
            _weight_grad(dout, x, dw)
        elif need_dw:
            dw = matmul(dout.T, x)
        db = None
        if need_db:
            if dout.ndim == 2 and dout.dtype in _FLOATS and dout.flags.c_contiguous:
                db = np.empty(dout.shape[1], dout.dtype)
                _column_sums(dout, db)
            else:
                db = dout.sum(axis=0)
        return dx, dw, db
    g, w, x = (_blas_ready(a, dtype) for a in (dout, weight, x))
    if not g.flags.c_contiguous:
        g = np.ascontiguousarray(g)
    dx = empty((g.shape[0], w.shape[1]), dtype)
    dw = empty((g.shape[1], x.shape[1]), dtype)
    db = np.empty(g.shape[1], dtype)
    side_by_side = get_num_threads() > 1 and \
        g.shape[0] * g.shape[1] * x.shape[1] >= PARALLEL_MIN_MACS // 2
    tiled, narrow = _weight_grad_fits(g, x), _narrow_fits(g, w, False)
    with nullcontext() if tiled and narrow else blas_single_threaded():   # (BLAS used?)
        if side_by_side and parallel_ready(_linear_grads, g, w, x, dx, dw, db, need_db, tiled,
                                           narrow):
            _linear_grads(g, w, x, dx, dw, db, need_db, tiled, narrow)
        else:                                     # the same products, one after the other
            _input_grad_into(g, w, dx, narrow)
            _weight_grad_into(g, x, dw, tiled)
            if need_db:
                _column_sums(g, db)
    return dx, dw, (db if need_db else None)
