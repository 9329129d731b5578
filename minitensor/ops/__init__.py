"""The ops: one ``Function`` subclass per op, forward and backward side by side.

One file per op family (``elementwise``, ``reduce``, ``shape``, ``linalg``, ``fused``,
``attention``); each class is recorded in ``REGISTRY`` (``registry.py``) by ``@register``.
Importing ``minitensor.ops`` imports every family, so the registry is full.
"""
# The op families, in the order their ops appear in REGISTRY.
from . import elementwise, reduce, shape, linalg, fused, attention  # noqa: F401
from .registry import REGISTRY, register

__all__ = ["REGISTRY", "register", "attention", "elementwise", "fused", "linalg", "reduce", "shape"]
