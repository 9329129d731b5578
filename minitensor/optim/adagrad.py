"""Adagrad (Duchi et al. 2011), with torch's update and options.

torch's update (``_single_tensor_adagrad``), per parameter p with gradient g at step t:

    g = g + weight_decay * p
    clr = lr / (1 + (t - 1) * lr_decay)
    sum = sum + g^2
    p -= clr * g / (sqrt(sum) + eps)

As in torch, each parameter's state (step 0, sum filled with initial_accumulator_value)
is created when the optimizer is built, so it is in the state dict from the start.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from .optimizer import Optimizer


class Adagrad(Optimizer):
    """Adagrad: per-coordinate step sizes, shrinking with the sum of squared gradients.

    Args:
        params: Parameters or parameter-group dicts.
        lr: learning rate.
        lr_decay: the step size is lr / (1 + (step - 1) * lr_decay).
        weight_decay: L2 penalty added to the gradient.
        initial_accumulator_value: starting value of the sum of squared gradients.
        eps: added to the denominator for numerical stability.
        maximize: ascend instead of descend.
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, *, maximize: bool = False):
        for name, value in (("learning rate", lr), ("lr_decay value", lr_decay),
                            ("weight_decay value", weight_decay),
                            ("initial_accumulator_value", initial_accumulator_value),
                            ("epsilon value", eps)):
            if value < 0.0:
                raise ValueError(f"Adagrad: invalid {name}: {value}")
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize))

    def add_param_group(self, param_group: dict) -> None:
        """Add a group (its parameters' state is created now, as in the constructor)."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for p in group["params"]:
            self._init_state(p, group)

    def _update(self, group: dict, params: list) -> None:
        lr, lr_decay, wd, eps = group["lr"], group["lr_decay"], group["weight_decay"], group["eps"]
        for p in params:
            grad = -p.grad.data if group["maximize"] else p.grad.data
            state = self._init_state(p, group)
            state["step"] += 1
            if wd != 0:
                grad = grad + wd * p.data
            clr = lr / (1 + (state["step"] - 1) * lr_decay)
            state["sum"] += grad * grad
            std = np.sqrt(state["sum"])
            std += eps
            p.data -= clr * (grad / std)

    def _init_state(self, p, group: dict) -> dict:
        state = self._state_for(p)
        if not state:
            state["step"] = 0
            state["sum"] = np.full_like(p.data, group["initial_accumulator_value"])
        if state["sum"].dtype != p.dtype:  # follow Module.to(dtype) conversions
            state["sum"] = state["sum"].astype(p.dtype)
        return state
