"""Input checks shared by the functional wrappers: each raises an error naming the op.

``_pick`` resolves PyTorch's argument aliases (``dim``/``keepdim``), ``_pair`` brings
two operands to the dtype PyTorch's promotion gives (``dtypes.result_dtype``), and the
rest check shapes, dtypes, axes and index data before any op runs.
"""
from __future__ import annotations

import numpy as np

from ..dtypes import is_scalar, result_dtype
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
    first = tuple(shapes[0])
    if all(tuple(s) == first for s in shapes[1:]):
        return first  # the common case (same shapes): 2 us less than np.broadcast_shapes
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        listed = " and ".join(str(tuple(s)) for s in shapes)
        raise ShapeError(f"{op}: shapes {listed} cannot be broadcast together") from None


def _pair(a, b) -> tuple[Tensor, Tensor]:
    """Both operands as tensors of one dtype, the one PyTorch's promotion gives
    (``dtypes.result_dtype``: int64 tensor * 2.5 -> float32, float32 tensor * 0-dim
    float64 -> float32). A float tensor that requires grad is cast differentiably."""
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a.dtype == b.dtype:
        return a, b  # the common case: nothing to promote
    a = a if is_scalar(a) else as_tensor(a)
    b = b if is_scalar(b) else as_tensor(b)
    dtype = result_dtype(a, b)
    return _coerce(a, dtype), _coerce(b, dtype)


def _coerce(x, dtype: np.dtype) -> Tensor:
    if not isinstance(x, Tensor):
        return Tensor._make(np.asarray(x, dtype=dtype), None)
    return x if x.dtype == dtype else x.to(dtype)


def _check_float(name: str, x: Tensor) -> None:
    if x.dtype.kind != "f":
        raise DTypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype} "
                         f"(shape {x.shape}); convert it with .float() or .double()")


def _normalize_axis(name: str, axis: int, ndim: int) -> int:
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise IndexOutOfRange(f"{name}: axis {axis} is out of range for a tensor with {ndim} dims")
    return axis % max(ndim, 1)


def _as_index_array(name: str, idx) -> np.ndarray:
    """Integer (or boolean) index data as an ndarray; floats are refused, as in torch."""
    arr = idx.data if isinstance(idx, Tensor) else np.asarray(idx)
    if arr.dtype.kind not in "iub":
        raise DTypeError(f"{name}: indices must be an integer or bool tensor, got dtype "
                         f"{arr.dtype} (shape {arr.shape}); convert them with .long()")
    return arr


def _axes_arg(name: str, x: Tensor, axis):
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(_normalize_axis(name, int(a), x.ndim) for a in axes)
