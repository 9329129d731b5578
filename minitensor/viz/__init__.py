"""See the graph: draw what autograd recorded, grouped by the module that made it.

    from minitensor import viz
    with viz.capture(model):                 # optional: remember module and code line per op
        loss = model(x).mean()
    g = viz.draw_graph(loss, params=dict(model.named_parameters()), depth=2)
    g                                         # renders inline in Jupyter (SVG)
    g.save("graph.svg"); g.save("graph.png")

Files: ``capture.py`` (which module call and which line made each op), ``graph.py``
(walk the engine's nodes into boxes and arrows, collapsing modules below ``depth``),
``layout.py`` (layers from networkx, order by barycenters), ``render.py`` (SVG by hand,
PNG with matplotlib). No system software needed.
"""
from .capture import capture
from .graph import Graph, GraphNode, build_graph
from .render import GraphView, draw_graph

__all__ = ["Graph", "GraphNode", "GraphView", "build_graph", "capture", "draw_graph"]
