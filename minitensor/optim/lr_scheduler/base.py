"""``LRScheduler``: the base of every scheduler, with torch's stepping rules.

Building a scheduler records each group's starting lr as ``group["initial_lr"]`` (the
``base_lrs``) and already takes one step (epoch 0). Each ``step()`` then advances
``last_epoch`` and asks ``get_lr()`` for the new rates. Most of torch's schedulers are
*chainable*: ``get_lr`` updates the optimizer's current lr (``group["lr"]``) by a factor,
so two schedulers on one optimizer compose. ``step(epoch)`` (deprecated in torch) jumps
to an epoch with the scheduler's closed form ``_get_closed_form_lr`` where it has one.
"""
from __future__ import annotations

import warnings

from ..optimizer import Optimizer

EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being deprecated "
    "where possible. Please use `scheduler.step()` to step the scheduler. During the "
    "deprecation, if epoch is different from None, the closed form is used instead of the "
    "new chainable form, where available.")


class LRScheduler:
    """Base class: subclasses implement ``get_lr()`` (and optionally ``_get_closed_form_lr``).

    Args:
        optimizer: the optimizer whose ``param_groups[i]["lr"]`` is set.
        last_epoch: index of the last epoch when resuming (-1 for a fresh start; resuming
            needs ``initial_lr`` in every group, as torch).
    """

    _is_initial = False  # True during the step taken by the constructor

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] "
                                   f"when resuming a scheduler with last_epoch >= 0")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """Reset the step count and take the constructor's step."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            del self._is_initial  # back to the class's False

    def get_lr(self) -> list[float]:  # pragma: no cover
        """The learning rates for the new ``last_epoch`` (one per group)."""
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the last ``step()`` (one per group)."""
        return list(self._last_lr)

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch (call after ``optimizer.step()``) and set the new rates.

        Args:
            epoch: deprecated (as in torch): jump to this epoch, using the closed form.
        """
        self._step_count += 1
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            closed_form = getattr(self, "_get_closed_form_lr", None)
            values = closed_form() if closed_form is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _group_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        """Every attribute but the optimizer (plain numbers and lists: JSON-friendly)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the attributes; the last learning rates are written into the optimizer."""
        self.__dict__.update(state_dict)
        if "_last_lr" in state_dict:
            for group, lr in zip(self.optimizer.param_groups, self._last_lr):
                group["lr"] = lr
