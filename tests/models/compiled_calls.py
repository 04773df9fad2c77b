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
