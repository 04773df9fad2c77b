"""Flax layers for text models, over the recurrent and attention ops, and masked pooling.

Legend: B batch, T steps, C channels in, U units, N heads, D depth per head, O channels out.

Layers over sequences take a padding mask `bool[B, T]` that is True at real tokens. Parameters
carry Keras's names and initializers where Keras has the layer (`kernel`, `recurrent_kernel`,
`bias`), so parameter counts match what Keras reports.
"""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmodels.models import layers
from jaxmodels.ops import attention
from jaxmodels.ops import basic
from jaxmodels.ops import recurrent

POSITION_EMBEDDINGS = ("learned", "sinusoidal")


def _lstm_bias_init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
  """Initialize an LSTM bias f32[4U] to zeros with the forget-gate slice [U, 2U) at 1.

  Keras does the same (`unit_forget_bias=True`) so that early training keeps the cell state.
  """
  del key
  units = shape[0] // 4
  return jnp.zeros(shape, dtype).at[units:2 * units].set(1)


class LSTM(nn.Module):
  """LSTM over f32[B, T, C], as Keras `LSTM` with its default activations and initializers.

  Attributes:
    units: U, the size of the hidden and cell states.
    return_sequences: return the hidden state of every step, f32[B, T, U], instead of the
      final one, f32[B, U].
    reverse: process the steps from last to first. Outputs stay aligned with the inputs.
    unroll: scan steps unrolled per loop iteration, passed to `jax.lax.scan`.
  """

  units: int
  return_sequences: bool = False
  reverse: bool = False
  unroll: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, *, mask: jax.Array | None = None) -> jax.Array:
    """Run the LSTM; masked steps carry the state unchanged and output zeros.

    Args:
      x: f32[B, T, C].
      mask: bool[B, T], True at real steps, or None when every step is real.

    Returns:
      f32[B, T, U] with `return_sequences`, else the final hidden state f32[B, U].
    """
    gates = 4 * self.units
    params = {
        "kernel": self.param("kernel", nn.initializers.glorot_uniform(),
                             (x.shape[-1], gates)),
        # [U, 4U] gets orthonormal rows.
        "recurrent_kernel": self.param("recurrent_kernel", nn.initializers.orthogonal(),
                                       (self.units, gates)),
        "bias": self.param("bias", _lstm_bias_init, (gates,)),
    }
    outputs, _ = recurrent.lstm(params, x, mask=mask, reverse=self.reverse,
                                return_sequences=self.return_sequences, unroll=self.unroll)
    return outputs


class DotProductSelfAttention(nn.Module):
  """Scaled dot-product attention of a sequence on itself, without parameters.

  Each step attends to every real step with weights softmax(x_t . x_s / sqrt(C)). Keras's
  parameter-free `Attention` layer computes the same without the 1 / sqrt(C) scale. Padded
  queries get zero weights and a zero output. The weights f32[B, T, S] are stored with
  `sow("intermediates", "attention_weights", ...)`: call
  `model.apply(variables, ids, train=False, mutable=["intermediates"])` to read them.
  """

  @nn.compact
  def __call__(self, x: jax.Array, *, mask: jax.Array | None = None) -> jax.Array:
    """Attend over the steps of x.

    Args:
      x: f32[B, T, C].
      mask: bool[B, T], True at real steps, or None when every step is real.

    Returns:
      f32[B, T, C].
    """
    out, weights = attention.self_attention(x, mask=mask, return_weights=True)
    self.sow("intermediates", "attention_weights", weights)  # [B, T, S]
    return out


def _dense_params_init(fan_in: int, fan_out: int) -> Callable[[jax.Array], dict[str, jax.Array]]:
  """Return an initializer of {"kernel": Glorot-uniform f32[fan_in, fan_out], "bias": zeros}."""

  def init(key: jax.Array) -> dict[str, jax.Array]:
    kernel = nn.initializers.glorot_uniform()(key, (fan_in, fan_out), jnp.float32)
    return {"kernel": kernel, "bias": jnp.zeros((fan_out,), jnp.float32)}

  return init


class MultiHeadSelfAttention(nn.Module):
  """Multi-head self-attention over f32[B, T, C] with a key padding mask.

  Parameters are `query`, `key`, `value` and `output`, each {"kernel", "bias"}, as
  `jaxmodels.ops.attention.multi_head_attention` takes them, with Glorot-uniform kernels and
  zero biases (Keras `MultiHeadAttention` initializes the same way). The weights
  f32[B, N, T, S] are stored with `sow("intermediates", "attention_weights", ...)`.

  Attributes:
    num_heads: N.
    head_dim: D, the depth per head; None gives C / N, which must then be an integer.
    out_features: O; None gives C, so the output can be added to the input.
  """

  num_heads: int
  head_dim: int | None = None
  out_features: int | None = None

  @nn.compact
  def __call__(self, x: jax.Array, *, mask: jax.Array | None = None) -> jax.Array:
    """Attend from every step to the real steps of x.

    Args:
      x: f32[B, T, C].
      mask: bool[B, T], True at real steps, or None when every step is real. Padded steps
        are masked as keys only: their own outputs are computed but carry no meaning.

    Returns:
      f32[B, T, O].

    Raises:
      ValueError: if `head_dim` is None and `num_heads` does not divide C.
    """
    in_features = x.shape[-1]
    head_dim = self.head_dim
    if head_dim is None:
      if self.num_heads < 1 or in_features % self.num_heads:
        raise ValueError(
            f"MultiHeadSelfAttention: num_heads={self.num_heads} must divide the input width "
            f"C={in_features}, or set head_dim")
      head_dim = in_features // self.num_heads
    width = self.num_heads * head_dim
    out_features = in_features if self.out_features is None else self.out_features

    params = {
        "query": self.param("query", _dense_params_init(in_features, width)),
        "key": self.param("key", _dense_params_init(in_features, width)),
        "value": self.param("value", _dense_params_init(in_features, width)),
        "output": self.param("output", _dense_params_init(width, out_features)),
    }
    attention_mask = None if mask is None else attention.padding_mask(mask)  # [B, 1, 1, S]
    out, weights = attention.multi_head_attention(
        params, x, x, num_heads=self.num_heads, mask=attention_mask, return_weights=True)
    self.sow("intermediates", "attention_weights", weights)  # [B, N, T, S]
    return out


def sinusoidal_positions(positions: jax.Array, features: int) -> jax.Array:
  """Encode positions as in Vaswani et al. (2017), "Attention Is All You Need", section 3.5.

  Feature 2i is sin(p / 10000^(2i / features)) and feature 2i + 1 the cosine of the same
  angle.

  Args:
    positions: int[...] positions p.
    features: number of features, at least 1. An odd count drops the last cosine.

  Returns:
    f32[..., features].
  """
  half = (features + 1) // 2
  exponents = jnp.arange(half, dtype=jnp.float32) * (2.0 / features)  # [features / 2]
  frequencies = jnp.power(jnp.float32(10000.0), -exponents)
  frequencies = frequencies.reshape((1,) * positions.ndim + (half,))
  angles = positions.astype(jnp.float32)[..., None] * frequencies  # [..., features / 2]

  # Interleave: [sin_0, cos_0, sin_1, cos_1, ...].
  encoding = jnp.stack([jnp.sin(angles), jnp.cos(angles)], axis=-1)  # [..., features / 2, 2]
  encoding = encoding.reshape(*positions.shape, 2 * half)
  return encoding[..., :features]


class PositionEmbedding(nn.Module):
  """Embedding of token positions, learned or sinusoidal.

  Attributes:
    features: the embedding depth.
    kind: "learned" for a trained table f32[max_positions, features], initialized from a
      normal distribution with standard deviation 0.02, or "sinusoidal" for the fixed
      encoding of `sinusoidal_positions`, which has no parameters and no length limit.
    max_positions: rows of the learned table; every position must be below it.
  """

  features: int
  kind: str = "learned"
  max_positions: int = 512

  @nn.compact
  def __call__(self, positions: jax.Array) -> jax.Array:
    """Embed int[B, T] positions as f32[B, T, features].

    Raises:
      ValueError: on an unknown `kind`, or with "learned", on more than `max_positions` steps.
    """
    if self.kind == "sinusoidal":
      return sinusoidal_positions(positions, self.features)
    if self.kind != "learned":
      raise ValueError(
          f"PositionEmbedding: kind must be one of {POSITION_EMBEDDINGS}, got {self.kind!r}")
    if positions.shape[-1] > self.max_positions:
      raise ValueError(
          f"PositionEmbedding: {positions.shape[-1]} steps do not fit the learned table of "
          f"max_positions={self.max_positions}; raise max_positions or shorten the inputs")
    table = self.param("embedding", nn.initializers.normal(stddev=0.02),
                       (self.max_positions, self.features))
    return basic.embed({"embedding": table}, positions)


class TransformerBlock(nn.Module):
  """Pre-layer-norm Transformer encoder block.

  x + Dropout(MultiHeadSelfAttention(LayerNorm(x))), then y + Dropout(MLP(LayerNorm(y))), with
  MLP = Dense(mlp_dim) -> GELU -> Dense(C). Layer norms are `flax.linen.LayerNorm` (epsilon
  1e-6).

  Attributes:
    num_heads: attention heads N; N must divide the width C.
    mlp_dim: hidden width of the MLP.
    dropout_rate: dropout on the attention and MLP outputs during training.
  """

  num_heads: int
  mlp_dim: int
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, *, mask: jax.Array | None, train: bool) -> jax.Array:
    """Apply the block to f32[B, T, C] with the key mask bool[B, T]; return f32[B, T, C]."""
    y = nn.LayerNorm(name="attention_norm")(x)
    y = MultiHeadSelfAttention(self.num_heads, name="attention")(y, mask=mask)
    x = x + layers.Dropout(self.dropout_rate, name="attention_dropout")(y, train=train)

    y = nn.LayerNorm(name="mlp_norm")(x)
    y = jax.nn.gelu(layers.Dense(self.mlp_dim, name="mlp_hidden")(y))
    y = layers.Dense(x.shape[-1], name="mlp_output")(y)
    return x + layers.Dropout(self.dropout_rate, name="mlp_dropout")(y, train=train)


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
  """Average f32[B, T, C] over its real steps.

  Args:
    x: f32[B, T, C].
    mask: bool[B, T], True at real steps.

  Returns:
    f32[B, C]. A row without real steps gives zeros.
  """
  weights = mask.astype(x.dtype)[:, :, None]  # [B, T, 1]
  total = jnp.sum(x * weights, axis=1)  # [B, C]
  count = jnp.sum(weights, axis=1)  # [B, 1]
  return total / jnp.maximum(count, jnp.ones_like(count))


def masked_max_over_time(x: jax.Array, valid: jax.Array) -> jax.Array:
  """Take the maximum of f32[B, T, C] over the steps where `valid` is True.

  Invalid steps are replaced by -inf before the maximum, so they can never win it. A row
  without a valid step gives zeros, and its gradient is zero rather than NaN.

  Args:
    x: f32[B, T, C].
    valid: bool[B, T].

  Returns:
    f32[B, C].
  """
  filled = jnp.where(valid[:, :, None], x, jnp.full_like(x, -jnp.inf))  # [B, T, C]
  pooled = jnp.max(filled, axis=1)  # [B, C]
  any_valid = jnp.any(valid, axis=1)[:, None]  # [B, 1]
  return jnp.where(any_valid, pooled, jnp.zeros_like(pooled))


def narrow_window_mask(mask: jax.Array, width: int) -> jax.Array:
  """Mark the convolution windows of `width` steps that lie inside the real tokens.

  Window t covers steps t .. t + width - 1, as in a convolution over a sequence padded with
  width - 1 steps at the end. A window is valid when it starts at a real step and ends at a real
  step, so with one contiguous run of real steps it never covers padding. A row with fewer real
  steps than `width` has no such window. It gets one valid window instead, the one that starts
  at its first real step, which is the window a sequence padded with zero vectors to `width`
  steps would have.

  Args:
    mask: bool[B, T], True at real steps, which must form one contiguous run per row.
    width: window width K, at least 1.

  Returns:
    bool[B, T]. A row without real steps has no valid window.
  """
  steps = mask.shape[1]
  ends = jnp.pad(mask, ((0, 0), (0, width - 1)))[:, width - 1:]  # [B, T]: is step t + K - 1 real?
  inside = mask & ends

  length = jnp.sum(mask, axis=1, dtype=jnp.int32)  # [B]
  first = jnp.argmax(mask, axis=1)  # [B]; 0 for a row without real steps
  is_first = jnp.arange(steps)[None, :] == first[:, None]  # [B, T]
  short = ((length > 0) & (length < width))[:, None]  # [B, 1]
  return inside | (short & is_first)


def wide_window_mask(mask: jax.Array, width: int) -> jax.Array:
  """Mark the windows of a wide convolution that overlap at least one real token.

  A wide convolution pads each sequence with width - 1 steps on both sides, so window j, for
  j in [0, T + width - 1), covers steps j - width + 1 .. j and the sequence ends appear in
  windows of their own. Windows of padding only are invalid.

  Args:
    mask: bool[B, T], True at real steps.
    width: window width K, at least 1.

  Returns:
    bool[B, T + K - 1]. A row without real steps has no valid window.
  """
  padded = jnp.pad(mask.astype(jnp.int32), ((0, 0), (width, width - 1)))  # [B, T + 2K - 1]
  counts = jnp.cumsum(padded, axis=1)  # [B, T + 2K - 1]
  # Real steps among j - K + 1 .. j, from the difference of two running counts.
  return (counts[:, width:] - counts[:, :-width]) > 0  # [B, T + K - 1]


def check_ids(name: str, ids: jax.Array) -> None:
  """Raise ValueError unless `ids` is an int[B, T] array of token ids."""
  if ids.ndim != 2 or not jnp.issubdtype(ids.dtype, jnp.integer):
    raise ValueError(f"{name}: ids must be int[B, T] token ids, got {ids.dtype}{list(ids.shape)}")


def padding_mask(ids: jax.Array) -> jax.Array:
  """Return bool[B, T], True at real tokens: id 0 is padding."""
  return ids != 0


def token_positions(mask: jax.Array) -> jax.Array:
  """Number the real steps of each row 0, 1, 2, ...; padded steps get 0.

  Counting real steps rather than array positions gives a sentence the same positions whether
  it is padded before or after, and whatever its padded length.

  Args:
    mask: bool[B, T].

  Returns:
    i32[B, T].
  """
  counts = jnp.cumsum(mask.astype(jnp.int32), axis=1)  # [B, T]
  return jnp.where(mask, counts - 1, jnp.zeros_like(counts))
