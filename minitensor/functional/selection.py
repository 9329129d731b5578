"""Picking elements by value: max/min (with their indices), argmax/argmin, topk, sort.

The values are read from x by the ``Gather`` op at indices NumPy finds, so their
gradient goes to exactly the chosen elements (as torch). The indices never carry a
gradient. ``max``/``min``/``topk``/``sort`` return PyTorch's named pairs
(``values, indices``): see ``return_types.py``.
"""
from __future__ import annotations

import numpy as np

from ..errors import IndexOutOfRange, ShapeError
from ..ops import indexing as I
from ..tensor import Tensor, as_tensor
from . import return_types
from ._checks import _normalize_axis, _pick
from .elementwise import maximum, minimum
from .reduce import amax, amin


def _take(x: Tensor, index: np.ndarray, axis: int) -> Tensor:
    """x's values at ``index`` along ``axis`` (differentiable in x)."""
    return I.Gather.apply(x, index=index, axis=axis)


def _indices(array: np.ndarray) -> Tensor:
    return Tensor._make(np.asarray(array, dtype=np.int64), None)


def _one_dim(name: str, dim) -> int:
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{name}: dim must be an int, got {dim!r} (for several axes use "
                        f"axis=..., which returns the values only, as amax/amin)")
    return int(dim)


def _extreme(name: str, find, reduce_all, elementwise, pair_type, x, dim, keepdim, axis,
             keepdims, other):
    x = as_tensor(x)
    if other is not None:
        if dim is not None or axis is not None:
            raise TypeError(f"{name}: give either a tensor to compare with or a dim, not both")
        return elementwise(x, other)
    if x.data.size == 0:
        raise ShapeError(f"{name}: cannot reduce an empty tensor of shape {x.shape}")
    keep = bool(keepdim) or bool(keepdims)
    if dim is None:  # no dim: the values only (ties share the gradient, as torch.max())
        return reduce_all(x, axis, keep)
    if axis is not None:
        raise TypeError(f"{name}: got both dim={dim} and axis={axis}")
    a = _normalize_axis(name, _one_dim(name, dim), x.ndim)
    if x.ndim == 0:
        return pair_type(x.clone(), _indices(np.zeros((), dtype=np.int64)))
    index = np.expand_dims(find(x.data, axis=a), a)     # the first extreme, as torch on CPU
    values = _take(x, index, a)
    if not keep:
        values, index = values.squeeze(a), index.squeeze(a)
    return pair_type(values, _indices(index))


def max(x, dim=None, keepdim=False, *, axis=None, keepdims=None, other=None):
    """The max of x, or along ``dim`` a named pair ``(values, indices)``.

    ``max(x)``: the max over all elements (0-d). ``max(x, dim, keepdim=False)``:
    ``return_types.max(values, indices)``, both of shape x.shape without ``dim`` (kept as
    size 1 with ``keepdim``); the gradient goes to the element each index names.
    ``max(x, axis=..., keepdims=...)`` (NumPy's spelling, int or tuple): the values only,
    as ``amax``. ``max(x, other_tensor)``: the elementwise maximum, as torch.
    """
    if isinstance(dim, Tensor):
        dim, other = None, dim
    return _extreme("max", np.argmax, amax, maximum, return_types.max, x, dim, keepdim, axis,
                    keepdims, other)


def min(x, dim=None, keepdim=False, *, axis=None, keepdims=None, other=None):
    """The min of x, or along ``dim`` a named pair ``(values, indices)`` (see ``max``)."""
    if isinstance(dim, Tensor):
        dim, other = None, dim
    return _extreme("min", np.argmin, amin, minimum, return_types.min, x, dim, keepdim, axis,
                    keepdims, other)


def _arg_extreme(name: str, find, x, dim, keepdim) -> Tensor:
    x = as_tensor(x)
    if x.data.size == 0:
        raise ShapeError(f"{name}: cannot reduce an empty tensor of shape {x.shape}")
    if dim is None:  # over the flattened tensor (keepdim gives all-size-1 dims, as torch)
        index = np.asarray(find(x.data))
        return _indices(index.reshape((1,) * x.ndim) if keepdim else index)
    a = _normalize_axis(name, _one_dim(name, dim), x.ndim)
    if x.ndim == 0:
        return _indices(np.zeros((), dtype=np.int64))
    return _indices(find(x.data, axis=a, keepdims=bool(keepdim)))


def argmax(x, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:
    """Index of the (first) max along ``dim`` (None: of the flattened tensor); int64, no grad."""
    return _arg_extreme("argmax", np.argmax, x, _pick(axis, dim), bool(keepdim) or bool(keepdims))


def argmin(x, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:
    """Index of the (first) min along ``dim`` (None: of the flattened tensor); int64, no grad."""
    return _arg_extreme("argmin", np.argmin, x, _pick(axis, dim), bool(keepdim) or bool(keepdims))


def _sort_order(data: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """Stable argsort along ``axis``; descending keeps equal elements in their original
    order and puts NaN first (as torch): the ascending sort of the reversed array, reversed."""
    if data.dtype == np.bool_:
        data = data.view(np.uint8)
    if not descending:
        return np.argsort(data, axis=axis, kind="stable")
    n = data.shape[axis]
    reversed_order = np.argsort(np.flip(data, axis), axis=axis, kind="stable")
    return np.flip(n - 1 - reversed_order, axis)


def sort(x, dim: int = -1, descending: bool = False, stable: bool = False, *, axis=None):
    """Sorted along ``dim``: named pair ``(values, indices)``; always stable (ties keep their
    order), NaN sorts as the largest value. The gradient of values goes back to the
    element each came from."""
    x = as_tensor(x)
    dim = dim if axis is None else axis
    if x.ndim == 0:
        _normalize_axis("sort", _one_dim("sort", dim), 1)
        return return_types.sort(x.clone(), _indices(np.zeros((), dtype=np.int64)))
    a = _normalize_axis("sort", _one_dim("sort", dim), x.ndim)
    order = _sort_order(x.data, a, descending)
    return return_types.sort(_take(x, order, a), _indices(order))


def topk(x, k: int, dim: int = -1, largest: bool = True, sorted: bool = True, *, axis=None):
    """The ``k`` largest (``largest=False``: smallest) elements along ``dim``: named pair
    ``(values, indices)`` with size k along ``dim``. Always sorted (``sorted=False`` is
    allowed: torch leaves the order unspecified); ties keep their original order."""
    x = as_tensor(x)
    dim = dim if axis is None else axis
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise TypeError(f"topk: k must be an int, got {k!r}")
    a = _normalize_axis("topk", _one_dim("topk", dim), x.ndim)
    n = x.shape[a] if x.ndim else 1
    if not 0 <= k <= n:
        raise IndexOutOfRange(f"topk: k ({k}) is out of range: dim {dim} of a tensor of shape "
                              f"{x.shape} has {n} elements")
    if x.ndim == 0:  # as a 1-element vector; k = 1 gives 0-d results again, as torch
        values, indices = topk(x.reshape(1), k)
        return return_types.topk(values.reshape(()) if k else values,
                                 indices.reshape(()) if k else indices)
    order = np.take(_sort_order(x.data, a, descending=largest), np.arange(k), axis=a)
    return return_types.topk(_take(x, order, a), _indices(order))
