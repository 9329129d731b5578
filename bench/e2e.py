"""End-to-end rows: one training step (forward, backward, Adam) of an encoder-decoder.

Three implementations of the same model, same sizes, same batch:

    minitensor numba   transformer.Seq2SeqTransformer, kernels backend "numba"
    minitensor numpy   the same model object, kernels backend "numpy"
    torch              torch.nn.Transformer(batch_first=True) + embeddings * sqrt(d_model)
                       + sinusoidal positions + dropout + Linear generator

All in train mode (dropout 0.1 active), cross-entropy on the next-token targets,
Adam(lr=1e-4). A step is: forward -> loss -> zero_grad -> backward -> optimizer step.
The causal target mask is built inside the step on both sides (as a training loop
does). Tokens are drawn from 1..V-1 (no padding, so no padding masks). Target tokens/s
is batch * tgt_len / step time.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from . import harness


@dataclass(frozen=True)
class E2EConfig:
    """Model and batch sizes of one end-to-end row."""

    name: str
    d_model: int
    nhead: int
    layers: int          # encoder layers = decoder layers
    dim_ff: int
    vocab: int
    batch: int
    length: int          # source length = target length
    dropout: float = 0.1

    def describe(self) -> str:
        return (f"d{self.d_model} h{self.nhead} L{self.layers}+{self.layers} ff{self.dim_ff} "
                f"V{self.vocab} B{self.batch} T{self.length}")


CONFIGS = {
    "S": E2EConfig("S", 128, 4, 2, 512, 1000, 32, 32),
    "M": E2EConfig("M", 256, 8, 3, 1024, 1000, 32, 64),
    "toy": E2EConfig("toy", 16, 2, 1, 32, 50, 2, 8),
}


def configs_for(size: str) -> list:
    """Which configs a run of ``size`` times."""
    return {"full": ["S", "M"], "quick": ["S"], "toy": ["toy"]}[size]


def make_batch(cfg: E2EConfig, seed: int = 0):
    """src (B, T), tgt_in (B, T), tgt_out (B, T) int64 token ids in 1..V-1."""
    rng = np.random.default_rng(seed)
    src = rng.integers(1, cfg.vocab, (cfg.batch, cfg.length))
    tgt = rng.integers(1, cfg.vocab, (cfg.batch, cfg.length + 1))
    return src, tgt[:, :-1], tgt[:, 1:]


# ----------------------------------------------------------------------- minitensor

def build_ours(cfg: E2EConfig, seed: int = 0):
    """(model, step(backend) -> loss float) for minitensor + transformer."""
    import minitensor as mt
    import transformer
    from minitensor import functional as F
    from minitensor import kernels, optim

    mt.manual_seed(seed)
    tcfg = transformer.TransformerConfig(
        d_model=cfg.d_model, nhead=cfg.nhead, num_encoder_layers=cfg.layers,
        num_decoder_layers=cfg.layers, dim_feedforward=cfg.dim_ff, dropout=cfg.dropout,
        src_vocab_size=cfg.vocab, tgt_vocab_size=cfg.vocab, max_len=max(512, cfg.length))
    model = transformer.Seq2SeqTransformer(tcfg)
    model.train()
    opt = optim.Adam(model.parameters(), lr=1e-4)
    src, tgt_in, tgt_out = make_batch(cfg, seed)
    target = mt.tensor(tgt_out.reshape(-1))

    def step(backend: str = "numba") -> float:
        with kernels.use(backend):
            logits = model(src, tgt_in)                                   # (B, T, V)
            loss = F.cross_entropy(logits.reshape(-1, cfg.vocab), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return loss.item()
    return model, step


def count_params_ours(model) -> int:
    return sum(int(np.prod(p.shape)) for p in model.parameters())


# ---------------------------------------------------------------------------- torch

def build_torch(torch, cfg: E2EConfig, seed: int = 0):
    """(model, step() -> loss float) for the torch.nn equivalent."""
    nn = torch.nn
    torch.manual_seed(seed)

    class Seq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.src_embed = nn.Embedding(cfg.vocab, cfg.d_model, padding_idx=0)
            self.tgt_embed = nn.Embedding(cfg.vocab, cfg.d_model, padding_idx=0)
            self.register_buffer("pe", torch.from_numpy(_sinusoid(max(512, cfg.length), cfg.d_model)))
            self.src_drop = nn.Dropout(cfg.dropout)
            self.tgt_drop = nn.Dropout(cfg.dropout)
            self.transformer = nn.Transformer(cfg.d_model, cfg.nhead, cfg.layers, cfg.layers,
                                              cfg.dim_ff, cfg.dropout, batch_first=True)
            self.generator = nn.Linear(cfg.d_model, cfg.vocab)

        def forward(self, src, tgt):
            scale = math.sqrt(cfg.d_model)
            s = self.src_drop(self.src_embed(src) * scale + self.pe[:src.shape[1]])  # (B, S, D)
            t = self.tgt_drop(self.tgt_embed(tgt) * scale + self.pe[:tgt.shape[1]])  # (B, T, D)
            mask = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1])     # (T, T)
            h = self.transformer(s, t, tgt_mask=mask, tgt_is_causal=True)           # (B, T, D)
            return self.generator(h)                                                # (B, T, V)

    model = Seq2Seq()
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    src, tgt_in, tgt_out = (torch.from_numpy(a) for a in make_batch(cfg, seed))
    target = tgt_out.reshape(-1)

    def step() -> float:
        logits = model(src, tgt_in)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()
    return model, step


def _sinusoid(n: int, d: int) -> np.ndarray:
    """The paper's table: PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(...)."""
    pos = np.arange(n)[:, None]
    div = np.exp(np.arange(0, d, 2) * (-math.log(10000.0) / d))
    pe = np.zeros((n, d), np.float32)
    pe[:, 0::2] = np.sin(pos * div)
    pe[:, 1::2] = np.cos(pos * div)
    return pe


# ------------------------------------------------------------------------------ run

def run_config(cfg: E2EConfig, settings, torch=None) -> dict:
    """One e2e row: step time and target tokens/s for numba, numpy, torch."""
    row = {"section": "e2e", "name": f"train step {cfg.name}", "shape": cfg.describe(),
           "config": asdict(cfg), "notes": []}
    fns = {}
    try:
        model, step = build_ours(cfg)
        fns["numba"] = lambda: step("numba")
        fns["numpy"] = lambda: step("numpy")
        row["params_ours"] = count_params_ours(model)
    except ImportError as e:
        row["notes"].append(f"minitensor/transformer not importable: {e}")
    if torch is not None:
        tmodel, tstep = build_torch(torch, cfg)
        fns["torch"] = tstep
        row["params_torch"] = sum(p.numel() for p in tmodel.parameters())
    if "numba" not in fns:
        return row
    timings = harness.compare(fns, _e2e_settings(settings), repeat=settings.e2e_repeat)
    tokens = cfg.batch * cfg.length
    for name in ("numba", "numpy", "torch"):
        t = timings.get(name)
        row[f"{name}_ms"] = t.median * 1e3 if t else None
        row[f"{name}_runs_ms"] = [r * 1e3 for r in t.runs] if t else None
        row[f"{name}_tok_s"] = tokens / t.median if t else None
    row["numpy_over_numba"] = harness.ratio(row["numpy_ms"], row["numba_ms"])
    row["torch_over_numba"] = harness.ratio(row["torch_ms"], row["numba_ms"])
    return row


def _e2e_settings(settings):
    """One step per run (a step is long enough to time alone), one warm-up step."""
    return harness.Settings(repeat=settings.e2e_repeat, warmup=1, min_run_time=0.0,
                            e2e_repeat=settings.e2e_repeat, size=settings.size)


def run(settings, torch=None, log=print) -> list:
    """Every e2e row for ``settings.size``; a failure becomes a row note."""
    rows = []
    for key in configs_for(settings.size):
        cfg = CONFIGS[key]
        try:
            row = run_config(cfg, settings, torch)
        except Exception as e:  # the model code is still moving: report, don't crash
            row = {"section": "e2e", "name": f"train step {cfg.name}", "shape": cfg.describe(),
                   "notes": [], "error": f"{type(e).__name__}: {e}"}
        rows.append(row)
        log(_progress(row))
    return rows


def _progress(row: dict) -> str:
    if row.get("error"):
        return f"  {row['name']}: ERROR {row['error']}"
    if row.get("numba_ms") is None:
        return f"  {row['name']}: skipped ({'; '.join(row['notes'])})"
    return f"  {row['name']}: numba {row['numba_ms']:.1f} ms"


E2E_COLUMNS = [("name", "row", ""), ("shape", "config", ""),
               ("numba_ms", "numba ms", ".1f"), ("numpy_ms", "numpy ms", ".1f"),
               ("torch_ms", "torch ms", ".1f"), ("numpy_over_numba", "numpy/numba", ".2f"),
               ("torch_over_numba", "torch/numba", ".2f"), ("numba_tok_s", "numba tok/s", ".0f"),
               ("numpy_tok_s", "numpy tok/s", ".0f"), ("torch_tok_s", "torch tok/s", ".0f")]
