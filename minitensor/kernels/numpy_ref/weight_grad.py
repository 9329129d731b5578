"""The spec of Numba's ``weight_grad``: Linear's weight gradient dW = dY^T X, in NumPy.

Numba's twin (``numba_cpu/weight_grad.py``) computes it on 512-bit registers reading dY
and X in place, and is what its ``linear_backward`` uses for dW where it fits; this file
says what it must compute. Here ``linear_backward`` needs no such piece (NumPy's BLAS
does the product); the file exists so that each fast kernel has its readable twin.
"""
from __future__ import annotations

import numpy as np


def weight_grad(g: np.ndarray, x: np.ndarray, dw: np.ndarray) -> None:
    """dw (O, I) = g (N, O)^T @ x (N, I), written in place.

        for o, i: dw[o, i] = sum_n g[n, o] * x[n, i]
    """
    np.matmul(g.T, x, out=dw)
