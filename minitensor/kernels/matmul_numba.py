"""Matrix multiply for the Numba backend: pick the fastest path per shape.

``matmul(a, b)`` has exactly ``np.matmul``'s semantics and result dtype. It chooses:

    1-D operand, 2-D @ 2-D, or big slices   -> np.matmul (BLAS, which threads itself)
    (..., M, K) @ (K, N)                    -> one 2-D BLAS call on (prod(...) * M, K)
    many small broadcast-batched slices     -> _batched_dot: prange over the batch, one
                                               single-threaded np.dot per slice

NumPy runs a batched matmul as a loop over slices on one thread (each slice too small
for BLAS to thread); spreading the slices over the cores measured 1.5-2x faster on 2
cores for batches such as (128, 512, 32) @ (128, 32, 512) and (16, 256, 256) @ (16, 256,
256) (about even at (128, 64, 32) @ (128, 32, 64) float32, 1.5x in float64). Tiny
batches stay with NumPy (thread start-up would dominate), and for large 2-D products
BLAS itself is the ceiling, so they go straight to it.

``matmul_tiled(a, b)`` is the teaching kernel: a readable cache-tiled 2-D matmul in plain
loops. It is tested, but the dispatcher does not use it (BLAS is faster on every shape
measured here).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._threads import blas_single_threaded

# Slices with at most this many multiply-adds (M * K * N) go to the batched prange path;
# bigger ones are left to BLAS, which threads a single big product well on its own.
BATCHED_MAX_MNK = 256 * 256 * 256
# Below this much total work (n * M * K * N), thread start-up costs more than it saves.
BATCHED_MIN_WORK = 1 << 21

# Tile sizes of the teaching kernel (rows of a, shared dim, columns of b).
TILE_M, TILE_K, TILE_N = 64, 128, 256


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


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """out = a @ b, exactly ``np.matmul`` (1-D, 2-D, broadcast batches), fastest path per shape.

        for batch n (broadcast): out[n] = a[n] @ b[n]

    Optimizations:
        - (..., M, K) @ (K, N): fold the batch into M, one big GEMM.
        - small batched slices: prange over the batch (_batched_dot), BLAS one thread each.
        - everything else: np.matmul.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    dtype = np.result_type(a, b)
    if (a.ndim < 2 or b.ndim < 2 or (a.ndim == 2 and b.ndim == 2)
            or dtype not in (np.float32, np.float64)):
        return np.matmul(a, b)
    M, K = a.shape[-2:]
    K2, N = b.shape[-2:]
    if K != K2:
        return np.matmul(a, b)  # let NumPy raise its own shape error
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    n = int(np.prod(batch))
    if n == 0 or M == 0 or N == 0 or K == 0:
        return np.matmul(a, b)
    if b.ndim == 2 and a.flags.c_contiguous and a.dtype == dtype and b.dtype == dtype:
        # (..., M, K) @ (K, N): one GEMM over all rows
        return np.matmul(a.reshape(-1, K), b).reshape(batch + (M, N))
    if n < 2 or M * K * N > BATCHED_MAX_MNK or n * M * K * N < BATCHED_MIN_WORK:
        return np.matmul(a, b)
    # Broadcasting by index: each operand keeps only its own slices (never copied n-fold).
    a, b = _compact_batch(a), _compact_batch(b)
    a3 = np.ascontiguousarray(a, dtype=dtype).reshape((-1, M, K))
    b3 = np.ascontiguousarray(b, dtype=dtype).reshape((-1, K, N))
    ia = np.broadcast_to(np.arange(a3.shape[0]).reshape(a.shape[:-2]), batch).ravel()
    ib = np.broadcast_to(np.arange(b3.shape[0]).reshape(b.shape[:-2]), batch).ravel()
    out = np.empty((n, M, N), dtype)
    with blas_single_threaded():
        _batched_dot(a3, b3, ia, ib, out)
    return out.reshape(batch + (M, N))
