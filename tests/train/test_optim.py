"""Tests of the optimizers built from `config.optim`, against NumPy versions of their equations."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxmodels.train import config as config_lib
from jaxmodels.train import optim


def _adadelta_reference(param, grads, *, learning_rate, rho, eps):
  """Apply Algorithm 1 of Zeiler (2012), "ADADELTA: An Adaptive Learning Rate Method", with
  each step scaled by `learning_rate`."""
  mean_sq_grad = np.zeros_like(param)
  mean_sq_step = np.zeros_like(param)
  for grad in grads:
    mean_sq_grad = rho * mean_sq_grad + (1 - rho) * grad**2
    step = -np.sqrt(mean_sq_step + eps) / np.sqrt(mean_sq_grad + eps) * grad
    mean_sq_step = rho * mean_sq_step + (1 - rho) * step**2
    param = param + learning_rate * step
  return param


def test_adadelta_matches_reference():
  optim_config = config_lib.base_config().optim
  optim_config.name = "adadelta"
  optim_config.learning_rate = 1.0
  optim_config.rho = 0.95
  optim_config.eps = 1e-6
  tx, _ = optim.create_optimizer(optim_config, total_steps=3)
  rng = np.random.default_rng(0)
  param = rng.normal(size=(5,)).astype(np.float32)
  grads = [rng.normal(size=(5,)).astype(np.float32) for _ in range(3)]

  params = jnp.asarray(param)
  opt_state = tx.init(params)
  for grad in grads:
    updates, opt_state = tx.update(jnp.asarray(grad), opt_state, params)
    params = optax.apply_updates(params, updates)

  expected = _adadelta_reference(param.astype(np.float64), [g.astype(np.float64) for g in grads],
                                 learning_rate=1.0, rho=0.95, eps=1e-6)
  np.testing.assert_allclose(np.asarray(params), expected, rtol=1e-5, atol=1e-7)


def test_unknown_optimizer_names_the_choices():
  optim_config = config_lib.base_config().optim
  optim_config.name = "adagrad"

  with pytest.raises(ValueError, match="'adagrad'.*adadelta"):
    optim.create_optimizer(optim_config, total_steps=1)
