"""dtype names and the dtype rules every module shares.

* The names: ``float32 float64 float16 int64 int32 int16 int8 uint8 bool_`` (NumPy dtypes)
  and PyTorch's spellings ``float double half long int short bool`` (the package exports
  them as ``mt.float``, ``mt.long``, ...). ``DEFAULT_DTYPE`` is float32, as in torch.
* ``as_dtype``: a NumPy dtype from a dtype, a type, a name ("float32", "long",
  "torch.int64") or a ``torch.dtype``.
* ``result_dtype``: the dtype of a binary op's result, by PyTorch's promotion rule.

This module imports only NumPy, so every other module of the package may import it.
"""
from __future__ import annotations

import builtins

import numpy as np

DEFAULT_DTYPE = np.dtype(np.float32)

float16 = np.dtype(np.float16)  # storage and conversion only: no kernel computes in half
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)

# PyTorch's names for the same dtypes. ``float``, ``int`` and ``bool`` would shadow the
# builtins in this file, so they live only in this table and in the package namespace.
TORCH_NAMES = {"float": float32, "double": float64, "half": float16, "long": int64,
               "int": int32, "short": int16, "bool": bool_, "float32": float32,
               "float64": float64, "float16": float16, "int64": int64, "int32": int32,
               "int16": int16, "int8": int8, "uint8": uint8}

# The legacy tensor-type names (``torch.LongTensor``, ``x.type()``'s answer).
LEGACY_TENSOR_TYPES = {"FloatTensor": float32, "DoubleTensor": float64, "HalfTensor": float16,
                       "LongTensor": int64, "IntTensor": int32, "ShortTensor": int16,
                       "CharTensor": int8, "ByteTensor": uint8, "BoolTensor": bool_}

SUPPORTED = (float32, float64, float16, int64, int32, int16, int8, uint8, bool_)


def as_dtype(dtype) -> np.dtype:
    """A NumPy dtype from a dtype, a type, a name ("float32", "double", "torch.long", ...)
    or a ``torch.dtype`` (recognized by its name, torch is never imported)."""
    if type(dtype).__module__ == "torch":  # torch.float32 prints as "torch.float32"
        dtype = str(dtype)
    if isinstance(dtype, str):
        name = dtype.removeprefix("torch.").removeprefix("minitensor.")
        if name in TORCH_NAMES:
            return TORCH_NAMES[name]
        if name in LEGACY_TENSOR_TYPES:
            return LEGACY_TENSOR_TYPES[name]
    return np.dtype(dtype)


# ---------------------------------------------------------------------- promotion
# PyTorch's type promotion (torch.result_type), in two steps:
#
# 1. Operands fall into three priority groups: tensors with dimensions, 0-dim tensors,
#    and Python numbers. Inside a group, dtypes promote as usual (``promote_types``:
#    the higher category wins, bool < integer < floating; within one category, the
#    wider type). A Python number counts with its category's default dtype: bool,
#    int64, or the default float (float32).
# 2. A lower-priority group only matters when it raises the *category*: then its dtype
#    is taken as it is. It never widens within a category. So
#        float32 tensor * 2.0                 -> float32
#        int64 tensor * 2.5                   -> float32   (the default float)
#        float32 tensor * 0-dim float64       -> float32
#        int32 tensor * 0-dim float64         -> float64
#        float32 tensor * float64 tensor      -> float64   (same group: widen)
#        int64 tensor * float32 tensor        -> float32   (the float category wins)
# NumPy widens in all of these cases (int64 * float32 -> float64), which would leak
# float64 into float32 models; that is why the rule is written out here.

_CATEGORY = {"b": 0, "i": 1, "u": 1, "f": 2}  # by dtype.kind: bool < integer < floating


def _category(dtype: np.dtype) -> builtins.int:
    """0 for bool, 1 for integers, 2 for floating point."""
    return _CATEGORY.get(dtype.kind, 3)


def promote_types(a: np.dtype, b: np.dtype) -> np.dtype:
    """The smallest dtype both ``a`` and ``b`` convert to, as ``torch.promote_types``:
    the higher category wins outright (int64 with float16 -> float16, unlike NumPy)."""
    ca, cb = _category(a), _category(b)
    if ca != cb:
        return a if ca > cb else b
    return a if a == b else np.promote_types(a, b)


def _scalar_dtype(x) -> np.dtype:
    if isinstance(x, (builtins.bool, np.bool_)):
        return bool_
    if isinstance(x, (builtins.int, np.integer)):
        return int64
    if isinstance(x, (builtins.float, np.floating)):
        return DEFAULT_DTYPE
    raise TypeError(f"unsupported operand of type {type(x).__name__}")


_PYTHON_NUMBERS = (builtins.float, builtins.int, builtins.bool)


def is_scalar(x) -> builtins.bool:
    """A Python (or NumPy) number, which counts in promotion with its category only."""
    return type(x) in _PYTHON_NUMBERS or isinstance(x, (builtins.int, builtins.float, np.bool_,
                                                        np.number))


def result_dtype(*operands) -> np.dtype:
    """The dtype of an elementwise op on ``operands`` (tensors, arrays or Python numbers),
    by PyTorch's promotion rule (see the table above)."""
    if len(operands) == 2:  # the common cases, answered without the general walk below
        a, b = operands
        if type(a) in _PYTHON_NUMBERS:
            a, b = b, a  # (the rule is symmetric)
        if type(b) in _PYTHON_NUMBERS:
            if type(a) not in _PYTHON_NUMBERS and a.dtype.kind == "f":
                return a.dtype  # a float tensor with a Python number: never widened
        elif a.dtype == b.dtype:
            return a.dtype
    groups: list = [None, None, None]  # tensors with dims, 0-dim tensors, Python numbers
    for x in operands:
        if is_scalar(x):
            group, dtype = 2, _scalar_dtype(x)
        else:
            group, dtype = (0 if x.ndim > 0 else 1), np.dtype(x.dtype)
        groups[group] = dtype if groups[group] is None else promote_types(groups[group], dtype)
    result = None
    for dtype in groups:  # highest priority first; later groups only raise the category
        if dtype is not None and (result is None or _category(dtype) > _category(result)):
            result = dtype
    return result


_UNSUPPORTED_KINDS = {"U": "string", "S": "bytes", "O": "object", "c": "complex",
                      "M": "datetime", "m": "timedelta", "V": "void"}


def describe(dtype: np.dtype) -> str:
    """A dtype's name for error messages: "float32", or NumPy's code plus what it is
    for the kinds a tensor cannot hold ("<U1 (string)", "<c16 (complex)")."""
    kind = _UNSUPPORTED_KINDS.get(dtype.kind)
    return f"{dtype.str} ({kind})" if kind else dtype.name


def supported_list() -> str:
    """The dtypes a tensor holds, for error messages."""
    return ", ".join(d.name for d in SUPPORTED)
