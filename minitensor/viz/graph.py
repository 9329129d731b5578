"""Walk the engine's graph from a tensor into plain boxes and arrows (``Graph``).

The engine keeps, per node (a ``Context``): its op, its parents (nodes, leaf tensors,
or None), the shapes and dtypes of its inputs, and what it saved for backward. A node
does not keep its output, but every consumer knows the shape and dtype of the input it
got, so output shapes are read off the consumers (and off the root tensor).

With ``depth`` = k, the ops made inside a module call at nesting level k (the model's
children are level 1; recorded by ``viz.capture``) are collapsed into one box per such
call, ops of shallower levels stay drawn one by one, and a parameter used only inside
one box goes into it: a transformer layer becomes a handful of boxes. (A level-k call
runs in one stretch of time, so its box cannot both feed and be fed by another: the
collapsed graph has no cycles.)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..autograd import Context, _flatten_saved
from ..tensor import Tensor


@dataclass
class GraphNode:
    """One box. kind: "op", "leaf" (a tensor that requires grad) or "group" (a module call)."""
    id: str
    kind: str
    title: str
    lines: list[str] = field(default_factory=list)
    group: str | None = None     # top-level module name (for colour), if captured
    is_root: bool = False
    saved_bytes: int = 0         # held for backward (ops; summed over a group)


@dataclass
class Graph:
    """Boxes and arrows (source id -> target id, in the direction data flows)."""
    nodes: dict[str, GraphNode]
    edges: list[tuple[str, str]]


def build_graph(t: Tensor, params: dict | None = None, depth: int | None = None) -> Graph:
    """The graph that produced ``t``: ops, leaves, arrows; modules collapsed below ``depth``."""
    names = {id(p): n for n, p in (params or {}).items()}
    order, out_info = _walk(t)
    nodes: dict[str, GraphNode] = {}
    edges: list[tuple[str, str]] = []
    key_of: dict[int, str] = {}  # id(node or leaf) -> box id
    for i, ctx in enumerate(order):
        outputs = out_info[ctx]  # {output slot: (shape, dtype)}, the outputs some op used
        path = getattr(ctx, "module_path", ())
        box = f"op{i}"
        key_of[id(ctx)] = box
        lines = [("" if ctx.n_outputs == 1 else f"[{slot}] ") + f"{_shape(shape)} {dtype}"
                 for slot, (shape, dtype) in sorted(outputs.items())]
        saved = _saved_bytes(ctx)
        if saved:
            lines.append(f"saved {_human_bytes(saved)}")
        nodes[box] = GraphNode(box, "op", ctx.name, lines, path[0][0] if path else None,
                               is_root=ctx is t._node, saved_bytes=saved)
    leaves = []
    for ctx in order:
        for parent in ctx.parents:
            if isinstance(parent, Tensor) and id(parent) not in key_of:
                key_of[id(parent)] = f"leaf{len(leaves)}"
                leaves.append(parent)
    if t._node is None and t.requires_grad:
        key_of[id(t)] = "leaf0"
        leaves.append(t)
    for leaf, box in ((lf, key_of[id(lf)]) for lf in leaves):
        title = names.get(id(leaf), "tensor")
        lines = [f"{_shape(leaf.shape)} {leaf.dtype}"]
        if leaf.grad is not None:
            norm = float(np.linalg.norm(leaf.grad.data.astype(np.float64)))
            lines.append(f"|grad| {norm:.3g}")
        nodes[box] = GraphNode(box, "leaf", title, lines, is_root=leaf is t)
    for ctx in order:
        for parent in ctx.parents:
            if parent is not None:
                edges.append((key_of[id(parent)], key_of[id(ctx)]))
    graph = Graph(nodes, edges)
    if depth is not None:
        graph = _collapse(graph, order, key_of, depth)
    return graph


def _walk(t: Tensor):
    """Every node reachable from ``t`` (inputs before consumers) and, per node, the
    (shape, dtype) of each of its outputs that something used, read off its consumers."""
    if t._node is None:
        return [], {}
    out_info = {t._node: {t._output_index: (t.shape, t.dtype)}}
    seen, stack, order = {t._node}, [t._node], []
    while stack:
        ctx = stack.pop()
        order.append(ctx)
        for i, parent in enumerate(ctx.parents):
            if isinstance(parent, Context):
                slots = out_info.setdefault(parent, {})
                slots[ctx.parent_slots[i]] = (ctx.input_shapes[i], ctx.input_dtypes[i])
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
    order.reverse()
    return order, out_info


def _collapse(graph: Graph, order, key_of, depth: int) -> Graph:
    """One box per module call at level ``depth``; leaves used only there join it."""
    box_of: dict[str, str] = {}
    members: dict[str, list[GraphNode]] = {}
    titles: dict[str, str] = {}
    for ctx in order:
        path = getattr(ctx, "module_path", ())
        if depth <= 0 or len(path) < depth:
            continue
        path = path[:depth]
        group = "group:" + "/".join(f"{n}#{c}" for n, c in path)
        box_of[key_of[id(ctx)]] = group
        members.setdefault(group, []).append(graph.nodes[key_of[id(ctx)]])
        titles[group] = path[-1][0]
    consumers: dict[str, set] = {}
    for src, dst in graph.edges:
        consumers.setdefault(src, set()).add(box_of.get(dst, dst))
    params_in: dict[str, list[GraphNode]] = {}
    for box, node in graph.nodes.items():
        if node.kind == "leaf" and len(consumers.get(box, ())) == 1:
            (target,) = consumers[box]
            if target.startswith("group:"):
                box_of[box] = target
                params_in.setdefault(target, []).append(node)
    nodes = {box: node for box, node in graph.nodes.items() if box not in box_of}
    for group, ops in members.items():
        lines = [f"{len(ops)} ops"]
        saved = sum(op.saved_bytes for op in ops)
        if saved:
            lines.append(f"saved {_human_bytes(saved)}")
        n_params = len(params_in.get(group, ()))
        if n_params:
            lines.append(f"{n_params} parameters")
        out_op = ops[-1]
        lines.append(f"out {out_op.lines[0]}")
        nodes[group] = GraphNode(group, "group", titles[group], lines, ops[0].group,
                                 is_root=any(op.is_root for op in ops), saved_bytes=saved)
    edges, seen = [], set()
    for src, dst in graph.edges:
        src, dst = box_of.get(src, src), box_of.get(dst, dst)
        if src != dst and (src, dst) not in seen:
            seen.add((src, dst))
            edges.append((src, dst))
    return Graph(nodes, edges)


def _saved_bytes(ctx: Context) -> int:
    if ctx._saved is None:  # freed by a backward
        return 0
    return sum(a.nbytes for a in _flatten_saved(ctx._saved) if isinstance(a, np.ndarray))


_UNITS = [("GB", 1e9), ("MB", 1e6), ("kB", 1e3), ("B", 1)]


def _human_bytes(n: int) -> str:
    for unit, scale in _UNITS:
        if n >= scale or unit == "B":
            return f"{n / scale:.3g} {unit}" if unit != "B" else f"{n} B"
    return f"{n} B"


def _shape(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"
