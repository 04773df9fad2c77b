"""An LSTM text classifier with dot-product self-attention between its two LSTMs.

Embedding -> LSTM(every step) -> self-attention of the LSTM outputs on themselves -> LSTM(last
state) -> Dense(num_classes). The attention has no parameters, so the model has as many
parameters as `jaxmodels.models.lstm.LSTMClassifier` with the same sizes.

Padded keys are masked, padded queries get a zero output, and the second LSTM skips padded
steps, so a sentence gives the same logits whatever padding surrounds it. The attention
weights f32[B, T, S] are stored for inspection:

  logits, state = model.apply(variables, ids, train=False, mutable=["intermediates"])
  (weights,) = state["intermediates"]["attention"]["attention_weights"]
"""

import flax.linen as nn
import jax

from jaxmodels.models import layers
from jaxmodels.models import text_layers


class LSTMAttentionClassifier(nn.Module):
  """LSTM, self-attention and LSTM on int[B, T] token ids, returning f32[B, num_classes].

  Attributes:
    num_classes: K.
    vocab_size: rows V of the embedding table; every id must be below it.
    embedding_dim: depth of the token embeddings.
    lstm_units: units of the first and the second LSTM.
    dropout_rate: dropout on the final LSTM state during training.
    unroll: scan steps unrolled per loop iteration in each LSTM.
  """

  num_classes: int
  vocab_size: int = 10000
  embedding_dim: int = 64
  lstm_units: tuple[int, int] = (64, 64)
  dropout_rate: float = 0.0
  unroll: int = 1

  @nn.compact
  def __call__(self, ids: jax.Array, *, train: bool = False) -> jax.Array:
    """Classify token ids int[B, T], with 0 as padding; return logits f32[B, K]."""
    text_layers.check_ids("LSTMAttentionClassifier", ids)
    if len(self.lstm_units) != 2:
      raise ValueError(
          f"LSTMAttentionClassifier: lstm_units must give the units of two LSTMs, got "
          f"{tuple(self.lstm_units)}")
    first_units, second_units = self.lstm_units
    mask = text_layers.padding_mask(ids)  # [B, T]

    x = layers.Embedding(self.vocab_size, self.embedding_dim, name="embedding")(ids)
    x = text_layers.LSTM(first_units, return_sequences=True, unroll=self.unroll,
                         name="lstm0")(x, mask=mask)  # [B, T, U]
    x = text_layers.DotProductSelfAttention(name="attention")(x, mask=mask)  # [B, T, U]
    x = text_layers.LSTM(second_units, unroll=self.unroll, name="lstm1")(x, mask=mask)  # [B, U]

    x = layers.Dropout(self.dropout_rate, name="dropout")(x, train=train)
    return layers.Dense(self.num_classes, name="logits")(x)
