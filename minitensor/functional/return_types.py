"""PyTorch's named pairs (``torch.return_types``): what max/min along a dim, topk and sort
return. Each is a ``namedtuple`` ``(values, indices)``, so both
``values, indices = x.max(1)`` and ``x.max(1).indices`` work.
"""
from __future__ import annotations

from collections import namedtuple

max = namedtuple("max", ["values", "indices"])
min = namedtuple("min", ["values", "indices"])
topk = namedtuple("topk", ["values", "indices"])
sort = namedtuple("sort", ["values", "indices"])

for _pair in (max, min, topk, sort):
    _pair.__module__ = "minitensor.return_types"
    _pair.__doc__ = f"{_pair.__name__}(values, indices): the named pair torch.{_pair.__name__} returns."
del _pair
