"""Matrix products in plain NumPy: matmul, Linear's x W^T + b and its gradients, and the
cache-tiled product spelled out (the spec of Numba's teaching kernel ``matmul_tiled``)."""
from __future__ import annotations

import contextlib

import numpy as np

# Tile sizes of matmul_tiled (rows of a, shared dim, columns of b), as the Numba kernel.
TILE_M, TILE_K, TILE_N = 64, 128, 256


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """out = a @ b with exactly ``np.matmul`` semantics (1-D, 2-D, broadcast batches).

        for batch n: for i: for j: out[n, i, j] = sum_k a[n, i, k] * b[n, k, j]

    Optimizations:
        - none: this is the spec; NumPy hands 2-D products to BLAS.
    """
    return np.matmul(a, b)


def linear(x, weight, bias):
    """$y = x W^T + b$ for x (N, in), weight (out, in), bias (out,) or None.

        for each row n: for each o: y[n, o] = sum_i x[n, i] * weight[o, i] + bias[o]
    """
    # x (N, in), weight (out, in), bias (out,) | None -> y (N, out)
    out = matmul(x, weight.T)
    if bias is not None:
        out += bias
    return out


def linear_backward(dout, x, weight, needs):
    """(dx, dweight, dbias) of linear: $dx = dout W$, $dW = dout^T x$, $db = sum_n dout[n]$;
    ``needs`` (3 bools) says which to compute (None for the others; x or weight may be
    None when not needed)."""
    # dout (N, out) -> dx (N, in) | None, dweight (out, in) | None, dbias (out,) | None
    dx = matmul(dout, weight) if needs[0] else None
    dw = matmul(dout.T, x) if needs[1] else None
    db = dout.sum(axis=0) if needs[2] else None
    return dx, dw, db


def matmul_tiled(a, b):
    """a (M, K) @ b (K, N) tile by tile: what the Numba teaching kernel does, in NumPy blocks.

        for i0 (row tiles): for k0 (K tiles): for j0 (column tiles):
            out[i0:i1, j0:j1] += a[i0:i1, k0:k1] @ b[k0:k1, j0:j1]
    """
    # a (M, K), b (K, N) -> out (M, N)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul_tiled: shapes {a.shape} and {b.shape} are not (M, K), (K, N)")
    dtype = np.result_type(a, b)
    (m, k), n = a.shape, b.shape[1]
    out = np.zeros((m, n), dtype)
    for i0 in range(0, m, TILE_M):
        for k0 in range(0, k, TILE_K):
            for j0 in range(0, n, TILE_N):
                out[i0:i0 + TILE_M, j0:j0 + TILE_N] += \
                    a[i0:i0 + TILE_M, k0:k0 + TILE_K] @ b[k0:k0 + TILE_K, j0:j0 + TILE_N]
    return out


def blas_scope():
    """Context manager around a stretch of minitensor's own work (the engine wraps a whole
    backward pass in it). Here nothing: NumPy's BLAS runs as NumPy's users have set it.
    The Numba twin holds the BLAS Numba calls into at one thread once for the stretch,
    instead of once per product."""
    return contextlib.nullcontext()
