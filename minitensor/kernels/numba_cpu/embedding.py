"""Embedding in Numba: row gather forward, column-blocked scatter-add backward (twin of
``numpy_ref/embedding.py``)."""
from __future__ import annotations

import numpy as np
from numba import prange

from ..buffers import empty
from ._math import _JIT, _rows
from ._threads import launch, parallel_kernel


@parallel_kernel(**_JIT)
def _gather_rows(weight, idx, out):
    for n in prange(idx.shape[0]):
        r = idx[n]
        for j in range(weight.shape[1]):
            out[n, j] = weight[r, j]


def embedding_forward(weight, indices):
    """Row lookup (see numpy_ref.embedding_forward).

        for each position n in parallel:
            out[n, :] = weight[indices[n], :]
    """
    # weight (V, D), indices (...) int -> out (*indices.shape, D); cache (indices flat, V)
    v, d = weight.shape
    idx = np.ascontiguousarray(indices, dtype=np.int64).reshape(-1)
    out = empty(indices.shape + (d,), weight.dtype)
    launch(_gather_rows, out.size, np.ascontiguousarray(weight), idx, out.reshape(-1, d))
    return out, (idx, v)


_EMB_BLOCK = 64   # columns per parallel task in the scatter-add


@parallel_kernel(**_JIT)
def _scatter_add_rows(dout, idx, dweight, block):
    d = dout.shape[1]
    for b in prange((d + block - 1) // block):
        lo = b * block
        hi = min(d, lo + block)
        for n in range(idx.shape[0]):
            r = idx[n]
            for j in range(lo, hi):
                dweight[r, j] += dout[n, j]


def embedding_backward(dout, cache, padding_idx):
    """Scatter-add into a zero (V, D) gradient (see numpy_ref.embedding_backward).

        for each block of columns in parallel:          # threads own disjoint columns
            for each position n:  dweight[indices[n], block] += dout[n, block]
        dweight[padding_idx] = 0

    Optimizations: parallel over column blocks instead of positions, so repeated indices
    never race; accumulation order per element is the index order, as np.add.at.
    """
    # dout (*indices.shape, D) -> dweight (V, D)
    idx, v = cache
    d = dout.shape[-1]
    dweight = np.zeros((v, d), dtype=dout.dtype)
    launch(_scatter_add_rows, dout.size, _rows(dout), idx, dweight, _EMB_BLOCK)
    if padding_idx is not None:
        dweight[padding_idx] = 0
    return dweight
