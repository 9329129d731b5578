"""The autograd engine: ``Function`` (one op), ``Context`` (one graph node) and ``backward``.

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
import weakref
from typing import Any, Callable, Iterator

import numpy as np

from . import grad_mode
from .backward_step import BackwardStep
from .tensor import Tensor, VersionCounter

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# log(0) = -inf, 1/0 = inf, ...: IEEE results, silently, as in PyTorch (detect_anomaly()
# is the tool for finding where they first appear).
_QUIET = dict(divide="ignore", invalid="ignore", over="ignore", under="ignore")

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


class Context:
    """One node of the graph: what an op application remembers for its backward.

    Attributes an op may use:
        needs_input_grad: tuple of bools, one per tensor input (skip work for False).
        saved_arrays: the arrays given to ``save_for_backward`` (checked on access).
        n_outputs: how many tensors forward returned (1 for almost every op).
        Any other attribute an op sets on ``ctx`` in forward (axis, shapes, ...).
    Set by watchers: ``created_at`` (``detect_anomaly``, ``viz.capture``) and
    ``module_path`` (``viz.capture``: which module call made the op).
    """

    def __init__(self, op: type, inputs: tuple, requires_grad: bool):
        self.op = op
        self.requires_grad = requires_grad
        # Parent of input i: its node (non-leaf), the tensor itself (leaf that requires
        # grad), or None (no gradient flows there).
        self.parents = tuple([_parent_of(t) for t in inputs]) if requires_grad else ()
        # Which output of its parent node each input is (always 0 but after a
        # multi-output op).
        self.parent_slots = tuple([t._output_index for t in inputs]) if requires_grad else ()
        self.needs_input_grad = tuple([p is not None for p in self.parents]) if requires_grad \
            else (False,) * len(inputs)
        arrays = [t._data for t in inputs]
        self.input_shapes = tuple([a.shape for a in arrays])
        self.input_dtypes = tuple([a.dtype for a in arrays])
        self._saved: tuple | None = ()
        self._saved_versions: list[tuple[VersionCounter, int]] = []
        self._freed = False
        self.n_outputs = 1
        self.hooks: dict[int, list[Callable]] = {}  # gradient hooks of output i (non-leaf)
        self.retained: dict[int, weakref.ref] = {}  # output i, when it called retain_grad()
        self.created_at: str | None = None     # user code location (anomaly mode only)
        self.output_is_view = False            # output shares memory with input 0 (is_view ops)

    @property
    def name(self) -> str:
        return self.op.__name__

    def __repr__(self) -> str:
        return f"<{self.name}Backward>"

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep ``arrays`` for backward. A no-op when no gradient will be needed."""
        if self.requires_grad:
            self._saved = arrays

    @property
    def saved_arrays(self) -> tuple:
        if self._freed:
            raise RuntimeError(
                f"{self.name}.backward: trying to backward through the graph a second time "
                "(its saved arrays were freed after the first backward). "
                "Pass retain_graph=True to the first backward() if you need to call it twice.")
        for counter, expected in self._saved_versions:
            if counter.value != expected:
                raise RuntimeError(
                    f"{self.name}.backward: one of the arrays needed for gradient computation "
                    f"has been modified by an in-place operation (it is at version "
                    f"{counter.value}; expected version {expected}). Use an out-of-place op "
                    "instead, or .clone() the tensor before modifying it.")
        return self._saved

    def _record_saved_versions(self, inputs: tuple, outputs: tuple) -> None:
        """Remember the version of every tensor whose array was saved (in-place detection).

        A saved array may also be a *view* of an input (Linear keeps ``x.reshape(-1, C)``,
        kernels flatten rows), so memory overlap counts, not only identity.
        """
        tensors = (*inputs, *outputs)
        for array in _flatten_saved(self._saved):
            if not isinstance(array, np.ndarray):
                continue
            for t in tensors:
                if t._data is array or np.may_share_memory(t._data, array):
                    self._saved_versions.append((t._version_counter, t._version_counter.value))
                    break

    def release(self) -> None:
        """Drop saved arrays (called after this node's backward unless retain_graph)."""
        self._saved = None
        self._freed = True


def _flatten_saved(saved: tuple):
    """Saved items, looking one level into kernel caches (tuples, lists, dicts)."""
    for item in saved:
        if isinstance(item, dict):
            yield from item.values()
        elif isinstance(item, (tuple, list)):
            yield from item
        else:
            yield item


def _parent_of(t):
    if not t.requires_grad:
        return None
    return t._node if t._node is not None else t


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
        requires_grad = grad_mode.is_grad_enabled() and any([t._requires_grad for t in inputs])
        ctx = Context(cls, inputs, requires_grad)
        anomaly = grad_mode.is_anomaly_enabled()
        if anomaly:
            ctx.created_at = _user_code_location()
        observers = _observers
        if observers:
            return _observed_apply(cls, ctx, inputs, attrs, requires_grad, anomaly, observers)
        with np.errstate(**_QUIET):
            out = cls.forward(ctx, *[t._data for t in inputs], **attrs)
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
    out = np.asarray(out)
    if anomaly:
        _check_finite(out, f"{cls.__name__} forward produced NaN/Inf in its output", ctx)
    result = Tensor._make(out, ctx if requires_grad else None)
    if cls.is_view and inputs and np.may_share_memory(out, inputs[0].data):
        result._version_counter = inputs[0]._version_counter
        ctx.output_is_view = True
    if requires_grad:
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
    if requires_grad:
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
            if grad is not None:
                if node.hooks or node.retained:
                    grad = _run_node_hooks(node, grad)
                observers = _observers
                if observers:
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
                if observers:
                    grad_in = tuple(grad) if node.n_outputs > 1 else (grad,)
                    for o in reversed(observers):
                        o.op_end(node.op, node, "backward", grad_in, grads, None)
                if len(grads) != len(node.parents):
                    raise AssertionError(f"{node.name}.backward returned {len(grads)} gradients "
                                         f"for {len(node.parents)} inputs")
                if not retain_graph:
                    node.release()
            sent = [None] * len(node.parents) if steps else None
            for i, parent in enumerate(node.parents):
                if parent is None:
                    continue
                g = grads[i] if grads else None
                if g is not None:
                    g = _fit_to_input(np.asarray(g), node, i)
                    if anomaly:
                        _check_finite(g, f"{node.name}Backward returned NaN/Inf in the gradient "
                                         f"of input {i}", node)
                    if steps:
                        sent[i] = g
                if isinstance(parent, Context):
                    if g is not None:
                        _add_pending(pending, parent, node.parent_slots[i], g)
                    consumers[parent] -= 1
                    if consumers[parent] == 0:
                        ready.append(parent)
                elif g is not None:
                    leaf_grads[parent] = g if parent not in leaf_grads else leaf_grads[parent] + g
            if steps:
                grad_in = () if grad is None else tuple(grad) if node.n_outputs > 1 else (grad,)
                with grad_mode.set_grad_enabled(outer_grad_mode):  # the caller's mode while paused
                    yield BackwardStep(node, node.name, node.created_at, grad_in, tuple(sent),
                                       node.parents)
        for leaf, g in leaf_grads.items():
            _accumulate_leaf(leaf, g)


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


def _fit_to_input(g: np.ndarray, node: Context, i: int) -> np.ndarray:
    g = unbroadcast(g, node.input_shapes[i], node.name)
    dtype = node.input_dtypes[i]
    return g.astype(dtype, copy=False) if g.dtype != dtype else g


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


def _accumulate_leaf(leaf, g: np.ndarray) -> None:
    for hook in leaf._hooks:
        replaced = hook(Tensor._make(g, None))
        if replaced is not None:
            g = np.asarray(replaced.data if isinstance(replaced, Tensor) else replaced)
    g = g.astype(leaf.data.dtype, copy=False)
    if leaf.grad is None:
        # Copy: the same array may also be the gradient of another input (Add returns
        # one g for both), and optimizers/clipping modify .grad in place.
        leaf.grad = Tensor._make(np.array(g, copy=True), None)
    else:
        leaf.grad.data = leaf.grad.data + g


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
