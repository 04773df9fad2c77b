"""The convolutional classifier of the Keras MNIST tutorial.

Conv(32, 3x3, relu) -> MaxPool 2x2 -> Conv(64, 3x3, relu) -> MaxPool 2x2 -> Conv(64, 3x3, relu)
-> Flatten -> Dense(64, relu) -> Dense(num_classes). On 28x28x1 inputs with 10 classes it has
93,322 parameters, the count Keras reports for the same layers.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax

from jaxmodels.models import layers
from jaxmodels.ops import basic
from jaxmodels.ops import pool


class CNN(nn.Module):
  """Tutorial CNN on f32[B, H, W, C] images, returning f32[B, num_classes] logits."""

  num_classes: int = 10
  conv_features: Sequence[int] = (32, 64, 64)
  hidden_units: int = 64

  @nn.compact
  def __call__(self, images: jax.Array, *, train: bool = False) -> jax.Array:
    del train  # The CNN has no dropout or normalization.
    x = images

    # Every convolution but the last is followed by 2x2 max pooling.
    for index, features in enumerate(self.conv_features):
      x = basic.relu(layers.Conv2D(features, (3, 3), name=f"conv{index}")(x))
      if index < len(self.conv_features) - 1:
        x = pool.max_pool(x, window=(2, 2))

    # [B, H', W', C'] -> [B, H' * W' * C']
    x = basic.flatten(x)
    x = basic.relu(layers.Dense(self.hidden_units, name="dense0")(x))
    return layers.Dense(self.num_classes, name="logits")(x)
