"""`init` and `apply` of Flax models under `jax.jit`, shared by the model tests."""

import functools

import jax


@functools.cache
def _compiled(model):
  """Return `model.init` and `model.apply` under `jax.jit`, compiled once per model and shape.

  A compiled call is much faster here than eager dispatch, which compiles every primitive.
  """
  return jax.jit(model.init), jax.jit(model.apply, static_argnames=("train", "mutable"))


def init(model, key, ids):
  """Initialize `model` on token ids with a compiled `model.init`."""
  return _compiled(model)[0](key, ids)


def apply(model, variables, ids, **kwargs):
  """Run a compiled `model.apply`, with `train` and `mutable` as static keywords."""
  return _compiled(model)[1](variables, ids, **kwargs)


def outputs_in_both_modes(model, variables, ids):
  """Return two evaluation outputs and two training outputs with dropout keys 1 and 2.

  The dropout tests compare them: evaluation repeats exactly, and training differs by key.
  """
  evaluated = [apply(model, variables, ids, train=False) for _ in range(2)]
  trained = [apply(model, variables, ids, train=True, rngs={"dropout": jax.random.key(seed)})
             for seed in (1, 2)]
  return evaluated, trained
