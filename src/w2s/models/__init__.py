"""What models do: encode texts (cached), and train heads on features."""

from w2s.models.encoders import CausalLMEncoder, Encoder, SentenceEncoder, make_encoder
from w2s.models.features import FeatureStore, features

__all__ = [
    "CausalLMEncoder",
    "Encoder",
    "FeatureStore",
    "SentenceEncoder",
    "features",
    "make_encoder",
]
