"""Max and average pooling on channels-last arrays, built on `jax.lax.reduce_window`.

Shape letters: B batch, T steps, H W height and width, C channels.
A rank-4 input f32[B, H, W, C] is pooled over H and W, and a rank-3 input f32[B, T, C] over T.
Windows never span the batch or channel axes.

Padding is "VALID", "SAME" or explicit non-negative (low, high) pairs, one per pooled axis.
The strings are case-insensitive. "SAME" gives output size ceil(input / stride), and an odd
total padding puts the extra element at the end, as in Keras. Padded positions never
contribute: max pooling pads with -inf, and average pooling divides each window by its count
of real elements.
"""

from collections.abc import Sequence
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxmodels.ops.conv import Padding, _canonical_padding, _positive_ints


def max_pool(
    x: jax.typing.ArrayLike,
    *,
    window: int | Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: Padding = "VALID",
) -> jax.Array:
  """Take the maximum over each window, as Keras `MaxPooling2D` and `MaxPooling1D`.

  Padding is filled with -inf, so a window that overlaps the border returns the maximum of
  its real elements.

  Args:
    x: f32[B, H, W, C] images or f32[B, T, C] sequences.
    window: window size, one int for every pooled axis or one int per pooled axis.
    strides: step between windows, in the same form. Defaults to `window`, as in Keras.
    padding: "VALID", "SAME" or one (low, high) pair per pooled axis. A window that contains
      only padding, possible with explicit padding wider than the window, returns -inf.

  Returns:
    f32[B, H', W', C] or f32[B, T', C] in the dtype of `x`.

  Raises:
    ValueError: on a rank other than 3 or 4, a non-float `x`, non-positive window or strides,
      or unknown padding.
  """
  x, window_shape, strides, padding = _pool_arguments("max_pool", x, window, strides, padding)
  is_valid = padding == "VALID" or all(pair == (0, 0) for pair in padding)
  if strides == window_shape and is_valid:
    return _max_pool_tiles(x, window_shape[1:-1])
  return jax.lax.reduce_window(x, np.array(-np.inf, x.dtype), jax.lax.max, window_shape,
                               strides, padding)


def _tiles(x: jax.Array, window: tuple[int, ...]) -> jax.Array:
  """Crop x[B, *S, C] to whole windows and return [B, *S', C, K], K the window size."""
  batch, *spatial, channels = x.shape
  out = [size // width for size, width in zip(spatial, window)]
  x = x[(slice(None), *(slice(0, o * width) for o, width in zip(out, window)))]

  # [B, S'1, K1, S'2, K2, C] -> [B, S'1, S'2, C, K1, K2] -> [B, S'1, S'2, C, K]
  x = x.reshape(batch, *(d for o, width in zip(out, window) for d in (o, width)), channels)
  x = x.transpose(_tile_order(len(window)))
  return x.reshape(batch, *out, channels, int(np.prod(window)))


def _tile_order(num_spatial: int) -> list[int]:
  """Axis order that moves the window axes of [B, S'1, K1, ..., C] behind C."""
  outer = [1 + 2 * i for i in range(num_spatial)]
  inner = [2 + 2 * i for i in range(num_spatial)]
  return [0, *outer, 1 + 2 * num_spatial, *inner]


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _max_pool_tiles(x: jax.Array, window: tuple[int, ...]) -> jax.Array:
  """Max pooling over non-overlapping windows (strides equal to the window, VALID).

  Reshaping into tiles replaces `reduce_window`, whose gradient (`select_and_scatter`) XLA's CPU
  back end runs more than 20 times slower than this one. The gradient goes to the first maximum
  of each window in row-major order, the element `select_and_scatter` picks, so both paths give
  the same values and gradients, ties included.
  """
  return jnp.max(_tiles(x, window), axis=-1)


def _max_pool_tiles_forward(x, window):
  tiles = _tiles(x, window)  # [B, *S', C, K]
  return jnp.max(tiles, axis=-1), (jnp.argmax(tiles, axis=-1), x.shape)


def _max_pool_tiles_backward(window, residuals, grad_y):
  first_max, x_shape = residuals  # first_max: i32[B, *S', C]
  batch, *spatial, channels = x_shape
  out = grad_y.shape[1:-1]

  # Each output's gradient goes to the first maximum of its window: [B, *S', C, K].
  grad_tiles = jax.nn.one_hot(first_max, int(np.prod(window)), dtype=grad_y.dtype)
  grad_tiles = grad_tiles * grad_y[..., None]

  # Undo the tiling: [B, *S', C, K1, K2] -> [B, S'1, K1, S'2, K2, C] -> [B, *S' * K, C].
  grad_tiles = grad_tiles.reshape(batch, *out, channels, *window)
  grad_x = grad_tiles.transpose(np.argsort(_tile_order(len(window))))
  grad_x = grad_x.reshape(batch, *(o * width for o, width in zip(out, window)), channels)

  # Rows and columns cropped off in the forward pass get no gradient.
  cropped = [(0, size - o * width) for size, o, width in zip(spatial, out, window)]
  return (jnp.pad(grad_x, ((0, 0), *cropped, (0, 0))),)


_max_pool_tiles.defvjp(_max_pool_tiles_forward, _max_pool_tiles_backward)


def avg_pool(
    x: jax.typing.ArrayLike,
    *,
    window: int | Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: Padding = "VALID",
) -> jax.Array:
  """Average over each window, as Keras `AveragePooling2D` and `AveragePooling1D`.

  Each window's sum is divided by the number of real elements in it, so padding never pulls
  a border average towards zero. With "VALID" padding every window contains prod(window)
  elements. This matches Keras, whereas PyTorch's default `count_include_pad=True` divides
  by prod(window) everywhere.

  Args:
    x: f32[B, H, W, C] images or f32[B, T, C] sequences.
    window: window size, one int for every pooled axis or one int per pooled axis.
    strides: step between windows, in the same form. Defaults to `window`, as in Keras.
    padding: "VALID", "SAME" or one (low, high) pair per pooled axis. A window that contains
      only padding, possible with explicit padding wider than the window, averages to NaN.

  Returns:
    f32[B, H', W', C] or f32[B, T', C] in the dtype of `x`.

  Raises:
    ValueError: as `max_pool`.
  """
  x, window_shape, strides, padding = _pool_arguments("avg_pool", x, window, strides, padding)

  # 16-bit inputs are summed in float32 so that large windows do not lose precision.
  dtype = x.dtype
  if jnp.finfo(dtype).bits < 32:
    x = x.astype(jnp.float32)
  zero = np.array(0, x.dtype)
  sums = jax.lax.reduce_window(x, zero, jax.lax.add, window_shape, strides, padding)

  # Count the real elements of each window by pooling ones over the spatial axes alone.
  # The count broadcasts over batch and channels.
  ones = jnp.ones((1, *x.shape[1:-1], 1), x.dtype)
  counts = jax.lax.reduce_window(ones, zero, jax.lax.add, window_shape, strides, padding)
  return (sums / counts).astype(dtype)


def _pool_arguments(
    name: str,
    x: jax.typing.ArrayLike,
    window: int | Sequence[int],
    strides: int | Sequence[int] | None,
    padding: Padding,
) -> tuple[jax.Array, tuple[int, ...], tuple[int, ...], str | tuple[tuple[int, int], ...]]:
  """Check pooling arguments and spread them over all axes of `x`, with 1 for B and C."""
  x = jnp.asarray(x)
  if x.ndim not in (3, 4):
    raise ValueError(f"{name}: x must have shape [B, H, W, C] or [B, T, C], got {x.shape}")
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise ValueError(f"{name}: x must be floating point, got {x.dtype}. Cast it first, "
                     "for example with x.astype(jnp.float32)")

  num_spatial = x.ndim - 2
  window = _positive_ints(name, "window", window, num_spatial)
  strides = window if strides is None else _positive_ints(name, "strides", strides, num_spatial)
  padding = _canonical_padding(name, padding, num_spatial)

  # reduce_window takes one entry per axis of x: batch and channels are never pooled.
  window_shape = (1, *window, 1)
  strides = (1, *strides, 1)
  if not isinstance(padding, str):
    padding = ((0, 0), *padding, (0, 0))
  return x, window_shape, strides, padding
