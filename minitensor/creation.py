"""Creating tensors: ``tensor``, ``zeros``, ``ones``, ``full``, ``arange``, ``randn``, ...

dtype rules (DESIGN.md, applied by ``tensor.to_array``): Python lists and numbers become
float32 (bools stay bool); a NumPy array keeps its dtype; ``dtype=`` overrides both.
Random tensors draw from the one seeded generator in ``minitensor.random``.
"""
from __future__ import annotations

import numpy as np

from . import random as _random
from .dtypes import DEFAULT_DTYPE, as_dtype, bool_, int64
from .tensor import Tensor, to_array


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (list, number, ndarray or Tensor)."""
    t = Tensor._make(to_array(data, dtype), None)
    t.requires_grad = requires_grad
    return t


def _shape(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _new(array: np.ndarray, requires_grad: bool) -> Tensor:
    t = Tensor._make(array, None)
    t.requires_grad = requires_grad
    return t


def zeros(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    """All zeros; ``zeros(2, 3)`` and ``zeros((2, 3))`` both work."""
    return _new(np.zeros(_shape(shape), as_dtype(dtype or DEFAULT_DTYPE)), requires_grad)


def ones(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    """All ones."""
    return _new(np.ones(_shape(shape), as_dtype(dtype or DEFAULT_DTYPE)), requires_grad)


def empty(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    """Uninitialized memory (use only when every element is written next)."""
    return _new(np.empty(_shape(shape), as_dtype(dtype or DEFAULT_DTYPE)), requires_grad)


def full(shape, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    """Filled with ``fill_value``; the dtype follows the value like torch (float -> float32,
    int -> int64, bool -> bool) unless given."""
    if dtype is None:
        dtype = bool_ if isinstance(fill_value, bool) else \
            int64 if isinstance(fill_value, (int, np.integer)) else DEFAULT_DTYPE
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return _new(np.full(shape, fill_value, as_dtype(dtype)), requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad: bool = False) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive); integer arguments give int64 (as torch)."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = int64 if ints else DEFAULT_DTYPE
    return _new(np.arange(start, end, step).astype(as_dtype(dtype)), requires_grad)


def linspace(start: float, end: float, steps: int, dtype=None, requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from start to end (inclusive)."""
    return _new(np.linspace(start, end, steps).astype(as_dtype(dtype or DEFAULT_DTYPE)), requires_grad)


def eye(n: int, m: int | None = None, dtype=None, requires_grad: bool = False) -> Tensor:
    """The identity matrix (n, m)."""
    return _new(np.eye(n, m, dtype=as_dtype(dtype or DEFAULT_DTYPE)), requires_grad)


def randn(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from the global seeded generator."""
    dtype = as_dtype(dtype or DEFAULT_DTYPE)
    return _new(_random.generator().standard_normal(_shape(shape)).astype(dtype), requires_grad)


def rand(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) from the global seeded generator."""
    dtype = as_dtype(dtype or DEFAULT_DTYPE)
    return _new(_random.generator().random(_shape(shape)).astype(dtype), requires_grad)


def randint(low: int, high: int | None = None, size=(), dtype=None) -> Tensor:
    """Integers in [low, high) (int64), from the global seeded generator."""
    if high is None:
        low, high = 0, low
    return _new(_random.generator().integers(low, high, size=size).astype(as_dtype(dtype or int64)), False)


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return zeros(*t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return ones(*t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    return full(t.shape, fill_value, dtype=dtype or t.dtype, requires_grad=requires_grad)


def randn_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return randn(*t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def rand_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return rand(*t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)
