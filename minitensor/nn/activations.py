"""Activation and reshaping modules, as ``torch.nn``'s: Softmax, LogSoftmax, Tanh,
Sigmoid, SiLU and Flatten. Each ``forward`` is one call into ``minitensor.functional``.
"""
from __future__ import annotations

import warnings

from .. import functional as F
from ..tensor import Tensor
from .module import Module


def _legacy_softmax_dim(name: str, ndim: int) -> int:
    """torch's choice when ``dim`` is None (deprecated there): 0 for 0-, 1- and 3-d, else 1."""
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call "
                  "to include dim=X as an argument.", UserWarning, stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(Module):
    """exp(x) / sum(exp(x)) along ``dim`` (the values along it sum to 1).

    Args:
        dim: the axis to normalize (None: torch's legacy choice; pass it explicitly).
    """

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        dim = _legacy_softmax_dim("softmax", input.ndim) if self.dim is None else self.dim
        return F.softmax(input, dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log(softmax(x)) along ``dim``, computed as x - logsumexp(x) (stable)."""

    def forward(self, input: Tensor) -> Tensor:
        dim = _legacy_softmax_dim("log_softmax", input.ndim) if self.dim is None else self.dim
        return F.log_softmax(input, dim)


class Tanh(Module):
    """tanh(x) elementwise."""

    def forward(self, input: Tensor) -> Tensor:
        return F.tanh(input)


class Sigmoid(Module):
    """1 / (1 + exp(-x)) elementwise."""

    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(input)


class SiLU(Module):
    """x * sigmoid(x) elementwise (swish).

    Args:
        inplace: accepted for torch's signature; only False is supported.
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        if inplace:
            raise NotImplementedError("SiLU(inplace=True) is not supported (ops here never "
                                      "overwrite their input)")
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.silu(input)


class Flatten(Module):
    """Merge axes ``start_dim`` .. ``end_dim`` into one: (N, C, H, W) -> (N, C*H*W).

    Args:
        start_dim: first axis merged (1: keep the batch axis, torch's default).
        end_dim: last axis merged.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input: Tensor) -> Tensor:
        return F.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
