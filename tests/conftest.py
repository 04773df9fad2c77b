"""Test settings shared by the whole suite.

Strict dtype promotion and rank promotion set to "raise" turn silent upcasts and silent
broadcasting into errors, so a shape bug fails a test instead of producing a plausible number.
"""

import jax
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def key():
  """Fresh PRNG key for a test."""
  return jax.random.key(0)
