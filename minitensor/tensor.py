"""``Tensor``: one NumPy array plus what autograd needs to differentiate through it.

A tensor holds
    data           the ndarray (assignable: ``p.data = new_array``)
    grad           a Tensor with d(loss)/d(this), filled by ``backward()`` on leaves
    requires_grad  whether ops on it record a graph
    _node          the ``autograd.Context`` that produced it (None for leaves)
    _output_index  which output of that node it is (0 unless the op has several)

Every operator and method below is written out and is a one-line call into
``functional`` (imported at the bottom of this file to break the import cycle), so a
reader can find each one by name.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import autograd, grad_mode
from .autograd import VersionCounter
from .errors import DTypeError, ShapeError

DEFAULT_DTYPE = np.dtype(np.float32)


class Tensor:
    """An n-dimensional array that records the operations applied to it for backward."""

    __slots__ = ("_data", "grad", "_requires_grad", "_node", "_output_index", "_version_counter",
                 "_hooks", "__weakref__")
    __array_ufunc__ = None  # make `ndarray + Tensor` call Tensor.__radd__ instead of NumPy

    def __init__(self, data, dtype=None, requires_grad: bool = False):
        from .creation import to_array
        self._init(to_array(data, dtype), None)
        self.requires_grad = requires_grad

    def _init(self, data: np.ndarray, node) -> None:
        self._data = data
        self.grad: Tensor | None = None
        self._node = node
        self._output_index = 0  # which output of ``_node`` this is (multi-output ops)
        self._requires_grad = node is not None
        self._version_counter = VersionCounter()
        self._hooks: list[Callable] = []

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

    def to(self, dtype) -> "Tensor":
        """A copy with another dtype (differentiable between float dtypes)."""
        from .creation import as_dtype
        dtype = as_dtype(dtype)
        if dtype == self.dtype:
            return self
        if self.requires_grad and dtype.kind == "f":
            return F.cast(self, dtype)
        return Tensor._make(self._data.astype(dtype), None)

    def float(self) -> "Tensor":
        return self.to(np.float32)

    def double(self) -> "Tensor":
        return self.to(np.float64)

    def long(self) -> "Tensor":
        return self.to(np.int64)

    def int(self) -> "Tensor":
        return self.to(np.int32)

    def bool(self) -> "Tensor":
        return self.to(np.bool_)

    # ------------------------------------------------------------------ autograd
    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) * gradient into ``.grad`` of every leaf.

        Args:
            gradient: d(loss)/d(self), same shape as self. May be omitted for a
                one-element tensor (then it is 1).
            retain_graph: keep saved arrays so backward can run through the graph again.
        """
        if not self.requires_grad:
            raise RuntimeError(f"backward: this tensor (shape {self.shape}) does not require grad "
                               "and has no grad_fn; did you create it under no_grad() or detach() it?")
        if gradient is None:
            if self._data.size != 1:
                raise RuntimeError(f"backward: grad can be implicitly created only for scalar "
                                   f"outputs; this tensor has shape {self.shape}. Pass "
                                   f"gradient= of shape {self.shape}")
            seed = np.ones_like(self._data)
        else:
            seed = np.asarray(gradient.data if isinstance(gradient, Tensor) else gradient,
                              dtype=self.dtype)
            if seed.shape != self.shape:
                raise ShapeError(f"backward: gradient of shape {seed.shape} does not match the "
                                 f"tensor's shape {self.shape}")
        autograd.backward(self, seed, retain_graph=retain_graph)

    def detach(self) -> "Tensor":
        """A tensor sharing this data (and version counter) but outside the graph."""
        t = Tensor._make(self._data, None)
        t._version_counter = self._version_counter
        return t

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        import weakref
        if self._node is not None:
            self._node.retained[self._output_index] = weakref.ref(self)

    def register_hook(self, hook: Callable):
        """Call ``hook(grad)`` when this tensor's gradient is computed; it may return a
        replacement gradient. Returns a handle with ``.remove()``."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that "
                               "doesn't require gradient")
        hooks = self._hooks if self._node is None else \
            self._node.hooks.setdefault(self._output_index, [])
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    # ------------------------------------------------------------------ in-place ops
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
        np.copyto(self._data, result.data, casting="same_kind")
        self._version_counter.value += 1
        if recording and result.requires_grad:
            self._node, self._requires_grad = result._node, True
            self._output_index = result._output_index
        return self

    def add_(self, other, alpha=1) -> "Tensor":
        return self._inplace("add_", lambda t: t + other * alpha if alpha != 1 else t + other)

    def sub_(self, other, alpha=1) -> "Tensor":
        return self._inplace("sub_", lambda t: t - other * alpha if alpha != 1 else t - other)

    def mul_(self, other) -> "Tensor":
        return self._inplace("mul_", lambda t: t * other)

    def div_(self, other) -> "Tensor":
        return self._inplace("div_", lambda t: t / other)

    def zero_(self) -> "Tensor":
        return self._inplace("zero_", lambda t: t * 0)

    def fill_(self, value) -> "Tensor":
        return self._inplace("fill_", lambda t: t * 0 + value)

    def copy_(self, src) -> "Tensor":
        src = as_tensor(src, like=self)
        return self._inplace("copy_", lambda t: t * 0 + src)

    def clamp_(self, min=None, max=None) -> "Tensor":
        return self._inplace("clamp_", lambda t: F.clamp(t, min, max))

    def masked_fill_(self, mask, value) -> "Tensor":
        return self._inplace("masked_fill_", lambda t: F.masked_fill(t, mask, value))

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    def __setitem__(self, index, value) -> None:
        self._inplace("setitem", lambda t: F.index_put(t, index, value))

    # ------------------------------------------------------------------ arithmetic
    def __add__(self, other): return F.add(self, other)
    def __radd__(self, other): return F.add(other, self)
    def __sub__(self, other): return F.sub(self, other)
    def __rsub__(self, other): return F.sub(other, self)
    def __mul__(self, other): return F.mul(self, other)
    def __rmul__(self, other): return F.mul(other, self)
    def __truediv__(self, other): return F.div(self, other)
    def __rtruediv__(self, other): return F.div(other, self)
    def __pow__(self, exponent): return F.pow(self, exponent)
    def __rpow__(self, base): return F.pow(as_tensor(base, like=self), self)
    def __matmul__(self, other): return F.matmul(self, other)
    def __rmatmul__(self, other): return F.matmul(other, self)
    def __neg__(self): return F.neg(self)
    def __pos__(self): return self
    def __abs__(self): return F.abs(self)

    # Comparisons build no graph and return bool tensors (``__eq__`` is elementwise,
    # so tensors hash by identity to remain usable as dict keys).
    def _compare(self, other, fn) -> "Tensor":
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._make(np.asarray(fn(self._data, other)), None)

    def __lt__(self, other): return self._compare(other, np.less)
    def __le__(self, other): return self._compare(other, np.less_equal)
    def __gt__(self, other): return self._compare(other, np.greater)
    def __ge__(self, other): return self._compare(other, np.greater_equal)
    def __eq__(self, other): return self._compare(other, np.equal)
    def __ne__(self, other): return self._compare(other, np.not_equal)
    def __hash__(self): return id(self)

    def __and__(self, other): return self._compare(other, np.logical_and)
    def __or__(self, other): return self._compare(other, np.logical_or)
    def __xor__(self, other): return self._compare(other, np.logical_xor)
    def __invert__(self): return Tensor._make(np.logical_not(self._data), None)

    def any(self) -> "Tensor": return Tensor._make(np.asarray(self._data.any()), None)
    def all(self) -> "Tensor": return Tensor._make(np.asarray(self._data.all()), None)

    def argmax(self, axis=None, keepdims=False, *, dim=None, keepdim=None) -> "Tensor":
        axis, keepdims = F._pick(axis, dim), F._pick(keepdims, keepdim, False)
        return Tensor._make(np.asarray(np.argmax(self._data, axis=axis, keepdims=keepdims)), None)

    def argmin(self, axis=None, keepdims=False, *, dim=None, keepdim=None) -> "Tensor":
        axis, keepdims = F._pick(axis, dim), F._pick(keepdims, keepdim, False)
        return Tensor._make(np.asarray(np.argmin(self._data, axis=axis, keepdims=keepdims)), None)

    # ------------------------------------------------------------------ math methods
    def exp(self): return F.exp(self)
    def log(self): return F.log(self)
    def sqrt(self): return F.sqrt(self)
    def tanh(self): return F.tanh(self)
    def sigmoid(self): return F.sigmoid(self)
    def relu(self): return F.relu(self)
    def abs(self): return F.abs(self)
    def pow(self, exponent): return F.pow(self, exponent)
    def clamp(self, min=None, max=None): return F.clamp(self, min, max)
    def maximum(self, other): return F.maximum(self, other)
    def minimum(self, other): return F.minimum(self, other)
    def matmul(self, other): return F.matmul(self, other)
    def softmax(self, axis=-1, *, dim=None): return F.softmax(self, axis, dim=dim)
    def log_softmax(self, axis=-1, *, dim=None): return F.log_softmax(self, axis, dim=dim)
    def masked_fill(self, mask, value): return F.masked_fill(self, mask, value)

    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return F.sum(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return F.mean(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """Max over ``axis`` (values only, like ``torch.amax``; ties share the gradient)."""
        return F.amax(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def min(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """Min over ``axis`` (values only, like ``torch.amin``; ties share the gradient)."""
        return F.amin(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def amax(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return F.amax(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def amin(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return F.amin(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def var(self, axis=None, keepdims=False, unbiased=True, *, dim=None, keepdim=None,
            correction=None):
        return F.var(self, axis, keepdims, unbiased, dim=dim, keepdim=keepdim, correction=correction)

    def std(self, axis=None, keepdims=False, unbiased=True, *, dim=None, keepdim=None,
            correction=None):
        return F.std(self, axis, keepdims, unbiased, dim=dim, keepdim=keepdim, correction=correction)

    def logsumexp(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return F.logsumexp(self, axis, keepdims, dim=dim, keepdim=keepdim)

    # ------------------------------------------------------------------ shape methods
    def reshape(self, *shape): return F.reshape(self, *shape)
    def view(self, *shape): return F.reshape(self, *shape)
    def permute(self, *axes): return F.permute(self, *axes)
    def transpose(self, axis0, axis1): return F.transpose(self, axis0, axis1)
    def expand(self, *shape): return F.expand(self, *shape)
    def expand_as(self, other): return F.expand(self, *other.shape)
    def squeeze(self, axis=None, *, dim=None): return F.squeeze(self, axis, dim=dim)
    def unsqueeze(self, axis=None, *, dim=None): return F.unsqueeze(self, axis, dim=dim)
    def flatten(self, start_dim=0, end_dim=-1): return F.flatten(self, start_dim, end_dim)
    def split(self, split_size, axis=0, *, dim=None): return F.split(self, split_size, axis, dim=dim)
    def chunk(self, chunks, axis=0, *, dim=None): return F.chunk(self, chunks, axis, dim=dim)
    def __getitem__(self, index): return F.getitem(self, index)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    @property
    def T(self) -> "Tensor":
        """All axes reversed (the transpose of a matrix)."""
        return F.permute(self, *reversed(range(self.ndim)))

    @property
    def mT(self) -> "Tensor":
        """The last two axes swapped (batched matrix transpose)."""
        return F.transpose(self, -2, -1)

    def contiguous(self) -> "Tensor":
        return self

    def clone(self) -> "Tensor":
        """A copy with its own memory (differentiable)."""
        return F.clone(self)

    # ------------------------------------------------------------------ printing
    def __repr__(self) -> str:
        body = np.array2string(self._data, separator=", ", prefix="tensor(", precision=4)
        extras = []
        if self.dtype != DEFAULT_DTYPE:
            extras.append(f"dtype={self.dtype}")
        if self._node is not None:
            extras.append(f"grad_fn=<{self._node.name}Backward>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({body}{''.join(', ' + e for e in extras)})"


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
    from .creation import to_array
    return Tensor._make(to_array(x, None), None)


from . import functional as F  # noqa: E402  (functional imports Tensor from this module)
