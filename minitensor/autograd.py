"""The autograd engine: ``Function`` (one op) and ``backward``; the graph node
(``Context``) is in context.py.

How a training step flows through this file:

1. ``SomeOp.apply(x, y, axis=1)`` creates a ``Context`` (the graph node), calls
   ``SomeOp.forward(ctx, x.data, y.data, axis=1)`` on plain arrays, and wraps the result
   in a Tensor whose ``_node`` is that context (only if some input requires grad).
2. ``loss.backward()`` calls ``backward(loss)`` below: it orders the nodes (iteratively,
   so a 20,000-op chain is fine), runs each op's ``backward(ctx, grad)`` once all of its
   consumers have contributed, un-broadcasts each input gradient *here* (ops stay naive),
   and accumulates into ``.grad`` of leaf tensors.
3. Saved arrays are dropped as soon as a node has run, unless ``retain_graph=True``.

An op may have several outputs (attention returns its output and its weights): its
forward returns a tuple of arrays, ``apply`` a tuple of Tensors that share one node,
each knowing its ``_output_index``; the engine collects one gradient per output and
calls ``backward(ctx, *grads)`` with None for an output no gradient reached.

A node keeps references to its parent *nodes* and to leaf tensors only, never to
intermediate tensors, so the only activation memory a graph holds is what ops saved.
"""
from __future__ import annotations

import os
import traceback
from typing import Any, Callable, Iterator

import numpy as np

from . import grad_mode, kernels
from .backward_step import BackwardStep
# _flatten_saved is read from here by the profiler and viz.
from .context import Context, _flatten_saved  # noqa: F401
from .grad_ownership import SOLE_REFS as _SOLE_REFS, sole_user as _sole_user  # noqa: F401
from .tensor import Tensor

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# log(0) = -inf, 1/0 = inf, ...: IEEE results, silently, as in PyTorch (detect_anomaly()
# is the tool for finding where they first appear).
_QUIET = dict(divide="ignore", invalid="ignore", over="ignore", under="ignore")
# NumPy >= 2 keeps its error state in a context variable, and ``np.errstate`` used as a
# decorator sets and resets it per call, reentrantly, at about half the cost of entering a
# new ``with np.errstate(...)`` block. NumPy 1.x's decorator form shares one state per
# decorated function, which a reentrant call would overwrite: there, a plain ``with``.
_ERRSTATE_DECORATES = np.lib.NumpyVersion(np.__version__) >= "2.0.0"

# Who watches ops run: a tuple of observers (the profiler, ``viz.capture``), empty almost
# always. ``apply`` and the backward loop test it once per op, so an engine nobody watches
# pays one truthiness check of a global per op (bench/profiler_overhead.py measures it).
# An observer has ``op_begin(op, ctx, phase)``, ``op_end(op, ctx, phase, arrays_in, arrays_out,
# attrs)`` and ``op_abort()`` (the op raised: forget its op_begin).
_observers: tuple = ()


def add_observer(observer) -> None:
    """Start calling ``observer.op_begin``/``op_end`` around every forward and backward."""
    global _observers
    _observers = (*_observers, observer)


def remove_observer(observer) -> None:
    global _observers
    _observers = tuple(o for o in _observers if o is not observer)


# op.forward / op.backward -> the same function under _QUIET (one entry per op function
# ever run: a few hundred). Keyed by the function itself, so an op whose forward is
# replaced (a test's monkeypatch) gets a fresh entry.
_QUIET_VERSIONS: dict[Callable, Callable] = {}
# needs_input_grad of a node that records nothing, by number of inputs.
_NO_GRAD_NEEDED = [(False,) * n for n in range(8)]


def _quiet(fn: Callable) -> Callable:
    """``fn`` running with NumPy's floating-point warnings off (made once per function)."""
    quiet = _QUIET_VERSIONS.get(fn)
    if quiet is None:
        if _ERRSTATE_DECORATES:
            quiet = np.errstate(**_QUIET)(fn)
        else:  # pragma: no cover - NumPy 1.x
            def quiet(*args, **kwargs):
                with np.errstate(**_QUIET):
                    return fn(*args, **kwargs)
        _QUIET_VERSIONS[fn] = quiet
    return quiet


def _recording_node(op: type, inputs: tuple, arrays: list) -> Context:
    """A graph node for ``op`` applied to ``inputs`` (whose arrays are ``arrays``)."""
    node = Context.__new__(Context)
    node.op = op
    node._record_inputs(inputs, arrays)
    return node


class Function:
    """Base class of every op: ``forward`` and ``backward`` on NumPy arrays.

    Subclasses implement two static methods::

        forward(ctx, *arrays, **attrs) -> array (or a tuple of arrays: several outputs)
        backward(ctx, grad) -> one gradient (array or None) per tensor input
                               (several outputs: backward(ctx, *grads), None where no
                               gradient reached that output)

    Backward may return gradients in the *broadcast* shape; the engine sums them back to
    each input's shape. ``is_view = True`` marks ops whose output may share memory with
    their first input (reshape, permute, slicing): the output then shares the input's
    version counter, so in-place changes through a view are detected too.

    An op may also state what it costs, for the profiler (``minitensor/ops/costs.py``):
    ``cost(ctx, phase, ins, outs, attrs) -> flops``. Without one, the profiler counts
    the bytes the op moved and shows its FLOPs as unknown.
    """

    is_view = False
    cost = None

    @staticmethod
    def forward(ctx: Context, *arrays, **attrs):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **attrs):
        """Run forward on the inputs' arrays and (if needed) record a graph node."""
        # This runs for every op, so it is written for speed: loops rather than
        # comprehensions (Python 3.11 makes a function object per comprehension),
        # module-level flags read directly, and a node that records nothing is given
        # only what forward may read.
        arrays = []
        requires_grad = False
        for t in inputs:
            arrays.append(t._data)
            if t._requires_grad:
                requires_grad = True
        if requires_grad and grad_mode._grad_enabled:
            ctx = _recording_node(cls, inputs, arrays)
        else:
            requires_grad = False
            ctx = Context.__new__(Context)
            ctx.op = cls
            n = len(arrays)
            ctx.needs_input_grad = _NO_GRAD_NEEDED[n] if n < 8 else (False,) * n
            ctx._input_arrays = arrays
        anomaly = grad_mode._anomaly_enabled
        if anomaly:
            ctx.created_at = _user_code_location()
        if _observers:
            return _observed_apply(cls, ctx, inputs, attrs, requires_grad, anomaly, _observers)
        forward = cls.forward
        out = (_QUIET_VERSIONS.get(forward) or _quiet(forward))(ctx, *arrays, **attrs)
        return _wrap(cls, ctx, inputs, out, requires_grad, anomaly)


def _observed_apply(cls, ctx: Context, inputs: tuple, attrs: dict, requires_grad: bool,
                    anomaly: bool, observers: tuple):
    """``apply``'s forward with every observer told before and after (profiling, capture)."""
    arrays = [t._data for t in inputs]
    for o in observers:
        o.op_begin(cls, ctx, "forward")
    try:
        with np.errstate(**_QUIET):
            out = cls.forward(ctx, *arrays, **attrs)
    except BaseException:
        for o in reversed(observers):
            o.op_abort()
        raise
    for o in reversed(observers):
        o.op_end(cls, ctx, "forward", arrays, out if isinstance(out, tuple) else (out,), attrs)
    return _wrap(cls, ctx, inputs, out, requires_grad, anomaly)


def _wrap(cls, ctx: Context, inputs: tuple, out, requires_grad: bool, anomaly: bool):
    """The forward's array(s) as Tensor(s) on ``ctx`` (the graph node, if recording)."""
    if isinstance(out, tuple):
        return _wrap_outputs(cls, ctx, inputs, out, requires_grad, anomaly)
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    if anomaly:
        _check_finite(out, f"{cls.__name__} forward produced NaN/Inf in its output", ctx)
    result = Tensor._make(out, ctx if requires_grad else None)
    if cls.is_view and inputs and np.may_share_memory(out, inputs[0]._data):
        result._version_counter = inputs[0]._version_counter
        ctx.output_is_view = True
    if requires_grad and ctx._saved:
        ctx._record_saved_versions(inputs, (result,))
    return result


def _wrap_outputs(cls, ctx: Context, inputs: tuple, arrays: tuple, requires_grad: bool,
                  anomaly: bool) -> tuple:
    """The Tensors of a multi-output op: one per array, all on the same node."""
    results = []
    for i, array in enumerate(arrays):
        array = np.asarray(array)
        if anomaly:
            _check_finite(array, f"{cls.__name__} forward produced NaN/Inf in output {i}", ctx)
        t = Tensor._make(array, ctx if requires_grad else None)
        t._output_index = i
        results.append(t)
    ctx.n_outputs = len(results)
    if requires_grad and ctx._saved:
        ctx._record_saved_versions(inputs, tuple(results))
    return tuple(results)


# ----------------------------------------------------------------------------- backward


def unbroadcast(grad: np.ndarray, shape: tuple, op_name: str) -> np.ndarray:
    """Sum ``grad`` back to ``shape``: the one place broadcasting is undone.

    Leading extra axes are summed away, then every axis where the input had size 1
    (and the gradient does not) is summed with keepdims. The result must then have
    exactly the input's shape; anything else is a bug in ``op_name``'s backward.
    """
    if grad.shape != shape:
        extra = grad.ndim - len(shape)
        if extra > 0:
            grad = grad.sum(axis=tuple(range(extra)))
        axes = tuple(i for i, n in enumerate(shape) if n == 1 and i < grad.ndim and grad.shape[i] != 1)
        if axes:
            grad = grad.sum(axis=axes, keepdims=True)
    if grad.shape != shape:
        raise AssertionError(
            f"{op_name}.backward returned a gradient of shape {grad.shape} for an input of "
            f"shape {shape}: grad shape must match tensor shape")
    return grad


def backward(root, gradient: np.ndarray, retain_graph: bool = False) -> None:
    """Backpropagate ``gradient`` (d out / d root) from ``root`` to every leaf.

    Nodes run in reverse topological order: a node runs once every node that consumed
    its output has passed its contribution down (Kahn's algorithm on consumer counts,
    with an explicit stack: no recursion, so depth is unlimited).
    """
    with kernels.get().blas_scope():     # the backend's BLAS settings once for the pass
        for _ in _run_backward(root, gradient, retain_graph, steps=False):
            pass


def backward_steps(root, gradient=None, retain_graph: bool = False) -> Iterator[BackwardStep]:
    """``root.backward()`` one node at a time: yields a ``BackwardStep`` per node run.

    The same engine loop as ``backward`` (not a second implementation): nodes come in
    its execution order, and running the iterator to the end leaves exactly the
    ``.grad``s that ``root.backward(gradient)`` leaves (leaf gradients are written when
    the iterator finishes, as ``backward`` writes them at its end).

    Args:
        root: the Tensor to differentiate (a scalar loss, or pass ``gradient``).
        gradient: d out / d root, an array or Tensor of root's shape (default 1 for a scalar).
        retain_graph: keep saved arrays, so backward can run again.
    """
    if gradient is None:
        if root._data.size != 1:
            raise RuntimeError(f"backward_steps: grad can be implicitly created only for "
                               f"scalar outputs, got shape {tuple(root.shape)}")
        gradient = np.ones_like(root._data)
    gradient = np.asarray(gradient.data if isinstance(gradient, Tensor) else gradient,
                          dtype=root._data.dtype)
    yield from _run_backward(root, gradient, retain_graph, steps=True)


def _run_backward(root, gradient: np.ndarray, retain_graph: bool, steps: bool):
    """The engine's loop, as a generator: ``backward`` drains it, ``backward_steps``
    (``steps=True``) also receives a ``BackwardStep`` after each node."""
    if root._node is None:  # backward on a leaf: its gradient is the seed itself
        _accumulate_leaf(root, gradient)
        return
    consumers = _count_consumers(root._node)
    # The gradient waiting for each node: an array, or for a multi-output node a list
    # with one entry (array or None) per output.
    pending: dict[Context, Any] = {}
    _add_pending(pending, root._node, root._output_index, gradient)
    # Leaf gradients are summed here first, so a leaf's hooks see its total gradient once
    # (as in PyTorch), not one call per use of the leaf.
    leaf_grads: dict = {}
    ready = [root._node]
    anomaly = grad_mode.is_anomaly_enabled()
    outer_grad_mode = grad_mode.is_grad_enabled()
    with grad_mode.no_grad():  # hooks and backward work must not record a graph
        while ready:
            node = ready.pop()
            grad = pending.pop(node, None)
            grads: tuple = ()
            parents = node.parents
            if grad is not None:
                grads = _run_node(node, grad)
                if len(grads) != len(parents):
                    raise AssertionError(f"{node.name}.backward returned {len(grads)} gradients "
                                         f"for {len(parents)} inputs")
                if not retain_graph:
                    node._saved = None  # node.release(), inline: this loop runs per node
                    node._freed = True
            sent = [None] * len(parents) if steps else None
            for i, parent in enumerate(parents):
                if parent is None:
                    continue
                g = grads[i] if grads else None
                if g is not None:
                    g = _fit_to_input(g, node, i)
                    if anomaly:
                        _check_finite(g, f"{node.name}Backward returned NaN/Inf in the gradient "
                                         f"of input {i}", node)
                    if steps:
                        sent[i] = g
                if isinstance(parent, Context):
                    if g is not None:
                        if parent.n_outputs == 1:  # _add_pending, inline: once per edge
                            waiting = pending.get(parent)
                            pending[parent] = g if waiting is None else waiting + g
                        else:
                            _add_pending(pending, parent, node.parent_slots[i], g)
                    left = consumers[parent] - 1
                    consumers[parent] = left
                    if not left:
                        ready.append(parent)
                elif g is not None:
                    summed = leaf_grads.get(parent)
                    leaf_grads[parent] = g if summed is None else summed + g
            if steps:
                grad_in = () if grad is None else tuple(grad) if node.n_outputs > 1 else (grad,)
                with grad_mode.set_grad_enabled(outer_grad_mode):  # the caller's mode while paused
                    yield BackwardStep(node, node.name, node.created_at, grad_in, tuple(sent),
                                       parents)
        # The last node's gradients are now held by leaf_grads alone; each one leaves it
        # before it is accumulated, so a gradient nobody else uses can become .grad as is.
        grads = grad = None
        for leaf in list(leaf_grads):
            g = leaf_grads.pop(leaf)
            _accumulate_leaf(leaf, g, may_keep=not steps)


def _run_node(node: Context, grad) -> tuple:
    """Call ``node``'s backward on the gradient of its output(s); one gradient per input."""
    if node.hooks or node.retained:
        grad = _run_node_hooks(node, grad)
    observers = _observers
    if observers:
        return _observed_backward(node, grad, observers)
    backward_fn = node.op.backward
    quiet = _QUIET_VERSIONS.get(backward_fn) or _quiet(backward_fn)
    grads = quiet(node, *grad) if node.n_outputs > 1 else quiet(node, grad)
    return grads if isinstance(grads, tuple) else (grads,)


def _observed_backward(node: Context, grad, observers: tuple) -> tuple:
    """``_run_node``'s backward call with every observer told before and after."""
    for o in observers:
        o.op_begin(node.op, node, "backward")
    try:
        with np.errstate(**_QUIET):
            grads = node.op.backward(node, *grad) if node.n_outputs > 1 \
                else node.op.backward(node, grad)
    except BaseException:
        for o in reversed(observers):
            o.op_abort()
        raise
    if not isinstance(grads, tuple):
        grads = (grads,)
    grad_in = tuple(grad) if node.n_outputs > 1 else (grad,)
    for o in reversed(observers):
        o.op_end(node.op, node, "backward", grad_in, grads, None)
    return grads


def _add_pending(pending: dict, node: Context, slot: int, g: np.ndarray) -> None:
    """Add ``g`` to the gradient waiting for output ``slot`` of ``node``.

    The first contribution is stored as is; a second allocates a new array, so a
    gradient shared between two inputs (Add returns one g for both) is never changed.
    """
    if node.n_outputs == 1:
        pending[node] = g if node not in pending else pending[node] + g
        return
    slots = pending.setdefault(node, [None] * node.n_outputs)
    slots[slot] = g if slots[slot] is None else slots[slot] + g


def _count_consumers(root: Context) -> dict[Context, int]:
    counts: dict[Context, int] = {}
    stack, seen = [root], {root}
    while stack:
        node = stack.pop()
        for parent in node.parents:
            if isinstance(parent, Context):
                counts[parent] = counts.get(parent, 0) + 1
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
    return counts


def _fit_to_input(g, node: Context, i: int) -> np.ndarray:
    """Gradient ``g`` of input ``i`` as an array of that input's shape and dtype."""
    if type(g) is not np.ndarray:
        g = np.asarray(g)
    shape = node._input_shapes[i]
    if g.shape != shape:
        g = unbroadcast(g, shape, node.name)
    dtype = node._input_dtypes[i]
    return g if g.dtype is dtype or g.dtype == dtype else g.astype(dtype)


def _run_node_hooks(node: Context, grad):
    """Run the hooks (and retain_grad) of each output of ``node`` on its gradient."""
    if node.n_outputs == 1:
        return _run_output_hooks(node, 0, grad)
    return [g if g is None else _run_output_hooks(node, i, g) for i, g in enumerate(grad)]


def _run_output_hooks(node: Context, slot: int, grad: np.ndarray) -> np.ndarray:
    for hook in node.hooks.get(slot, ()):
        replaced = hook(Tensor._make(grad, None))
        if replaced is not None:
            grad = np.asarray(replaced.data if isinstance(replaced, Tensor) else replaced)
    kept = node.retained[slot]() if slot in node.retained else None
    if kept is not None:
        kept.grad = Tensor._make(grad.copy() if kept.grad is None else kept.grad.data + grad, None)
    return grad


def _accumulate_leaf(leaf, g: np.ndarray, may_keep: bool = False) -> None:
    """Add ``g`` to ``leaf.grad`` (set it when there is none). A new .grad is a copy of
    g unless the engine may keep it (``may_keep``: g held only by its own variable) and
    nothing else refers to g or its memory (grad_ownership.py; a config-S step's 68
    copies took ~1.5 ms)."""
    for hook in leaf._hooks:
        replaced = hook(Tensor._make(g, None))
        if replaced is not None:
            g = np.asarray(replaced.data if isinstance(replaced, Tensor) else replaced)
    dtype = leaf._data.dtype
    grad = leaf.grad
    if grad is None:
        if may_keep and not leaf._hooks and g.dtype == dtype and _sole_user(g) and \
                g.flags.writeable and g.flags.c_contiguous:
            owned = g
        else:
            owned = g.astype(dtype) if g.dtype != dtype else np.array(g, copy=True)
        leaf.grad = Tensor._make(owned, None)
    else:
        grad.data = grad._data + g.astype(dtype, copy=False)


# ----------------------------------------------------------------------------- anomaly mode


def _user_code_location() -> str:
    """'file:line in function: code' of the innermost frame outside minitensor."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return f"{frame.filename}:{frame.lineno} in {frame.name}: {frame.line}"
    return "<unknown>"


def _check_finite(array: np.ndarray, what: str, ctx: Context) -> None:
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        raise RuntimeError(f"detect_anomaly: {what}. The op was created at {ctx.created_at}")
