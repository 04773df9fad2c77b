"""The convolutional sentence classifier of Kim (2014), "Convolutional Neural Networks for
Sentence Classification", https://arxiv.org/abs/1408.5882, in its CNN-rand form.

Embedding(V, 300) -> Conv1D of widths 3, 4 and 5 with 100 feature maps each, ReLU -> max over
time -> concatenate (300 features) -> Dropout(0.5) -> Dense(num_classes). The embeddings are
trained from a random start; no pretrained word vectors are loaded.

Padding (id 0) never reaches a feature, because embeddings of padded steps are zeroed and the
max over time skips windows of padding. With `convolution="narrow"` (the default) it takes only
windows that lie inside the sentence (`text_layers.narrow_window_mask`). A sentence shorter
than a filter is read as if padded with zero vectors to the filter width, and an empty one
gives zero features. With `convolution="wide"` each sentence gets width - 1 zero vectors on
both sides and every window that overlaps a token counts, so filters also see the sentence
ends. Kim's code (conv_net_sentence.py) pads every sentence with 4 zero vectors in front and at
least 4 behind, and also keeps the windows of padding only. Either way a sentence gives the
same logits whatever padding surrounds it.

Kim also caps the l2 norm of each class's weight vector in the last layer at 3 after every
update. `max_norm_transform` does that as an Optax transformation, and `config.optim.max_norm`
turns it on in training. Kim trains with Adadelta (`config.optim.name = "adadelta"`), and the
experiment configs use Adam.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxmodels.models import layers
from jaxmodels.models import text_layers
from jaxmodels.ops import basic

CONVOLUTIONS = ("narrow", "wide")


class TextCNN(nn.Module):
  """Kim's CNN on int[B, T] token ids, returning f32[B, num_classes] logits.

  Attributes:
    num_classes: K.
    vocab_size: rows V of the embedding table; every id must be below it.
    embedding_dim: depth of the token embeddings.
    filter_widths: widths of the convolutions, in steps.
    num_filters: feature maps per width.
    dropout_rate: dropout on the pooled features during training.
    convolution: "narrow" takes windows inside the sentence only. "wide" pads each sentence
      with width - 1 zero vectors on both sides and takes every window that overlaps a token,
      so filters also see the sentence ends.
    embedding_init_scale: the embeddings start uniform in [-scale, scale]; Kim uses 0.25.
  """

  num_classes: int
  vocab_size: int = 10000
  embedding_dim: int = 300
  filter_widths: Sequence[int] = (3, 4, 5)
  num_filters: int = 100
  dropout_rate: float = 0.5
  convolution: str = "narrow"
  embedding_init_scale: float = 0.05

  @nn.compact
  def __call__(self, ids: jax.Array, *, train: bool = False) -> jax.Array:
    """Classify token ids int[B, T], with 0 as padding; return logits f32[B, K]."""
    text_layers.check_ids("TextCNN", ids)
    if self.convolution not in CONVOLUTIONS:
      raise ValueError(
          f"TextCNN: convolution must be one of {CONVOLUTIONS}, got {self.convolution!r}")
    mask = text_layers.padding_mask(ids)  # [B, T]
    x = layers.Embedding(self.vocab_size, self.embedding_dim,
                         init_scale=self.embedding_init_scale, name="embedding")(ids)
    x = x * mask.astype(x.dtype)[:, :, None]  # [B, T, E], zero at padding

    features = []
    for width in self.filter_widths:
      if self.convolution == "narrow":
        # Padding the end by width - 1 gives one window per step t, covering t .. t + width - 1.
        padding = (0, width - 1)
        valid = text_layers.narrow_window_mask(mask, width)  # [B, T]
      else:
        padding = (width - 1, width - 1)
        valid = text_layers.wide_window_mask(mask, width)  # [B, T + width - 1]
      conv = layers.Conv1D(self.num_filters, width, padding=(padding,), name=f"conv{width}")
      windows = conv(x)  # [B, T or T + width - 1, O]
      # ReLU commutes with the max, so it runs on the pooled [B, O] only.
      features.append(basic.relu(text_layers.masked_max_over_time(windows, valid)))
    x = jnp.concatenate(features, axis=-1)  # [B, O * len(filter_widths)]

    x = layers.Dropout(self.dropout_rate, name="dropout")(x, train=train)
    return layers.Dense(self.num_classes, name="logits")(x)


def max_norm_transform(max_norm: float, *, layer: str = "logits") -> optax.GradientTransformation:
  """Cap the l2 norm of each column of `params[layer]["kernel"]` at `max_norm` after an update.

  A column of a Dense kernel f32[C, K] is the weight vector of one class. The transformation
  returns updates u' such that params + u' equals params + u with every column whose norm
  exceeds `max_norm` rescaled to norm `max_norm`, as Kim (2014) does with max_norm = 3. Other
  parameters keep their updates. Put it last in an `optax.chain`, after the optimizer and the
  learning rate, so that it projects the final step. It needs `params` in `update`.

  Args:
    max_norm: the cap, positive.
    layer: name of the Dense layer in the top level of the parameter tree.

  Returns:
    A stateless `optax.GradientTransformation`.

  Raises:
    ValueError: at construction if `max_norm` is not positive; at update if `params` is
      missing or has no `layer` kernel of rank 2.
  """
  if not max_norm > 0:
    raise ValueError(f"max_norm_transform: max_norm must be positive, got {max_norm!r}")

  def init_fn(params):
    del params
    return optax.EmptyState()

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError("max_norm_transform: update needs params, to know where they will land")
    kernel = params.get(layer, {}).get("kernel") if isinstance(params, dict) else None
    if kernel is None or jnp.ndim(kernel) != 2:
      raise ValueError(
          f"max_norm_transform: params must contain a rank-2 [{layer!r}]['kernel'], got top-level "
          f"keys {sorted(params) if isinstance(params, dict) else type(params).__name__}")

    stepped = kernel + updates[layer]["kernel"]  # [C, K]
    norms = jnp.sqrt(jnp.sum(jnp.square(stepped), axis=0, keepdims=True))  # [1, K]
    # Columns within the cap keep their update exactly; the rest are rescaled onto it.
    over = norms > max_norm
    scale = jnp.where(over, max_norm / jnp.where(over, norms, jnp.ones_like(norms)),
                      jnp.ones_like(norms))
    projected = jnp.where(over, stepped * scale - kernel, updates[layer]["kernel"])

    updates = dict(updates)
    updates[layer] = {**updates[layer], "kernel": projected}
    return updates, state

  return optax.GradientTransformation(init_fn, update_fn)
