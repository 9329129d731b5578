"""dW = dY^T X, the weight gradient of Linear, read where dY and X lie (float32).

    dw (O, I) = g (N, O)^T @ x (N, I)        g = dY, x = the layer's input, both C-ordered

A general BLAS computes this "transposed A" product by first packing g^T into panels; at
the Linear layers' small widths (O, I ~ 64-384) that packing and the edge handling cost
a third of the time: OpenBLAS reaches 100-130 GFLOP/s on one core at the default task's
shapes, PyTorch's MKL ~170. This kernel needs no packing, because both operands are
already laid out the way the sum runs: for each step n of the sum it reads 8 consecutive
entries of g's row n and 2 vectors of x's row n.

    for each tile of 8 rows (o0 ..) x 2 vectors of columns (j0 ..) of dw:
        16 vector registers c[r][v] = 0
        for n = 0 .. N-1:                          # one in-order chain per element
            x0, x1 = x[n, j0 : j0 + 2 vectors]
            for r in 0..7: c[r] += g[n, o0 + r] * (x0, x1)      # broadcast, 2 FMAs
        dw[o0 + r, j0 : j0 + 2 vectors] = c[r]

That is the register tile of ``gemm.py``'s micro-kernel (8 rows x 2 vectors: 16 zmm
accumulators, 2 loads and 8 broadcasts per 16 FMAs). The sum runs in passes of KC = 128
steps, all tiles of a column block per pass, so that x's (128, 32) block is read from L1
by every row tile; a tile's registers go to dw between passes and come back for the next
(float32 stored and reloaded exactly). Every element is one chain of fused multiply-adds
over n in order, so the result depends neither on the thread count nor on KC.

Where it applies (``fits``): float32, O a multiple of 8 and I of 32, O and I at most 384,
on a CPU with 512-bit vectors (``_simd.NATIVE_512``).
Measured on one core (Sapphire Rapids, 2026-12-07, two runs), time against OpenBLAS's
on the same operands: the default task's shapes 1.25-1.6x faster ((704, 64)^T (704, 64):
35 against 55 us; PyTorch's MKL 38), config S's 1.02-1.16x ((1024, 384)^T (1024, 128):
698-714 against 725-730 us). At 512 it is even, beyond it slower (up to 0.8x at
(2048, 1024)^T (2048, 256): the row tiles re-read g from L2), so those stay with BLAS.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._simd import NATIVE_512, VECTOR_BYTES, fma_tile, lanes, vload_tile, vstore_tile, vzeros

MR = 8                     # rows of dw per tile (8 x 2 accumulators: 16 vector registers)
VECTORS = 2                # vectors of columns per tile
MAX_ROW = 384              # longest row (floats) of g or x read in place (see above)
KC = 128                   # steps of the sum per pass: x's (KC, 32) block stays in L1
_FLOAT32 = np.dtype(np.float32)


def fits(g: np.ndarray, x: np.ndarray) -> bool:
    """True when ``weight_grad(g, x, dw)`` applies and measured faster than BLAS."""
    if not NATIVE_512 or g.dtype != _FLOAT32 or x.dtype != _FLOAT32 or g.ndim != 2 \
            or x.ndim != 2:
        return False
    N, O = g.shape
    I = x.shape[1]
    return (N > 0 and x.shape[0] == N and g.flags.c_contiguous and x.flags.c_contiguous
            and O % MR == 0 and I % (VECTORS * lanes(_FLOAT32)) == 0
            and 0 < O <= MAX_ROW and 0 < I <= MAX_ROW)


@njit(cache=True)
def weight_grad(g, x, dw):
    """dw (O, I) = g (N, O)^T @ x (N, I), in place; the shapes as ``fits`` says."""
    N, O = g.shape
    I = x.shape[1]
    gf, xf, out = g.reshape(N * O), x.reshape(N * I), dw.reshape(O * I)
    h = VECTOR_BYTES // out.itemsize         # one vector's lanes (16 float32)
    w = VECTORS * h                          # columns per tile
    for n0 in range(0, N, KC):
        n1 = min(N, n0 + KC)
        for j0 in range(0, I, w):
            for o0 in range(0, O, MR):
                d = o0 * I + j0
                if n0 == 0:
                    z = vzeros(out)
                    t = (z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z)
                else:                                   # go on from the stored partial sums
                    t = vload_tile(out, d, I, h)
                # step n: g[n, o0 : o0 + 8] broadcast, x[n, j0 : j0 + 32] loaded
                t = fma_tile(t, gf, n0 * O + o0, 1, O, xf, n0 * I + j0, I, h, n1 - n0)
                vstore_tile(out, d, I, h, t)
