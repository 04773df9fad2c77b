"""Tests for jaxmodels.train.steps: microbatches against whole batches."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxmodels.models import cnn
from jaxmodels.models import text_cnn
from jaxmodels.train import state as state_lib
from jaxmodels.train import steps


def test_split_microbatches_is_strided():
  batch = {"inputs": np.arange(24, dtype=np.float32).reshape(12, 2),
           "labels": np.arange(12, dtype=np.int32)}

  microbatches = steps.split_microbatches(batch, 3)

  assert len(microbatches) == 3
  for k, microbatch in enumerate(microbatches):
    np.testing.assert_array_equal(microbatch["labels"], [k, k + 3, k + 6, k + 9])
    np.testing.assert_array_equal(microbatch["inputs"], batch["inputs"][k::3])


def test_split_microbatches_rejects_remainder():
  batch = {"inputs": np.zeros((10, 2), np.float32), "labels": np.zeros((10,), np.int32)}

  with pytest.raises(ValueError, match="A batch of 10 examples does not split into 4"):
    steps.split_microbatches(batch, 4)


def _cnn_setup(seed=0):
  model = cnn.CNN(num_classes=10, conv_features=(4, 8, 8), hidden_units=16)
  tx = optax.sgd(0.1)
  rng = np.random.default_rng(seed)
  batch = {"inputs": rng.normal(size=(16, 28, 28, 1)).astype(np.float32),
           "labels": rng.integers(0, 10, size=16).astype(np.int32)}
  state = state_lib.create_train_state(
      model, tx, key=jax.random.key(seed), example_inputs=batch["inputs"][:1])
  return model, tx, state, batch


@pytest.mark.parametrize("num_microbatches", [2, 4, 16])
def test_train_step_microbatches_match_whole_batch(num_microbatches):
  model, tx, state, batch = _cnn_setup()
  step = jax.jit(steps.train_step, static_argnames=("model", "tx", "num_microbatches"))

  whole_state, whole_sums = step(state, steps.zero_metrics(), batch, model=model, tx=tx)
  split_state, split_sums = step(state, steps.zero_metrics(), batch, model=model, tx=tx,
                                 num_microbatches=num_microbatches)

  # The CNN has no dropout, so only the order of the additions differs.
  for split, whole in zip(jax.tree.leaves(split_state.params),
                          jax.tree.leaves(whole_state.params)):
    np.testing.assert_allclose(np.asarray(split), np.asarray(whole), rtol=1e-5, atol=1e-6)
  assert int(split_state.step) == int(whole_state.step) == 1
  np.testing.assert_allclose(split_sums["loss_sum"], whole_sums["loss_sum"], rtol=1e-6)
  assert float(split_sums["correct"]) == float(whole_sums["correct"])
  assert float(split_sums["count"]) == float(whole_sums["count"]) == 16.0


def test_train_step_microbatch_gradient_is_batch_mean():
  model, _, state, batch = _cnn_setup(seed=1)
  # SGD with learning rate 1: the update is minus the gradient.
  tx = optax.sgd(1.0)
  state = state.replace(opt_state=tx.init(state.params))

  def mean_loss(params):
    logits = model.apply({"params": params}, batch["inputs"])
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, batch["labels"]))

  expected = jax.grad(mean_loss)(state.params)
  new_state, _ = steps.train_step(state, steps.zero_metrics(), batch, model=model, tx=tx,
                                  num_microbatches=4)

  for new, old, grad in zip(jax.tree.leaves(new_state.params), jax.tree.leaves(state.params),
                            jax.tree.leaves(expected)):
    np.testing.assert_allclose(np.asarray(old - new), np.asarray(grad), rtol=1e-4, atol=1e-7)


def test_train_step_microbatches_draw_dropout_per_microbatch():
  model = text_cnn.TextCNN(num_classes=3, vocab_size=20, embedding_dim=8, filter_widths=(2,),
                           num_filters=4, dropout_rate=0.5)
  tx = optax.sgd(0.1)
  rng = np.random.default_rng(0)
  batch = {"inputs": rng.integers(1, 20, size=(8, 6)).astype(np.int32),
           "labels": rng.integers(0, 3, size=8).astype(np.int32)}
  state = state_lib.create_train_state(model, tx, key=jax.random.key(0),
                                       example_inputs=batch["inputs"][:1])

  whole_state, _ = steps.train_step(state, steps.zero_metrics(), batch, model=model, tx=tx)
  split_state, split_sums = steps.train_step(state, steps.zero_metrics(), batch, model=model,
                                             tx=tx, num_microbatches=2)

  assert float(split_sums["count"]) == 8.0
  assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(split_state.params))
  # Other dropout masks give another update.
  differences = [float(jnp.max(jnp.abs(a - b))) for a, b in
                 zip(jax.tree.leaves(split_state.params), jax.tree.leaves(whole_state.params))]
  assert max(differences) > 0.0
