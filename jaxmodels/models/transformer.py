"""A small Transformer encoder that classifies sentences.

Token embedding + position embedding (learned or sinusoidal) -> Dropout -> pre-layer-norm
blocks (`text_layers.TransformerBlock`) -> LayerNorm -> pooling -> Dropout -> Dense(num_classes).

Pooling is "mean", the average of the final states of the real tokens, or "cls", the final
state of a learned class token that is prepended to every sentence (as in BERT). Positions count
real tokens only (`text_layers.token_positions`), and padded keys are masked in every block, so
a sentence gives the same logits whatever padding surrounds it.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmodels.models import layers
from jaxmodels.models import text_layers

POOLINGS = ("mean", "cls")


class TransformerClassifier(nn.Module):
  """Transformer encoder on int[B, T] token ids, returning f32[B, num_classes] logits.

  Attributes:
    num_classes: K.
    vocab_size: rows V of the embedding table; every id must be below it.
    width: model width C, the depth of embeddings and block outputs.
    num_layers: number of blocks.
    num_heads: attention heads per block; must divide `width`.
    mlp_dim: hidden width of each block's MLP.
    dropout_rate: dropout on the embeddings, inside the blocks and before the last layer.
    position_embedding: "learned" or "sinusoidal" (see `text_layers.PositionEmbedding`).
    max_positions: rows of the learned position table: sentences with a class token may have
      at most max_positions - 1 steps, and without one, max_positions.
    pooling: "mean" or "cls".
  """

  num_classes: int
  vocab_size: int = 10000
  width: int = 64
  num_layers: int = 2
  num_heads: int = 4
  mlp_dim: int = 128
  dropout_rate: float = 0.1
  position_embedding: str = "learned"
  max_positions: int = 128
  pooling: str = "mean"

  @nn.compact
  def __call__(self, ids: jax.Array, *, train: bool = False) -> jax.Array:
    """Classify token ids int[B, T], with 0 as padding; return logits f32[B, K]."""
    text_layers.check_ids("TransformerClassifier", ids)
    if self.pooling not in POOLINGS:
      raise ValueError(
          f"TransformerClassifier: pooling must be one of {POOLINGS}, got {self.pooling!r}")
    if self.width % self.num_heads:
      raise ValueError(
          f"TransformerClassifier: num_heads={self.num_heads} must divide width={self.width}")
    mask = text_layers.padding_mask(ids)  # [B, T]
    x = layers.Embedding(self.vocab_size, self.width, name="embedding")(ids)  # [B, T, C]
    positions = text_layers.token_positions(mask)  # [B, T]

    if self.pooling == "cls":
      # The class token takes position 0 and the words shift by one.
      class_token = self.param("class_token", nn.initializers.normal(stddev=0.02), (self.width,))
      batch = ids.shape[0]
      tokens = jnp.broadcast_to(class_token.astype(x.dtype), (batch, 1, self.width))
      x = jnp.concatenate([tokens, x], axis=1)  # [B, 1 + T, C]
      mask = jnp.concatenate([jnp.ones((batch, 1), jnp.bool_), mask], axis=1)
      positions = jnp.concatenate(
          [jnp.zeros((batch, 1), jnp.int32), positions + mask[:, 1:].astype(jnp.int32)], axis=1)

    x = x + text_layers.PositionEmbedding(
        self.width, kind=self.position_embedding, max_positions=self.max_positions,
        name="position_embedding")(positions)
    x = layers.Dropout(self.dropout_rate, name="embedding_dropout")(x, train=train)

    for index in range(self.num_layers):
      x = text_layers.TransformerBlock(
          self.num_heads, self.mlp_dim, dropout_rate=self.dropout_rate,
          name=f"block{index}")(x, mask=mask, train=train)
    x = nn.LayerNorm(name="final_norm")(x)  # [B, T, C]

    x = text_layers.masked_mean(x, mask) if self.pooling == "mean" else x[:, 0]  # [B, C]
    x = layers.Dropout(self.dropout_rate, name="output_dropout")(x, train=train)
    return layers.Dense(self.num_classes, name="logits")(x)
