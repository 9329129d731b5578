"""minitensor: a small, readable reverse-mode autograd engine on NumPy, with Numba kernels.

    import minitensor as mt
    from minitensor import nn, optim, functional as F

    x = mt.randn(4, 3, requires_grad=True)
    loss = (x @ mt.randn(3, 2)).relu().mean()
    loss.backward()          # x.grad now holds d loss / d x

Layers, bottom up: ``kernels`` (arithmetic on arrays) -> ``ops`` (one Function per op)
-> ``autograd`` (the engine) -> ``tensor``/``functional`` (the API) -> ``nn``/``optim``.
"""
from . import kernels
from .autograd import Function
from .creation import (arange, as_dtype, bool_, empty, eye, float32, float64, full, full_like,
                       int32, int64, linspace, ones, ones_like, rand, rand_like, randint, randn,
                       randn_like, tensor, zeros, zeros_like)
from .errors import DTypeError, IndexOutOfRange, ShapeError
from .grad_mode import (detect_anomaly, enable_grad, is_grad_enabled, no_grad,
                        set_grad_enabled)
from .random import get_rng_state, manual_seed, set_rng_state
from .tensor import Tensor, as_tensor
from . import functional
from .functional import (cat, chunk, clamp, logsumexp, matmul, maximum, minimum, split, stack,
                         where)
from .gradcheck import GradcheckError, gradcheck
from .kernels import set_backend

__version__ = "0.1.0"
from . import nn, optim
from .io import save, load
