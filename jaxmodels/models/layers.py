"""Flax layers that hold parameters and call the pure ops in `jaxmodels.ops`.

Each layer declares its parameters with Keras's names and shapes (`kernel`, `bias`, ...), so the
parameter tree of a model reads like its Keras counterpart and the counts match what Keras reports.
All numerical work happens in the pure ops; these classes only create and pass parameters.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmodels.ops import conv as conv_ops
from jaxmodels.ops import basic

Padding = str | Sequence[tuple[int, int]]


class Conv2D(nn.Module):
  """2-D convolution on f32[B, H, W, C] with an HWIO kernel, as Keras `Conv2D`."""

  features: int
  kernel_size: tuple[int, int]
  strides: tuple[int, int] = (1, 1)
  padding: Padding = "VALID"
  use_bias: bool = True
  kernel_init: nn.initializers.Initializer = nn.initializers.glorot_uniform()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel_shape = (*self.kernel_size, x.shape[-1], self.features)
    params = {"kernel": self.param("kernel", self.kernel_init, kernel_shape)}
    if self.use_bias:
      params["bias"] = self.param("bias", nn.initializers.zeros, (self.features,))
    return conv_ops.conv2d(params, x, strides=self.strides, padding=self.padding)


class Conv1D(nn.Module):
  """1-D convolution over the steps of f32[B, T, C], as Keras `Conv1D`."""

  features: int
  kernel_size: int
  padding: Padding = "VALID"
  use_bias: bool = True
  kernel_init: nn.initializers.Initializer = nn.initializers.glorot_uniform()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel_shape = (self.kernel_size, x.shape[-1], self.features)
    params = {"kernel": self.param("kernel", self.kernel_init, kernel_shape)}
    if self.use_bias:
      params["bias"] = self.param("bias", nn.initializers.zeros, (self.features,))
    return conv_ops.conv1d(params, x, padding=self.padding)


class Dense(nn.Module):
  """Affine map on the last axis of f32[..., C], as Keras `Dense`."""

  features: int
  use_bias: bool = True
  kernel_init: nn.initializers.Initializer = nn.initializers.glorot_uniform()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    params = {"kernel": self.param("kernel", self.kernel_init, (x.shape[-1], self.features))}
    if self.use_bias:
      params["bias"] = self.param("bias", nn.initializers.zeros, (self.features,))
    return basic.dense(params, x)


class Embedding(nn.Module):
  """Lookup of int[B, T] token ids in a f32[V, D] table, as Keras `Embedding`.

  Token ids are not range-checked here, because a check inside `jit` cannot raise: the data
  pipeline validates ids on the host with `jaxmodels.ops.basic.check_token_ids`.
  """

  vocab_size: int
  features: int
  # The table starts uniform in [-init_scale, init_scale]: 0.05 as in Keras, 0.25 in Kim (2014).
  init_scale: float = 0.05

  @nn.compact
  def __call__(self, ids: jax.Array) -> jax.Array:
    table = self.param(
        "embedding",
        lambda key, shape: (nn.initializers.uniform(scale=2 * self.init_scale)(key, shape)
                            - jnp.float32(self.init_scale)),
        (self.vocab_size, self.features),
    )
    return basic.embed({"embedding": table}, ids)


class Dropout(nn.Module):
  """Inverted dropout drawing its mask from the `dropout` PRNG stream; identity in evaluation."""

  rate: float

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    if not train or self.rate == 0.0:
      return x
    return basic.dropout(x, rate=self.rate, key=self.make_rng("dropout"), deterministic=False)
