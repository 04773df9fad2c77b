"""Prototype: a 2-D convolution as im2col + one matrix product, with a custom VJP.

  python benchmarks/prototypes/im2col_conv.py [--batch-sizes=32,128] [--rounds=7]

Compares forward + backward time with `lax.conv_general_dilated` on the three convolutions of
the tutorial CNN, then the whole jaxmodels CNN train step with `jaxmodels.ops.conv.conv2d`
swapped for the prototype (in this process only). Stride 1 and VALID padding only.

Shape letters: B batch, H W height and width, C channels in, O channels out, K = KH * KW * C.
"""

import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # pylint: disable=g-import-not-at-top


def _patches(x: jax.Array, kernel_height: int, kernel_width: int) -> jax.Array:
  """Stack the KH * KW shifted views of f32[B, H, W, C] into f32[B, H', W', KH * KW * C]."""
  out_height = x.shape[1] - kernel_height + 1
  out_width = x.shape[2] - kernel_width + 1
  views = [
      x[:, i:i + out_height, j:j + out_width, :]
      for i in range(kernel_height)
      for j in range(kernel_width)
  ]
  # Channel order (i, j, c) matches kernel.reshape(KH * KW * C, O) of an HWIO kernel.
  return jnp.concatenate(views, axis=-1)


@jax.custom_vjp
def conv2d_im2col(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Convolve f32[B, H, W, C] with an f32[KH, KW, C, O] kernel (VALID, stride 1)."""
  kernel_height, kernel_width, _, out_channels = kernel.shape
  patches = _patches(x, kernel_height, kernel_width)  # [B, H', W', K]
  return patches @ kernel.reshape(-1, out_channels)  # [B, H', W', O]


def _forward(x, kernel):
  return conv2d_im2col(x, kernel), (x, kernel)


def _backward(residuals, grad_y):
  x, kernel = residuals
  kernel_height, kernel_width, channels, out_channels = kernel.shape

  # The weight gradient is one product of the patches with the output gradient.
  patches = _patches(x, kernel_height, kernel_width)  # [B, H', W', K]
  grad_kernel = jnp.einsum("bhwk,bhwo->ko", patches, grad_y)  # [K, O]

  # The input gradient scatters each patch gradient back to its shifted view (col2im).
  grad_patches = grad_y @ kernel.reshape(-1, out_channels).T  # [B, H', W', K]
  grad_x = jnp.zeros_like(x)
  for index in range(kernel_height * kernel_width):
    i, j = divmod(index, kernel_width)
    view = grad_patches[..., index * channels:(index + 1) * channels]  # [B, H', W', C]
    grad_x = grad_x + jnp.pad(
        view, ((0, 0), (i, kernel_height - 1 - i), (j, kernel_width - 1 - j), (0, 0))
    )
  return grad_x, grad_kernel.reshape(kernel.shape)


conv2d_im2col.defvjp(_forward, _backward)


def conv2d_lax(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Convolve with `lax.conv_general_dilated` (the reference), as `jaxmodels.ops.conv` does."""
  return jax.lax.conv_general_dilated(
      x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
  )


def cnn_conv_shapes(batch_size: int) -> list[tuple[str, tuple[int, ...], tuple[int, ...]]]:
  """Return (name, input shape, kernel shape) of each convolution of the tutorial CNN."""
  shapes = []
  height, width, channels = common.IMAGE_SHAPE
  for index, features in enumerate(common.CONV_FEATURES):
    shapes.append((f"conv{index}", (batch_size, height, width, channels),
                   (common.CONV_KERNEL, common.CONV_KERNEL, channels, features)))
    height, width = height - common.CONV_KERNEL + 1, width - common.CONV_KERNEL + 1
    if index < len(common.CONV_FEATURES) - 1:
      height, width = height // 2, width // 2
    channels = features
  return shapes


def _time(function, *args, rounds: int, calls: int) -> float:
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


def compare_layers(batch_sizes: tuple[int, ...], rounds: int) -> None:
  """Time forward + backward of both convolutions on each CNN layer shape, and check values."""
  print("| layer | batch | lax conv (us) | im2col (us) | lax / im2col |")
  print("|---|---:|---:|---:|---:|")
  for batch_size in batch_sizes:
    for name, x_shape, kernel_shape in cnn_conv_shapes(batch_size):
      x_key, kernel_key, grad_key = jax.random.split(jax.random.key(0), 3)
      x = jax.random.normal(x_key, x_shape)
      kernel = jax.random.normal(kernel_key, kernel_shape) * 0.1
      grad_y = jax.random.normal(grad_key, conv2d_lax(x, kernel).shape)

      # The first layer needs no input gradient, as in training.
      argnums = (1,) if name == "conv0" else (0, 1)
      timings = []
      grads = []
      for conv in (conv2d_lax, conv2d_im2col):
        loss = lambda x, kernel, conv=conv: jnp.vdot(conv(x, kernel), grad_y)
        step = jax.jit(jax.grad(loss, argnums=argnums))
        grads.append(step(x, kernel))
        timings.append(_time(step, x, kernel, rounds=rounds, calls=20))
      # Sums over B * H' * W' products of either order agree to float32 rounding of the sum.
      for reference, prototype in zip(*grads):
        scale = float(jnp.max(jnp.abs(reference)))
        np.testing.assert_allclose(prototype, reference, rtol=1e-4, atol=1e-5 * scale)
      print(f"| {name} {x_shape[1:]}->{kernel_shape[-1]} | {batch_size} | "
            f"{timings[0] * 1e6:,.0f} | {timings[1] * 1e6:,.0f} | "
            f"{timings[0] / timings[1]:.2f} |")


def compare_train_steps(batch_sizes: tuple[int, ...], rounds: int) -> None:
  """Time the jaxmodels CNN train step with each convolution, in alternating windows."""
  import jaxmodels_runner  # pylint: disable=g-import-not-at-top
  from jaxmodels.ops import conv as conv_ops  # pylint: disable=g-import-not-at-top

  original = conv_ops.conv2d

  def conv2d_prototype(params, x, *, strides=(1, 1), padding="VALID", **unused):
    if tuple(strides) != (1, 1) or padding != "VALID":
      raise ValueError("the im2col prototype supports stride 1 and VALID padding only")
    return conv2d_im2col(x, params["kernel"]) + params["bias"]

  print("\n| CNN train step | batch | lax conv (ex/s) | im2col (ex/s) | im2col / lax |")
  print("|---|---:|---:|---:|---:|")
  for batch_size in batch_sizes:
    rates = jaxmodels_runner.compare_variants(
        "cnn", batch_size, conv_ops, "conv2d", {"lax": original, "im2col": conv2d_prototype},
        rounds=rounds, examples_per_window=4096)
    lax_rate, im2col_rate = rates["lax"], rates["im2col"]
    print(f"| cnn | {batch_size} | {lax_rate:,.0f} | {im2col_rate:,.0f} | "
          f"{im2col_rate / lax_rate:.2f} |")


def main() -> None:
  parser = common.prototype_parser(__doc__)
  args = parser.parse_args()
  batch_sizes = common.parse_batch_sizes(args.batch_sizes)
  compare_layers(batch_sizes, args.rounds)
  compare_train_steps(batch_sizes, args.rounds)


if __name__ == "__main__":
  main()
