"""dtype names and the one dtype rule every module shares.

``float32``/``float64``/``int32``/``int64``/``bool_`` (NumPy dtypes), ``DEFAULT_DTYPE``
(float32, as in torch) and ``as_dtype`` (a dtype from a dtype, a type or a name). This
module imports only NumPy, so every other module of the package may import it.
"""
from __future__ import annotations

import numpy as np

DEFAULT_DTYPE = np.dtype(np.float32)

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)
_ALIASES = {"float": float32, "double": float64, "long": int64, "int": int32, "bool": bool_}


def as_dtype(dtype) -> np.dtype:
    """A NumPy dtype from a dtype, a type or a name ("float32", "double", ...)."""
    if isinstance(dtype, str) and dtype in _ALIASES:
        return _ALIASES[dtype]
    return np.dtype(dtype)
