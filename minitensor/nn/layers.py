"""The basic layers: Linear, Embedding, LayerNorm, Dropout, ReLU, GELU, Identity.

Constructors, parameter names, shapes and default initializations follow ``torch.nn``,
so ``load_state_dict`` takes a torch state dict (as NumPy arrays) unchanged. Each
``forward`` is one call into ``minitensor.functional``.
"""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..dtypes import DEFAULT_DTYPE, as_dtype
from ..tensor import Tensor
from . import init
from .module import Module, Parameter


def _empty(shape: tuple, dtype) -> Parameter:
    return Parameter(np.zeros(shape, as_dtype(dtype or DEFAULT_DTYPE)))


class Linear(Module):
    """$y = x W^T + b$ on the last axis: (..., in_features) -> (..., out_features).

    Args:
        in_features, out_features: sizes of the last axis in and out.
        bias: learn an additive bias (out_features,).
        dtype: parameter dtype (float32 by default).

    Init (torch's): W, b ~ U(-1/sqrt(in_features), 1/sqrt(in_features)).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = _empty((out_features, in_features), dtype)       # (out, in)
        if bias:
            self.bias = _empty((out_features,), dtype)                  # (out,)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table: integer indices (...) -> rows of ``weight`` (..., embedding_dim).

    Args:
        num_embeddings: table size V.
        embedding_dim: row size D.
        padding_idx: a row that is zero at init and never receives a gradient.
        dtype: parameter dtype (float32 by default).

    Init (torch's): weight ~ N(0, 1), padding row zeroed.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 dtype=None):
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} must be within "
                                 f"num_embeddings ({num_embeddings})")
            padding_idx = padding_idx % num_embeddings
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        self.weight = _empty((num_embeddings, embedding_dim), dtype)   # (V, D)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, indices) -> Tensor:
        return F.embedding(indices, self.weight, self.padding_idx)

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True,
                        padding_idx: int | None = None) -> "Embedding":
        """An Embedding holding a copy of ``embeddings`` (V, D); frozen unless freeze=False."""
        array = np.array(embeddings.data if isinstance(embeddings, Tensor) else embeddings)
        if array.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, got {array.shape}")
        emb = cls(*array.shape, padding_idx=padding_idx, dtype=array.dtype)
        emb.weight.data[...] = array  # keep the pretrained padding row as given (torch does)
        emb.weight.requires_grad = not freeze
        return emb

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        return s + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")


class LayerNorm(Module):
    """Normalize over the trailing ``normalized_shape`` axes, then scale and shift.

    $y = (x - mean) / \\sqrt{var + eps} * w + b$ with the biased variance (torch's formula).

    Args:
        normalized_shape: int or tuple (the trailing axes of the input).
        eps: added to the variance inside the square root.
        elementwise_affine: learn ``weight`` (ones at init) and ``bias`` (zeros).
        bias: learn the bias (only when elementwise_affine).
        dtype: parameter dtype (float32 by default).
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (int(normalized_shape),)
        self.normalized_shape = tuple(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, as_dtype(dtype or DEFAULT_DTYPE)))
            if bias:
                self.bias = _empty(self.normalized_shape, dtype)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, " \
               f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"


class Dropout(Module):
    """Zero each element with probability p while training (scale the rest by 1/(1-p)).

    Identity in eval mode (``module.eval()``).

    Args:
        p: drop probability.
        inplace: accepted for torch's signature; only False is supported (ops here
            never overwrite their input).
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        if inplace:
            raise NotImplementedError("Dropout(inplace=True) is not supported")
        self.p, self.inplace = p, inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class ReLU(Module):
    """$max(x, 0)$ elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class GELU(Module):
    """$x \\Phi(x)$ elementwise (``approximate="tanh"`` for the tanh formula)."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Identity(Module):
    """Returns its input (accepts and ignores constructor arguments, as torch's does)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x
