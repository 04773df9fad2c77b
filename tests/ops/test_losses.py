"""Tests for jaxmodels.ops.losses against NumPy references."""

import jax
import jax.numpy as jnp
from jax.test_util import check_grads
import numpy as np
import pytest

from jaxmodels.ops import losses


def normal(shape, seed=0, scale=1.0):
  """Return float32 normal samples drawn with NumPy, which compiles nothing per shape."""
  return jnp.asarray(scale * np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def cross_entropy_reference(logits, labels):
  """Compute -log softmax(logits)[label] in float64, one example at a time."""
  logits = np.asarray(logits, np.float64)
  labels = np.asarray(labels)
  out = np.zeros(labels.shape)
  for index in np.ndindex(*labels.shape):
    row = logits[index]
    log_normalizer = row.max() + np.log(np.sum(np.exp(row - row.max())))
    out[index] = log_normalizer - row[labels[index]]
  return out


@pytest.mark.parametrize("logits_shape, scale", [((4, 5), 1.0), ((2, 3, 7), 30.0), ((6, 2), 1e-3)])
def test_softmax_cross_entropy_matches_reference(logits_shape, scale):
  logits = normal(logits_shape, scale=scale)
  rng = np.random.default_rng(1)
  labels = jnp.asarray(rng.integers(0, logits_shape[-1], logits_shape[:-1]), jnp.int32)

  loss = losses.softmax_cross_entropy(logits, labels)
  expected = cross_entropy_reference(logits, labels)
  assert loss.dtype == jnp.float32
  assert loss.shape == logits_shape[:-1]
  np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-6)

  shape = jax.eval_shape(losses.softmax_cross_entropy, logits, labels)
  assert shape.shape == logits_shape[:-1]
  assert shape.dtype == jnp.float32
  np.testing.assert_allclose(jax.jit(losses.softmax_cross_entropy)(logits, labels), loss,
                             rtol=1e-5, atol=1e-6)


def test_softmax_cross_entropy_large_logits_are_finite():
  logits = jnp.array([[1000.0, 0.0, -1000.0], [-1000.0, 1000.0, 999.0]], jnp.float32)
  labels = jnp.array([0, 2], jnp.int32)
  loss = losses.softmax_cross_entropy(logits, labels)
  np.testing.assert_allclose(loss, cross_entropy_reference(logits, labels), rtol=1e-5, atol=1e-6)


def test_softmax_cross_entropy_bfloat16_computes_in_float32():
  logits = normal((4, 6)).astype(jnp.bfloat16)
  labels = jnp.array([0, 5, 2, 3], jnp.int32)
  loss = losses.softmax_cross_entropy(logits, labels)
  assert loss.dtype == jnp.float32
  # The reference reads the same bfloat16 values, so only float32 rounding remains.
  expected = cross_entropy_reference(np.asarray(logits.astype(jnp.float32)), labels)
  np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-6)


def test_softmax_cross_entropy_grads():
  logits = normal((3, 4))
  labels = jnp.array([3, 0, 1], jnp.int32)
  fn = lambda x: losses.softmax_cross_entropy(x, labels)
  # Finite differences in float32 with eps=1e-3 are only good to about 1e-2.
  check_grads(fn, (logits,), order=2, modes=("fwd", "rev"), eps=1e-3, atol=1e-2, rtol=1e-2)

  # The gradient of the loss is softmax(logits) - onehot(label).
  grad = jax.grad(lambda x: jnp.sum(fn(x)))(logits)
  x = np.asarray(logits, np.float64)
  softmax = np.exp(x - x.max(axis=1, keepdims=True))
  softmax /= softmax.sum(axis=1, keepdims=True)
  np.testing.assert_allclose(grad, softmax - np.eye(4)[np.asarray(labels)], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype, bad_label", [(jnp.int32, -1), (jnp.int32, 4), (jnp.uint8, 255)])
def test_softmax_cross_entropy_out_of_range_gives_nan(dtype, bad_label):
  logits = normal((3, 4))
  labels = jnp.asarray(np.array([1, bad_label, 2]), dtype)
  loss = np.asarray(losses.softmax_cross_entropy(logits, labels))
  assert np.isnan(loss[1])
  expected = cross_entropy_reference(logits[::2], np.array([1, 2]))
  np.testing.assert_allclose(loss[::2], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fn", [losses.softmax_cross_entropy, losses.accuracy])
@pytest.mark.parametrize("logits, labels, match", [
    (jnp.ones((3, 4)), jnp.zeros((4,), jnp.int32), r"labels must have shape \(3,\)"),
    (jnp.ones((3, 4)), jnp.zeros((3,), jnp.float32), "labels must be integers, got float32"),
    (jnp.ones((3, 4), jnp.int32), jnp.zeros((3,), jnp.int32), "logits must be a floating-point"),
    (jnp.float32(1.0), jnp.int32(0), "logits must be a floating-point"),
])
def test_losses_bad_arguments(fn, logits, labels, match):
  with pytest.raises(ValueError, match=match):
    fn(logits, labels)


def test_accuracy_matches_reference():
  logits = normal((8, 5))
  labels = jnp.asarray(np.random.default_rng(2).integers(0, 5, (8,)), jnp.int32)
  # Make sure both outcomes occur: example 0 is correct and example 1 is wrong.
  labels = labels.at[0].set(jnp.argmax(logits[0])).at[1].set((jnp.argmax(logits[1]) + 1) % 5)

  correct = losses.accuracy(logits, labels)
  expected = (np.argmax(np.asarray(logits), axis=1) == np.asarray(labels)).astype(np.float32)
  assert correct.dtype == jnp.float32
  assert correct[0] == 1.0
  assert correct[1] == 0.0
  np.testing.assert_array_equal(correct, expected)

  shape = jax.eval_shape(losses.accuracy, logits, labels)
  assert shape.shape == (8,)
  assert shape.dtype == jnp.float32
  np.testing.assert_array_equal(jax.jit(losses.accuracy)(logits, labels), correct)


def test_accuracy_ties_and_out_of_range():
  logits = jnp.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0], [0.0, 0.0, 5.0]], jnp.float32)
  np.testing.assert_array_equal(losses.accuracy(logits, jnp.array([0, 2, 3], jnp.int32)),
                                [1.0, 0.0, 0.0])
  np.testing.assert_array_equal(losses.accuracy(logits, jnp.array([1, 1, 2], jnp.uint8)),
                                [0.0, 1.0, 1.0])


def test_check_labels_accepts_valid():
  losses.check_labels(np.array([0, 3, 2]), 4)
  losses.check_labels(jnp.array([[0, 1], [2, 3]], jnp.int32), 4)


@pytest.mark.parametrize("labels, match", [
    (np.array([0, 3, 4, 5]), r"label 4 at index 2 is outside the valid range \[0, 4\), "
                             r"and 2 of 4 labels"),
    (np.array([-2, 0]), r"label -2 at index 0 .* 1 of 2 labels"),
    (np.array([[0, 1], [7, 2]]), r"label 7 at index \(1, 0\)"),
])
def test_check_labels_reports_first_bad_label(labels, match):
  with pytest.raises(ValueError, match=match):
    losses.check_labels(labels, 4)


@pytest.mark.parametrize("labels, num_classes, match", [
    (np.array([0.0, 1.0]), 4, "labels must be integers, got float64"),
    (np.array([0, 1]), -3, "num_classes must be a positive int, got -3"),
    (np.array([0, 1]), True, "num_classes must be a positive int, got True"),
])
def test_check_labels_bad_arguments(labels, num_classes, match):
  with pytest.raises(ValueError, match=match):
    losses.check_labels(labels, num_classes)
