"""The spec of Numba's ``narrow_product``: Linear's forward and dX products, in NumPy.

Numba's twin (``numba_cpu/narrow_product.py``) computes them on 512-bit registers with
the rows of a read in place and B packed in 32-column panels, and is what its ``linear``,
``linear_act_forward`` and ``linear_backward`` use where it fits; this file says what it
must compute. Here those functions need no such piece (NumPy's BLAS does the products);
the file exists so that each fast kernel has its readable twin.
"""
from __future__ import annotations

import numpy as np


def product_rows(a: np.ndarray, b: np.ndarray, transposed: bool, bias: np.ndarray,
                 has_bias: bool, out: np.ndarray, lo: int, hi: int) -> None:
    """out[lo:hi] = a[lo:hi] @ B (+ bias), written in place; B = b.T if ``transposed``
    (Linear's forward: b is the weight, (N, K)) else b (dX: b is the weight, (K, N)).

        for i in lo..hi-1, j: out[i, j] = bias[j] + sum_k a[i, k] * B[k, j]
    """
    B = b.T if transposed else b
    out[lo:hi] = a[lo:hi] @ B
    if has_bias:
        out[lo:hi] += bias
