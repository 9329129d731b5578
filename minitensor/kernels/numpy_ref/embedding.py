"""Embedding in plain NumPy: row lookup forward, scatter-add backward."""
from __future__ import annotations

import numpy as np

# -------------------------------------------------------------------------- embedding


def embedding_forward(weight, indices):
    """Row lookup: $out[..., :] = weight[indices[...], :]$.

        for each position n of indices:         # weight (V, D)
            out[n, :] = weight[indices[n], :]
    """
    # weight (V, D), indices (...) int -> out (*indices.shape, D); cache (indices, V)
    return weight[indices], (indices, weight.shape[0])


def embedding_backward(dout, cache, padding_idx):
    """Scatter-add of dout rows into a zero (V, D) gradient; row padding_idx stays 0.

        dweight = zeros(V, D)
        for each position n of indices:
            dweight[indices[n], :] += dout[n, :]          # repeated indices accumulate
        dweight[padding_idx, :] = 0
    """
    # dout (*indices.shape, D) -> dweight (V, D)
    indices, v = cache
    d = dout.shape[-1]
    dweight = np.zeros((v, d), dtype=dout.dtype)
    np.add.at(dweight, indices.reshape(-1), dout.reshape(-1, d))
    if padding_idx is not None:
        dweight[padding_idx] = 0
    return dweight
