"""``draw_graph``: the graph as an SVG (written here, by hand: rects, text, arrows) that
Jupyter shows inline, and as a PNG (matplotlib). No system binaries needed."""
from __future__ import annotations

import io
import os
from html import escape

from ..io import atomic_write
from ..tensor import Tensor
from .graph import Graph, build_graph
from .layout import LINE_H, PAD, box_size, layered_layout

_FILL = {"op": "#dbe8f6", "leaf": "#eeeeee", "param": "#fde7c4", "group": "#d9f0d3"}
_GROUP_TINTS = ["#dbe8f6", "#e8dcf4", "#f6dde0", "#dcf2ef", "#f4efd4", "#e0e8d8"]
_MARGIN = 12.0


def draw_graph(t: Tensor, params: dict | None = None, depth: int | None = None) -> "GraphView":
    """Draw the autograd graph that produced ``t``.

    Args:
        t: the output (a loss, or any tensor with a graph).
        params: {name: tensor} (e.g. ``dict(model.named_parameters())``): leaves are
            labelled with these names; after ``backward()`` they show gradient norms.
        depth: collapse the ops of each module call below this many levels of modules
            into one box (needs the forward to run inside ``viz.capture(model)``);
            None draws every op.
    Returns:
        A ``GraphView``: shown inline in Jupyter, ``.save("g.svg" | "g.png")``.
    """
    if not isinstance(t, Tensor):
        raise TypeError(f"draw_graph: expected a Tensor, got {type(t).__name__}")
    if depth is not None and depth < 0:
        raise ValueError(f"draw_graph: depth must be None or >= 0, got {depth}")
    return GraphView(build_graph(t, params, depth))


class GraphView:
    """A laid-out graph: ``.graph`` (boxes and arrows), ``.svg()``, ``.save(path)``."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.sizes = {n.id: box_size(n.title, n.lines) for n in graph.nodes.values()}
        self.positions, self.waypoints = layered_layout(list(graph.nodes), graph.edges, self.sizes)
        xs = [self.positions[n][0] + self.sizes[n][0] / 2 for n in graph.nodes] or [0]
        ys = [self.positions[n][1] + self.sizes[n][1] / 2 for n in graph.nodes] or [0]
        self.width, self.height = max(xs) + 2 * _MARGIN, max(ys) + 2 * _MARGIN
        groups = sorted({n.group for n in graph.nodes.values() if n.group})
        self._tint = {g: _GROUP_TINTS[i % len(_GROUP_TINTS)] for i, g in enumerate(groups)}

    def _repr_svg_(self) -> str:
        return self.svg()

    def save(self, path) -> None:
        """Write ``path``: .svg (the same text Jupyter shows) or .png (matplotlib)."""
        ext = os.path.splitext(os.fspath(path))[1].lower()
        if ext == ".svg":
            atomic_write(path, self.svg())
        elif ext == ".png":
            self._save_png(path)
        else:
            raise ValueError(f"GraphView.save: unknown extension {ext!r} of {os.fspath(path)!r}; "
                             "use .svg or .png")

    def fill(self, node) -> str:
        if node.kind == "leaf":
            return _FILL["param"] if node.title != "tensor" else _FILL["leaf"]
        if node.kind == "op" and node.group:
            return self._tint[node.group]
        return _FILL[node.kind]

    def _box(self, node_id):
        """(left, top, width, height) of a box, margins included."""
        (x, y), (w, h) = self.positions[node_id], self.sizes[node_id]
        return x - w / 2 + _MARGIN, y - h / 2 + _MARGIN, w, h

    def _route(self, edge) -> list[tuple[float, float]]:
        """The arrow's points: bottom of the source, waypoints, top of the target."""
        (x1, y1, w1, h1), (x2, y2, w2, _) = self._box(edge[0]), self._box(edge[1])
        via = [(x + _MARGIN, y + _MARGIN) for x, y in self.waypoints.get(edge, ())]
        return [(x1 + w1 / 2, y1 + h1), *via, (x2 + w2 / 2, y2)]

    def svg(self) -> str:
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width:.0f}" '
                 f'height="{self.height:.0f}" viewBox="0 0 {self.width:.0f} {self.height:.0f}" '
                 'font-family="monospace" font-size="11">',
                 '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
                 'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
                 '<path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>']
        for edge in self.graph.edges:
            points = self._route(edge)
            d = f"M {points[0][0]:.1f} {points[0][1]:.1f}"
            for (x1, y1), (x2, y2) in zip(points, points[1:]):  # a smooth S between points
                my = (y1 + y2) / 2
                d += f" C {x1:.1f} {my:.1f}, {x2:.1f} {my:.1f}, {x2:.1f} {y2:.1f}"
            parts.append(f'<path d="{d}" fill="none" stroke="#555" stroke-width="1" '
                         'marker-end="url(#arrow)"/>')
        for node in self.graph.nodes.values():
            left, top, w, h = self._box(node.id)
            stroke = ' stroke="#c0392b" stroke-width="2.5"' if node.is_root else \
                ' stroke="#444" stroke-width="1"'
            dash = ' stroke-dasharray="5,3"' if node.kind == "group" else ""
            parts.append(f'<g><title>{escape(node.title)}</title><rect x="{left:.1f}" y="{top:.1f}" '
                         f'width="{w:.1f}" height="{h:.1f}" rx="5" fill="{self.fill(node)}"{stroke}{dash}/>')
            for i, text in enumerate([node.title] + node.lines):
                weight = ' font-weight="bold"' if i == 0 else ""
                parts.append(f'<text x="{left + w / 2:.1f}" y="{top + PAD / 2 + (i + 0.8) * LINE_H:.1f}" '
                             f'text-anchor="middle"{weight}>{escape(text)}</text>')
            parts.append("</g>")
        parts.append("</svg>")
        return "\n".join(parts)

    def _save_png(self, path) -> None:
        # matplotlib is imported here, not at the top: only PNG needs it (and it is slow to load)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

        dpi = 100
        fig = Figure(figsize=(self.width / dpi, self.height / dpi), dpi=dpi)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, self.width)
        ax.set_ylim(self.height, 0)  # y grows downwards, as in the SVG
        ax.axis("off")
        for edge in self.graph.edges:
            points = self._route(edge)
            for a, b in zip(points[:-2], points[1:-1]):
                ax.plot([a[0], b[0]], [a[1], b[1]], color="#555", linewidth=0.8)
            ax.add_patch(FancyArrowPatch(points[-2], points[-1], arrowstyle="-|>",
                                         mutation_scale=8, color="#555", linewidth=0.8))
        points = 72 / dpi  # font sizes are in points, the layout in pixels
        for node in self.graph.nodes.values():
            left, top, w, h = self._box(node.id)
            ax.add_patch(FancyBboxPatch((left, top), w, h, boxstyle="round,pad=0,rounding_size=4",
                                        facecolor=self.fill(node),
                                        edgecolor="#c0392b" if node.is_root else "#444",
                                        linewidth=2 if node.is_root else 0.8,
                                        linestyle="--" if node.kind == "group" else "-"))
            for i, text in enumerate([node.title] + node.lines):
                ax.text(left + w / 2, top + PAD / 2 + (i + 0.5) * LINE_H, text, ha="center",
                        va="center", family="monospace", fontsize=11 * points,
                        fontweight="bold" if i == 0 else "normal")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
        atomic_write(path, buffer.getvalue())
