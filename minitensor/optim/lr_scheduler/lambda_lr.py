"""Schedules as functions of the step, and ``LambdaLR`` schedulers that apply them.

The functions (``noam_lr``, ``cosine_with_warmup``) return a *multiplier*; the
schedulers are ``LambdaLR``s over them, with torch's semantics:

    lr of group i after k calls to scheduler.step() = base_lr_i * lr_lambda(k)

where base_lr_i is the group's lr when the scheduler was built (kept in
``group["initial_lr"]``), and building the scheduler already applies lr_lambda(0).
Call ``optimizer.step()`` then ``scheduler.step()`` once per training step.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

from ..optimizer import Optimizer
from .base import LRScheduler


def noam_lr(step: int, d_model: int, warmup: int, factor: float = 1.0) -> float:
    """The Transformer paper's rate: linear warmup, then decay as 1/sqrt(step).

    $factor \\cdot d_{model}^{-0.5} \\cdot \\min(step^{-0.5}, step \\cdot warmup^{-1.5})$,
    with step 0 treated as step 1 (as the Annotated Transformer's ``rate``). The peak,
    at step == warmup, is factor / sqrt(d_model * warmup).

    Args:
        step: the optimizer step (0-based).
        d_model: model width.
        warmup: number of warmup steps (> 0).
        factor: overall scale.
    Returns:
        The learning rate (use it as a multiplier of base lr 1.0 to get the paper's lr).
    """
    if warmup <= 0:
        raise ValueError(f"noam_lr: warmup must be > 0, got {warmup}")
    step = max(step, 1)
    return factor * (d_model ** (-0.5) * min(step ** (-0.5), step * warmup ** (-1.5)))


def cosine_with_warmup(step: int, warmup: int, total: int, min_ratio: float = 0.0) -> float:
    """Linear warmup then cosine decay to ``min_ratio`` (nanoGPT's ``get_lr``, as a ratio).

    * step < warmup: (step + 1) / (warmup + 1)  (never 0, so the first step trains)
    * warmup <= step <= total: min_ratio + (1 - min_ratio) * (1 + cos(pi * d)) / 2,
      d = (step - warmup) / (total - warmup)  (1 at d = 0, min_ratio at d = 1)
    * step > total: min_ratio

    Args:
        step: the optimizer step (0-based).
        warmup: warmup steps (>= 0).
        total: the step where decay ends (> warmup).
        min_ratio: final multiplier (min_lr / max_lr).
    Returns:
        The multiplier of the base learning rate.
    """
    if not 0 <= warmup < total:
        raise ValueError(f"cosine_with_warmup: need 0 <= warmup < total, got warmup={warmup}, "
                         f"total={total}")
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if step > total:
        return min_ratio
    decay = (step - warmup) / (total - warmup)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * decay))


class LambdaLR(LRScheduler):
    """Set each group's lr to ``base_lr * lr_lambda(epoch)`` (torch's LambdaLR).

    Args:
        optimizer: the optimizer whose ``param_groups[i]["lr"]`` is set.
        lr_lambda: a function of the step count, or one function per group.
        last_epoch: the index of the last step when resuming (-1 for a fresh start).
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable | Sequence[Callable],
                 last_epoch: int = -1):
        n = len(optimizer.param_groups)
        if callable(lr_lambda):
            self.lr_lambdas = [lr_lambda] * n
        else:
            self.lr_lambdas = list(lr_lambda)
            if len(self.lr_lambdas) != n:
                raise ValueError(f"expected {n} lr_lambdas, but got {len(self.lr_lambdas)}")
        super().__init__(optimizer, last_epoch)  # applies lr_lambda(last_epoch + 1)

    def get_lr(self) -> list[float]:
        """The learning rates for the current ``last_epoch``."""
        return [base * fn(self.last_epoch) for base, fn in zip(self.base_lrs, self.lr_lambdas)]

    def state_dict(self) -> dict:
        """Plain numbers only (the lambdas are code, rebuilt by the constructor)."""
        return {k: v for k, v in super().state_dict().items() if k != "lr_lambdas"}


class NoamLR(LambdaLR):
    """The Transformer paper's schedule: lr = base_lr * noam_lr(step, d_model, warmup, factor).

    With the optimizer's lr set to 1.0 (as the Annotated Transformer does), lr is exactly
    the paper's ``d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)`` times ``factor``.

    Args:
        optimizer: the optimizer.
        d_model: model width.
        warmup: warmup steps.
        factor: overall scale.
        last_epoch: as in LambdaLR.
    """

    def __init__(self, optimizer: Optimizer, d_model: int, warmup: int, factor: float = 1.0,
                 last_epoch: int = -1):
        self.d_model, self.warmup, self.factor = d_model, warmup, factor
        super().__init__(optimizer, self._rate, last_epoch)

    def _rate(self, step: int) -> float:
        return noam_lr(step, self.d_model, self.warmup, self.factor)


TransformerWarmup = NoamLR


class WarmupCosineLR(LambdaLR):
    """lr = base_lr * cosine_with_warmup(step, warmup, total, min_ratio).

    Args:
        optimizer: the optimizer (its lr is the peak learning rate).
        warmup: warmup steps.
        total: step where the cosine decay reaches base_lr * min_ratio.
        min_ratio: final lr as a fraction of the peak.
        last_epoch: as in LambdaLR.
    """

    def __init__(self, optimizer: Optimizer, warmup: int, total: int, min_ratio: float = 0.0,
                 last_epoch: int = -1):
        cosine_with_warmup(0, warmup, total, min_ratio)  # validate the arguments now
        self.warmup, self.total, self.min_ratio = warmup, total, min_ratio
        super().__init__(optimizer, self._rate, last_epoch)

    def _rate(self, step: int) -> float:
        return cosine_with_warmup(step, self.warmup, self.total, self.min_ratio)
