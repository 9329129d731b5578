"""The spec of Numba's ``gemm``: out (M, N) = a (M, K) @ b (K, N) [+ bias], in plain NumPy.

Numba's twin (``numba_cpu/gemm.py``) is a packed, register-blocked AVX-512 GEMM for the
training step's skinny products; this file says what it must compute and which input it
must refuse, with the same messages.
"""
from __future__ import annotations

import numpy as np


def check_operands(a: np.ndarray, b: np.ndarray, bias) -> None:
    """Raise a clear error unless a (M, K), b (K, N) are 2-D of one float dtype and bias
    is None or (N,)."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"gemm: a {a.shape} and b {b.shape} are not (M, K) and (K, N)")
    if a.dtype != b.dtype or a.dtype not in (np.float32, np.float64):
        raise TypeError(f"gemm: a and b must both be float32 or both float64, got "
                        f"{a.dtype} and {b.dtype}")
    if bias is not None and np.shape(bias) != (b.shape[1],):
        raise ValueError(f"gemm: bias {np.shape(bias)} does not match out's {b.shape[1]} columns")


def gemm(a: np.ndarray, b: np.ndarray, bias: np.ndarray | None = None,
         threads: int | None = None) -> np.ndarray:
    """a (M, K) @ b (K, N) [+ bias (N,)] -> new C-ordered (M, N) in a's dtype.

        for i: for j: out[i, j] = bias[j] + sum_k a[i, k] * b[k, j]

    ``threads`` is accepted for the twin's signature; NumPy's BLAS uses its own.
    """
    check_operands(a, b, bias)
    out = np.matmul(a, b)
    if bias is not None:
        out += bias.astype(out.dtype, copy=False)
    return np.ascontiguousarray(out)
