"""PNG plots of a run: loss curves and attention heatmaps.

Drawn on `matplotlib.figure.Figure` with the Agg canvas directly, never through
pyplot, so importing this module does not change matplotlib's global backend (a
notebook that imports it keeps its own) and works on a machine without a display.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from minitensor.io import atomic_write

PathLike = str | os.PathLike[str]

# Eval metrics drawn on the loss plot's second panel, in order of preference.
_SCORE_KEYS = ("exact_match", "accuracy", "span_exact_match", "token_accuracy", "bleu")


def _save(fig: Figure, path: PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    atomic_write(path, buffer.getvalue())  # a reader never sees half a PNG
    return path


def plot_loss_curves(records: Iterable[Mapping], path: PathLike, title: str = "") -> Path:
    """Training and validation loss against step, plus the main eval score.

    Args:
        records: metrics-log records (see `transformer.train`): dicts with "step",
            "split" ("train" or "val") and "loss"; val records may hold scores such
            as "exact_match" or "accuracy" (fractions in [0, 1]).
        path: the PNG to write.
        title: figure title.

    Returns:
        The path written.
    """
    records = list(records)
    train = [(r["step"], r["loss"]) for r in records if r.get("split") == "train" and "loss" in r]
    val = [r for r in records if r.get("split") == "val"]
    score_key = next((k for k in _SCORE_KEYS if any(k in r for r in val)), None)

    fig = Figure(figsize=(10 if score_key else 6, 4))
    ax = fig.add_subplot(1, 2 if score_key else 1, 1)
    if train:
        ax.plot(*zip(*train), label="train (label-smoothed)", lw=1)
    val_loss = [(r["step"], r["loss"]) for r in val if "loss" in r]
    if val_loss:
        ax.plot(*zip(*val_loss), "o-", label="val", ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    if score_key:
        ax2 = fig.add_subplot(1, 2, 2)
        pts = [(r["step"], r[score_key]) for r in val if score_key in r]
        ax2.plot(*zip(*pts), "o-", color="tab:green", ms=3)
        ax2.set_xlabel("step")
        ax2.set_ylabel(f"val {score_key}")
        if score_key != "bleu":
            ax2.set_ylim(-0.02, 1.02)
        ax2.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_attention(
    weights: np.ndarray,
    path: PathLike,
    query_labels: Sequence[str] | None = None,
    key_labels: Sequence[str] | None = None,
    title: str = "",
    query_axis: str = "query",
    key_axis: str = "key",
) -> Path:
    """One heatmap per head of one example's attention weights, with a shared colorbar.

    Rows are queries (the positions that attend), columns keys (the positions attended
    to); special tokens are named (BOS, EOS, PAD), a space shows as ␣.

    Args:
        weights: (H, Tq, Tk) attention probabilities (rows sum to 1), or (Tq, Tk).
        path: the PNG to write.
        query_labels: Tq tick labels (the tokens that attend).
        key_labels: Tk tick labels (the tokens attended to).
        title: figure title (e.g. which attention, and the example's input and output).
        query_axis, key_axis: the axis titles.

    Returns:
        The path written.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3:
        raise ValueError(f"plot_attention: expected (H, Tq, Tk) weights, got shape {w.shape}")
    heads, tq, tk = w.shape
    cols = min(heads, 4)
    rows = math.ceil(heads / cols)
    # Room for each cell and for the longest tick label (word tokens can be long).
    longest = max((len(_show(t)) for t in [*(query_labels or []), *(key_labels or [])]), default=1)
    label_in = min(0.08 * longest, 1.2)
    cell = max(2.4, 0.24 * max(tq, tk))
    fig = Figure(figsize=(cols * (cell + label_in + 0.3) + 1.2, rows * (cell + label_in + 0.4) + 0.9),
                 layout="constrained")
    axes = [fig.add_subplot(rows, cols, h + 1) for h in range(heads)]
    image = None
    for h, ax in enumerate(axes):
        image = ax.imshow(w[h], cmap="viridis", vmin=0.0, vmax=1.0, aspect="equal", interpolation="nearest")
        ax.set_title(f"head {h}", fontsize=9)
        _ticks(ax.set_xticks, ax.set_xticklabels, key_labels, tk,
               rotation=90 if max((len(_show(t)) for t in key_labels or []), default=1) > 1 else 0)
        _ticks(ax.set_yticks, ax.set_yticklabels, query_labels, tq)
        if h % cols == 0:
            ax.set_ylabel(query_axis, fontsize=9)
        if h >= heads - cols:
            ax.set_xlabel(key_axis, fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _ticks(set_ticks, set_labels, labels: Sequence[str] | None, n: int, rotation: int = 0) -> None:
    if labels is None or len(labels) != n:
        set_ticks([])
        return
    set_ticks(range(n))
    set_labels([_show(t) for t in labels], fontsize=8, rotation=rotation)


# Names a reader knows, for tokens that would otherwise be invisible or cryptic.
TOKEN_NAMES = {"<pad>": "PAD", "<bos>": "BOS", "<eos>": "EOS", "<unk>": "UNK", " ": "␣", "\n": "\\n",
               "\t": "\\t"}


def _show(token: str) -> str:
    return TOKEN_NAMES.get(token, token)


def describe_attention(name: str) -> tuple[str, str, str]:
    """(what it is, query axis title, key axis title) for an attention module's dotted name,
    e.g. "transformer.decoder.layers.1.multihead_attn" -> ("decoder layer 1: cross-attention", ...)."""
    parts = name.split(".")
    layer = next((parts[i + 1] for i, p in enumerate(parts[:-1]) if p == "layers"), None)
    stack = "decoder" if "decoder" in parts else "encoder" if "encoder" in parts else ""
    where = " ".join(x for x in (stack, f"layer {layer}" if layer is not None else "") if x) or name
    if parts[-1] == "multihead_attn":
        return (f"{where}: cross-attention", "query (output so far, decoder input)",
                "key (input token)")
    if stack == "decoder":
        return f"{where}: self-attention (causal)", "query (output position)", "key (earlier output)"
    return f"{where}: self-attention", "query (input position)", "key (input token)"


def plot_attention_maps(
    maps: Mapping[str, np.ndarray],
    out_dir: PathLike,
    labels: Mapping[str, tuple[Sequence[str] | None, Sequence[str] | None]] | None = None,
    example: int = 0,
    caption: str = "",
) -> list[Path]:
    """Write one PNG per attention module from `capture_attention`'s output.

    Args:
        maps: {module name: (B, H, Tq, Tk) weights}.
        out_dir: the folder for the PNGs (named attention_<module>.png).
        labels: {module name: (query labels, key labels)}; missing names get no ticks.
        example: which batch row to draw.
        caption: the example, e.g. "'July 5, 2023' -> '2023-07-05'", added to every title.

    Returns:
        The paths written.
    """
    paths = []
    for name, w in maps.items():
        w = np.asarray(w)
        w = w[example] if w.ndim == 4 else w
        q_labels, k_labels = (labels or {}).get(name, (None, None))
        what, q_axis, k_axis = describe_attention(name)
        title = f"{what}\n{caption}" if caption else what
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
        paths.append(plot_attention(w, Path(out_dir) / f"attention_{safe}.png", q_labels, k_labels, title,
                                    q_axis, k_axis))
    return paths
