"""The recurrent text classifier of the Keras text tutorial: two stacked LSTMs.

Embedding(V, 64) -> LSTM(64, every step) -> LSTM(64, last state) -> Dense(num_classes). With
V = 10,000 and 10 classes it has 706,698 parameters, the count Keras reports for the same layers.
Token id 0 is padding: both LSTMs skip padded steps, so a sentence gives the same logits
whatever padding surrounds it.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax

from jaxmodels.models import layers
from jaxmodels.models import text_layers


class LSTMClassifier(nn.Module):
  """Stacked LSTMs on int[B, T] token ids, returning f32[B, num_classes] logits.

  Attributes:
    num_classes: K.
    vocab_size: rows V of the embedding table; every id must be below it.
    embedding_dim: depth of the token embeddings.
    lstm_units: units of each LSTM, first to last. Every LSTM but the last returns all steps.
    dropout_rate: dropout on the final LSTM state during training; 0 in the tutorial.
    unroll: scan steps unrolled per loop iteration in each LSTM.
  """

  num_classes: int
  vocab_size: int = 10000
  embedding_dim: int = 64
  lstm_units: Sequence[int] = (64, 64)
  dropout_rate: float = 0.0
  unroll: int = 1

  @nn.compact
  def __call__(self, ids: jax.Array, *, train: bool = False) -> jax.Array:
    """Classify token ids int[B, T], with 0 as padding; return logits f32[B, K]."""
    text_layers.check_ids("LSTMClassifier", ids)
    mask = text_layers.padding_mask(ids)  # [B, T]
    x = layers.Embedding(self.vocab_size, self.embedding_dim, name="embedding")(ids)

    last = len(self.lstm_units) - 1
    for index, units in enumerate(self.lstm_units):
      x = text_layers.LSTM(units, return_sequences=index < last, unroll=self.unroll,
                           name=f"lstm{index}")(x, mask=mask)  # [B, T, U], last [B, U]

    x = layers.Dropout(self.dropout_rate, name="dropout")(x, train=train)
    return layers.Dense(self.num_classes, name="logits")(x)
