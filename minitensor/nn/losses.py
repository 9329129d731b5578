"""Loss modules, as ``torch.nn``'s: CrossEntropyLoss, NLLLoss, MSELoss, KLDivLoss and
BCEWithLogitsLoss. Each holds its options (and its weights as buffers, as torch does)
and calls one function of ``minitensor.functional`` in ``forward(input, target)``.
"""
from __future__ import annotations

from .. import functional as F
from ..functional.losses import _check_reduction, _legacy_reduction
from ..tensor import Tensor, as_tensor
from .module import Module


class _Loss(Module):
    """Holds ``reduction`` (torch's deprecated ``size_average``/``reduce`` mapped onto it)."""

    _reductions = ("mean", "sum", "none")

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        name = type(self).__name__
        self.reduction = _legacy_reduction(name, size_average, reduce, reduction)
        _check_reduction(name, self.reduction, self._reductions)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class _WeightedLoss(_Loss):
    """A loss with an optional per-class ``weight``, kept as a buffer (in the state dict)."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", None if weight is None else as_tensor(weight))


class CrossEntropyLoss(_WeightedLoss):
    """log_softmax over the class axis, then the negative log-likelihood.

    Args:
        weight: optional (C,) weight per class.
        ignore_index: targets equal to it contribute nothing.
        reduction: "mean" | "sum" | "none".
        label_smoothing: epsilon in [0, 1] mixed in as a uniform target.

    Shapes: input (N, C), (C,) or (N, C, d1, ...); target the input's shape without C
    (class indices) or the input's shape (class probabilities).
    """

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input: Tensor, target) -> Tensor:
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities (N, C, ...) at class indices (N, ...).

    Args: weight, ignore_index, reduction as CrossEntropyLoss's.
    """

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target) -> Tensor:
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error: (input - target)^2, reduced."""

    def forward(self, input: Tensor, target) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class KLDivLoss(_Loss):
    """KL divergence of ``target`` from ``input`` (log-probabilities).

    Args:
        reduction: "mean" (per element, torch's default), "batchmean" (per sample: the
            true KL divergence), "sum" or "none".
        log_target: the target holds log-probabilities too.
    """

    _reductions = ("mean", "batchmean", "sum", "none")

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean",
                 log_target: bool = False):
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input: Tensor, target) -> Tensor:
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross-entropy, stable (takes logits).

    Args:
        weight: rescaling broadcast against the loss.
        reduction: "mean" | "sum" | "none".
        pos_weight: weight of positive examples, broadcast along the last (class) axis.
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean",
                 pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", None if weight is None else as_tensor(weight))
        self.register_buffer("pos_weight", None if pos_weight is None else as_tensor(pos_weight))

    def forward(self, input: Tensor, target) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, self.weight,
                                                  reduction=self.reduction,
                                                  pos_weight=self.pos_weight)
