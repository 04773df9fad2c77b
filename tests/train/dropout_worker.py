"""Print the dropout masks that `train_step` draws on each of 2 devices, under both back ends.

Dropout keeps a feature where the gradient of the first dense layer's kernel is nonzero.

Run by tests/train/test_parallel.py with 2 forced CPU devices.
"""

import functools
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import flax.linen as nn  # pylint: disable=g-import-not-at-top
import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import ml_collections  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top
import optax  # pylint: disable=g-import-not-at-top

from jaxmodels.models import layers  # pylint: disable=g-import-not-at-top
from jaxmodels.train import parallel  # pylint: disable=g-import-not-at-top
from jaxmodels.train import state as state_lib  # pylint: disable=g-import-not-at-top
from jaxmodels.train import steps  # pylint: disable=g-import-not-at-top


class DropoutProbe(nn.Module):
  """Dropout followed by a dense layer, whose kernel gradient is zero for dropped inputs."""

  @nn.compact
  def __call__(self, x, *, train):
    return layers.Dense(2)(layers.Dropout(0.5)(x, train=train))


def main():
  mesh = parallel.create_mesh(ml_collections.ConfigDict({"mesh_shape": (2, 1)}))
  model, tx = DropoutProbe(), optax.sgd(1.0)
  # Device 0 feeds ones and device 1 twos. Kernel row i then moves by 0, by device 0's or
  # device 1's share, or by both: with one mask for both devices only 0 and "both" occur.
  inputs = np.ones((2, 64), np.float32)
  inputs[1] = 2.0
  batch = {"inputs": jnp.asarray(inputs), "labels": jnp.zeros((2,), jnp.int32)}
  masks = {}
  for backend in ("jit", "pmap"):
    state = state_lib.create_train_state(
        model, tx, key=jax.random.key(0), example_inputs=batch["inputs"])
    before = np.asarray(state.params["Dense_0"]["kernel"])
    train_fn = parallel.compile_step(
        functools.partial(steps.train_step, model=model, tx=tx), mesh=mesh, backend=backend,
        in_shardings=(parallel.replicated(mesh),) * 2 + (parallel.batch_sharding(mesh),),
        out_shardings=(parallel.replicated(mesh),) * 2, batch_argnum=2)
    results = []
    for _ in range(2):  # The same step twice: the masks must repeat.
      new_state, _ = train_fn(state, steps.zero_metrics(), parallel.put_batch(batch, mesh))
      moves = np.asarray(new_state.params["Dense_0"]["kernel"])[:, 0] - before[:, 0]
      results.append(np.round(moves, 6).tolist())
    masks[backend] = results
  print("RESULTS " + json.dumps(masks))


if __name__ == "__main__":
  main()
