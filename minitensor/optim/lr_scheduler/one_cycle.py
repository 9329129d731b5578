"""``OneCycleLR`` (Smith & Topin's 1cycle policy), as torch's: the lr rises from
max_lr / div_factor to max_lr over the first ``pct_start`` of the steps, then anneals to
initial_lr / final_div_factor; the momentum (or Adam's beta1) moves the opposite way.

Not chainable: every step computes the rates from the phase table, stored in the
groups (``initial_lr``, ``max_lr``, ``min_lr``, ``max_momentum``, ``base_momentum``).
"""
from __future__ import annotations

import math

from ..optimizer import Optimizer
from .base import LRScheduler


def _per_group(name: str, optimizer: Optimizer, value) -> list:
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"OneCycleLR: {name} must have the same length as "
                             f"optimizer.param_groups ({n}), got {len(value)} values")
        return list(value)
    return [value] * n


def _annealing_cos(start: float, end: float, pct: float) -> float:
    """Cosine from ``start`` (pct 0) to ``end`` (pct 1)."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def _annealing_linear(start: float, end: float, pct: float) -> float:
    """Straight line from ``start`` (pct 0) to ``end`` (pct 1)."""
    return (end - start) * pct + start


class OneCycleLR(LRScheduler):
    """The 1cycle schedule; call ``step()`` after every batch (``total_steps`` times at most).

    Args:
        optimizer: the optimizer.
        max_lr: peak lr (one per group, or one for all).
        total_steps: steps in the cycle; or give ``epochs`` and ``steps_per_epoch``.
        pct_start: fraction of the steps spent rising.
        anneal_strategy: "cos" or "linear".
        cycle_momentum: move momentum (SGD) or beta1 (Adam) between max and base momentum.
        base_momentum, max_momentum: momentum at the lr peak and at the ends.
        div_factor: initial_lr = max_lr / div_factor.
        final_div_factor: min_lr = initial_lr / final_div_factor.
        three_phase: rise, fall back to initial_lr, then anneal to min_lr (fast.ai's form).
        last_epoch: the number of batches seen when resuming (-1 for a fresh start).
    """

    def __init__(self, optimizer: Optimizer, max_lr, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None,
                 pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum=0.85, max_momentum=0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.total_steps = self._total_steps(total_steps, epochs, steps_per_epoch)
        if not (isinstance(pct_start, float) and 0 <= pct_start <= 1):
            raise ValueError(f"OneCycleLR: expected float between 0 and 1 pct_start, but got "
                             f"{pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be one of 'cos' or 'linear', "
                             f"got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        rise_end = float(pct_start * self.total_steps) - 1
        # (end step, start lr key, end lr key, start momentum key, end momentum key)
        if three_phase:
            self._schedule_phases = [
                [rise_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"],
                [float(2 * pct_start * self.total_steps) - 2, "max_lr", "initial_lr",
                 "base_momentum", "max_momentum"],
                [self.total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"]]
        else:
            self._schedule_phases = [
                [rise_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"],
                [self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"]]
        max_lrs = _per_group("max_lr", optimizer, max_lr)
        if last_epoch == -1:
            for group, peak in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError("OneCycleLR: optimizer must support momentum or beta1 with "
                                 "the cycle_momentum option enabled")
            self.use_beta1 = "betas" in optimizer.defaults
            if last_epoch == -1:
                for group, m_max, m_base in zip(
                        optimizer.param_groups, _per_group("max_momentum", optimizer, max_momentum),
                        _per_group("base_momentum", optimizer, base_momentum)):
                    self._set_momentum(group, m_max)
                    group["max_momentum"], group["base_momentum"] = m_max, m_base
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _total_steps(total_steps, epochs, steps_per_epoch) -> int:
        if total_steps is not None:
            if not isinstance(total_steps, int) or total_steps <= 0:
                raise ValueError(f"OneCycleLR: expected positive integer total_steps, but got "
                                 f"{total_steps!r}")
            return total_steps
        if epochs is None or steps_per_epoch is None:
            raise ValueError("OneCycleLR: you must define either total_steps OR (epochs AND "
                             "steps_per_epoch)")
        for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"OneCycleLR: expected positive integer {name}, but got {value!r}")
        return epochs * steps_per_epoch

    def _set_momentum(self, group: dict, value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {step} times. The specified number of "
                             f"total steps is {self.total_steps}")
        anneal = _annealing_cos if self.anneal_strategy == "cos" else _annealing_linear
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, (end_step, lr_a, lr_b, m_a, m_b) in enumerate(self._schedule_phases):
                if step <= end_step or i == len(self._schedule_phases) - 1:
                    pct = (step - start_step) / (end_step - start_step)
                    lrs.append(anneal(group[lr_a], group[lr_b], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, anneal(group[m_a], group[m_b], pct))
                    break
                start_step = end_step
        return lrs
