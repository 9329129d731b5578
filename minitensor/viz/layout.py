"""Place the boxes: layers from networkx, order within a layer by barycenters.

A layered ("Sugiyama") drawing in its simplest form: each box goes in the layer of its
longest path from an input (``networkx.topological_generations``), so every arrow
points down, and each input (a parameter) moves down to just above its first user;
then each layer is ordered by the mean position of its neighbours in the
layer above, then below, a few sweeps (fewer crossings); then boxes are spaced so none
overlap.
"""
from __future__ import annotations

import networkx as nx

CHAR_W, LINE_H, PAD, GAP_X, GAP_Y = 7.0, 15.0, 8.0, 18.0, 46.0


def box_size(title: str, lines: list[str]) -> tuple[float, float]:
    """(width, height) of a box holding a bold title and its lines."""
    longest = max([len(title)] + [len(line) for line in lines])
    return longest * CHAR_W + 2 * PAD, (1 + len(lines)) * LINE_H + PAD


def layered_layout(node_ids, edges, sizes: dict, sweeps: int = 4) -> tuple[dict, dict]:
    """Place boxes and route arrows; inputs at the top, arrows pointing down.

    Returns ({id: (x, y) centre of each box}, {(src, dst): [(x, y) waypoints]}): an arrow
    that skips layers passes through invisible points of its own in the layers between,
    so it is routed around the boxes there instead of through them.
    """
    g = nx.DiGraph()
    g.add_nodes_from(node_ids)
    g.add_edges_from(edges)
    level = {n: i for i, layer in enumerate(nx.topological_generations(g)) for n in layer}
    for n in g.nodes:
        if g.in_degree(n) == 0 and g.out_degree(n) > 0:  # an input: just above its first user
            level[n] = min(level[m] for m in g.successors(n)) - 1
    layers = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for n in g.nodes:
        layers[level[n]].append(n)
    sizes = dict(sizes)
    routes: dict[tuple, list] = {}
    for u, v in edges:  # long arrows get one waypoint per layer they cross
        chain = [u]
        for k in range(level[u] + 1, level[v]):
            dummy = ("via", u, v, k)
            g.add_edge(chain[-1], dummy)
            layers[k].append(dummy)
            sizes[dummy] = (CHAR_W, 0.0)
            chain.append(dummy)
        if len(chain) > 1:
            g.add_edge(chain[-1], v)
        routes[(u, v)] = chain[1:]
    _order_layers(g, layers, sweeps)
    positions = _place(layers, sizes)
    waypoints = {e: [positions[d] for d in chain] for e, chain in routes.items()}
    return {n: positions[n] for n in node_ids}, waypoints


def _order_layers(g, layers, sweeps: int) -> None:
    """Sort each layer by the mean position of its neighbours above (then below)."""
    rank = {n: i for layer in layers for i, n in enumerate(layer)}
    for sweep in range(sweeps):
        down = sweep % 2 == 0
        for layer in (layers[1:] if down else layers[-2::-1]):
            def barycenter(n):
                near = list(g.predecessors(n) if down else g.successors(n))
                return sum(rank[m] for m in near) / len(near) if near else rank[n]
            layer.sort(key=barycenter)
            rank.update({n: i for i, n in enumerate(layer)})


def _place(layers, sizes) -> dict:
    """Centres: each layer centred on the widest, boxes GAP_X apart, layers GAP_Y apart."""
    positions, y = {}, 0.0
    widths = [sum(sizes[n][0] for n in layer) + GAP_X * (len(layer) - 1) for layer in layers]
    full = max(widths, default=0.0)
    for layer, width in zip(layers, widths):
        height = max((sizes[n][1] for n in layer), default=0.0)
        x = (full - width) / 2
        for n in layer:
            w = sizes[n][0]
            positions[n] = (x + w / 2, y + height / 2)
            x += w + GAP_X
        y += height + GAP_Y
    return positions
