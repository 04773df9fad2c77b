"""Tests for jaxmodels.ops.conv against direct-loop NumPy convolutions."""

import functools

import jax
import jax.numpy as jnp
from jax.test_util import check_grads
import numpy as np
import pytest

from jaxmodels.ops import conv

HIGHEST = jax.lax.Precision.HIGHEST

# (H, W, KH, KW, strides, dilation, padding, use_bias)
CONV2D_CASES = [
    (6, 6, 3, 3, (1, 1), (1, 1), "VALID", True),
    (6, 6, 3, 3, (1, 1), (1, 1), "SAME", False),
    (6, 6, 3, 3, (2, 2), (1, 1), "SAME", True),
    (7, 7, 3, 3, (2, 2), (1, 1), "SAME", True),
    (7, 6, 2, 2, (2, 2), (1, 1), "SAME", True),
    (8, 7, 3, 2, (1, 2), (2, 1), "SAME", True),
    (7, 8, 3, 3, (2, 1), (2, 2), "VALID", False),
    (5, 6, 3, 3, (1, 1), (1, 1), ((1, 2), (0, 1)), True),
    (5, 6, 2, 3, (3, 2), (1, 1), ((2, 0), (1, 1)), False),
    (5, 5, 3, 3, (2, 2), (1, 1), "same", True),
]

# (T, K, stride, dilation, padding, use_bias)
CONV1D_CASES = [
    (8, 3, 1, 1, "VALID", True),
    (8, 3, 2, 1, "SAME", True),
    (9, 3, 2, 1, "SAME", False),
    (9, 2, 2, 1, "SAME", True),
    (9, 3, 1, 2, "SAME", True),
    (10, 3, 3, 2, "VALID", True),
    (7, 3, 1, 1, (2, 0), True),
    (7, 2, 2, 1, ((1, 3),), False),
]


def same_padding(size, kernel_size, stride, dilation):
  """Return the (low, high) padding of TensorFlow's SAME rule for one axis."""
  span = (kernel_size - 1) * dilation + 1
  out_size = -(-size // stride)
  total = max((out_size - 1) * stride + span - size, 0)
  return total // 2, total - total // 2


def reference_pads(padding, sizes, kernel_sizes, strides, dilation):
  """Return explicit (low, high) pads per spatial axis for any padding form."""
  if isinstance(padding, str) and padding.upper() == "VALID":
    return [(0, 0)] * len(sizes)
  if isinstance(padding, str):
    return [same_padding(*args) for args in zip(sizes, kernel_sizes, strides, dilation)]
  return list(padding)


def conv2d_reference(x, kernel, bias, strides, padding, dilation):
  """Convolve in float64 with a loop over output positions and kernel taps."""
  x = np.asarray(x, np.float64)
  kernel = np.asarray(kernel, np.float64)
  kh, kw, _, o = kernel.shape
  (sh, sw), (dh, dw) = strides, dilation
  pads = reference_pads(padding, x.shape[1:3], (kh, kw), strides, dilation)
  xp = np.pad(x, [(0, 0), *pads, (0, 0)])
  out_h = (xp.shape[1] - (kh - 1) * dh - 1) // sh + 1
  out_w = (xp.shape[2] - (kw - 1) * dw - 1) // sw + 1
  out = np.zeros((x.shape[0], out_h, out_w, o))
  for i in range(out_h):
    for j in range(out_w):
      for a in range(kh):
        for b in range(kw):
          out[:, i, j, :] += xp[:, i * sh + a * dh, j * sw + b * dw, :] @ kernel[a, b]
  if bias is not None:
    out += np.asarray(bias, np.float64)
  return out


def conv1d_reference(x, kernel, bias, stride, padding, dilation):
  """Convolve sequences in float64 with a loop over output steps and kernel taps."""
  x = np.asarray(x, np.float64)
  kernel = np.asarray(kernel, np.float64)
  k, _, o = kernel.shape
  if isinstance(padding, tuple) and isinstance(padding[0], int):
    padding = (padding,)
  (pad,) = reference_pads(padding, x.shape[1:2], (k,), (stride,), (dilation,))
  xp = np.pad(x, [(0, 0), pad, (0, 0)])
  out_t = (xp.shape[1] - (k - 1) * dilation - 1) // stride + 1
  out = np.zeros((x.shape[0], out_t, o))
  for t in range(out_t):
    for a in range(k):
      out[:, t, :] += xp[:, t * stride + a * dilation, :] @ kernel[a]
  if bias is not None:
    out += np.asarray(bias, np.float64)
  return out


def normal(shape, seed):
  """Return float32 standard-normal samples drawn with NumPy, which compiles nothing per shape."""
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def make_params(kernel_shape, use_bias, seed=1):
  params = {"kernel": normal(kernel_shape, seed)}
  if use_bias:
    params["bias"] = normal(kernel_shape[-1:], seed + 1)
  return params


@pytest.mark.parametrize("h, w, kh, kw, strides, dilation, padding, use_bias", CONV2D_CASES)
def test_conv2d_matches_reference(h, w, kh, kw, strides, dilation, padding, use_bias):
  params = make_params((kh, kw, 3, 4), use_bias)
  x = normal((2, h, w, 3), seed=0)
  fn = functools.partial(conv.conv2d, strides=strides, padding=padding, dilation=dilation,
                         precision=HIGHEST)

  y = fn(params, x)
  expected = conv2d_reference(x, params["kernel"], params.get("bias"), strides, padding,
                              dilation)
  assert y.dtype == jnp.float32
  assert y.shape == expected.shape
  np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)

  shape = jax.eval_shape(fn, params, x)
  assert shape.shape == expected.shape
  assert shape.dtype == jnp.float32
  np.testing.assert_allclose(jax.jit(fn)(params, x), y, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("strides, padding", [((2, 2), "SAME"), ((1, 2), ((1, 0), (2, 1)))])
def test_conv2d_grads(strides, padding):
  params = make_params((2, 3, 2, 3), use_bias=True)
  x = normal((1, 5, 4, 2), seed=0)
  fn = functools.partial(conv.conv2d, strides=strides, padding=padding, precision=HIGHEST)
  # Finite differences in float32 with eps=1e-3 are only good to about 1e-2.
  check_grads(fn, (params, x), order=2, modes=("fwd", "rev"), eps=1e-3, atol=1e-2, rtol=1e-2)


def test_conv2d_int_strides_match_pairs():
  params = make_params((3, 3, 2, 2), use_bias=True)
  x = normal((1, 7, 7, 2), seed=0)
  y_int = conv.conv2d(params, x, strides=2, dilation=2, padding="SAME")
  y_pair = conv.conv2d(params, x, strides=(2, 2), dilation=(2, 2), padding="SAME")
  np.testing.assert_array_equal(y_int, y_pair)


def test_conv2d_bfloat16_keeps_dtype():
  params = make_params((3, 3, 4, 5), use_bias=True)
  x = normal((2, 6, 6, 4), seed=0)
  y16 = conv.conv2d(params, x.astype(jnp.bfloat16), padding="SAME")
  y32 = conv.conv2d(params, x, padding="SAME", precision=HIGHEST)
  assert y16.dtype == jnp.bfloat16
  # bfloat16 keeps 8 significant bits, so inputs and kernel carry up to 0.4% rounding error
  # and sums of a few dozen products can be off by a few hundredths.
  np.testing.assert_allclose(y16.astype(jnp.float32), y32, rtol=5e-2, atol=5e-2)


@pytest.mark.parametrize("kwargs, match", [
    ({"padding": "FULL"}, "padding must be 'VALID', 'SAME'"),
    ({"padding": ((1, 1),)}, "explicit padding must be one .* 2 in all"),
    ({"padding": ((1, -1), (0, 0))}, "non-negative"),
    ({"strides": 0}, "strides must be a positive int"),
    ({"strides": (1, 2, 3)}, "strides must be a positive int or 2"),
    ({"dilation": (1, 0)}, "dilation must be a positive int"),
])
def test_conv2d_bad_options(kwargs, match):
  params = {"kernel": jnp.ones((3, 3, 2, 4))}
  with pytest.raises(ValueError, match=match):
    conv.conv2d(params, jnp.ones((1, 5, 5, 2)), **kwargs)


@pytest.mark.parametrize("params, x_shape, match", [
    ({"kernel": jnp.ones((3, 3, 2, 4))}, (5, 5, 2), r"x must have shape \[B, H, W, C\]"),
    ({"kernel": jnp.ones((3, 2, 4))}, (1, 5, 5, 2), r"kernel must have shape \[KH, KW, C, O\]"),
    ({"kernel": jnp.ones((3, 3, 3, 4))}, (1, 5, 5, 2),
     "kernel has C=3 input channels but x has C=2"),
    ({"kernel": jnp.ones((3, 3, 2, 4)), "bias": jnp.ones(3)}, (1, 5, 5, 2),
     r"bias must have shape \(4,\)"),
    ({"kernel": jnp.ones((3, 3, 2, 4)), "biases": jnp.ones(4)}, (1, 5, 5, 2),
     "params must contain 'kernel' and optionally 'bias'"),
    ({"bias": jnp.ones(4)}, (1, 5, 5, 2), "params must contain 'kernel'"),
])
def test_conv2d_bad_shapes(params, x_shape, match):
  with pytest.raises(ValueError, match=match):
    conv.conv2d(params, jnp.ones(x_shape))


def test_conv2d_rejects_integer_input():
  with pytest.raises(ValueError, match="x must be floating point, got uint8"):
    conv.conv2d({"kernel": jnp.ones((3, 3, 1, 2))}, jnp.ones((1, 5, 5, 1), jnp.uint8))


@pytest.mark.parametrize("t, k, stride, dilation, padding, use_bias", CONV1D_CASES)
def test_conv1d_matches_reference(t, k, stride, dilation, padding, use_bias):
  params = make_params((k, 3, 4), use_bias)
  x = normal((2, t, 3), seed=0)
  fn = functools.partial(conv.conv1d, stride=stride, padding=padding, dilation=dilation,
                         precision=HIGHEST)

  y = fn(params, x)
  expected = conv1d_reference(x, params["kernel"], params.get("bias"), stride, padding,
                              dilation)
  assert y.dtype == jnp.float32
  assert y.shape == expected.shape
  np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)

  shape = jax.eval_shape(fn, params, x)
  assert shape.shape == expected.shape
  assert shape.dtype == jnp.float32
  np.testing.assert_allclose(jax.jit(fn)(params, x), y, rtol=1e-5, atol=1e-6)


def test_conv1d_grads():
  params = make_params((3, 2, 3), use_bias=True)
  x = normal((2, 6, 2), seed=0)
  fn = functools.partial(conv.conv1d, stride=2, padding="SAME", dilation=1, precision=HIGHEST)
  # Finite differences in float32 with eps=1e-3 are only good to about 1e-2.
  check_grads(fn, (params, x), order=2, modes=("fwd", "rev"), eps=1e-3, atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("shape, kernel_shape, strides, dilation, padding", [
    # The wide text CNN's padding, width - 1 on both sides.
    ((2, 7, 3), (4, 3, 5), (1,), (1,), ((3, 3),)),
    ((2, 9, 8, 3), (3, 2, 3, 4), (2, 1), (1, 2), "SAME"),
    ((1, 6, 7, 2), (2, 3, 2, 3), (1, 2), (1, 1), ((2, 0), (1, 3))),
])
def test_padded_conv_grads_match_lax(shape, kernel_shape, strides, dilation, padding):
  # The ops pad the input before the first element themselves. The values and both
  # gradients must equal those of XLA's convolution given the same padding.
  params = make_params(kernel_shape, use_bias=False)
  x = normal(shape, seed=0)
  spec = ("NHWC", "HWIO", "NHWC") if len(shape) == 4 else ("NWC", "WIO", "NWC")
  op = conv.conv2d if len(shape) == 4 else conv.conv1d
  step = {"strides": strides} if len(shape) == 4 else {"stride": strides[0]}
  weights = normal(jax.eval_shape(
      lambda: op(params, x, padding=padding, dilation=dilation, **step)).shape, seed=3)

  def loss_ours(kernel, x):
    y = op({"kernel": kernel}, x, padding=padding, dilation=dilation, precision=HIGHEST, **step)
    return jnp.vdot(y, weights)

  def loss_lax(kernel, x):
    y = jax.lax.conv_general_dilated(x, kernel, strides, padding, rhs_dilation=dilation,
                                     dimension_numbers=spec, precision=HIGHEST)
    return jnp.vdot(y, weights)

  ours = jax.grad(loss_ours, argnums=(0, 1))(params["kernel"], x)
  reference = jax.grad(loss_lax, argnums=(0, 1))(params["kernel"], x)
  np.testing.assert_allclose(loss_ours(params["kernel"], x), loss_lax(params["kernel"], x),
                             rtol=1e-5)
  for got, expected in zip(ours, reference):
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_conv1d_causal_padding_ignores_future():
  k, dilation = 3, 2
  params = make_params((k, 2, 3), use_bias=True)
  x = normal((1, 10, 2), seed=0)
  causal = ((k - 1) * dilation, 0)
  y = conv.conv1d(params, x, padding=causal, dilation=dilation)

  # Changing steps 6.. must leave outputs 0..5 unchanged.
  noise = normal((1, 4, 2), seed=5)
  x_changed = jnp.concatenate([x[:, :6], x[:, 6:] + noise], axis=1)
  y_changed = conv.conv1d(params, x_changed, padding=causal, dilation=dilation)
  assert y.shape == (1, 10, 3)
  np.testing.assert_array_equal(y[:, :6], y_changed[:, :6])
  assert not np.allclose(y[:, 6:], y_changed[:, 6:])


@pytest.mark.parametrize("params, x_shape, kwargs, match", [
    ({"kernel": jnp.ones((3, 2, 4))}, (1, 5, 5, 2), {}, r"x must have shape \[B, T, C\]"),
    ({"kernel": jnp.ones((3, 3, 2, 4))}, (1, 5, 2), {}, r"kernel must have shape \[K, C, O\]"),
    ({"kernel": jnp.ones((3, 3, 4))}, (1, 5, 2), {}, "kernel has C=3 input channels"),
    ({"kernel": jnp.ones((3, 2, 4))}, (1, 5, 2), {"stride": 0}, "stride must be a positive"),
    ({"kernel": jnp.ones((3, 2, 4))}, (1, 5, 2), {"padding": (1, 1, 1)}, "explicit padding"),
])
def test_conv1d_bad_arguments(params, x_shape, kwargs, match):
  with pytest.raises(ValueError, match=match):
    conv.conv1d(params, jnp.ones(x_shape), **kwargs)
