"""RMSprop (Hinton's lecture 6e), with torch's update and options.

torch's update (``_single_tensor_rmsprop``), per parameter p with gradient g:

    g = g + weight_decay * p
    square_avg = alpha * square_avg + (1 - alpha) * g^2
    avg = sqrt(square_avg - grad_avg^2) (centered; grad_avg = lerp(grad_avg, g, 1 - alpha))
          or sqrt(square_avg), then avg += eps
    buf = momentum * buf + g / avg; p -= lr * buf    (momentum > 0)
    p -= lr * g / avg                                (otherwise)
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from .optimizer import Optimizer


class RMSprop(Optimizer):
    """RMSprop: divide the gradient by a running root-mean-square of recent gradients.

    Args:
        params: Parameters or parameter-group dicts.
        lr: learning rate.
        alpha: smoothing constant of the squared-gradient average.
        eps: added to the denominator for numerical stability.
        weight_decay: L2 penalty added to the gradient.
        momentum: momentum factor (0: none).
        centered: normalize by the estimated variance (subtract the squared mean gradient).
        maximize: ascend instead of descend.
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, *, maximize: bool = False):
        for name, value in (("learning rate", lr), ("epsilon value", eps),
                            ("momentum value", momentum), ("weight_decay value", weight_decay),
                            ("alpha value", alpha)):
            if value < 0.0:
                raise ValueError(f"RMSprop: invalid {name}: {value}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _update(self, group: dict, params: list) -> None:
        alpha, eps, wd = group["alpha"], group["eps"], group["weight_decay"]
        lr, momentum = group["lr"], group["momentum"]
        for p in params:
            grad = -p.grad.data if group["maximize"] else p.grad.data
            state = self._init_state(p, momentum, group["centered"])
            state["step"] += 1
            if wd != 0:
                grad = grad + wd * p.data
            square_avg = state["square_avg"]
            square_avg *= alpha
            square_avg += (1 - alpha) * grad * grad
            if group["centered"]:
                grad_avg = state["grad_avg"]
                _lerp_(grad_avg, grad, 1 - alpha)
                avg = np.sqrt(square_avg - grad_avg * grad_avg)
            else:
                avg = np.sqrt(square_avg)
            avg += eps
            if momentum > 0:
                buf = state["momentum_buffer"]
                buf *= momentum
                buf += grad / avg
                p.data -= lr * buf
            else:
                p.data -= lr * (grad / avg)

    def _init_state(self, p, momentum: float, centered: bool) -> dict:
        state = self._state_for(p)
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p.data)
        if momentum > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = np.zeros_like(p.data)
        if centered and "grad_avg" not in state:
            state["grad_avg"] = np.zeros_like(p.data)
        for k, v in state.items():  # follow Module.to(dtype) conversions of the parameter
            if isinstance(v, np.ndarray) and v.dtype != p.dtype:
                state[k] = v.astype(p.dtype)
        return state


def _lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """start += weight * (end - start) in place, with torch's two formulas (the one that
    rounds best for the weight), so the result matches torch's ``lerp_`` bit for bit."""
    if weight < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)
