"""What a Tensor does: its operators, math and shape methods, conversions and ``backward``.

Every method is written out and is a one-line call into ``functional`` (or, for
``backward``, into the engine), so a reader can find each one by name. They are written
in the body of ``_TensorMethods`` below and copied onto ``Tensor`` by ``_install``:
``functional`` and the engine build Tensors, so ``tensor.py`` sits below them in the
import order and cannot call them itself. This module sits above both; the package's
``__init__`` imports it before anything else uses a tensor.
"""
from __future__ import annotations

import numpy as np

from . import autograd
from . import functional as F
from .device import check_device, names_device
from .dtypes import LEGACY_TENSOR_TYPES, as_dtype, is_scalar, result_dtype
from .errors import ShapeError
from .functional.sampling import _no_generator
from .tensor import Tensor, as_tensor


class _TensorMethods:
    """The methods of ``Tensor`` that compute (gathered here, installed below)."""

    # ------------------------------------------------------------------ conversion
    def to(self, *args, dtype=None, device=None, copy: bool = False, non_blocking: bool = False):
        """This tensor with another dtype (differentiable between float dtypes), as torch's:
        ``to(dtype)``, ``to("cpu")``, ``to("cpu", dtype)``, ``to(other_tensor)``,
        ``to(device=..., dtype=...)``. Returns self when nothing changes (unless ``copy``).
        Devices other than the CPU raise: minitensor computes on the CPU only."""
        for arg in args:
            if isinstance(arg, Tensor):
                dtype = arg.dtype
            elif names_device(arg):
                device = arg
            elif dtype is None:
                dtype = arg
            else:
                raise TypeError(f"to: expected a dtype, a device or a tensor, got {arg!r}")
        check_device("to", device)
        dtype = self.dtype if dtype is None else as_dtype(dtype)
        if dtype == self.dtype:
            return F.clone(self) if copy else self
        if self.requires_grad and dtype.kind == "f":
            return F.cast(self, dtype)
        return Tensor._make(self._data.astype(dtype), None)

    def cpu(self) -> "Tensor":
        """Self: every tensor is on the CPU."""
        return self

    def cuda(self, device=None, non_blocking: bool = False) -> "Tensor":
        """Raises a clear error: minitensor computes on the CPU only."""
        check_device("cuda", "cuda")

    def type(self, dtype=None):
        """With no argument, the type name ("minitensor.FloatTensor"); else ``to(dtype)``
        (a dtype or a name such as "torch.LongTensor")."""
        if dtype is None:
            names = {d: name for name, d in LEGACY_TENSOR_TYPES.items()}
            return f"minitensor.{names.get(self.dtype, str(self.dtype))}"
        return self.to(dtype)

    def type_as(self, other: "Tensor") -> "Tensor":
        """This tensor with ``other``'s dtype."""
        return self.to(other.dtype)

    def float(self) -> "Tensor":
        return self.to(np.float32)

    def double(self) -> "Tensor":
        return self.to(np.float64)

    def half(self) -> "Tensor":
        """float16, for storage and conversion only: the kernels are written for float32
        and float64, so convert back with ``.float()`` before computing."""
        return self.to(np.float16)

    def long(self) -> "Tensor":
        return self.to(np.int64)

    def int(self) -> "Tensor":
        return self.to(np.int32)

    def bool(self) -> "Tensor":
        return self.to(np.bool_)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        """Zeros of shape ``size`` with this tensor's dtype (unless given)."""
        return self._new_filled("new_zeros", size, 0, dtype, device, requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        """Ones of shape ``size`` with this tensor's dtype (unless given)."""
        return self._new_filled("new_ones", size, 1, dtype, device, requires_grad)

    def new_full(self, size, fill_value, *, dtype=None, device=None,
                 requires_grad: bool = False) -> "Tensor":
        return self._new_filled("new_full", (size,), fill_value, dtype, device, requires_grad)

    def _new_filled(self, op, size, value, dtype, device, requires_grad) -> "Tensor":
        check_device(op, device)
        if len(size) == 1 and isinstance(size[0], (tuple, list)):
            size = tuple(size[0])
        dtype = self.dtype if dtype is None else as_dtype(dtype)
        out = Tensor._make(np.full(tuple(size), value, dtype), None)
        out.requires_grad = requires_grad
        return out

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

    # ------------------------------------------------------------------ in-place ops
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
        # compare in the promoted dtype, as torch (int64 tensor < 2.5 compares in float32)
        if isinstance(other, Tensor) and other.dtype == self.dtype:  # nothing to promote
            return Tensor._make(np.asarray(fn(self._data, other._data)), None)
        other = other if is_scalar(other) else as_tensor(other)
        dtype = result_dtype(self, other)
        other = np.asarray(other.data if isinstance(other, Tensor) else other, dtype=dtype)
        return Tensor._make(np.asarray(fn(self._data.astype(dtype, copy=False), other)), None)

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

    def argmax(self, dim=None, keepdim=False, *, axis=None, keepdims=None) -> "Tensor":
        return F.argmax(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def argmin(self, dim=None, keepdim=False, *, axis=None, keepdims=None) -> "Tensor":
        return F.argmin(self, dim, keepdim, axis=axis, keepdims=keepdims)

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

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """``x.max()``: the max (0-d). ``x.max(dim, keepdim=False)``: the named pair
        ``(values, indices)``, as torch. ``x.max(axis=..., keepdims=...)``: values only,
        like ``amax`` (ties share the gradient). ``x.max(other)``: elementwise maximum."""
        return F.max(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """The min; the same forms as ``max`` (a named pair ``(values, indices)`` with dim)."""
        return F.min(self, dim, keepdim, axis=axis, keepdims=keepdims)

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
    def view_as(self, other): return F.reshape(self, *other.shape)
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

    # ------------------------------------------------------------------ torch methods (issue 15)
    def sin(self): return F.sin(self)
    def cos(self): return F.cos(self)
    def rsqrt(self): return F.rsqrt(self)
    def square(self): return F.square(self)
    def sign(self): return F.sign(self)
    def t(self): return F.t(self)
    def mm(self, mat2): return F.mm(self, mat2)
    def bmm(self, mat2): return F.bmm(self, mat2)
    def outer(self, vec2): return F.outer(self, vec2)
    def tril(self, diagonal=0): return F.tril(self, diagonal)
    def triu(self, diagonal=0): return F.triu(self, diagonal)
    def cumsum(self, dim, *, dtype=None): return F.cumsum(self, dim, dtype=dtype)
    def gather(self, dim, index): return F.gather(self, dim, index)
    def index_select(self, dim, index): return F.index_select(self, dim, index)
    def masked_select(self, mask): return F.masked_select(self, mask)
    def nonzero(self, *, as_tuple=False): return F.nonzero(self, as_tuple=as_tuple)
    def unbind(self, dim=0): return F.unbind(self, dim)
    def repeat(self, *sizes): return F.repeat(self, *sizes)

    def norm(self, p=2, dim=None, keepdim=False):
        """The p-norm over ``dim`` (None: all elements); p=2 by default (see ``F.norm``)."""
        return F.norm(self, p, dim, keepdim)

    def flip(self, *dims):
        """A copy with the elements reversed along ``dims`` (``x.flip(0)``, ``x.flip([0, 1])``)."""
        return F.flip(self, dims[0] if len(dims) == 1 else dims)

    def repeat_interleave(self, repeats, dim=None, *, output_size=None):
        return F.repeat_interleave(self, repeats, dim, output_size=output_size)

    def topk(self, k, dim=-1, largest=True, sorted=True):
        """The named pair ``(values, indices)`` of the k largest (or smallest) along ``dim``."""
        return F.topk(self, k, dim, largest, sorted)

    def sort(self, dim=-1, descending=False, stable=False):
        """The named pair ``(values, indices)`` sorted along ``dim`` (always stable)."""
        return F.sort(self, dim, descending, stable)

    def multinomial(self, num_samples, replacement=False, *, generator=None):
        return F.multinomial(self, num_samples, replacement, generator=generator)

    def scatter(self, dim, index, src=None, *, value=None, reduce=None):
        """A copy with ``src`` (or ``value``) written at ``index`` along ``dim``."""
        return F.scatter(self, dim, index, src, value=value, reduce=reduce)

    def scatter_(self, dim, index, src=None, *, value=None, reduce=None):
        """In place: ``self[index[i][j]][j] = src[i][j]`` for dim 0 (likewise other dims)."""
        return self._inplace("scatter_", lambda t: F.scatter(t, dim, index, src, value=value,
                                                             reduce=reduce))

    def index_fill(self, dim, index, value):
        return F.index_fill(self, dim, index, value)

    def index_fill_(self, dim, index, value):
        """In place: the slices at ``index`` along ``dim`` set to ``value``."""
        return self._inplace("index_fill_", lambda t: F.index_fill(t, dim, index, value))

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        """In place: fill with Normal(mean, std) draws from the seeded generator."""
        _no_generator("normal_", generator)
        return self._overwrite("normal_", F.sampling.fill_normal(self, mean, std))

    def uniform_(self, from_=0.0, to=1.0, *, generator=None):
        """In place: fill with Uniform[from_, to) draws from the seeded generator."""
        _no_generator("uniform_", generator)
        return self._overwrite("uniform_", F.sampling.fill_uniform(self, from_, to))

    def _overwrite(self, name, values: np.ndarray) -> "Tensor":
        # through _inplace (leaf check, version bump); the new values do not depend on the
        # old ones, so the old value gets a zero gradient (Where, not t * 0 + v: no NaN * 0)
        return self._inplace(name, lambda t: F.where(np.zeros(t.shape, dtype=bool), t, values))


# Class-body bookkeeping that is not a method of Tensor.
_NOT_METHODS = {"__module__", "__qualname__", "__doc__", "__dict__", "__weakref__",
                "__firstlineno__", "__static_attributes__"}


def _install(methods: type, cls: type) -> None:
    """Copy every method and property defined in ``methods``' body onto ``cls``."""
    for name, member in vars(methods).items():
        if name not in _NOT_METHODS:
            setattr(cls, name, member)


_install(_TensorMethods, Tensor)
