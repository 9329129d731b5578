"""Cumulative wrappers (the Functions of ``ops/cumulative.py``): cumsum."""
from __future__ import annotations

import numpy as np

from ..dtypes import as_dtype
from ..ops import cumulative as C
from ..tensor import Tensor, as_tensor
from ._checks import _normalize_axis


def cumsum(x: Tensor, dim: int, *, dtype=None) -> Tensor:
    """Running sum along ``dim``: out[..., i] = x[..., 0] + ... + x[..., i].

    Integer and bool input give int64 (as torch); ``dtype=`` converts x first.
    """
    x = as_tensor(x)
    if dim is None:
        raise TypeError("cumsum: dim is required (torch.cumsum(input, dim))")
    axis = _normalize_axis("cumsum", dim, x.ndim)
    if dtype is not None:
        x = x.to(as_dtype(dtype))
    elif x.dtype.kind in "biu":
        x = x.to(np.int64)
    if x.ndim == 0:
        return C.CumSum.apply(x.reshape(1), axis=0).reshape(())
    return C.CumSum.apply(x, axis=axis)
