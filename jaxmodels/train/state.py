"""The train state: everything a run needs to continue, as one PyTree."""

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
  """Parameters, optimizer state, step counter and PRNG key of a run.

  Attributes:
    step: i32[] number of optimizer updates applied so far.
    params: model parameters (nested dict of f32 arrays).
    opt_state: Optax optimizer state for `params`.
    rng: u32[2] raw data of the run's training key; steps draw `fold_in(key, step)` from it, so a
      resumed run draws the same numbers as an uninterrupted one.
  """

  step: jax.Array
  params: Any
  opt_state: optax.OptState
  rng: jax.Array

  @property
  def key(self) -> jax.Array:
    """Typed PRNG key wrapping `rng`."""
    return jax.random.wrap_key_data(self.rng)


def create_train_state(
    model, tx: optax.GradientTransformation, *, key: jax.Array, example_inputs: jax.Array
) -> TrainState:
  """Initialize parameters from `key` and an example batch, and the optimizer state for them."""
  init_key, train_key = jax.random.split(key)
  params = model.init(init_key, example_inputs, train=False)["params"]
  return TrainState(
      step=jnp.zeros((), jnp.int32),
      params=params,
      opt_state=tx.init(params),
      rng=jax.random.key_data(train_key),
  )


def count_params(params: Any) -> int:
  """Return the number of scalar parameters in a PyTree."""
  return sum(int(x.size) for x in jax.tree.leaves(params))
