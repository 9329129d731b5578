"""Stacks and the full Transformer (torch parity, state dict keys, cloning, init), the
ready-made models, positional encodings, masks and the config."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import minitensor as mt
import transformer as T
from transformer.task_models import MASKED_LOGIT

D, NHEAD, FF = 8, 2, 16
RTOL, ATOL = 1e-7, 1e-10
pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _close(ours, theirs, what):
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=what)


def _small_cfg(**kw):
    base = dict(d_model=D, nhead=NHEAD, num_encoder_layers=2, num_decoder_layers=2,
                dim_feedforward=FF, dropout=0.0, src_vocab_size=11, tgt_vocab_size=13,
                max_len=32, pad_id=0)
    base.update(kw)
    return T.TransformerConfig(**base)


# ----------------------------------------------------------------------------- Transformer vs torch

@pytest.mark.parametrize("norm_first,activation,batch_first", [
    (False, "relu", True), (True, "gelu", True), (False, "gelu", False), (True, "relu", False)])
def test_transformer_parity(torch, norm_first, activation, batch_first):
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    kw = dict(d_model=D, nhead=NHEAD, num_encoder_layers=2, num_decoder_layers=2,
              dim_feedforward=FF, dropout=0.0, activation=activation, batch_first=batch_first,
              norm_first=norm_first)
    theirs = torch.nn.Transformer(**kw).double()
    with torch.no_grad():  # non-trivial LayerNorm parameters and biases
        for p in theirs.parameters():
            if p.ndim == 1:
                p.add_(0.3 * torch.randn(p.shape, dtype=p.dtype))
    ours = T.Transformer(**kw).double()
    sd = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    assert list(ours.state_dict()) == list(sd)
    ours.load_state_dict(sd)

    B, S, Tt = 3, 5, 4
    shape = (lambda n: (B, n, D)) if batch_first else (lambda n: (n, B, D))
    src, tgt = rng.standard_normal(shape(S)), rng.standard_normal(shape(Tt))
    src_kpm = rng.random((B, S)) < 0.3
    src_kpm[:, 0] = False
    tgt_kpm = np.zeros((B, Tt), bool)
    tgt_kpm[0, -1] = True
    masks = dict(tgt_mask=T.causal_mask(Tt), src_key_padding_mask=src_kpm,
                 tgt_key_padding_mask=tgt_kpm, memory_key_padding_mask=src_kpm)
    tmasks = {k: torch.tensor(v) for k, v in masks.items()}

    o_src, o_tgt = mt.tensor(src, requires_grad=True), mt.tensor(tgt, requires_grad=True)
    t_src, t_tgt = torch.tensor(src, requires_grad=True), torch.tensor(tgt, requires_grad=True)
    out = ours(o_src, o_tgt, **masks)
    tout = theirs(t_src, t_tgt, **tmasks)
    _close(out.data, tout.detach().numpy(), "output")
    r = rng.standard_normal(out.shape)
    (out * mt.tensor(r)).sum().backward()
    (tout * torch.tensor(r)).sum().backward()
    tparams = dict(theirs.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(tparams)
    for name, p in ours.named_parameters():
        _close(p.grad.data, tparams[name].grad.numpy(), f"grad of {name}")
    _close(o_src.grad.data, t_src.grad.numpy(), "grad of src")
    _close(o_tgt.grad.data, t_tgt.grad.numpy(), "grad of tgt")


@pytest.mark.parametrize("kwargs", [{}, {"bias": False}, {"norm_first": True, "batch_first": True}])
def test_transformer_state_dict_keys_and_shapes(torch, kwargs):
    kw = dict(d_model=D, nhead=NHEAD, num_encoder_layers=2, num_decoder_layers=3,
              dim_feedforward=FF, **kwargs)
    theirs, ours = torch.nn.Transformer(**kw), T.Transformer(**kw)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert "encoder.norm.weight" in ours.state_dict() and "decoder.norm.weight" in ours.state_dict()


def test_square_subsequent_mask_matches_torch(torch):
    np.testing.assert_array_equal(T.Transformer.generate_square_subsequent_mask(5),
                                  torch.nn.Transformer.generate_square_subsequent_mask(5).numpy())


def test_init_xavier_on_every_matrix_and_clones_are_distinct():
    mt.manual_seed(0)
    model = T.Transformer(d_model=16, nhead=4, num_encoder_layers=3, num_decoder_layers=2,
                          dim_feedforward=32)
    params = list(model.named_parameters())
    assert len({id(p) for _, p in params}) == len(params)
    layers = model.encoder.layers
    assert layers[0].linear1.weight is not layers[1].linear1.weight
    assert not np.array_equal(layers[0].linear1.weight.data, layers[1].linear1.weight.data)
    for name, p in params:
        if p.ndim > 1:
            bound = np.sqrt(6.0 / sum(p.shape))
            assert 0.7 * bound < np.abs(p.data).max() <= bound, name
        elif name.endswith("norm1.weight"):
            assert np.all(p.data == 1)
    # Changing one clone leaves the others alone.
    layers[0].linear1.weight.data[:] = 0
    assert np.abs(layers[1].linear1.weight.data).max() > 0


def test_deepcopy_module_copies_parameters():
    layer = T.TransformerEncoderLayer(D, NHEAD, FF)
    clone = copy.deepcopy(layer)
    for (n, a), (m, b) in zip(layer.named_parameters(), clone.named_parameters()):
        assert n == m and a is not b and a.data is not b.data
        np.testing.assert_array_equal(a.data, b.data)


def test_encoder_detects_causal_mask():
    rng = np.random.default_rng(1)
    enc = T.TransformerEncoder(T.TransformerEncoderLayer(D, NHEAD, FF, dropout=0.0,
                                                         batch_first=True), 2).double()
    x = mt.tensor(rng.standard_normal((2, 4, D)))
    a = enc(x, mask=T.causal_mask(4)).data
    b = enc(x, mask=T.Transformer.generate_square_subsequent_mask(4)).data
    c = enc(x, is_causal=True).data
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-13)


def test_transformer_shape_errors():
    model = T.Transformer(d_model=D, nhead=NHEAD, num_encoder_layers=1, num_decoder_layers=1,
                          dim_feedforward=FF, batch_first=True)
    with pytest.raises(ValueError, match="batch number"):
        model(mt.randn(2, 3, D), mt.randn(3, 3, D))
    with pytest.raises(ValueError, match="d_model"):
        model(mt.randn(2, 3, D + 1), mt.randn(2, 3, D))


# ----------------------------------------------------------------------------- positional

def test_sinusoidal_matches_paper_formula():
    d, n = 10, 7
    pe = T.SinusoidalPositionalEncoding(d, max_len=50).double()
    x = mt.tensor(np.zeros((2, n, d)))
    out = pe(x).data
    for pos in range(n):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            assert out[1, pos, 2 * i] == pytest.approx(np.sin(angle), abs=1e-15)
            assert out[1, pos, 2 * i + 1] == pytest.approx(np.cos(angle), abs=1e-15)
    np.testing.assert_array_equal(pe(x, offset=3).data[0], T.sinusoid_table(50, d)[3:3 + n])
    assert pe.state_dict() == {} and list(pe.parameters()) == []
    np.testing.assert_allclose(T.sinusoid_table(4, 5)[:, 4], np.sin(np.arange(4) / 10000 ** 0.8))


def test_positional_length_errors_and_learned():
    pe = T.SinusoidalPositionalEncoding(8, max_len=4)
    with pytest.raises(ValueError, match="max_len"):
        pe(mt.zeros(1, 5, 8))
    with pytest.raises(ValueError, match="max_len"):
        pe(mt.zeros(1, 2, 8), offset=3)
    lp = T.LearnedPositionalEncoding(6, 8).double()
    assert list(lp.state_dict()) == ["weight"] and lp.weight.shape == (6, 8)
    x = mt.tensor(np.ones((2, 3, 8)), requires_grad=True)
    out = lp(x, offset=2)
    np.testing.assert_allclose(out.data[1], 1 + lp.weight.data[2:5])
    out.sum().backward()
    assert np.all(lp.weight.grad.data[2:5] == 2) and np.all(lp.weight.grad.data[:2] == 0)
    with pytest.raises(ValueError, match="max_len"):
        lp(mt.zeros(1, 7, 8))


# ----------------------------------------------------------------------------- masks, config

def test_mask_helpers():
    m = T.causal_mask(3)
    assert m.dtype == bool and m.tolist() == [[False, True, True], [False, False, True],
                                              [False, False, False]]
    pm = T.padding_mask(np.array([[5, 6, 0], [0, 0, 0]]), pad_id=0)
    assert pm.tolist() == [[False, False, True], [True, True, True]]
    assert T.padding_mask(mt.tensor(np.array([[1, 0]])), 0).tolist() == [[False, True]]


def test_config_validation_and_roundtrip():
    cfg = _small_cfg(positional="learned")
    assert T.TransformerConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="divisible"):
        T.TransformerConfig(d_model=10, nhead=3)
    with pytest.raises(ValueError, match="positional"):
        T.TransformerConfig(positional="rotary")
    with pytest.raises(ValueError, match="unknown"):
        T.TransformerConfig.from_dict({"d_modell": 3})


# ----------------------------------------------------------------------------- ready-made models

@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_seq2seq_shapes_and_padding_invariance(positional, norm_first):
    rng = np.random.default_rng(2)
    model = T.Seq2SeqTransformer(_small_cfg(positional=positional, norm_first=norm_first)).double()
    model.eval()
    src = rng.integers(1, 11, (2, 5))
    tgt = rng.integers(1, 13, (2, 4))
    logits = model(src, tgt)
    assert logits.shape == (2, 4, 13)
    # Appending PAD to the source (masked) changes nothing.
    src_padded = np.concatenate([src, np.zeros((2, 3), np.int64)], axis=1)
    mask = T.padding_mask(src_padded, 0)
    padded = model(src_padded, tgt, src_pad_mask=mask)
    np.testing.assert_allclose(padded.data, logits.data, rtol=1e-10, atol=1e-12)
    # The decoder is causal: changing a later target token leaves earlier logits alone.
    tgt2 = tgt.copy()
    tgt2[:, 3] = (tgt2[:, 3] % 12) + 1
    np.testing.assert_allclose(model(src, tgt2).data[:, :3], logits.data[:, :3], rtol=1e-10, atol=1e-12)


def test_seq2seq_weight_tying_and_training_step():
    cfg = _small_cfg(tie_embeddings=True, share_vocab=True, src_vocab_size=13)
    model = T.Seq2SeqTransformer(cfg).double()
    assert model.generator.weight is model.tgt_embed.weight is model.src_embed.weight
    names = [n for n, _ in model.named_parameters()]
    assert "generator.weight" not in names and "tgt_embed.weight" not in names  # listed once
    assert {"src_embed.weight", "tgt_embed.weight", "generator.weight"} <= set(model.state_dict())
    assert np.all(model.src_embed.weight.data[0] == 0)  # padding row
    rng = np.random.default_rng(3)
    src, tgt = rng.integers(1, 13, (2, 5)), rng.integers(1, 13, (2, 4))
    logits = model(src, tgt[:, :-1])
    loss = mt.functional.cross_entropy(logits.reshape(-1, 13), tgt[:, 1:].reshape(-1))
    loss.backward()
    assert model.generator.weight.grad is not None and np.isfinite(loss.item())
    untied = T.Seq2SeqTransformer(_small_cfg(tie_embeddings=False))
    assert untied.generator.weight is not untied.tgt_embed.weight


def test_dropout_identity_in_eval_for_models():
    rng = np.random.default_rng(4)
    model = T.Seq2SeqTransformer(_small_cfg(dropout=0.3)).double()
    ref = T.Seq2SeqTransformer(_small_cfg(dropout=0.0)).double()
    ref.load_state_dict(model.state_dict())
    src, tgt = rng.integers(1, 11, (2, 5)), rng.integers(1, 13, (2, 4))
    train_out = model(src, tgt).data
    model.eval()
    np.testing.assert_array_equal(model(src, tgt).data, ref(src, tgt).data)
    assert not np.allclose(train_out, ref(src, tgt).data)


@pytest.mark.parametrize("norm_first", [False, True])
def test_lm_is_causal_and_tied(norm_first):
    rng = np.random.default_rng(5)
    lm = T.TransformerLM(_small_cfg(tie_embeddings=True, norm_first=norm_first)).double()
    assert lm.lm_head.weight is lm.tok_embed.weight
    assert (lm.decoder.norm is not None) == norm_first
    x = rng.integers(1, 13, (2, 6))
    logits = lm(x).data
    assert logits.shape == (2, 6, 13)
    x2 = x.copy()
    x2[:, 4:] = 1
    np.testing.assert_allclose(lm(x2).data[:, :4], logits[:, :4], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_classifier_pooling_respects_padding(pooling):
    rng = np.random.default_rng(6)
    clf = T.TransformerClassifier(_small_cfg(), num_classes=3, pooling=pooling).double().eval()
    tokens = rng.integers(1, 11, (2, 5))
    out = clf(tokens, T.padding_mask(tokens, 0))
    assert out.shape == (2, 3)
    padded = np.concatenate([tokens, np.zeros((2, 4), np.int64)], axis=1)
    out_padded = clf(padded, T.padding_mask(padded, 0))
    np.testing.assert_allclose(out_padded.data, out.data, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="pooling"):
        T.TransformerClassifier(_small_cfg(), 3, pooling="max")


def test_span_qa_masks_padding_and_loss_is_finite():
    rng = np.random.default_rng(7)
    model = T.SpanQAModel(_small_cfg()).double()
    tokens = rng.integers(1, 11, (2, 6))
    tokens[1, 4:] = 0
    pad = T.padding_mask(tokens, 0)
    context = np.zeros((2, 6), bool)
    context[:, 2:] = True
    start, end = model(tokens, pad, context_mask=context)
    assert start.shape == end.shape == (2, 6)
    blocked = pad | ~context
    assert np.all(start.data[blocked] == MASKED_LOGIT) and np.all(end.data[blocked] == MASKED_LOGIT)
    assert np.all(start.data[~blocked] > MASKED_LOGIT / 2)
    loss = T.span_loss(start, end, np.array([2, 3]), np.array([4, 3]))
    loss.backward()
    assert np.isfinite(loss.item())
    assert all(np.isfinite(p.grad.data).all() for p in model.parameters() if p.grad is not None)
    spans = T.best_span(start, end, max_answer_len=3)
    assert spans.shape == (2, 2)
    assert np.all(spans[:, 0] <= spans[:, 1]) and np.all(spans[:, 1] - spans[:, 0] < 3)
    assert not blocked[np.arange(2), spans[:, 0]].any()
