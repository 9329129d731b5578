"""Encoder/decoder layers: parity with torch.nn (outputs, every parameter and input
gradient, float64; post-norm and pre-norm; relu and gelu), state dict keys, gradcheck
through whole layers, dropout in eval."""
from __future__ import annotations

import numpy as np
import pytest

import minitensor as mt
import transformer as T
from minitensor import functional as F

D, NHEAD, FF = 8, 2, 16
RTOL, ATOL = 1e-7, 1e-10


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _close(ours, theirs, what):
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=what)


def _load(ours, theirs):
    ours.double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def _randomize(theirs, torch, seed):
    """Non-trivial LayerNorm weights and biases (torch inits them to 1 and 0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            if p.ndim == 1:
                p.copy_(p + 0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))


def _compare(torch, ours, theirs, arrays, run, t_run):
    rng = np.random.default_rng(123)
    ours_in = [mt.tensor(a, requires_grad=True) for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, tout = run(*ours_in), t_run(*theirs_in)
    _close(out.data, tout.detach().numpy(), "output")
    r = rng.standard_normal(out.shape)
    (out * mt.tensor(r)).sum().backward()
    (tout * torch.tensor(r)).sum().backward()
    tparams = dict(theirs.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(tparams)
    for name, p in ours.named_parameters():
        _close(p.grad.data, tparams[name].grad.numpy(), f"grad of {name}")
    for i, (a, b) in enumerate(zip(ours_in, theirs_in)):
        _close(a.grad.data, b.grad.numpy(), f"grad of input {i}")


def _masks(rng, B, S):
    kpm = rng.random((B, S)) < 0.3
    kpm[:, 0] = False
    return kpm


LAYER_CASES = [
    dict(norm_first=False, activation="relu", batch_first=True),
    dict(norm_first=True, activation="relu", batch_first=True),
    dict(norm_first=False, activation="gelu", batch_first=False),
    dict(norm_first=True, activation="gelu", batch_first=False),
]


@pytest.mark.parametrize("case", LAYER_CASES)
@pytest.mark.parametrize("masked", [False, True])
def test_encoder_layer_parity(torch, case, masked):
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    theirs = torch.nn.TransformerEncoderLayer(D, NHEAD, FF, dropout=0.0, **case).double()
    _randomize(theirs, torch, 0)
    ours = T.TransformerEncoderLayer(D, NHEAD, FF, dropout=0.0, **case)
    _load(ours, theirs)
    B, S = 3, 5
    x = rng.standard_normal((B, S, D) if case["batch_first"] else (S, B, D))
    kw = {}
    if masked:
        kw = dict(src_mask=T.causal_mask(S), src_key_padding_mask=_masks(rng, B, S), is_causal=True)
    tkw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    _compare(torch, ours, theirs, [x], lambda a: ours(a, **kw), lambda a: theirs(a, **tkw))


@pytest.mark.parametrize("case", LAYER_CASES)
@pytest.mark.parametrize("masked", [False, True])
def test_decoder_layer_parity(torch, case, masked):
    rng = np.random.default_rng(1)
    torch.manual_seed(1)
    theirs = torch.nn.TransformerDecoderLayer(D, NHEAD, FF, dropout=0.0, **case).double()
    _randomize(theirs, torch, 1)
    ours = T.TransformerDecoderLayer(D, NHEAD, FF, dropout=0.0, **case)
    _load(ours, theirs)
    B, Tt, S = 3, 4, 6
    bf = case["batch_first"]
    tgt = rng.standard_normal((B, Tt, D) if bf else (Tt, B, D))
    mem = rng.standard_normal((B, S, D) if bf else (S, B, D))
    kw = {}
    if masked:
        mem_mask = np.where(rng.random((Tt, S)) < 0.3, -np.inf, rng.standard_normal((Tt, S)))
        mem_mask[:, 0] = 0.0
        kw = dict(tgt_mask=Transformer_mask(Tt), memory_mask=mem_mask,
                  tgt_key_padding_mask=np.where(_masks(rng, B, Tt), -np.inf, 0.0),
                  memory_key_padding_mask=np.where(_masks(rng, B, S), -np.inf, 0.0),
                  tgt_is_causal=True)  # float masks throughout (torch warns on mixed types)
    tkw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    _compare(torch, ours, theirs, [tgt, mem], lambda a, m: ours(a, m, **kw),
             lambda a, m: theirs(a, m, **tkw))


def Transformer_mask(n):
    return T.Transformer.generate_square_subsequent_mask(n, dtype=np.float64)


def test_callable_activation_and_no_bias_parity(torch):
    rng = np.random.default_rng(2)
    torch.manual_seed(2)
    theirs = torch.nn.TransformerEncoderLayer(D, NHEAD, FF, dropout=0.0, batch_first=True,
                                              activation=torch.tanh, bias=False).double()
    ours = T.TransformerEncoderLayer(D, NHEAD, FF, dropout=0.0, batch_first=True,
                                     activation=mt.functional.tanh, bias=False)
    _load(ours, theirs)
    x = rng.standard_normal((2, 3, D))
    _compare(torch, ours, theirs, [x], lambda a: ours(a), lambda a: theirs(a))


def test_unbatched_layers_parity(torch):
    rng = np.random.default_rng(3)
    torch.manual_seed(3)
    theirs = torch.nn.TransformerDecoderLayer(D, NHEAD, FF, dropout=0.0).double()
    ours = T.TransformerDecoderLayer(D, NHEAD, FF, dropout=0.0)
    _load(ours, theirs)
    tgt, mem = rng.standard_normal((4, D)), rng.standard_normal((5, D))
    _compare(torch, ours, theirs, [tgt, mem], lambda a, m: ours(a, m), lambda a, m: theirs(a, m))


@pytest.mark.parametrize("cls", ["TransformerEncoderLayer", "TransformerDecoderLayer"])
@pytest.mark.parametrize("kwargs", [{}, {"bias": False}, {"norm_first": True}])
def test_layer_state_dict_keys_match_torch(torch, cls, kwargs):
    theirs = getattr(torch.nn, cls)(D, NHEAD, FF, **kwargs)
    ours = getattr(T, cls)(D, NHEAD, FF, **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in theirs.state_dict().items()}


# ----------------------------------------------------------------------------- gradcheck

def _perturb(layer, rng):
    layer.double()
    for _, p in layer.named_parameters():
        if p.ndim == 1:
            p.data[:] = p.data + 0.3 * rng.standard_normal(p.shape)


@pytest.mark.parametrize("norm_first", [False, True])
def test_gradcheck_encoder_layer(norm_first):
    rng = np.random.default_rng(4)
    layer = T.TransformerEncoderLayer(D, NHEAD, FF, dropout=0.0, activation="gelu",
                                      batch_first=True, norm_first=norm_first)
    _perturb(layer, rng)
    x = mt.tensor(rng.standard_normal((2, 3, D)), requires_grad=True)
    kpm = np.array([[False, False, True], [False, False, False]])
    params = list(layer.parameters())

    def f(x, *ps):
        return layer(x, src_mask=T.causal_mask(3), src_key_padding_mask=kpm[:len(x)])

    # element by element w.r.t. the input (one sequence keeps it quick), then along
    # random directions w.r.t. the input and every parameter together
    x1 = mt.tensor(x.data[:1].copy(), requires_grad=True)
    assert mt.gradcheck(f, [x1], mode="full")
    assert mt.gradcheck(f, [x, *params], mode="projection", n_projections=6)


@pytest.mark.parametrize("norm_first", [False, True])
def test_gradcheck_decoder_layer(norm_first):
    rng = np.random.default_rng(5)
    layer = T.TransformerDecoderLayer(D, NHEAD, FF, dropout=0.0, batch_first=True,
                                      norm_first=norm_first)
    _perturb(layer, rng)
    tgt = mt.tensor(rng.standard_normal((2, 3, D)), requires_grad=True)
    mem = mt.tensor(rng.standard_normal((2, 3, D)), requires_grad=True)
    mkpm = np.array([[False, True, False], [False, False, False]])
    params = list(layer.parameters())

    def f(tgt, mem, *ps):
        return layer(tgt, mem, tgt_mask=T.causal_mask(3), memory_key_padding_mask=mkpm[:len(tgt)],
                     tgt_is_causal=True)

    tgt1, mem1 = (mt.tensor(t.data[:1].copy(), requires_grad=True) for t in (tgt, mem))
    assert mt.gradcheck(f, [tgt1, mem1], mode="full")
    assert mt.gradcheck(f, [tgt, mem, *params], mode="projection", n_projections=6)


# ----------------------------------------------------------------------------- dropout, misc

def test_dropout_is_identity_in_eval():
    rng = np.random.default_rng(6)
    layer = T.TransformerDecoderLayer(D, NHEAD, FF, dropout=0.5, batch_first=True).double()
    ref = T.TransformerDecoderLayer(D, NHEAD, FF, dropout=0.0, batch_first=True).double()
    ref.load_state_dict(layer.state_dict())
    tgt, mem = mt.tensor(rng.standard_normal((2, 4, D))), mt.tensor(rng.standard_normal((2, 3, D)))
    train_out = layer(tgt, mem).data
    layer.eval()
    assert not layer.dropout1.training and not layer.self_attn.training
    np.testing.assert_array_equal(layer(tgt, mem).data, ref(tgt, mem).data)
    assert not np.allclose(train_out, ref(tgt, mem).data)


def test_activation_strings():
    assert T.TransformerEncoderLayer(D, NHEAD, FF, activation="gelu").activation is F.gelu
    assert T.TransformerEncoderLayer(D, NHEAD, FF).activation is F.relu
    with pytest.raises(ValueError, match="activation"):
        T.TransformerEncoderLayer(D, NHEAD, FF, activation="swish")
