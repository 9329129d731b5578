"""out = a @ B (+ bias) for Linear's narrow products, float32: Linear's forward and dX.

    forward   out (M, N) = x (M, K) @ W (N, K)^T + bias      B = W^T  (``transposed``)
    dX        out (M, N) = dY (M, K) @ W (K, N)              B = W

At the default task's sizes (M ~ 500-700 rows, K and N 64-256) a general BLAS spends a
large part of each call packing and on edges: OpenBLAS reaches 100-135 GFLOP/s on one
core, PyTorch's MKL 150-180 (bench/README.md, "Training-step matmuls"). This kernel runs
the register tile of ``weight_grad.py`` and ``gemm.py`` (``_simd.fma_tile``: 8 rows x 2
vectors, 16 zmm accumulators, 2 loads and 8 broadcasts per 16 FMAs) with the rows of a
read in place and none of a general GEMM's outer loops:

    for each panel of 32 columns of out (j0 ..):
        panel = B[:, j0 : j0 + 32], packed contiguous          # (K, 32): at most 32 KiB, in L1
        for each tile of 8 rows (i0 ..):
            16 vector registers c[r][v] = bias[j0 ..] (or 0)
            for k = 0 .. K-1:                               # one in-order chain per element
                b0, b1 = panel[k, 0:16], panel[k, 16:32]
                for r in 0..7: c[r] += a[i0 + r, k] * (b0, b1)       # broadcast, 2 FMAs
            out[i0 + r, j0 : j0 + 32] = c[r]

Why pack B at all: W^T's columns are W's rows (strided); and where B's rows are long (a
row of 256 floats is 1 KiB) the 64 rows of a panel read in place fall into a few cache
sets and evict each other. A packed panel is contiguous and costs K x 32 copies per
panel per thread, against 8 x K x 32 multiply-adds for each of the panel's ~M/8 tiles.

Every element is one chain of fused multiply-adds over k in order, started from its bias
(or 0): the result depends neither on the thread count nor on the row block.

Where it applies (``fits``): float32, a and b C-ordered, N a multiple of 32, K and N at
most MAX_WIDTH, on a CPU with 512-bit vectors (``_simd.NATIVE_512``). Measured on one
core (Sapphire Rapids, 2026-12-07, both single-threaded, operands in cache): the default
task's shapes 1.16-1.44x OpenBLAS's time ((704, 64) @ (64, 64)^T + b: 153-170 against
114-123 GFLOP/s), config S's (1024, 128) @ (128, 128)^T 1.16-1.19x; with the operands
coming from memory, as inside a step, 1.05-1.2x. At 384-512 it measured even (0.96-1.06x),
so those stay with BLAS.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._simd import (NATIVE_512, VECTOR_BYTES, fma_tile, lanes, vbroadcast, vfma, vload, vstore,
                    vstore_tile, vzeros)

MR = 8                     # rows of out per tile (8 x 2 accumulators: 16 vector registers)
VECTORS = 2                # vectors of columns per tile (32 float32)
MAX_WIDTH = 256            # widest K and N measured faster than BLAS (see ``fits``)
_FLOAT32 = np.dtype(np.float32)


def fits(a: np.ndarray, b: np.ndarray, transposed: bool) -> bool:
    """True when ``product_rows`` applies to a (M, K) @ B, B = b.T if ``transposed``
    else b, and measured faster than BLAS."""
    if not NATIVE_512 or a.dtype != _FLOAT32 or b.dtype != _FLOAT32 or a.ndim != 2 \
            or b.ndim != 2:
        return False
    K = a.shape[1]
    k_b, N = (b.shape[1], b.shape[0]) if transposed else b.shape
    return (a.shape[0] > 0 and K > 0 and k_b == K and a.flags.c_contiguous
            and b.flags.c_contiguous and N % (VECTORS * lanes(_FLOAT32)) == 0
            and 0 < N <= MAX_WIDTH and K <= MAX_WIDTH)


@njit(cache=True)
def _pack_panel(b, transposed, K, j0, w, panel):
    """panel[k * w + jj] = B[k, j0 + jj] for k < K, jj < w (B = b.T when ``transposed``)."""
    if transposed:                            # B[k, j] = b[j, k]: read b's rows in order
        for jj in range(w):
            for k in range(K):
                panel[k * w + jj] = b[j0 + jj, k]
    else:
        for k in range(K):
            for jj in range(w):
                panel[k * w + jj] = b[k, j0 + jj]


@njit(cache=True)
def product_rows(a, b, transposed, bias, has_bias, out, lo, hi):
    """out[lo:hi] = a[lo:hi] @ B (+ bias), B = b.T if ``transposed`` else b; the shapes
    as ``fits`` says. Rows outside lo:hi are neither read nor written."""
    M, K = a.shape
    N = out.shape[1]
    af, of = a.reshape(M * K), out.reshape(M * N)
    h = VECTOR_BYTES // out.itemsize          # one vector's lanes (16 float32)
    w = VECTORS * h                           # columns per panel
    panel = np.empty(K * w, out.dtype)        # K <= MAX_WIDTH: at most 32 KiB, held in L1
    for j0 in range(0, N, w):
        _pack_panel(b, transposed, K, j0, w, panel)
        if has_bias:
            z0, z1 = vload(bias, j0), vload(bias, j0 + h)
        else:
            z0, z1 = vzeros(of), vzeros(of)
        t0 = (z0, z1, z0, z1, z0, z1, z0, z1, z0, z1, z0, z1, z0, z1, z0, z1)
        i0 = lo
        while i0 + MR <= hi:
            t = fma_tile(t0, af, i0 * K, K, 1, panel, 0, w, h, K)
            vstore_tile(of, i0 * N + j0, N, h, t)
            i0 += MR
        for i in range(i0, hi):                         # the last rows, one at a time
            c0, c1 = z0, z1
            ai, pi = i * K, 0
            for _ in range(K):
                x = vbroadcast(af, ai)
                c0, c1 = vfma(x, vload(panel, pi), c0), vfma(x, vload(panel, pi + h), c1)
                ai += 1
                pi += w
            vstore(of, i * N + j0, c0)
            vstore(of, i * N + j0 + h, c1)
