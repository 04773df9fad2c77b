"""Prototype: 2x2 max pooling by reshape, with a gradient that avoids `select_and_scatter`.

  python benchmarks/prototypes/reshape_max_pool.py [--batch-sizes=32,128] [--rounds=7]

`jax.lax.reduce_window` max pooling differentiates to `select_and_scatter`, which XLA's CPU
back end runs far slower than the forward pass. For non-overlapping windows (strides equal to
the window, VALID padding) the same pooling is a reshape to f32[B, H', KH, W', KW, C] and a max
over the window axes. The custom VJP sends each output's gradient to the first maximum of its
window in row-major order, as `select_and_scatter` with `ge` does, so gradients match even with
ties (the plain `jnp.max` gradient would split them among tied elements).

Compares pool gradients on the CNN's two pooling shapes, then the whole jaxmodels CNN train step
with `jaxmodels.ops.pool.max_pool` swapped for the prototype (in this process only).

Shape letters: B batch, H W height and width, C channels, KH KW window.
"""

import functools
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # pylint: disable=g-import-not-at-top


def _windows(x: jax.Array, window: tuple[int, int]) -> jax.Array:
  """Crop f32[B, H, W, C] to whole windows and return f32[B, H', W', C, KH * KW]."""
  batch, height, width, channels = x.shape
  kernel_height, kernel_width = window
  out_height, out_width = height // kernel_height, width // kernel_width
  x = x[:, :out_height * kernel_height, :out_width * kernel_width]
  x = x.reshape(batch, out_height, kernel_height, out_width, kernel_width, channels)
  x = x.transpose(0, 1, 3, 5, 2, 4)  # [B, H', W', C, KH, KW]
  return x.reshape(batch, out_height, out_width, channels, kernel_height * kernel_width)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def max_pool_reshape(x: jax.Array, window: tuple[int, int]) -> jax.Array:
  """Max-pool f32[B, H, W, C] over non-overlapping windows (VALID, strides = window)."""
  return jnp.max(_windows(x, window), axis=-1)


def _forward(x, window):
  windows = _windows(x, window)  # [B, H', W', C, K]
  first_max = jnp.argmax(windows, axis=-1)  # [B, H', W', C]
  return jnp.max(windows, axis=-1), (first_max, x.shape)


def _backward(window, residuals, grad_y):
  first_max, x_shape = residuals
  batch, height, width, channels = x_shape
  kernel_height, kernel_width = window
  out_height, out_width = grad_y.shape[1:3]

  # Each output gradient goes to the first maximum of its window.
  picks = jax.nn.one_hot(first_max, kernel_height * kernel_width, dtype=grad_y.dtype)
  grad_windows = picks * grad_y[..., None]  # [B, H', W', C, K]
  grad_windows = grad_windows.reshape(batch, out_height, out_width, channels, kernel_height,
                                      kernel_width)
  grad_x = grad_windows.transpose(0, 1, 4, 2, 5, 3).reshape(
      batch, out_height * kernel_height, out_width * kernel_width, channels)

  # Rows and columns cropped off in the forward pass get no gradient.
  grad_x = jnp.pad(grad_x, ((0, 0), (0, height - out_height * kernel_height),
                            (0, width - out_width * kernel_width), (0, 0)))
  return (grad_x,)


max_pool_reshape.defvjp(_forward, _backward)


def max_pool_lax(x: jax.Array, window: tuple[int, int]) -> jax.Array:
  """Max-pool with `reduce_window` (the reference), as `jaxmodels.ops.pool.max_pool` does for
  overlapping windows."""
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, *window, 1), (1, *window, 1),
                               "VALID")


def _time(function, *args, rounds: int, calls: int = 10) -> float:
  """Return the median seconds per call over `rounds` windows of `calls` calls each."""
  jax.block_until_ready(function(*args))
  times = []
  for _ in range(rounds):
    start = time.perf_counter()
    for _ in range(calls):
      out = function(*args)
    jax.block_until_ready(out)
    times.append((time.perf_counter() - start) / calls)
  return float(np.median(times))


def compare_pools(batch_sizes: tuple[int, ...], rounds: int) -> None:
  """Time and check forward + backward of both poolings on the CNN's pooling shapes."""
  print("| pool input | batch | reduce_window (us) | reshape (us) | reduce_window / reshape |")
  print("|---|---:|---:|---:|---:|")
  for batch_size in batch_sizes:
    for shape in ((batch_size, 26, 26, 32), (batch_size, 11, 11, 64)):
      x = jax.random.normal(jax.random.key(0), shape)
      # Rounded values create ties, which the gradients must route alike.
      x_ties = jnp.round(jax.nn.relu(x))
      weights = jax.random.normal(jax.random.key(1), max_pool_lax(x, (2, 2)).shape)
      timings = []
      for pool in (max_pool_lax, max_pool_reshape):
        step = jax.jit(jax.grad(lambda x, pool=pool: jnp.vdot(pool(x, (2, 2)), weights)))
        timings.append(_time(step, x, rounds=rounds))
        np.testing.assert_array_equal(pool(x, (2, 2)), max_pool_lax(x, (2, 2)))
        reference = jax.grad(lambda x: jnp.vdot(max_pool_lax(x, (2, 2)), weights))
        for data in (x, x_ties):
          np.testing.assert_array_equal(step(data), reference(data))
      print(f"| {shape[1:]} | {batch_size} | {timings[0] * 1e6:,.0f} | {timings[1] * 1e6:,.0f} "
            f"| {timings[0] / timings[1]:.1f} |")


def compare_train_steps(batch_sizes: tuple[int, ...], rounds: int) -> None:
  """Time the jaxmodels CNN train step with each pooling, in alternating windows."""
  import jaxmodels_runner  # pylint: disable=g-import-not-at-top
  from jaxmodels.ops import pool as pool_ops  # pylint: disable=g-import-not-at-top

  def check_window(x, window, strides, padding):
    window = tuple(window) if not isinstance(window, int) else (window, window)
    if strides not in (None, window) or padding != "VALID" or x.ndim != 4:
      raise ValueError("the prototype supports only 4-D inputs, strides equal to the "
                       "window and VALID padding")
    return window

  def max_pool_reduce_window(x, *, window, strides=None, padding="VALID"):
    return max_pool_lax(x, check_window(x, window, strides, padding))

  def max_pool_prototype(x, *, window, strides=None, padding="VALID"):
    return max_pool_reshape(x, check_window(x, window, strides, padding))

  print("\n| CNN train step | batch | reduce_window (ex/s) | reshape (ex/s) | "
        "reshape / reduce_window |")
  print("|---|---:|---:|---:|---:|")
  for batch_size in batch_sizes:
    rates = jaxmodels_runner.compare_variants(
        "cnn", batch_size, pool_ops, "max_pool",
        {"lax": max_pool_reduce_window, "reshape": max_pool_prototype}, rounds=rounds,
        examples_per_window=2048)
    lax_rate, reshape_rate = rates["lax"], rates["reshape"]
    print(f"| cnn | {batch_size} | {lax_rate:,.0f} | {reshape_rate:,.0f} | "
          f"{reshape_rate / lax_rate:.2f} |")


def main() -> None:
  parser = common.prototype_parser(__doc__)
  args = parser.parse_args()
  batch_sizes = common.parse_batch_sizes(args.batch_sizes)
  compare_pools(batch_sizes, args.rounds)
  compare_train_steps(batch_sizes, args.rounds)


if __name__ == "__main__":
  main()
