"""viz.draw_graph: the graph of a known expression, module grouping, SVG and PNG files."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

import minitensor as mt
from minitensor import nn, viz

pytest.importorskip("networkx")


def _by_title(graph):
    return {n.title: n for n in graph.nodes.values()}


def test_known_expression_nodes_and_edges():
    a = mt.randn(3, requires_grad=True)
    b = mt.randn(3, requires_grad=True)
    c = mt.randn(3)                                   # data: no box
    loss = ((a * b).exp() + a * c).sum()
    graph = viz.draw_graph(loss, params={"a": a, "b": b}).graph
    titles = sorted(n.title for n in graph.nodes.values())
    assert titles == ["Add", "Exp", "Mul", "Mul", "Sum", "a", "b"]
    box = {n.id: n.title for n in graph.nodes.values()}
    edges = sorted((box[s], box[d]) for s, d in graph.edges)
    assert edges == sorted([("a", "Mul"), ("b", "Mul"), ("Mul", "Exp"), ("a", "Mul"),
                            ("Exp", "Add"), ("Mul", "Add"), ("Add", "Sum")])
    nodes = _by_title(graph)
    assert nodes["Sum"].is_root and nodes["Sum"].lines[0] == "() float32"
    assert nodes["Exp"].lines[0] == "(3) float32"
    assert nodes["Exp"].saved_bytes == 12             # Exp saves its float32 (3,) output
    assert nodes["Add"].saved_bytes == 0


def test_leaves_show_gradient_norms_after_backward():
    w = mt.tensor([3.0, 4.0], requires_grad=True)
    loss = (w * mt.tensor([1.0, 1.0])).sum()
    loss.backward()
    graph = viz.draw_graph(loss, params={"w": w}).graph
    assert _by_title(graph)["w"].lines[-1] == "|grad| 1.41"   # |(1, 1)| = sqrt(2)


def test_depth_collapses_module_calls():
    mt.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    x = mt.randn(3, 4)
    with viz.capture(model):
        loss = model(x).sum()
    params = dict(model.named_parameters())
    full = viz.draw_graph(loss, params=params).graph
    assert sorted(n.title for n in full.nodes.values() if n.kind == "op") == \
        ["Linear", "Linear", "ReLU", "Sum"]
    grouped = viz.draw_graph(loss, params=params, depth=1).graph
    titles = {n.id: n.title for n in grouped.nodes.values()}
    assert sorted(titles.values()) == ["0", "1", "2", "Sum"]  # Sequential's children
    assert sorted((titles[s], titles[d]) for s, d in grouped.edges) == \
        [("0", "1"), ("1", "2"), ("2", "Sum")]
    first = _by_title(grouped)["0"]
    assert first.kind == "group" and "2 parameters" in first.lines


def test_capture_records_module_path_and_location():
    model = nn.Sequential(nn.Linear(2, 2))
    with viz.capture(model):
        y = model(mt.randn(1, 2))
    (name, _call), = y._node.module_path
    assert name == "0"
    assert y._node.created_at is not None and "test_viz.py" in y._node.created_at
    z = model(mt.randn(1, 2))                          # outside: nothing recorded
    assert not hasattr(z._node, "module_path") and z._node.created_at is None


def test_svg_is_well_formed_and_png_is_written(tmp_path):
    a = mt.randn(2, 2, requires_grad=True)
    view = viz.draw_graph((a @ a).relu().mean(), params={"a <&>": a})
    root = ET.fromstring(view._repr_svg_())            # parses: names are escaped
    assert root.tag.endswith("svg")
    texts = [t.text for t in root.iter() if t.tag.endswith("text")]
    assert "a <&>" in texts and "MatMul" in texts
    view.save(tmp_path / "g.svg")
    view.save(tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"\.svg or \.png"):
        view.save(tmp_path / "g.pdf")


def test_multi_output_op_shows_each_used_output():
    q = mt.randn(1, 3, 8, requires_grad=True)
    out, weights = mt.ops.attention.Attention.apply(q, q, q, num_heads=2, need_weights=True)
    graph = viz.draw_graph(out.sum() + weights.sum()).graph
    attention = _by_title(graph)["Attention"]
    assert attention.lines[:2] == ["[0] (1, 3, 8) float32", "[1] (1, 2, 3, 3) float32"]
