"""The ops: one ``Function`` subclass per op, forward and backward side by side.

One file per op family (``elementwise``, ``reduce``, ``shape``, ``linalg``, ``fused``,
``attention``, ``indexing``, ``cumulative``, ``einsum``, ``add_norm``); each class is
recorded in ``REGISTRY`` (``registry.py``) by ``@register``. Importing ``minitensor.ops`` imports every family, so the registry is full.
"""
# The op families, in the order their ops appear in REGISTRY.
from . import elementwise, reduce, shape, linalg, fused, attention  # noqa: F401
from . import indexing, cumulative, einsum  # noqa: F401  (the torch.X ops of issue 15)
from . import add_norm  # noqa: F401  (the Transformer's Add & Norm box, fused)
from .registry import REGISTRY, register

__all__ = ["REGISTRY", "register", "add_norm", "attention", "cumulative", "einsum", "elementwise",
           "fused", "indexing", "linalg", "reduce", "shape"]
