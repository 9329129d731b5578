"""``minitensor.nn.functional``: the functional API under its ``torch.nn.functional`` path.

``from minitensor.nn import functional as F`` gives the same functions as
``minitensor.functional`` (this file only re-exports them).
"""
from .. import functional as _functional

__all__ = [name for name, value in vars(_functional).items()
           if not name.startswith("_") and callable(value)
           and getattr(value, "__module__", None) == _functional.__name__]
globals().update({name: getattr(_functional, name) for name in __all__})
