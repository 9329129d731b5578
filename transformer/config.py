"""``TransformerConfig``: the hyperparameters of the ready-made models, in one dataclass."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass
class TransformerConfig:
    """Hyperparameters shared by ``Seq2SeqTransformer``, ``TransformerLM``,
    ``TransformerClassifier`` and ``SpanQAModel``.

    Which fields each model reads:
        * Seq2SeqTransformer: everything.
        * TransformerLM (a decoder-only model): ``tgt_vocab_size`` and
          ``num_decoder_layers``.
        * TransformerClassifier, SpanQAModel (encoders): ``src_vocab_size`` and
          ``num_encoder_layers``.

    Defaults are the paper's base model (d_model 512, 8 heads, 6 + 6 layers, d_ff 2048,
    dropout 0.1, post-norm).
    """

    d_model: int = 512
    nhead: int = 8
    num_encoder_layers: int = 6
    num_decoder_layers: int = 6
    dim_feedforward: int = 2048
    dropout: float = 0.1
    activation: str = "relu"          # "relu" | "gelu"
    norm_first: bool = False          # False: the paper's post-norm; True: pre-norm
    layer_norm_eps: float = 1e-5
    src_vocab_size: int = 1000
    tgt_vocab_size: int = 1000
    max_len: int = 512                # longest sequence the positional encoding covers
    tie_embeddings: bool = False      # generator / LM head weight = target embedding
    share_vocab: bool = False         # Seq2Seq: one embedding for src and tgt (same vocab)
    pad_id: int = 0
    positional: str = "sinusoidal"    # "sinusoidal" | "learned"

    def __post_init__(self) -> None:
        if self.d_model % self.nhead:
            raise ValueError(f"TransformerConfig: d_model ({self.d_model}) must be divisible "
                             f"by nhead ({self.nhead})")
        if self.positional not in ("sinusoidal", "learned"):
            raise ValueError(f"TransformerConfig: positional must be 'sinusoidal' or 'learned', "
                             f"got {self.positional!r}")
        if self.activation not in ("relu", "gelu"):
            raise ValueError(f"TransformerConfig: activation must be 'relu' or 'gelu', "
                             f"got {self.activation!r}")
        if self.share_vocab and self.src_vocab_size != self.tgt_vocab_size:
            raise ValueError("TransformerConfig: share_vocab needs src_vocab_size == "
                             f"tgt_vocab_size, got {self.src_vocab_size} and {self.tgt_vocab_size}")

    def to_dict(self) -> dict:
        """A JSON-serialisable dict of the fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TransformerConfig":
        """Build a config from a dict; unknown keys raise a clear error."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"TransformerConfig: unknown fields {sorted(unknown)}")
        return cls(**d)
