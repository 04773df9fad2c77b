"""Tests for jaxmodels.ops.basic against NumPy references."""

import functools

import jax
import jax.numpy as jnp
from jax.test_util import check_grads
import numpy as np
import pytest

from jaxmodels.ops import basic

HIGHEST = jax.lax.Precision.HIGHEST


def normal(shape, seed=0):
  """Return float32 standard-normal samples drawn with NumPy, which compiles nothing per shape."""
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def dense_reference(x, kernel, bias):
  """Compute x @ kernel + bias in float64 with a loop over output units."""
  x = np.asarray(x, np.float64)
  kernel = np.asarray(kernel, np.float64)
  out = np.zeros(x.shape[:-1] + kernel.shape[1:])
  for o in range(kernel.shape[1]):
    for c in range(kernel.shape[0]):
      out[..., o] += x[..., c] * kernel[c, o]
  if bias is not None:
    out += np.asarray(bias, np.float64)
  return out


@pytest.mark.parametrize("x_shape, use_bias", [
    ((3, 4), True),
    ((2, 3, 4), False),
    ((4,), True),
])
def test_dense_matches_reference(x_shape, use_bias):
  params = {"kernel": normal((4, 5), seed=1)}
  if use_bias:
    params["bias"] = normal((5,), seed=2)
  x = normal(x_shape)
  fn = functools.partial(basic.dense, precision=HIGHEST)

  y = fn(params, x)
  expected = dense_reference(x, params["kernel"], params.get("bias"))
  assert y.dtype == jnp.float32
  assert y.shape == x_shape[:-1] + (5,)
  np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)

  shape = jax.eval_shape(fn, params, x)
  assert shape.shape == expected.shape
  assert shape.dtype == jnp.float32
  np.testing.assert_allclose(jax.jit(fn)(params, x), y, rtol=1e-5, atol=1e-6)


def test_dense_grads():
  params = {"kernel": normal((3, 2), seed=1), "bias": normal((2,), seed=2)}
  x = normal((2, 4, 3))
  fn = functools.partial(basic.dense, precision=HIGHEST)
  # Finite differences in float32 with eps=1e-3 are only good to about 1e-2.
  check_grads(fn, (params, x), order=2, modes=("fwd", "rev"), eps=1e-3, atol=1e-2, rtol=1e-2)


def test_dense_bfloat16_keeps_dtype():
  params = {"kernel": normal((16, 8), seed=1), "bias": normal((8,), seed=2)}
  x = normal((4, 16))
  y16 = basic.dense(params, x.astype(jnp.bfloat16))
  y32 = basic.dense(params, x, precision=HIGHEST)
  assert y16.dtype == jnp.bfloat16
  # bfloat16 keeps 8 significant bits, so inputs and kernel carry up to 0.4% rounding error
  # and sums of a few dozen products can be off by a few hundredths.
  np.testing.assert_allclose(y16.astype(jnp.float32), y32, rtol=5e-2, atol=5e-2)


@pytest.mark.parametrize("params, x, match", [
    ({"kernel": jnp.ones((3, 2))}, jnp.ones((2, 4)), "kernel has C=3 input channels but x has C=4"),
    ({"kernel": jnp.ones((3, 2, 1))}, jnp.ones((2, 3)), r"kernel must have shape \[C, O\]"),
    ({"kernel": jnp.ones((3, 2)), "bias": jnp.ones(3)}, jnp.ones((2, 3)),
     r"bias must have shape \(2,\)"),
    ({"kernel": jnp.ones((3, 2)), "b": jnp.ones(2)}, jnp.ones((2, 3)),
     "params must contain 'kernel' and optionally 'bias'"),
    ({"kernel": jnp.ones((3, 2))}, jnp.ones((2, 3), jnp.int32), "x must be a floating-point"),
    ({"kernel": jnp.ones((3, 2))}, jnp.float32(1.0), "x must be a floating-point"),
])
def test_dense_bad_arguments(params, x, match):
  with pytest.raises(ValueError, match=match):
    basic.dense(params, x)


def test_flatten_row_major_order():
  x = jnp.arange(2 * 3 * 4 * 5, dtype=jnp.float32).reshape(2, 3, 4, 5)
  y = basic.flatten(x)
  assert y.shape == (2, 60)
  assert y.dtype == jnp.float32
  # Keras flattens NHWC row-major: the channel index varies fastest, then width, then height.
  for b, h, w, c in np.ndindex(*x.shape):
    assert y[b, (h * 4 + w) * 5 + c] == x[b, h, w, c]

  shape = jax.eval_shape(basic.flatten, x)
  assert shape.shape == (2, 60)
  np.testing.assert_array_equal(jax.jit(basic.flatten)(x), y)


def test_flatten_rank_one_and_scalar():
  assert basic.flatten(jnp.ones((3,))).shape == (3, 1)
  assert basic.flatten(jnp.ones((0, 2, 2))).shape == (0, 4)
  with pytest.raises(ValueError, match="flatten: x must have a batch axis"):
    basic.flatten(jnp.float32(1.0))


def test_relu_matches_reference():
  x = normal((3, 7))
  y = basic.relu(x)
  assert y.dtype == jnp.float32
  np.testing.assert_array_equal(y, np.maximum(np.asarray(x), 0.0))
  np.testing.assert_array_equal(jax.jit(basic.relu)(x), y)
  assert jax.eval_shape(basic.relu, x).shape == (3, 7)


def test_relu_grads():
  # Keep samples away from the kink at 0, where finite differences are meaningless.
  x = normal((4, 5))
  x = jnp.where(jnp.abs(x) < 0.1, jnp.full_like(x, 0.5), x)
  # Finite differences in float32 with eps=1e-3 are only good to about 1e-2.
  check_grads(basic.relu, (x,), order=2, modes=("fwd", "rev"), eps=1e-3, atol=1e-2, rtol=1e-2)
  assert jax.grad(lambda v: basic.relu(v))(jnp.float32(0.0)) == 0.0


def test_dropout_identity_cases(key):
  x = normal((4, 8))
  np.testing.assert_array_equal(basic.dropout(x, rate=0.5, key=key, deterministic=True), x)
  np.testing.assert_array_equal(basic.dropout(x, rate=0.5, deterministic=True), x)
  np.testing.assert_array_equal(basic.dropout(x, rate=0.0, key=key, deterministic=False), x)


@pytest.mark.parametrize("rate, rtol", [
    # 0.25 is a multiple of 2**-16, so the scale is 1 / (1 - rate), up to the float32
    # rounding of a product against that of a quotient.
    (0.25, 2.5e-7),
    # 0.3 rounds to 19661 / 2**16, so the scale is 1 / (1 - rate) to about 1e-5.
    (0.3, 2e-5),
])
def test_dropout_scales_kept_elements(key, rate, rtol):
  x = normal((64, 64))
  y = basic.dropout(x, rate=rate, key=key, deterministic=False)
  kept = np.asarray(y) != 0.0
  assert y.dtype == jnp.float32
  assert y.shape == x.shape
  assert 0 < kept.sum() < kept.size
  np.testing.assert_allclose(np.asarray(y)[kept], np.asarray(x)[kept] / (1.0 - rate),
                             rtol=rtol, atol=0.0)


def test_dropout_rate_near_one_stays_finite(key):
  # 1 - 1e-7 rounds to a threshold of 2**16, capped at 2**16 - 1 so that one word value in
  # 2**16 keeps its element.
  y = np.asarray(basic.dropout(jnp.ones((4096,)), rate=1.0 - 1e-7, key=key,
                               deterministic=False))
  assert np.isfinite(y).all()
  assert set(np.unique(y)) <= {0.0, 2.0**16}


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5])
def test_dropout_preserves_mean(key, rate):
  n = 200_001
  y = np.asarray(basic.dropout(jnp.ones((n,)), rate=rate, key=key, deterministic=False))
  # Each output is 0 or 1 / (1 - rate), so its standard deviation is sqrt(rate / (1 - rate)),
  # at most 1, and the mean of n outputs has standard error at most 1 / sqrt(n), about
  # 0.0022. A bound of 0.015 is over 6 standard errors, so a correct dropout essentially
  # never fails.
  assert abs(y.mean() - 1.0) < 0.015
  # The two halves of the output come from the low and the high 16 bits of the random
  # words, so each half must drop at the rate on its own.
  for part in (y[:n // 2], y[n // 2:]):
    assert abs((part == 0.0).mean() - rate) < 0.015


def test_dropout_keys_select_masks(key):
  other_key = jax.random.fold_in(key, 1)
  x = jnp.ones((32, 32))
  y_first = basic.dropout(x, rate=0.5, key=key, deterministic=False)
  y_again = basic.dropout(x, rate=0.5, key=key, deterministic=False)
  y_other = basic.dropout(x, rate=0.5, key=other_key, deterministic=False)
  np.testing.assert_array_equal(y_first, y_again)
  assert not np.array_equal(y_first, y_other)


def test_dropout_jit_matches_eager(key):
  x = normal((8, 16))
  fn = functools.partial(basic.dropout, rate=0.4, deterministic=False)
  y = fn(x, key=key)
  np.testing.assert_array_equal(jax.jit(fn)(x, key=key), y)
  shape = jax.eval_shape(fn, x, key=key)
  assert shape.shape == (8, 16)
  assert shape.dtype == jnp.float32


def test_dropout_bfloat16_keeps_dtype(key):
  y = basic.dropout(jnp.ones((8,), jnp.bfloat16), rate=0.5, key=key, deterministic=False)
  assert y.dtype == jnp.bfloat16


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_dropout_bad_rate(key, rate):
  with pytest.raises(ValueError, match=r"dropout: rate must be in \[0, 1\)"):
    basic.dropout(jnp.ones((4,)), rate=rate, key=key, deterministic=False)


def test_dropout_missing_key():
  with pytest.raises(ValueError, match="key is required when deterministic=False"):
    basic.dropout(jnp.ones((4,)), rate=0.5, deterministic=False)


def test_embed_matches_reference():
  table = normal((6, 3))
  ids = jnp.array([[0, 5, 2], [2, 2, 1]], jnp.int32)
  y = basic.embed({"embedding": table}, ids)
  expected = np.zeros((2, 3, 3), np.float32)
  for index in np.ndindex(*ids.shape):
    expected[index] = np.asarray(table)[int(ids[index])]
  assert y.dtype == jnp.float32
  np.testing.assert_array_equal(y, expected)

  shape = jax.eval_shape(basic.embed, {"embedding": table}, ids)
  assert shape.shape == (2, 3, 3)
  assert shape.dtype == jnp.float32
  np.testing.assert_array_equal(jax.jit(basic.embed)({"embedding": table}, ids), y)


@pytest.mark.parametrize("dtype", [jnp.int8, jnp.uint8, jnp.int32])
def test_embed_out_of_range_gives_nan(dtype):
  table = normal((4, 2))
  ids = np.array([1, 4, 3, 200], np.int64)
  if jnp.issubdtype(dtype, jnp.signedinteger):
    ids[3] = -1
  y = np.asarray(basic.embed({"embedding": table}, jnp.asarray(ids, dtype)))
  np.testing.assert_array_equal(y[0], np.asarray(table)[1])
  np.testing.assert_array_equal(y[2], np.asarray(table)[3])
  assert np.isnan(y[1]).all()
  assert np.isnan(y[3]).all()


def test_embed_grads():
  table = normal((5, 3))
  ids = jnp.array([[0, 4], [4, 2]], jnp.int32)
  fn = lambda t: basic.embed({"embedding": t}, ids)
  # Finite differences in float32 with eps=1e-3 are only good to about 1e-2.
  check_grads(fn, (table,), order=2, modes=("fwd", "rev"), eps=1e-3, atol=1e-2, rtol=1e-2)

  # The gradient of the sum counts how often each row was read.
  grad = jax.grad(lambda t: jnp.sum(fn(t)))(table)
  counts = np.zeros(5)
  np.add.at(counts, np.asarray(ids).ravel(), 1.0)
  np.testing.assert_array_equal(grad, np.repeat(counts[:, None], 3, axis=1))


@pytest.mark.parametrize("params, ids, match", [
    ({"embedding": jnp.ones((4, 2))}, jnp.ones((3,)), "ids must be integers, got float32"),
    ({"embedding": jnp.ones((4,))}, jnp.zeros((3,), jnp.int32), r"shape \[V, D\]"),
    ({"embedding": jnp.ones((4, 2), jnp.int32)}, jnp.zeros((3,), jnp.int32), "floating-point"),
    ({"table": jnp.ones((4, 2))}, jnp.zeros((3,), jnp.int32), "must contain only 'embedding'"),
])
def test_embed_bad_arguments(params, ids, match):
  with pytest.raises(ValueError, match=match):
    basic.embed(params, ids)


def test_check_token_ids_accepts_valid():
  basic.check_token_ids(np.array([[0, 3], [2, 1]]), 4)
  basic.check_token_ids(jnp.array([0, 3], jnp.int32), 4)
  basic.check_token_ids(np.zeros((0,), np.int32), 4)


@pytest.mark.parametrize("ids, match", [
    (np.array([[0, 3], [4, 1]]), r"token id 4 at position \(1, 0\) is outside the valid range"
                                 r" \[0, 4\), and 1 of 4 ids"),
    (np.array([2, -1, 7]), r"token id -1 at position \(1,\) .* 2 of 3 ids"),
    (np.array([9], np.uint8), r"token id 9 at position \(0,\)"),
])
def test_check_token_ids_reports_first_bad_id(ids, match):
  with pytest.raises(ValueError, match=match):
    basic.check_token_ids(ids, 4)
  with pytest.raises(ValueError, match="Rebuild the vocabulary from the data or raise vocab_size"):
    basic.check_token_ids(ids, 4)


@pytest.mark.parametrize("ids, vocab_size, match", [
    (np.array([0.0, 1.0]), 4, "ids must be integers, got float64"),
    (np.array([0, 1]), 0, "vocab_size must be a positive int, got 0"),
    (np.array([0, 1]), 4.0, "vocab_size must be a positive int, got 4.0"),
])
def test_check_token_ids_bad_arguments(ids, vocab_size, match):
  with pytest.raises(ValueError, match=match):
    basic.check_token_ids(ids, vocab_size)
