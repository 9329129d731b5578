"""``capture``: remember, for each op recorded in a block, which module call made it
and (optionally) the line of user code, so graphs can be grouped by module and
``backward_steps`` can say where each node came from.

It watches two places: ``nn.Module.__call__`` (a stack of module calls) and the engine
(``autograd.add_observer``: every forward gets ``ctx.module_path``, a tuple of
(module name, call number) pairs from the outermost module in, shared between the ops of
one call, and ``ctx.created_at``). The root model is not a level of the path: its
children are level 1.
"""
from __future__ import annotations

import itertools

from .. import autograd
from ..nn import module as module_mod


class capture:
    """Record the module path (and code location) of every op made inside the block.

    Args:
        model: the root module; its ``named_modules()`` give the names
            ("encoder.layers.0.self_attn"). Modules not under it are named by class.
        locations: also record "file:line in function: code" per op (slower: a stack walk).
    """

    def __init__(self, model=None, locations: bool = True):
        self.names = {}
        self.root = model
        if model is not None:
            self.names = {id(m): name for name, m in model.named_modules() if name}
        self.locations = locations
        self._path: tuple = ()
        self._saved_paths: list[tuple] = []
        self._calls = itertools.count()

    def __enter__(self) -> "capture":
        autograd.add_observer(self)
        module_mod._call_observers = (*module_mod._call_observers, self)
        return self

    def __exit__(self, *exc_info) -> None:
        autograd.remove_observer(self)
        module_mod._call_observers = tuple(o for o in module_mod._call_observers if o is not self)

    # ------------------------------------------------------------ nn.Module.__call__ observer
    def module_enter(self, module) -> None:
        self._saved_paths.append(self._path)
        if module is not self.root:  # the model itself is the whole picture, not a level
            name = self.names.get(id(module), type(module).__name__)
            self._path = (*self._path, (name, next(self._calls)))

    def module_exit(self, module) -> None:
        self._path = self._saved_paths.pop()

    # ------------------------------------------------------------ engine observer
    def op_begin(self, op, ctx, phase: str) -> None:
        if phase != "forward":
            return
        ctx.module_path = self._path
        if self.locations and ctx.created_at is None:
            ctx.created_at = autograd._user_code_location()

    def op_end(self, op, ctx, phase, ins, outs, attrs) -> None:
        pass

    def op_abort(self) -> None:
        pass
