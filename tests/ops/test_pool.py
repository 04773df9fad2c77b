"""Tests for jaxmodels.ops.pool against direct-loop NumPy pooling."""

import functools

import jax
import jax.numpy as jnp
from jax.test_util import check_grads
import numpy as np
import pytest

from jaxmodels.ops import pool

# (spatial shape, window, strides, padding). Strides None means strides = window.
POOL_CASES = [
    ((6, 6), (2, 2), None, "VALID"),
    ((7, 7), (2, 2), None, "VALID"),
    ((6, 6), (2, 2), None, "SAME"),
    ((7, 7), (2, 2), None, "SAME"),
    ((7, 6), (3, 3), (2, 2), "SAME"),
    ((6, 7), (3, 2), (1, 2), "VALID"),
    ((8, 5), (3, 3), (2, 1), "same"),
    ((5, 6), (2, 3), (2, 2), ((1, 0), (1, 2))),
    ((9,), (3,), (2,), "SAME"),
    ((8,), (2,), None, "VALID"),
    ((7,), (3,), (1,), ((2, 0),)),
]


def normal(shape, seed=0):
  """Return float32 standard-normal samples drawn with NumPy, which compiles nothing per shape."""
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def same_padding(size, window, stride):
  """Return the (low, high) padding of TensorFlow's SAME rule for one axis."""
  out_size = -(-size // stride)
  total = max((out_size - 1) * stride + window - size, 0)
  return total // 2, total - total // 2


def pool_reference(x, window, strides, padding, reduce_fn):
  """Pool in float64 with a loop over windows, padding with NaN, which nanmax and nanmean skip."""
  x = np.asarray(x, np.float64)
  spatial = x.shape[1:-1]
  strides = window if strides is None else strides
  if isinstance(padding, str) and padding.upper() == "VALID":
    pads = [(0, 0)] * len(spatial)
  elif isinstance(padding, str):
    pads = [same_padding(*args) for args in zip(spatial, window, strides)]
  else:
    pads = list(padding)
  xp = np.pad(x, [(0, 0), *pads, (0, 0)], constant_values=np.nan)
  out_shape = [(n - w) // s + 1 for n, w, s in zip(xp.shape[1:-1], window, strides)]
  out = np.zeros((x.shape[0], *out_shape, x.shape[-1]))
  for index in np.ndindex(*out_shape):
    window_slice = tuple(slice(i * s, i * s + w) for i, s, w in zip(index, strides, window))
    patch = xp[(slice(None), *window_slice, slice(None))]
    flat = patch.reshape(x.shape[0], -1, x.shape[-1])
    out[(slice(None), *index, slice(None))] = reduce_fn(flat, axis=1)
  return out


@pytest.mark.parametrize("op, reduce_fn", [(pool.max_pool, np.nanmax),
                                           (pool.avg_pool, np.nanmean)])
@pytest.mark.parametrize("spatial, window, strides, padding", POOL_CASES)
def test_pool_matches_reference(op, reduce_fn, spatial, window, strides, padding):
  x = normal((2, *spatial, 3))
  fn = functools.partial(op, window=window, strides=strides, padding=padding)

  y = fn(x)
  expected = pool_reference(x, window, strides, padding, reduce_fn)
  assert y.dtype == jnp.float32
  assert y.shape == expected.shape
  np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)

  shape = jax.eval_shape(fn, x)
  assert shape.shape == expected.shape
  assert shape.dtype == jnp.float32
  np.testing.assert_allclose(jax.jit(fn)(x), y, rtol=1e-5, atol=1e-6)


def test_avg_pool_same_divides_by_real_elements():
  # A 3x3 input pooled 2x2 with stride 2: the bottom-right window contains one real element and
  # three padding cells, the bottom-left and top-right windows two real elements each.
  x = normal((1, 3, 3, 2))
  y = pool.avg_pool(x, window=2, padding="SAME")
  xn = np.asarray(x)
  assert y.shape == (1, 2, 2, 2)
  np.testing.assert_allclose(y[0, 1, 1], xn[0, 2, 2], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(y[0, 1, 0], xn[0, 2, 0:2].mean(axis=0), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(y[0, 0, 1], xn[0, 0:2, 2].mean(axis=0), rtol=1e-5, atol=1e-6)


def test_max_pool_same_ignores_padding():
  # All values are negative, so a zero-filled padding would win every border window.
  x = -1.0 - jnp.arange(9, dtype=jnp.float32).reshape(1, 3, 3, 1)
  y = pool.max_pool(x, window=2, padding="SAME")
  assert y[0, 1, 1, 0] == x[0, 2, 2, 0]
  assert y[0, 1, 0, 0] == x[0, 2, 0, 0]


def test_pool_int_window_matches_pair():
  x = normal((1, 7, 7, 2))
  np.testing.assert_array_equal(pool.max_pool(x, window=3, strides=2),
                                pool.max_pool(x, window=(3, 3), strides=(2, 2)))
  np.testing.assert_array_equal(pool.avg_pool(x, window=3, strides=2, padding="SAME"),
                                pool.avg_pool(x, window=(3, 3), strides=(2, 2), padding="SAME"))


@pytest.mark.parametrize("op", [pool.max_pool, pool.avg_pool])
@pytest.mark.parametrize("shape, window, strides, padding", [
    ((1, 5, 4, 2), (2, 2), (1, 1), "SAME"),
    ((2, 7, 2), (3,), (2,), "SAME"),
])
def test_pool_grads(op, shape, window, strides, padding):
  # Normal samples have no near-ties within a window, so max pooling is smooth around x.
  x = normal(shape)
  fn = functools.partial(op, window=window, strides=strides, padding=padding)
  # Finite differences in float32 with eps=1e-3 are only good to about 1e-2.
  check_grads(fn, (x,), order=1, modes=("fwd", "rev"), eps=1e-3, atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("op", [pool.max_pool, pool.avg_pool])
def test_pool_bfloat16_keeps_dtype(op):
  x = normal((1, 6, 6, 2))
  y16 = op(x.astype(jnp.bfloat16), window=3, strides=2, padding="SAME")
  y32 = op(x, window=3, strides=2, padding="SAME")
  assert y16.dtype == jnp.bfloat16
  # bfloat16 keeps 8 significant bits: a relative rounding error of up to 2**-8.
  np.testing.assert_allclose(y16.astype(jnp.float32), y32, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("op", [pool.max_pool, pool.avg_pool])
@pytest.mark.parametrize("x, kwargs, match", [
    (jnp.ones((2, 5)), {"window": 2}, r"x must have shape \[B, H, W, C\] or \[B, T, C\]"),
    (jnp.ones((1, 4, 4, 1), jnp.int32), {"window": 2}, "x must be floating point, got int32"),
    (jnp.ones((1, 4, 4, 1)), {"window": 0}, "window must be a positive int"),
    (jnp.ones((1, 4, 4, 1)), {"window": (2, 2, 2)}, "window must be a positive int or 2"),
    (jnp.ones((1, 4, 1)), {"window": (2, 2)}, r"window must be a positive int, got \(2, 2\)"),
    (jnp.ones((1, 4, 4, 1)), {"window": 2, "strides": (1, 0)}, "strides must be a positive"),
    (jnp.ones((1, 4, 4, 1)), {"window": 2, "padding": "full"}, "padding must be 'VALID'"),
    (jnp.ones((1, 4, 4, 1)), {"window": 2, "padding": ((1, 1),)},
     "explicit padding must be one .* 2 in all"),
])
def test_pool_bad_arguments(op, x, kwargs, match):
  with pytest.raises(ValueError, match=match):
    op(x, **kwargs)


@pytest.mark.parametrize("shape, window", [
    ((2, 6, 6, 3), (2, 2)),
    ((2, 7, 5, 3), (2, 2)),
    ((2, 9, 8, 2), (3, 2)),
    ((2, 7, 3), (2,)),
])
def test_max_pool_tiles_match_reduce_window(shape, window):
  x = jax.random.normal(jax.random.key(0), shape, jnp.float32)
  # Rounding creates ties inside windows, which both gradients must route to one element.
  x_ties = jnp.round(jax.nn.relu(x))
  dims = (1, *window, 1)

  def reference(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, dims, dims, "VALID")

  weights = jax.random.normal(jax.random.key(1), reference(x).shape, jnp.float32)
  for data in (x, x_ties):
    np.testing.assert_array_equal(pool.max_pool(data, window=window), reference(data))
    grad = jax.grad(lambda v: jnp.vdot(pool.max_pool(v, window=window), weights))(data)
    expected = jax.grad(lambda v: jnp.vdot(reference(v), weights))(data)
    np.testing.assert_array_equal(grad, expected)
