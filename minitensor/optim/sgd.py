"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

torch's update (``_single_tensor_sgd``), per parameter p with gradient g:

    g = g + weight_decay * p
    buf = g (first step)  or  momentum * buf + (1 - dampening) * g
    g = g + momentum * buf (nesterov)  or  buf
    p = p - lr * g
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from .optimizer import Optimizer


class SGD(Optimizer):
    """SGD, torch's formulas and options.

    Args:
        params: Parameters or parameter-group dicts.
        lr: learning rate.
        momentum: momentum factor (0 = plain SGD).
        dampening: scales the new gradient's share of the momentum buffer by (1 - dampening).
        weight_decay: L2 penalty added to the gradient.
        nesterov: Nesterov momentum (needs momentum > 0 and dampening = 0).
        maximize: ascend instead of descend.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 *, maximize: bool = False):
        for name, value in (("learning rate", lr), ("momentum value", momentum),
                            ("weight_decay value", weight_decay)):
            if value < 0.0:
                raise ValueError(f"SGD: invalid {name}: {value}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _update(self, group: dict, params: list) -> None:
        lr, momentum, wd = group["lr"], group["momentum"], group["weight_decay"]
        for p in params:
            grad = -p.grad.data if group["maximize"] else p.grad.data
            if wd != 0:
                grad = grad + wd * p.data
            if momentum != 0:
                grad = self._momentum(p, grad, momentum, group["dampening"], group["nesterov"])
            p.data -= lr * grad

    def _momentum(self, p, grad: np.ndarray, momentum: float, dampening: float,
                  nesterov: bool) -> np.ndarray:
        state = self._state_for(p)
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = np.array(grad, dtype=p.dtype, copy=True)
        else:
            if buf.dtype != p.dtype:  # Module.to(dtype) ran since the last step
                buf = state["momentum_buffer"] = buf.astype(p.dtype)
            buf *= momentum
            buf += (1 - dampening) * grad
        return grad + momentum * buf if nesterov else buf
