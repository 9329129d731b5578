"""``Context``: one node of the autograd graph, what an op application remembers.

``Function.apply`` (autograd.py) makes one per op: a recording node knows its parents,
the shapes and dtypes of its inputs and the arrays its op saved (with their versions, so
an in-place change is caught at backward time); a node that records nothing (under
``no_grad``, or no input requires grad) is only what the op's forward may read. The
engine's backward loop (autograd.py) reads the recorded fields.
"""
from __future__ import annotations

import weakref
from types import MappingProxyType
from typing import Any

import numpy as np

# A node's hooks and retained outputs until the first is registered: one shared,
# read-only empty mapping (``Context.hooks_of`` and ``retain`` give a node its own dicts).
_NONE_REGISTERED = MappingProxyType({})


class Context:
    """One node of the graph: what an op application remembers for its backward.

    Attributes an op may use:
        needs_input_grad: tuple of bools, one per tensor input (skip work for False).
        saved_arrays: the arrays given to ``save_for_backward`` (checked on access).
        n_outputs: how many tensors forward returned (1 for almost every op).
        Any other attribute an op sets on ``ctx`` in forward (axis, shapes, ...).
    Set by watchers: ``created_at`` (``detect_anomaly``, ``viz.capture``) and
    ``module_path`` (``viz.capture``: which module call made the op).

    The class attributes below are the defaults every node starts from: a node stores
    only what differs (most have no hooks, no saved arrays, one output), so making one,
    which happens for every op, costs a few attribute writes.
    """

    requires_grad = False
    needs_input_grad: tuple = ()
    # Parent of input i: its node (non-leaf), the tensor itself (leaf that requires
    # grad), or None (no gradient flows there); and which output of its parent node
    # input i is (always 0 but after a multi-output op). Empty when not recording.
    parents: tuple = ()
    parent_slots: tuple = ()
    _input_shapes: tuple | None = None   # see input_shapes
    _input_dtypes: tuple | None = None
    _input_arrays: tuple = ()
    _saved: tuple | None = ()
    _saved_versions: tuple = ()          # ((VersionCounter, version), ...) of saved arrays
    _freed = False
    n_outputs = 1
    hooks = _NONE_REGISTERED             # gradient hooks of output i (non-leaf): {i: [hook]}
    retained = _NONE_REGISTERED          # output i, when it called retain_grad(): {i: weakref}
    created_at: str | None = None        # user code location (anomaly mode only)
    output_is_view = False               # output shares memory with input 0 (is_view ops)

    def __init__(self, op: type, inputs: tuple, requires_grad: bool):
        self.op = op
        arrays = tuple([t._data for t in inputs])
        if requires_grad:
            self._record_inputs(inputs, arrays)
        else:
            self.needs_input_grad = (False,) * len(inputs)
            self._input_arrays = arrays

    def _record_inputs(self, inputs: tuple, arrays: list) -> None:
        """What backward needs to know of the inputs (a recording node)."""
        # One loop filling five lists: cheaper than five comprehensions for the one to
        # three inputs of almost every op.
        parents, slots, needs, shapes, dtypes = [], [], [], [], []
        for t, array in zip(inputs, arrays):
            needed = t._requires_grad
            needs.append(needed)
            parents.append(None if not needed else t if t._node is None else t._node)
            slots.append(t._output_index)
            shapes.append(array.shape)
            dtypes.append(array.dtype)
        self.requires_grad = True
        self.parents = tuple(parents)
        self.parent_slots = tuple(slots)
        self.needs_input_grad = tuple(needs)
        self._input_shapes = tuple(shapes)
        self._input_dtypes = tuple(dtypes)

    @property
    def input_shapes(self) -> tuple:
        """The shape of each input array. A node that records no graph keeps its input
        arrays for the op's duration and reads them here; a recording node keeps only
        their shapes and dtypes (never the arrays: no activation memory held)."""
        shapes = self._input_shapes
        return tuple([a.shape for a in self._input_arrays]) if shapes is None else shapes

    @property
    def input_dtypes(self) -> tuple:
        dtypes = self._input_dtypes
        return tuple([a.dtype for a in self._input_arrays]) if dtypes is None else dtypes

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

    def hooks_of(self, slot: int) -> list:
        """The (mutable) list of gradient hooks of output ``slot``."""
        if self.hooks is _NONE_REGISTERED:
            self.hooks = {}
        return self.hooks.setdefault(slot, [])

    def retain(self, slot: int, tensor_ref: weakref.ref) -> None:
        """Give output ``slot``'s tensor (weakly referenced) its gradient after backward."""
        if self.retained is _NONE_REGISTERED:
            self.retained = {}
        self.retained[slot] = tensor_ref

    def _record_saved_versions(self, inputs: tuple, outputs: tuple) -> None:
        """Remember the version of every tensor whose array was saved (in-place detection).

        A saved array may also be a *view* of an input (Linear keeps ``x.reshape(-1, C)``,
        kernels flatten rows), so memory overlap counts, not only identity.
        """
        tensors = inputs + outputs
        versions = []
        saved = self._saved
        for item in saved:
            if isinstance(item, (dict, tuple, list)):  # rare: a kernel's cache of arrays
                saved = _flatten_saved(saved)
                break
        for array in saved:
            if not isinstance(array, np.ndarray):
                continue
            for t in tensors:
                data = t._data
                if data is array or np.may_share_memory(data, array):
                    counter = t._version_counter
                    versions.append((counter, counter.value))
                    break
        if versions:
            self._saved_versions = tuple(versions)

    def release(self) -> None:
        """Drop saved arrays (called after this node's backward unless retain_graph)."""
        self._saved = None
        self._freed = True


def _flatten_saved(saved: tuple) -> list:
    """Saved items, looking one level into kernel caches (tuples, lists, dicts)."""
    items = []
    for item in saved:
        if isinstance(item, dict):
            items.extend(item.values())
        elif isinstance(item, (tuple, list)):
            items.extend(item)
        else:
            items.append(item)
    return items
