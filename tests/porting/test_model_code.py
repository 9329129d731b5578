"""Typical PyTorch model code, written once in PyTorch's spelling, run on both libraries.

Each piece below is the kind of code found in public model files: a GPT block with a
``tril`` causal mask kept as a buffer, top-k sampling with ``multinomial``, label smoothing
with ``KLDivLoss`` and ``scatter_``, greedy decoding with ``torch.max(prob, dim=1)``. Each is
executed with PyTorch's modules and with minitensor's (only the imports differ), given the
same weights through ``load_state_dict``, and compared in float64.
"""
from __future__ import annotations

import numpy as np
import pytest

import minitensor as mt

from porting_helpers import assert_same_gradients, copy_weights, namespace

pytest.importorskip("torch")

GPT_BLOCK = '''
class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd, n_head, block_size, dropout=0.0):
        super().__init__()
        assert n_embd % n_head == 0
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.attn_dropout = nn.Dropout(dropout)
        self.n_head = n_head
        self.n_embd = n_embd
        self.register_buffer("bias", torch.tril(torch.ones(block_size, block_size))
                             .view(1, 1, block_size, block_size))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float('-inf'))
        att = F.softmax(att, dim=-1)
        att = self.attn_dropout(att)
        y = att @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class Block(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, block_size)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(),
                                 nn.Linear(4 * n_embd, n_embd))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class TinyGPT(nn.Module):
    def __init__(self, vocab_size, n_embd, n_head, block_size, n_layer):
        super().__init__()
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList([Block(n_embd, n_head, block_size) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)

    def forward(self, idx, targets=None):
        device = idx.device
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long, device=device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss

    @torch.no_grad()
    def generate_topk(self, idx, max_new_tokens, top_k):
        for _ in range(max_new_tokens):
            idx_cond = idx if idx.size(1) <= self.block_size else idx[:, -self.block_size:]
            logits, _ = self(idx_cond)
            logits = logits[:, -1, :]
            v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
            logits[logits < v[:, [-1]]] = -float('Inf')
            probs = F.softmax(logits, dim=-1)
            idx_next = torch.multinomial(probs, num_samples=1)
            idx = torch.cat((idx, idx_next), dim=1)
        return idx
'''

LABEL_SMOOTHING = '''
class LabelSmoothing(nn.Module):
    def __init__(self, size, padding_idx, smoothing=0.0):
        super(LabelSmoothing, self).__init__()
        self.criterion = nn.KLDivLoss(reduction="sum")
        self.padding_idx = padding_idx
        self.confidence = 1.0 - smoothing
        self.smoothing = smoothing
        self.size = size
        self.true_dist = None

    def forward(self, x, target):
        assert x.size(1) == self.size
        true_dist = x.detach().clone()
        true_dist.fill_(self.smoothing / (self.size - 2))
        true_dist.scatter_(1, target.unsqueeze(1), self.confidence)
        true_dist[:, self.padding_idx] = 0
        mask = torch.nonzero(target == self.padding_idx)
        if mask.dim() > 0:
            true_dist.index_fill_(0, mask.squeeze(), 0.0)
        self.true_dist = true_dist
        return self.criterion(x, true_dist.clone().detach())
'''

GREEDY = '''
class Seq2Seq(nn.Module):
    def __init__(self, vocab, d_model, nhead):
        super().__init__()
        self.src_embed = nn.Embedding(vocab, d_model)
        self.tgt_embed = nn.Embedding(vocab, d_model)
        self.attn = nn.Linear(d_model, d_model)
        self.generator = nn.Linear(d_model, vocab)

    def encode(self, src):
        return torch.tanh(self.src_embed(src))

    def decode(self, memory, ys):
        query = self.tgt_embed(ys)
        scores = torch.bmm(query, self.attn(memory).transpose(1, 2))
        return torch.bmm(F.softmax(scores, dim=-1), memory) + query


def greedy_decode(model, src, max_len, start_symbol):
    memory = model.encode(src)
    ys = torch.ones(1, 1).fill_(start_symbol).type_as(src)
    for i in range(max_len - 1):
        out = model.decode(memory, ys)
        prob = F.log_softmax(model.generator(out[:, -1]), dim=-1)
        _, next_word = torch.max(prob, dim=1)
        next_word = next_word.item()
        ys = torch.cat([ys, torch.zeros(1, 1).type_as(src).fill_(next_word)], dim=1)
    return ys
'''


def _pair(source, cls, *args):
    torch_ns, mt_ns = namespace("torch", source), namespace("minitensor", source)
    torch = torch_ns["torch"]
    torch.manual_seed(0)
    reference = torch_ns[cls](*args).double()
    ours = mt_ns[cls](*args).double()
    copy_weights(reference, ours)
    return torch, torch_ns, mt_ns, reference, ours


def test_gpt_block_with_tril_mask_matches_torch():
    torch, _, _, reference, ours = _pair(GPT_BLOCK, "TinyGPT", 23, 16, 4, 8, 2)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 23, size=(3, 8))
    targets = rng.integers(0, 23, size=(3, 8))
    targets[0, :2] = -1
    logits_t, loss_t = reference(torch.tensor(idx), torch.tensor(targets))
    logits_m, loss_m = ours(mt.tensor(idx), mt.tensor(targets))
    assert mt.tensor(idx).dtype == mt.int64
    np.testing.assert_allclose(logits_m.data, logits_t.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(loss_m.item(), loss_t.item(), rtol=1e-13)
    loss_t.backward()
    loss_m.backward()
    assert_same_gradients(reference, ours)


def test_topk_sampling_keeps_to_the_top_k():
    torch, _, _, reference, ours = _pair(GPT_BLOCK, "TinyGPT", 23, 16, 4, 8, 2)
    start = np.array([[1, 2, 3]])
    # top_k=1 is greedy: both libraries must pick the same tokens whatever their RNGs.
    greedy_t = reference.generate_topk(torch.tensor(start), 10, top_k=1)
    greedy_m = ours.generate_topk(mt.tensor(start), 10, top_k=1)
    np.testing.assert_array_equal(greedy_m.numpy(), greedy_t.numpy())
    # top_k=3: each sampled token is among the 3 most likely after the same prefix.
    mt.manual_seed(0)
    sampled = ours.generate_topk(mt.tensor(start), 6, top_k=3).numpy()
    for step in range(3, sampled.shape[1]):
        logits, _ = reference(torch.tensor(sampled[:, max(0, step - 8):step]))
        allowed = set(torch.topk(logits[0, -1], 3).indices.tolist())
        assert int(sampled[0, step]) in allowed


def test_label_smoothing_with_kldiv_and_scatter_matches_torch():
    torch_ns, mt_ns = namespace("torch", LABEL_SMOOTHING), namespace("minitensor", LABEL_SMOOTHING)
    torch = torch_ns["torch"]
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((6, 9))
    target = np.array([2, 1, 0, 3, 0, 8])  # pad id 0 twice
    x_t = torch.tensor(scores, requires_grad=True)
    x_m = mt.tensor(scores, requires_grad=True)
    crit_t, crit_m = torch_ns["LabelSmoothing"](9, 0, 0.4), mt_ns["LabelSmoothing"](9, 0, 0.4)
    loss_t = crit_t(torch.log_softmax(x_t, dim=-1), torch.tensor(target))
    loss_m = crit_m(mt.log_softmax(x_m, dim=-1), mt.tensor(target))
    np.testing.assert_allclose(crit_m.true_dist.numpy(), crit_t.true_dist.numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(loss_m.item(), loss_t.item(), rtol=1e-13)
    loss_t.backward()
    loss_m.backward()
    np.testing.assert_allclose(x_m.grad.data, x_t.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_greedy_decoding_with_max_dim_matches_torch():
    torch, torch_ns, mt_ns, reference, ours = _pair(GREEDY, "Seq2Seq", 11, 8, 2)
    src = np.array([[3, 4, 5, 6, 7]])
    ys_t = torch_ns["greedy_decode"](reference, torch.tensor(src), 8, 1)
    ys_m = mt_ns["greedy_decode"](ours, mt.tensor(src), 8, 1)
    assert ys_m.dtype == mt.int64
    np.testing.assert_array_equal(ys_m.numpy(), ys_t.numpy())


def test_max_with_dim_is_a_named_pair():
    x = mt.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    values, indices = mt.max(x, dim=1)
    np.testing.assert_array_equal(values.numpy(), [5.0, 7.0])
    np.testing.assert_array_equal(indices.numpy(), [1, 0])
    pair = x.max(1)
    assert pair.values is not None and pair.indices.dtype == mt.int64
    np.testing.assert_array_equal(x.max(axis=1).numpy(), [5.0, 7.0])  # NumPy's spelling: values only
