"""Adam and AdamW (decoupled weight decay), with torch's exact update.

The update of one parameter, written out step by step with torch's formulas
(``_single_tensor_adam``), is a kernel: ``kernels/numpy_ref/adam.py`` is its readable NumPy
version, and with the numba backend the same update runs as one fused pass per parameter
(``kernels/numba_cpu/adam.py``, bit-identical). The classes here keep the options and the
per-parameter state (step, m, v, v_max) and call ``kernels.get().adam_step``.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from .. import kernels
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma & Ba), torch's formulas and options.

    Args:
        params: Parameters or parameter-group dicts.
        lr: learning rate.
        betas: decay rates of the first and second moment averages.
        eps: added to the denominator for numerical stability.
        weight_decay: L2 penalty (Adam) or decoupled decay rate (AdamW).
        amsgrad: use the running maximum of the second moment (Reddi et al.).
        maximize: ascend instead of descend.
        decoupled_weight_decay: AdamW's decay (what ``AdamW`` sets).
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *,
                 maximize: bool = False, decoupled_weight_decay: bool = False):
        if lr < 0.0 or eps < 0.0 or weight_decay < 0.0:
            raise ValueError(f"{type(self).__name__}: invalid lr ({lr}), eps ({eps}) or "
                             f"weight_decay ({weight_decay}): they must be >= 0")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{type(self).__name__}: invalid beta parameter at index {i}: {beta}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _update(self, group: dict, params: list) -> None:
        beta1, beta2 = group["betas"]
        adam_step = kernels.get().adam_step
        for p in params:
            state = self._init_state(p, group["amsgrad"])
            adam_step(p.data, p.grad.data, state, group["lr"], beta1, beta2, group["eps"],
                      group["weight_decay"], group["amsgrad"], group["decoupled_weight_decay"],
                      group["maximize"])

    def _init_state(self, p, amsgrad: bool) -> dict:
        state = self._state_for(p)
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
        if amsgrad and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = np.zeros_like(p.data)
        for k, v in state.items():  # follow Module.to(dtype) conversions of the parameter
            if isinstance(v, np.ndarray) and v.dtype != p.dtype:
                state[k] = v.astype(p.dtype)
        return state


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weight_decay.

    Same arguments as ``Adam``; ``weight_decay`` defaults to 1e-2 (torch's default).
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
