"""Global switches of the autograd engine: gradient recording and anomaly detection.

Each switch is one module-level flag behind a context manager that saves the old value
and restores it on exit, so nesting works and nothing leaks out of a ``with`` block.
The managers also work as decorators (``@mt.no_grad()``), as in PyTorch.
"""
from __future__ import annotations

import functools

_grad_enabled = True
_anomaly_enabled = False


def is_grad_enabled() -> bool:
    """True when ops record a graph for backward."""
    return _grad_enabled


def is_anomaly_enabled() -> bool:
    """True inside ``detect_anomaly()``."""
    return _anomaly_enabled


class _Switch:
    """A context manager (and decorator) that sets one flag and restores it on exit."""

    _value: bool

    def _get(self) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def _set(self, value: bool) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __enter__(self):
        self._previous = self._get()
        self._set(self._value)
        return self

    def __exit__(self, *exc_info) -> None:
        self._set(self._previous)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__(*self._init_args()):
                return fn(*args, **kwargs)
        return wrapper

    def _init_args(self) -> tuple:
        return ()


class _GradSwitch(_Switch):
    def _get(self) -> bool:
        return _grad_enabled

    def _set(self, value: bool) -> None:
        global _grad_enabled
        _grad_enabled = value


class no_grad(_GradSwitch):
    """Inside this block ops build no graph: outputs have ``requires_grad=False``."""
    _value = False


class enable_grad(_GradSwitch):
    """Turn gradient recording back on inside a ``no_grad`` block."""
    _value = True


class set_grad_enabled(_GradSwitch):
    """``with set_grad_enabled(flag):`` records a graph exactly when ``flag`` is true."""

    def __init__(self, mode: bool):
        self._value = bool(mode)

    def _init_args(self) -> tuple:
        return (self._value,)


class detect_anomaly(_Switch):
    """Inside this block the first op whose forward or backward produces NaN/Inf raises.

    The error names the op and the line of user code that created it. This costs a
    stack capture per op and a finiteness check per array, so it is off by default.
    """

    def __init__(self, mode: bool = True):
        self._value = bool(mode)

    def _init_args(self) -> tuple:
        return (self._value,)

    def _get(self) -> bool:
        return _anomaly_enabled

    def _set(self, value: bool) -> None:
        global _anomaly_enabled
        _anomaly_enabled = value
