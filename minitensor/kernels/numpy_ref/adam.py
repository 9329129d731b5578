"""Adam/AdamW, one update of one parameter in plain NumPy: the readable spec of the step.

Per parameter p with gradient g, at step t (torch's ``_single_tensor_adam``):

    g = g + weight_decay * p                      (Adam: L2 penalty in the gradient)
    p = p * (1 - lr * weight_decay)               (AdamW: decay the weights directly)
    m = lerp(m, g, 1 - beta1)                     = beta1 m + (1 - beta1) g
    v = beta2 v + (1 - beta2) g^2
    v_max = max(v_max, v)                         (amsgrad: use v_max below instead of v)
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

The Numba twin (``numba_cpu/adam.py``) does the same arithmetic in one fused pass,
bit-identical. ``minitensor.optim.Adam`` keeps the state and calls
``kernels.get().adam_step``.
"""
from __future__ import annotations

import numpy as np


def _lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """start += weight * (end - start), in place, in torch's two-branch form (the branch
    keeps rounding small for weights near 1, and matches torch's results)."""
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)


def adam_step(param, grad, state, lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled,
              maximize):
    """One Adam/AdamW update of ``param`` in place (NumPy). ``state`` holds step,
    exp_avg, exp_avg_sq (and max_exp_avg_sq) and is updated in place; ``maximize``
    ascends (the gradient negated first); ``decoupled`` is AdamW's weight decay."""
    # param, grad, state arrays: one shape -> param and state updated in place
    if maximize:
        grad = -grad
    state["step"] += 1
    step = state["step"]
    if weight_decay != 0:
        if decoupled:
            param *= 1 - lr * weight_decay
        else:
            grad = grad + weight_decay * param
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    _lerp_(exp_avg, grad, 1 - beta1)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * grad * grad
    step_size = lr / (1 - beta1 ** step)
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    if amsgrad:
        np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
        exp_avg_sq = state["max_exp_avg_sq"]
    denom = np.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
    param += (-step_size * exp_avg) / denom
