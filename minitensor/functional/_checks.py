"""Input checks shared by the functional wrappers: each raises an error naming the op.

``_pick`` resolves PyTorch's argument aliases (``dim``/``keepdim``), ``_pair`` turns
Python numbers into tensors of the other operand's dtype, and the rest check shapes,
dtypes, axes and index data before any op runs.
"""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError, IndexOutOfRange, ShapeError
from ..tensor import Tensor, as_tensor

def _pick(value, alias, default=None):
    """Resolve a NumPy-style argument and its PyTorch alias (``axis``/``dim``).

    A ``value`` equal to ``default`` counts as not given: signatures such as
    ``cat(ts, axis=0, *, dim=None)`` and ``sum(x, keepdims=False, *, keepdim=None)`` pass
    their default along with the alias.
    """
    if alias is not None:
        if value is not None and value != default and value != alias:
            raise TypeError(f"got both a value ({value}) and its alias ({alias})")
        return alias
    return default if value is None else value


def _broadcast_shape(op: str, *shapes: tuple) -> tuple:
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        listed = " and ".join(str(tuple(s)) for s in shapes)
        raise ShapeError(f"{op}: shapes {listed} cannot be broadcast together") from None


def _pair(a, b) -> tuple[Tensor, Tensor]:
    """Both operands as tensors; a Python scalar takes the other operand's dtype."""
    if not isinstance(a, Tensor):
        a = as_tensor(a, like=b if isinstance(b, Tensor) else None)
    if not isinstance(b, Tensor):
        b = as_tensor(b, like=a)
    return a, b


def _check_float(name: str, x: Tensor) -> None:
    if x.dtype.kind != "f":
        raise DTypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype} "
                         f"(shape {x.shape}); convert it with .float() or .double()")


def _normalize_axis(name: str, axis: int, ndim: int) -> int:
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise IndexOutOfRange(f"{name}: axis {axis} is out of range for a tensor with {ndim} dims")
    return axis % max(ndim, 1)


def _as_index_array(name: str, idx) -> np.ndarray:
    """Integer (or boolean) index data as an ndarray; integral floats are accepted."""
    arr = idx.data if isinstance(idx, Tensor) else np.asarray(idx)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.round(arr)):
            raise DTypeError(f"{name}: index/target values must be integers, got {arr.dtype} "
                             "with non-integral values")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iub":
        raise DTypeError(f"{name}: indices must be an integer or bool tensor, got dtype {arr.dtype}")
    return arr


def _axes_arg(name: str, x: Tensor, axis):
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(_normalize_axis(name, int(a), x.ndim) for a in axes)
