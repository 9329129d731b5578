"""minitensor: a small, readable reverse-mode autograd engine on NumPy, with Numba kernels.

    import minitensor as mt
    from minitensor import nn, optim, functional as F

    x = mt.randn(4, 3, requires_grad=True)
    loss = (x @ mt.randn(3, 2)).relu().mean()
    loss.backward()          # x.grad now holds d loss / d x

Layers, bottom up (each module imports only modules above it in this list):
``kernels`` (arithmetic on arrays); ``dtypes``, ``device``, ``errors``, ``grad_mode``,
``random`` (leaves); ``tensor`` (the Tensor class: array, grad, graph fields); ``autograd`` (the
engine); ``ops`` (one Function per op); ``functional`` (checked wrappers of the ops);
``tensor_methods`` (Tensor's operators and methods, calls into functional);
``creation``, ``gradcheck``, ``io``, ``cuda``; then ``nn`` and ``optim``.
"""
from . import kernels
from .autograd import Function
from .tensor import Tensor, as_tensor
from . import functional
from . import tensor_methods  # noqa: F401  (installs Tensor's operators and methods)
from .creation import (BoolTensor, ByteTensor, DoubleTensor, FloatTensor, HalfTensor, IntTensor,
                       LongTensor, arange, empty, eye, full, full_like, from_numpy, is_tensor,
                       linspace, numel, ones, ones_like, rand, rand_like, randint, randn,
                       randn_like, tensor, zeros, zeros_like)
from .device import device
from .dtypes import (as_dtype, bool_, float16, float32, float64, int8, int16, int32, int64,
                     promote_types, result_dtype, uint8)
# PyTorch's dtype names. ``float``, ``int`` and ``bool`` shadow the builtins in this
# namespace only (mt.float is float32); no code below this line uses those builtins.
from .dtypes import TORCH_NAMES as _TORCH_NAMES
long, double, half, short = (_TORCH_NAMES[n] for n in ("long", "double", "half", "short"))
float, int, bool = (_TORCH_NAMES[n] for n in ("float", "int", "bool"))  # noqa: A001
from . import cuda
from .errors import DTypeError, IndexOutOfRange, ShapeError
from .grad_mode import (detect_anomaly, enable_grad, is_grad_enabled, no_grad,
                        set_grad_enabled)
from .random import get_rng_state, manual_seed, set_rng_state
from .functional import (cat, chunk, clamp, logsumexp, matmul, maximum, minimum, split, stack,
                         where)
from .gradcheck import GradcheckError, GradcheckReport, gradcheck, gradcheck_report
from .kernels import set_backend

__version__ = "0.1.0"
from . import nn, optim, utils
from .io import save, load

# PyTorch-style top-level functions (issue 15): torch.X code runs as mt.X.
from .functional import (abs, amax, amin, argmax, argmin, bmm, cos, cumsum, einsum, exp,
                         flatten, flip, gather, index_select, log, log_softmax, masked_select,
                         max, mean, min, mm, multinomial, nonzero, norm, outer, pow, randperm,
                         relu, repeat_interleave, return_types, rsqrt, scatter, sigmoid, sign,
                         sin, softmax, sort, sqrt, square, sum, t, tanh, topk, tril, triu,
                         unbind)
