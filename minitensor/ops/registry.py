"""The op registry: every differentiable op is a ``Function`` subclass recorded here.

``@register`` only *records* the class (no magic attribute injection): the tensor
methods that call these ops are written out by hand in ``tensor_methods.py``. A test walks
``REGISTRY`` and gradchecks every op, so an op cannot land without a gradient check.
"""
from __future__ import annotations

REGISTRY: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: record ``cls`` in ``REGISTRY`` under its class name."""
    if cls.__name__ in REGISTRY:
        raise ValueError(f"op {cls.__name__} registered twice")
    REGISTRY[cls.__name__] = cls
    return cls
