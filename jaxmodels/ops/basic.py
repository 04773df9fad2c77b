"""Dense layers, embeddings, dropout and the small ops around them.

Shape letters: B batch, C channels in, O channels out (units), V vocabulary, D embedding depth.
"..." stands for any number of leading axes.
"""

from collections.abc import Mapping
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxmodels.ops.conv import _kernel_and_bias


def dense(
    params: Mapping[str, jax.typing.ArrayLike],
    x: jax.typing.ArrayLike,
    *,
    precision: jax.lax.PrecisionLike = None,
) -> jax.Array:
  """Apply an affine map to the last axis, as Keras `Dense`: x @ kernel + bias.

  Computes in the dtype of `x`: the kernel and bias are cast to it. For 16-bit floats the
  products are accumulated in float32 and the bias is added before rounding back.

  Args:
    params: `kernel` f32[C, O] and optionally `bias` f32[O].
    x: f32[..., C].
    precision: passed to `lax.dot_general`. The default follows
      `jax_default_matmul_precision`, which on some GPUs computes float32 through TF32.

  Returns:
    f32[..., O] in the dtype of `x`.

  Raises:
    ValueError: on a scalar or non-float `x`, a kernel that is not [C, O] with the C of `x`,
      a bias that is not [O], or unknown parameter names.
  """
  x = jnp.asarray(x)
  kernel, bias = _kernel_and_bias("dense", params)
  if x.ndim < 1 or not jnp.issubdtype(x.dtype, jnp.floating):
    raise ValueError(f"dense: x must be a floating-point array of shape [..., C], "
                     f"got {x.dtype}{list(x.shape)}")
  if kernel.ndim != 2:
    raise ValueError(f"dense: kernel must have shape [C, O], got {kernel.shape}")
  if kernel.shape[0] != x.shape[-1]:
    raise ValueError(f"dense: kernel has C={kernel.shape[0]} input channels "
                     f"but x has C={x.shape[-1]}")
  if bias is not None and bias.shape != kernel.shape[1:]:
    raise ValueError(f"dense: bias must have shape ({kernel.shape[1]},) to match the "
                     f"kernel's O={kernel.shape[1]}, got {bias.shape}")

  # 16-bit inputs accumulate in float32, and wider ones in their own dtype.
  dtype = x.dtype
  accumulate_dtype = jnp.float32 if jnp.finfo(dtype).bits < 32 else None
  contract_c = (((x.ndim - 1,), (0,)), ((), ()))
  y = jax.lax.dot_general(x, kernel.astype(dtype), contract_c, precision=precision,
                          preferred_element_type=accumulate_dtype)  # [..., O]

  if bias is not None:
    y = y + bias.astype(y.dtype).reshape((1,) * (y.ndim - 1) + bias.shape)
  return y.astype(dtype)


def flatten(x: jax.typing.ArrayLike) -> jax.Array:
  """Flatten all axes but the first in row-major order, as Keras `Flatten` on NHWC inputs.

  Args:
    x: f32[B, ...]. An f32[B] input becomes f32[B, 1].

  Returns:
    f32[B, prod(...)] with the dtype of `x`.

  Raises:
    ValueError: if `x` is a scalar.
  """
  x = jnp.asarray(x)
  if x.ndim < 1:
    raise ValueError(f"flatten: x must have a batch axis, got a scalar of shape {x.shape}")
  return x.reshape(x.shape[0], math.prod(x.shape[1:]))


def relu(x: jax.typing.ArrayLike) -> jax.Array:
  """Compute max(x, 0) elementwise, with gradient 0 at 0 as in `jax.nn.relu`.

  Args:
    x: f32[...].

  Returns:
    f32[...] with the shape and dtype of `x`.
  """
  return jax.nn.relu(x)


def dropout(
    x: jax.typing.ArrayLike,
    *,
    rate: float,
    key: jax.Array | None = None,
    deterministic: bool,
) -> jax.Array:
  """Zero each element with probability `rate` and scale the rest to keep the mean.

  This is inverted dropout, as in Keras, so the expected output equals `x` and evaluation
  needs no rescaling. Returns `x` unchanged when `deterministic` is true or `rate` is 0.
  `rate` and `deterministic` must be Python values, because they select the code path
  at trace time.

  The mask compares one random 16-bit integer per element with a threshold, so the drop
  probability is `rate` rounded to a multiple of 2**-16 (at most 2**-17 away; rates
  above 1 - 2**-16 become 1 - 2**-16), and kept
  elements are scaled by the inverse of that rounded keep probability. Each 32-bit random
  word serves two elements, half the generator work of `jax.random.bernoulli`, which
  draws a word per element.

  Args:
    x: f32[...].
    rate: probability of dropping an element, in [0, 1).
    key: PRNG key for the mask, required unless `deterministic`.
    deterministic: if true, skip dropout, as in evaluation.

  Returns:
    f32[...] with the shape and dtype of `x`.

  Raises:
    ValueError: if `rate` is outside [0, 1), `x` is not floating point, or `key` is
      missing when `deterministic` is false.
  """
  if not 0.0 <= rate < 1.0:
    raise ValueError(f"dropout: rate must be in [0, 1), got {rate}")
  if not deterministic and key is None:
    raise ValueError("dropout: key is required when deterministic=False. Pass a PRNG key "
                     "such as jax.random.key(0), or set deterministic=True for evaluation")
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise ValueError(f"dropout: x must be floating point, got {x.dtype}")
  if deterministic or rate == 0.0:
    return x

  # An element is dropped when its 16-bit word is below the threshold, with probability
  # threshold / 2**16. The cap keeps at least one word value in 2**16 for rates near 1.
  levels = 2**16
  threshold = min(round(rate * levels), levels - 1)
  scale = levels / (levels - threshold)
  return jnp.where(_random_uint16(key, x.shape) >= threshold, x * scale, jnp.zeros_like(x))


def _random_uint16(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """Return u16[shape] uniform random integers, two from each 32-bit random word.

  `jax.random.bits(key, shape, jnp.uint16)` runs one threefry block per element when
  threefry is partitionable (the JAX default), so it costs as much as 32 bits per element.
  """
  size = math.prod(shape)
  words = jax.random.bits(key, ((size + 1) // 2,), jnp.uint32)  # u32[ceil(N / 2)]
  halves = jnp.concatenate([words & 0xFFFF, words >> 16])  # u32[2 * ceil(N / 2)]
  return halves[:size].astype(jnp.uint16).reshape(shape)


def embed(params: Mapping[str, jax.typing.ArrayLike], ids: jax.typing.ArrayLike) -> jax.Array:
  """Look up the rows of an embedding table, as Keras `Embedding`.

  Ids outside [0, V) give rows of NaN, so a bad id poisons the loss instead of silently
  reading another token's row (plain JAX indexing clamps ids >= V and wraps negative ids).
  This function runs under `jit` and cannot raise on values: validate ids on the host with
  `check_token_ids` before they reach the model.

  Args:
    params: `embedding` f32[V, D].
    ids: int[...] token ids.

  Returns:
    f32[..., D] in the dtype of the table.

  Raises:
    ValueError: on a table that is not a floating-point [V, D] array, non-integer `ids`,
      or parameter names other than `embedding`.
  """
  if set(params) != {"embedding"}:
    raise ValueError(f"embed: params must contain only 'embedding', got keys {sorted(params)}")
  table = jnp.asarray(params["embedding"])
  ids = jnp.asarray(ids)
  if table.ndim != 2 or not jnp.issubdtype(table.dtype, jnp.floating):
    raise ValueError(f"embed: embedding must be a floating-point array of shape [V, D], "
                     f"got {table.dtype}{list(table.shape)}")
  if not jnp.issubdtype(ids.dtype, jnp.integer):
    raise ValueError(f"embed: ids must be integers, got {ids.dtype}")

  # Widen 8- and 16-bit ids so that comparing them with V cannot overflow.
  if jnp.iinfo(ids.dtype).bits < 32:
    ids = ids.astype(jnp.int32)
  vocab_size = table.shape[0]
  in_range = (ids >= 0) & (ids < vocab_size)  # [...]

  rows = jnp.take(table, ids, axis=0, mode="clip")  # [..., D]
  return jnp.where(in_range[..., None], rows, jnp.full_like(rows, jnp.nan))


def check_token_ids(ids: np.typing.ArrayLike, vocab_size: int) -> None:
  """Raise ValueError unless every token id is in [0, vocab_size).

  Runs on the host with NumPy, so call it in the data pipeline, not under `jit`. A JAX array
  is copied to the host.

  Args:
    ids: int[...] token ids.
    vocab_size: number of rows V of the embedding table.

  Raises:
    ValueError: naming the first out-of-range id, its position and how many ids are out of
      range. Also raised on non-integer ids or a non-positive `vocab_size`.
  """
  is_int = isinstance(vocab_size, (int, np.integer)) and not isinstance(vocab_size, bool)
  if not is_int or vocab_size <= 0:
    raise ValueError(f"check_token_ids: vocab_size must be a positive int, got {vocab_size!r}")
  ids = np.asarray(ids)
  if not np.issubdtype(ids.dtype, np.integer):
    raise ValueError(f"check_token_ids: ids must be integers, got {ids.dtype}")

  out_of_range = (ids < 0) | (ids >= vocab_size)
  if out_of_range.any():
    position = tuple(int(i) for i in np.argwhere(out_of_range)[0])
    raise ValueError(
        f"check_token_ids: token id {ids[position]} at position {position} is outside the "
        f"valid range [0, {vocab_size}), and {out_of_range.sum()} of {ids.size} ids are out "
        "of range. Rebuild the vocabulary from the data or raise vocab_size.")
