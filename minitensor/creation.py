"""Creating tensors: ``tensor``, ``zeros``, ``ones``, ``full``, ``arange``, ``randn``, ...

dtype rules (DESIGN.md, applied by ``tensor.to_array``), as torch's: Python ints become
int64, floats the default float32, bools bool; a NumPy array keeps its dtype; ``dtype=``
overrides both. Every factory takes ``device=`` ("cpu" or None; anything else raises).
Random tensors draw from the one seeded generator in ``minitensor.random``. Also here:
``from_numpy`` (shares memory), ``is_tensor``, ``numel`` and the legacy constructors
``FloatTensor``, ``LongTensor``, ...
"""
from __future__ import annotations

import numpy as np

from . import random as _random
from .device import check_device
from .dtypes import (DEFAULT_DTYPE, LEGACY_TENSOR_TYPES, as_dtype, bool_, describe, int64,
                     supported_list)
from .errors import DTypeError
from .tensor import Tensor, to_array


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (list, number, ndarray or Tensor)."""
    check_device("tensor", device)
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


def zeros(*shape, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """All zeros; ``zeros(2, 3)`` and ``zeros((2, 3))`` both work."""
    check_device("zeros", device)
    return _new(np.zeros(_shape(shape), as_dtype(dtype or DEFAULT_DTYPE)), requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """All ones."""
    check_device("ones", device)
    return _new(np.ones(_shape(shape), as_dtype(dtype or DEFAULT_DTYPE)), requires_grad)


def empty(*shape, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uninitialized memory (use only when every element is written next)."""
    check_device("empty", device)
    return _new(np.empty(_shape(shape), as_dtype(dtype or DEFAULT_DTYPE)), requires_grad)


def full(shape, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Filled with ``fill_value``; the dtype follows the value like torch (float -> float32,
    int -> int64, bool -> bool) unless given."""
    check_device("full", device)
    if dtype is None:
        dtype = bool_ if isinstance(fill_value, bool) else \
            int64 if isinstance(fill_value, (int, np.integer)) else DEFAULT_DTYPE
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return _new(np.full(shape, fill_value, as_dtype(dtype)), requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive); integer arguments give int64 (as torch)."""
    check_device("arange", device)
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = int64 if ints else DEFAULT_DTYPE
    return _new(np.arange(start, end, step).astype(as_dtype(dtype)), requires_grad)


def linspace(start: float, end: float, steps: int, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from start to end (inclusive)."""
    check_device("linspace", device)
    return _new(np.linspace(start, end, steps).astype(as_dtype(dtype or DEFAULT_DTYPE)), requires_grad)


def eye(n: int, m: int | None = None, dtype=None, device=None,
        requires_grad: bool = False) -> Tensor:
    """The identity matrix (n, m)."""
    check_device("eye", device)
    return _new(np.eye(n, m, dtype=as_dtype(dtype or DEFAULT_DTYPE)), requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from the global seeded generator."""
    check_device("randn", device)
    dtype = as_dtype(dtype or DEFAULT_DTYPE)
    return _new(_random.generator().standard_normal(_shape(shape)).astype(dtype), requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) from the global seeded generator."""
    check_device("rand", device)
    dtype = as_dtype(dtype or DEFAULT_DTYPE)
    return _new(_random.generator().random(_shape(shape)).astype(dtype), requires_grad)


def randint(low: int, high: int | None = None, size=(), dtype=None, device=None,
            requires_grad: bool = False) -> Tensor:
    """Integers in [low, high) (int64), from the global seeded generator."""
    check_device("randint", device)
    if high is None:
        low, high = 0, low
    values = _random.generator().integers(low, high, size=size)
    return _new(values.astype(as_dtype(dtype or int64)), requires_grad)


def zeros_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    check_device("zeros_like", device)
    return zeros(*t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    check_device("ones_like", device)
    return ones(*t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, device=None,
              requires_grad: bool = False) -> Tensor:
    check_device("full_like", device)
    return full(t.shape, fill_value, dtype=dtype or t.dtype, requires_grad=requires_grad)


def randn_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    check_device("randn_like", device)
    return randn(*t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def rand_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    check_device("rand_like", device)
    return rand(*t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing ``array``'s memory (as ``torch.from_numpy``): writes to one show
    in the other. The dtype is kept; it must be one a tensor can hold."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    if array.dtype.kind not in "biuf":
        raise DTypeError(f"from_numpy: NumPy dtype {describe(array.dtype)} is not supported; "
                         f"supported: {supported_list()}")
    return Tensor._make(array, None)


def is_tensor(obj) -> bool:
    """True when ``obj`` is a minitensor Tensor."""
    return isinstance(obj, Tensor)


def numel(t: Tensor) -> int:
    """The number of elements of ``t``."""
    return t.numel()


def _legacy_constructor(name: str, dtype: np.dtype):
    """torch's legacy ``FloatTensor(...)``-style constructor for one dtype."""
    def constructor(*data_or_sizes, device=None) -> Tensor:
        check_device(name, device)
        if len(data_or_sizes) == 1 and not isinstance(data_or_sizes[0], (int, np.integer)):
            return tensor(data_or_sizes[0], dtype=dtype)  # FloatTensor([1, 2]): the data
        sizes = data_or_sizes or (0,)  # FloatTensor(): an empty 1-D tensor, as torch
        return zeros(*sizes, dtype=dtype)  # FloatTensor(2, 3): a (2, 3) tensor
    constructor.__name__ = constructor.__qualname__ = name
    constructor.__doc__ = (f"``{name}(data)`` or ``{name}(*sizes)``: a {dtype} tensor from data, "
                           "or of the given sizes (zero-filled; torch leaves it uninitialized).")
    return constructor


FloatTensor = _legacy_constructor("FloatTensor", LEGACY_TENSOR_TYPES["FloatTensor"])
DoubleTensor = _legacy_constructor("DoubleTensor", LEGACY_TENSOR_TYPES["DoubleTensor"])
HalfTensor = _legacy_constructor("HalfTensor", LEGACY_TENSOR_TYPES["HalfTensor"])
LongTensor = _legacy_constructor("LongTensor", LEGACY_TENSOR_TYPES["LongTensor"])
IntTensor = _legacy_constructor("IntTensor", LEGACY_TENSOR_TYPES["IntTensor"])
ByteTensor = _legacy_constructor("ByteTensor", LEGACY_TENSOR_TYPES["ByteTensor"])
BoolTensor = _legacy_constructor("BoolTensor", LEGACY_TENSOR_TYPES["BoolTensor"])
