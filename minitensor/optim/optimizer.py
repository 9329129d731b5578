"""``Optimizer``: parameter groups, ``zero_grad``, ``step`` and resumable state dicts.

Subclasses implement ``_update(group, params)``, which changes ``p.data`` in place with
NumPy (no graph is recorded: updates are array arithmetic, not ops). ``state_dict()``
holds only arrays and plain numbers (torch's layout: parameters are numbered 0..N-1 in
group order); ``minitensor.io.split_arrays`` separates its arrays (for a safetensors
file) from the rest (JSON).
"""
from __future__ import annotations

import copy
from typing import Callable, Iterable

import numpy as np

from ..grad_mode import enable_grad
from ..tensor import Tensor


class _Required:
    """Marks a hyperparameter that has no default and must be given (SGD's lr in old torch)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()
_SET_MESSAGE = ("optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets changes between runs; use a list")


class Optimizer:
    """Base class: holds ``param_groups`` (list of dicts) and per-parameter ``state``.

    Args:
        params: an iterable of Parameters, or of dicts ``{"params": [...], **options}``
            to give groups their own options (e.g. no weight decay on biases).
        defaults: each option's default, used where a group does not set it.
    """

    def __init__(self, params: Iterable, defaults: dict):
        self.defaults = dict(defaults)
        self.state: dict[Tensor, dict] = {}  # Tensors hash by identity
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {type(params).__name__}")
        if isinstance(params, set):
            raise TypeError(_SET_MESSAGE)
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own options (e.g. a new layer while fine-tuning).

        Args:
            param_group: ``{"params": Parameter | iterable, **options}``.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(_SET_MESSAGE)
        group = {**param_group, "params": _unique(list(params))}
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            group.setdefault(name, default)
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in taken for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every optimized parameter (to None, or zeros in place)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.data = np.zeros_like(p.grad.data)

    def step(self, closure: Callable | None = None):
        """Update every parameter that has a gradient (those with ``grad is None`` are skipped).

        Args:
            closure: optional function that re-evaluates the model and returns the loss.
        Returns:
            The closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._update(group, params)
                for p in params:
                    # p.data changed in place: a graph that saved the old value must not
                    # backpropagate through it any more (torch bumps the version too).
                    p._version_counter.value += 1
        return loss

    def _update(self, group: dict, params: list[Tensor]) -> None:  # pragma: no cover
        raise NotImplementedError

    def _state_for(self, p: Tensor) -> dict:
        return self.state.setdefault(p, {})

    # ------------------------------------------------------------------ resuming
    def state_dict(self) -> dict:
        """``{"state": {index: {name: ndarray | number}}, "param_groups": [{..., "params": [index]}]}``.

        Parameters are numbered in group order, as in torch; arrays are copies.
        """
        index = {}
        groups = []
        for group in self.param_groups:
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            groups.append({**_plain(group), "params": [index[id(p)] for p in group["params"]]})
        state = {index[id(p)]: {k: (v.copy() if isinstance(v, np.ndarray) else v)
                                for k, v in s.items()}
                 for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore state and group options saved by ``state_dict`` (the parameters stay).

        Floating-point state arrays are cast to their parameter's dtype.
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, but "
                             f"this optimizer has {len(self.param_groups)}")
        for i, (g, s) in enumerate(zip(self.param_groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"loaded state dict contains a parameter group {i} of size "
                                 f"{len(s['params'])} that doesn't match the size of the "
                                 f"optimizer's group ({len(g['params'])})")
        by_index = {idx: p for g, s in zip(self.param_groups, saved_groups)
                    for idx, p in zip(s["params"], g["params"])}
        self.state = {}
        for idx, saved in state_dict["state"].items():
            p = by_index[int(idx)]
            self.state[p] = {k: _cast_state(k, v, p) for k, v in saved.items()}
        for g, s in zip(self.param_groups, saved_groups):
            g.update({k: copy.deepcopy(v) for k, v in s.items() if k != "params"})

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])


def _unique(params: list) -> list:
    """Drop repeated parameters (by identity), keeping the first: each is updated once."""
    seen, out = set(), []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def _plain(group: dict) -> dict:
    """Group options as plain Python values (tuples become lists, NumPy scalars numbers)."""
    out = {}
    for k, v in group.items():
        if k == "params":
            continue
        if isinstance(v, tuple):
            v = list(v)
        out[k] = v.item() if isinstance(v, np.generic) else copy.deepcopy(v)
    return out


def _cast_state(key: str, value, p: Tensor):
    if isinstance(value, Tensor):
        value = value.data
    if key == "step":  # a count; torch saves it as a float tensor
        return int(np.asarray(value).item())
    if isinstance(value, np.ndarray):
        dtype = p.dtype if value.dtype.kind == "f" else value.dtype
        return np.array(value, dtype=dtype, copy=True)
    return value
