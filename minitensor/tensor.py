"""``Tensor``: one NumPy array plus what autograd needs to differentiate through it.

A tensor holds
    data           the ndarray (assignable: ``p.data = new_array``)
    grad           a Tensor with d(loss)/d(this), filled by ``backward()`` on leaves
    requires_grad  whether ops on it record a graph
    _node          the ``autograd.Context`` that produced it (None for leaves)
    _output_index  which output of that node it is (0 unless the op has several)

This file holds what a tensor *is*: its fields, conversions to NumPy and Python, its
place in the graph (detach, hooks) and the machinery of in-place changes. What a tensor
*does* (operators, math and shape methods, ``backward``) is in ``tensor_methods.py``:
each method there is a one-line call into ``functional`` or the engine, and ``functional``
and the engine build Tensors, so those methods are written in a module above them and
installed on this class when the package is imported (the import order stays a DAG).
"""
from __future__ import annotations

import weakref
from typing import Callable

import numpy as np

from . import grad_mode
from .device import CPU
from .dtypes import DEFAULT_DTYPE, as_dtype, describe, supported_list
from .errors import DTypeError, ShapeError


class VersionCounter:
    """A mutable counter shared by a tensor and its views; in-place ops bump it."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class Tensor:
    """An n-dimensional array that records the operations applied to it for backward.

    Operators and methods (``+``, ``@``, ``sum``, ``reshape``, ``backward``, ...) are
    defined in ``tensor_methods.py``.
    """

    __slots__ = ("_data", "grad", "_requires_grad", "_node", "_output_index", "_version_counter",
                 "_hooks", "__weakref__")
    __array_ufunc__ = None  # make `ndarray + Tensor` call Tensor.__radd__ instead of NumPy

    def __init__(self, data, dtype=None, requires_grad: bool = False):
        self._init(to_array(data, dtype), None)
        self.requires_grad = requires_grad

    def _init(self, data: np.ndarray, node) -> None:
        self._data = data
        self.grad: Tensor | None = None
        self._node = node
        self._output_index = 0  # which output of ``_node`` this is (multi-output ops)
        self._requires_grad = node is not None
        self._version_counter = VersionCounter()
        self._hooks: list[Callable] | tuple = ()  # a list once a hook is registered

    @classmethod
    def _make(cls, data: np.ndarray, node) -> "Tensor":
        """Wrap an array without copying or checking (used by the engine and ops)."""
        t = cls.__new__(cls)
        t._init(data, node)
        return t

    # ------------------------------------------------------------------ attributes
    @property
    def data(self) -> np.ndarray:
        """The underlying ndarray (shared, not copied)."""
        return self._data

    @data.setter
    def data(self, value) -> None:
        self._data = np.asarray(value.data if isinstance(value, Tensor) else value)

    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def device(self):
        """Always the CPU (``device(type='cpu')``, equal to "cpu"): minitensor runs there."""
        return CPU

    @property
    def is_cuda(self) -> bool:
        return False

    def size(self, dim: int | None = None):
        """The shape (torch spelling), or the size of one dimension."""
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if flag and self.dtype.kind != "f":
            raise DTypeError(f"only floating-point tensors can require gradients; this tensor "
                             f"has dtype {self.dtype} (shape {self.shape})")
        if not flag and self._node is not None:
            raise RuntimeError("requires_grad can only be turned off on leaf tensors; "
                               "use .detach() to get a tensor outside the graph")
        self._requires_grad = bool(flag)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Set ``requires_grad`` in place; returns self."""
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded op (parameters, inputs)."""
        return self._node is None

    @property
    def grad_fn(self):
        """The graph node that produced this tensor (None for leaves)."""
        return self._node

    @property
    def _version(self) -> int:
        return self._version_counter.value

    # ------------------------------------------------------------------ conversion
    def numpy(self) -> np.ndarray:
        """The data as an ndarray (shared memory, like ``torch.Tensor.numpy``)."""
        if self.requires_grad:
            raise RuntimeError("numpy(): can't call numpy() on a tensor that requires grad; "
                               "use tensor.detach().numpy()")
        return self._data

    def item(self):
        """The single element as a Python number."""
        if self._data.size != 1:
            raise ValueError(f"item(): only one-element tensors can be converted to a Python "
                             f"scalar; this one has shape {self.shape}")
        return self._data.item()

    def tolist(self):
        return self._data.tolist()

    def __array__(self, dtype=None, copy=None):
        return self._data if dtype is None else self._data.astype(dtype)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise ValueError(f"the truth value of a tensor with {self._data.size} elements is "
                             "ambiguous; use .any() or .all()")
        return bool(self._data.item())

    # ------------------------------------------------------------------ graph
    def detach(self) -> "Tensor":
        """A tensor sharing this data (and version counter) but outside the graph."""
        t = Tensor._make(self._data, None)
        t._version_counter = self._version_counter
        return t

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        if self._node is not None:
            self._node.retain(self._output_index, weakref.ref(self))

    def register_hook(self, hook: Callable):
        """Call ``hook(grad)`` when this tensor's gradient is computed; it may return a
        replacement gradient. Returns a handle with ``.remove()``."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that "
                               "doesn't require gradient")
        if self._node is not None:
            hooks = self._node.hooks_of(self._output_index)
        else:
            if not isinstance(self._hooks, list):  # the first hook: a list of its own
                self._hooks = []
            hooks = self._hooks
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    # ------------------------------------------------------------------ in-place machinery
    def _inplace(self, name: str, compute: Callable[["Tensor"], "Tensor"]) -> "Tensor":
        """Run ``compute`` out of place on the old value, then write the result into self.

        The version counter is bumped, so a backward that saved the old value raises.
        If a graph is being recorded, self takes the new node (the old one is its parent).
        """
        recording = grad_mode.is_grad_enabled()
        if recording and self.is_leaf and self.requires_grad:
            raise RuntimeError(f"{name}: a leaf tensor that requires grad is used in an in-place "
                               "operation; wrap it in `with mt.no_grad():` or change `.data`")
        if recording and self.requires_grad and self._node is not None and self._node.output_is_view:
            # Writing through a view changes its base, whose graph would not know: the base's
            # gradient (or a leaf's value) would be silently wrong. Refuse instead.
            raise RuntimeError(f"{name}: in-place operation on a view ({self._node.name} output, "
                               f"shape {self.shape}) of a tensor that requires grad is not "
                               "supported; use an out-of-place op or .clone() the view first")
        old = Tensor._make(self._data.copy(), self._node)
        old._output_index = self._output_index
        old._requires_grad = self._requires_grad
        result = compute(old)
        if not np.can_cast(result.dtype, self.dtype, casting="same_kind"):
            raise DTypeError(f"{name}: the result has dtype {result.dtype}, which can't be "
                             f"written into this {self.dtype} tensor (shape {self.shape}) in "
                             f"place; use the out-of-place op, or convert first")
        np.copyto(self._data, result.data, casting="same_kind")
        self._version_counter.value += 1
        if recording and result.requires_grad:
            self._node, self._requires_grad = result._node, True
            self._output_index = result._output_index
        return self

    # ------------------------------------------------------------------ printing
    def __repr__(self) -> str:
        body = np.array2string(self._data, separator=", ", prefix="tensor(", precision=4)
        extras = []
        if self.dtype not in _DTYPES_REPR_OMITS:
            extras.append(f"dtype={self.dtype}")
        if self._node is not None:
            extras.append(f"grad_fn=<{self._node.name}Backward>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({body}{''.join(', ' + e for e in extras)})"


# As torch's repr: the dtypes one gets without asking (float32, and int64 / bool from
# Python ints / bools) are not printed.
_DTYPES_REPR_OMITS = (DEFAULT_DTYPE, np.dtype(np.int64), np.dtype(np.bool_))


class _HookHandle:
    """Returned by ``register_hook``; ``remove()`` unregisters the hook."""

    def __init__(self, hooks: list, hook: Callable):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def as_tensor(x, like: Tensor | None = None) -> Tensor:
    """``x`` as a Tensor without copying; a Python number takes ``like``'s dtype when it fits
    (float32 tensor + 2.5 stays float32, as in torch)."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return Tensor._make(x, None)
    if isinstance(x, (bool, int, float, np.number, np.bool_)) and like is not None:
        kind = like.dtype.kind
        if isinstance(x, (bool, np.bool_)):
            dtype = like.dtype
        elif isinstance(x, (int, np.integer)):
            dtype = like.dtype if kind in "fiu" else np.dtype(np.int64)
        else:
            dtype = like.dtype if kind == "f" else DEFAULT_DTYPE
        return Tensor._make(np.asarray(x, dtype=dtype), None)
    return Tensor._make(to_array(x, None), None)


def to_array(data, dtype=None) -> np.ndarray:
    """Convert user data to a fresh ndarray following PyTorch's dtype rules (DESIGN.md):
    Python ints become int64, floats the default float32, bools bool; a NumPy array keeps
    its dtype; ``dtype=`` overrides both. Strings, objects and complex numbers are refused."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, (np.ndarray, np.generic)):
        arr = np.array(data, copy=True)
    else:
        try:
            arr = np.array(data)
        except ValueError as e:
            raise ShapeError(f"tensor: could not build a tensor from a ragged nested sequence "
                             f"(every inner list must have the same length): {e}") from None
        if arr.dtype == object:
            raise ShapeError(f"tensor: could not build a tensor from {type(data).__name__} "
                             "data (ragged nesting or non-numeric items)")
        if arr.dtype.kind == "f":
            arr = arr.astype(DEFAULT_DTYPE)  # Python floats: the default float, as torch
        elif arr.dtype.kind == "i":
            arr = arr.astype(np.int64, copy=False)  # Python ints: int64, as torch
    if arr.dtype.kind not in "biuf":
        raise DTypeError(f"tensor: NumPy dtype {describe(arr.dtype)} is not supported; "
                         f"supported: {supported_list()}")
    return arr.astype(as_dtype(dtype), copy=False) if dtype is not None else arr
