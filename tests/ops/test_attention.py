"""Tests for jaxmodels.ops.attention against NumPy loops over batch, head and query."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxmodels.ops import attention

# Legend: B batch, T query steps, S key steps, N heads, D depth per head, C channels in,
# O channels out, A additive-attention units.
B, T, S, N, D, DV = 2, 3, 5, 2, 4, 6
RTOL, ATOL = 1e-5, 1e-6


def _normal(seed, shape, scale=1.0):
  rng = np.random.default_rng(seed)
  return (scale * rng.standard_normal(shape)).astype(np.float32)


def _reference_softmax(scores, valid):
  """Softmax over the valid entries of a 1-D array in float64, with 0 elsewhere."""
  weights = np.zeros(scores.shape)
  if valid.any():
    shifted = scores[valid] - scores[valid].max()
    weights[valid] = np.exp(shifted) / np.exp(shifted).sum()
  return weights


def _reference_attention(query, key, value, valid):
  """Loop over b, n and t with valid bool[B, N, T, S]. Return out [B, T, N, Dv] and weights."""
  query, key, value = (np.asarray(a, np.float64) for a in (query, key, value))
  batch, steps, heads, depth = query.shape
  out = np.zeros((batch, steps, heads, value.shape[-1]))
  weights = np.zeros((batch, heads, steps, key.shape[1]))
  for b in range(batch):
    for n in range(heads):
      for t in range(steps):
        scores = key[b, :, n, :] @ query[b, t, n, :] / np.sqrt(depth)
        weights[b, n, t] = _reference_softmax(scores, valid[b, n, t])
        out[b, t, n] = weights[b, n, t] @ value[b, :, n, :]
  return out, weights


def _qkv(seed=0, dv=DV, scale=1.0):
  return (_normal(seed, (B, T, N, D), scale), _normal(seed + 1, (B, S, N, D), scale),
          _normal(seed + 2, (B, S, N, dv)))


def _key_mask(lengths):
  return np.arange(S)[None, :] < np.asarray(lengths)[:, None]  # [B, S]


def _causal(steps=T, key_steps=S):
  return np.tril(np.ones((steps, key_steps), bool))


def _mask_cases():
  """Return {name: (mask argument, causal flag, valid bool[B, N, T, S])}."""
  ones = np.ones((B, N, T, S), bool)
  key_mask = _key_mask([S, 2])
  padding = np.broadcast_to(key_mask[:, None, None, :], ones.shape)
  general = np.random.default_rng(7).random((B, N, T, S)) < 0.5
  general[0, 1, 2] = False  # one fully masked row
  general[1, 0, 0] = True
  return {
      "none": (None, False, ones),
      "padding": (attention.padding_mask(key_mask), False, padding),
      "causal": (None, True, ones & _causal()),
      "padding_causal": (attention.padding_mask(key_mask), True, padding & _causal()),
      "general": (general, False, general),
      "broadcast_ts": (_causal()[None, None], False, ones & _causal()),
  }


MASK_CASES = _mask_cases()


@pytest.mark.parametrize("case", MASK_CASES)
def test_dot_product_attention_matches_reference(case):
  mask, causal, valid = MASK_CASES[case]
  query, key, value = _qkv()

  out, weights = attention.dot_product_attention(
      query, key, value, mask=mask, causal=causal, return_weights=True)

  expected_out, expected_weights = _reference_attention(query, key, value, valid)
  np.testing.assert_allclose(out, expected_out, rtol=RTOL, atol=ATOL)
  np.testing.assert_allclose(weights, expected_weights, rtol=RTOL, atol=ATOL)
  np.testing.assert_array_equal(np.asarray(weights)[~valid], 0.0)
  assert out.dtype == jnp.float32
  assert weights.dtype == jnp.float32


def test_dot_product_attention_output_only():
  query, key, value = _qkv()
  mask = attention.padding_mask(_key_mask([3, S]))

  out = attention.dot_product_attention(query, key, value, mask=mask)
  out_with_weights, _ = attention.dot_product_attention(
      query, key, value, mask=mask, return_weights=True)

  np.testing.assert_array_equal(out, out_with_weights)


def _fully_masked_mask():
  """Mask every key of batch 1, and one query row of batch 0."""
  valid = np.ones((B, N, T, S), bool)
  valid[0, 0, 1] = False
  valid[1] = False
  return valid


@pytest.mark.parametrize("scale", [1.0, 1e15], ids=["normal", "huge_logits"])
def test_dot_product_attention_fully_masked_rows(scale):
  valid = _fully_masked_mask()
  # scale=1e15 gives logits of order 1e30 in float32.
  query, key, value = _qkv(scale=scale)

  def loss(query, key, value):
    out = attention.dot_product_attention(query, key, value, mask=valid)
    return jnp.sum(out * _normal(9, out.shape))

  out, weights = attention.dot_product_attention(
      query, key, value, mask=valid, return_weights=True)
  grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(query, key, value)

  assert np.all(np.isfinite(out))
  np.testing.assert_array_equal(out[1], 0.0)
  np.testing.assert_array_equal(out[0, 1, 0], 0.0)
  np.testing.assert_array_equal(weights[1], 0.0)
  for grad in grads:
    assert np.all(np.isfinite(grad))
    np.testing.assert_array_equal(grad[1], 0.0)
  # The fully masked row of batch 0 sends no gradient to its query.
  np.testing.assert_array_equal(grads[0][0, 1, 0], 0.0)
  assert np.any(grads[2][0] != 0.0)


def test_dot_product_attention_infinite_masked_logits():
  valid = _fully_masked_mask()
  query, key, value = _qkv()
  # Masked keys of batch 1 overflow to inf logits, and they must still give zeros.
  key = key.copy()
  key[1] = 1e30

  def loss(query, value):
    return jnp.sum(attention.dot_product_attention(query, key, value, mask=valid))

  out = attention.dot_product_attention(query, key, value, mask=valid)
  query_grad, value_grad = jax.jit(jax.grad(loss, argnums=(0, 1)))(query, value)

  np.testing.assert_array_equal(out[1], 0.0)
  np.testing.assert_array_equal(query_grad[1], 0.0)
  np.testing.assert_array_equal(value_grad[1], 0.0)
  assert np.all(np.isfinite(query_grad))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_dot_product_attention_low_precision(dtype):
  _, causal, valid = MASK_CASES["padding_causal"]
  valid = valid & _fully_masked_mask()
  query, key, value = (jnp.asarray(a, dtype) for a in _qkv())

  out, weights = attention.dot_product_attention(
      query, key, value, mask=valid, causal=causal, return_weights=True)

  assert out.dtype == dtype
  assert weights.dtype == jnp.float32
  expected_out, expected_weights = _reference_attention(
      *(np.asarray(a, np.float32) for a in (query, key, value)), valid)
  # Softmax runs in float32, so weights are accurate. The output rounds the weights
  # and itself to the 16-bit dtype.
  np.testing.assert_allclose(weights, expected_weights, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(out, np.float32), expected_out, rtol=1e-2, atol=1e-2)
  np.testing.assert_array_equal(np.asarray(out, np.float32)[1], 0.0)


# float16 uses its maximum. The bfloat16 maximum squared overflows float32 logits, so
# bfloat16 uses 1e18, which gives logits of order 1e36.
@pytest.mark.parametrize("dtype, magnitude", [(jnp.bfloat16, 1e18),
                                              (jnp.float16, float(jnp.finfo(jnp.float16).max))])
def test_dot_product_attention_low_precision_extremes(dtype, magnitude):
  valid = _fully_masked_mask()
  query = jnp.asarray(magnitude * np.sign(_normal(3, (B, T, N, D))), dtype)
  key = jnp.asarray(magnitude * np.sign(_normal(4, (B, S, N, D))), dtype)
  value = jnp.asarray(_normal(5, (B, S, N, D)), dtype)

  def loss(query, key, value):
    out = attention.dot_product_attention(query, key, value, mask=valid)
    return jnp.sum(out.astype(jnp.float32))

  out = attention.dot_product_attention(query, key, value, mask=valid)
  grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(query, key, value)

  assert np.all(np.isfinite(np.asarray(out, np.float32)))
  np.testing.assert_array_equal(np.asarray(out, np.float32)[1], 0.0)
  for grad in grads:
    assert grad.dtype == dtype
    np.testing.assert_array_equal(np.asarray(grad, np.float32)[1], 0.0)
  # Only the value gradient is sure to be finite: the query and key gradients of valid
  # rows scale with the other operand, which is near the 16-bit maximum.
  assert np.all(np.isfinite(np.asarray(grads[2], np.float32)))


@pytest.mark.parametrize("case", ["none", "padding", "causal", "padding_causal",
                                  "broadcast_ts"])
def test_dot_product_attention_xla_matches(case):
  mask, causal, _ = MASK_CASES[case]
  query, key, value = _qkv(dv=D)

  ours = attention.dot_product_attention(query, key, value, mask=mask, causal=causal)
  fused = attention.dot_product_attention(
      query, key, value, mask=mask, causal=causal, implementation="xla")

  np.testing.assert_allclose(fused, ours, rtol=RTOL, atol=ATOL)


# NOTE: the cuDNN tests below have never run on a GPU, so their tolerances are unchecked there.
# cuDNN's fused attention takes float16 or bfloat16 inputs on GPUs of compute capability 8.0 or
# newer, with head depths up to 128 for the backward pass on Ampere (cuDNN 9 support matrix).
_ON_GPU = jax.default_backend() == "gpu"


@pytest.mark.skipif(not _ON_GPU, reason="the cuDNN attention needs an NVIDIA GPU")
@pytest.mark.parametrize("case", ["none", "padding", "causal"])
def test_dot_product_attention_cudnn_matches(case):
  batch, steps, heads, depth = 2, 64, 2, 64
  keys = jax.random.split(jax.random.key(0), 3)
  query, key, value = (jax.random.normal(k, (batch, steps, heads, depth), jnp.bfloat16)
                       for k in keys)
  lengths = jnp.array([steps, 40])
  mask = attention.padding_mask(jnp.arange(steps)[None, :] < lengths[:, None])
  mask, causal = {"none": (None, False), "padding": (mask, False), "causal": (None, True)}[case]

  ours = attention.dot_product_attention(query, key, value, mask=mask, causal=causal)
  fused = attention.dot_product_attention(query, key, value, mask=mask, causal=causal,
                                          implementation="cudnn")

  assert fused.dtype == ours.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(fused, np.float32), np.asarray(ours, np.float32),
                             rtol=2e-2, atol=2e-2)


@pytest.mark.skipif(not _ON_GPU, reason="the cuDNN attention needs an NVIDIA GPU")
def test_dot_product_attention_cudnn_gradients_match():
  keys = jax.random.split(jax.random.key(1), 3)
  inputs = [jax.random.normal(k, (2, 64, 2, 64), jnp.bfloat16) for k in keys]

  def loss(implementation, query, key, value):
    out = attention.dot_product_attention(query, key, value, implementation=implementation)
    return jnp.sum(out.astype(jnp.float32) ** 2)

  ours = jax.grad(functools.partial(loss, None), argnums=(0, 1, 2))(*inputs)
  fused = jax.grad(functools.partial(loss, "cudnn"), argnums=(0, 1, 2))(*inputs)

  for name, mine, theirs in zip(("query", "key", "value"), ours, fused):
    np.testing.assert_allclose(np.asarray(theirs, np.float32), np.asarray(mine, np.float32),
                               rtol=5e-2, atol=5e-2, err_msg=name)


def test_dot_product_attention_xla_fully_masked_rows_differ():
  query, key, value = _qkv(dv=D)
  valid = _fully_masked_mask()

  ours = attention.dot_product_attention(query, key, value, mask=valid)
  fused = attention.dot_product_attention(query, key, value, mask=valid,
                                          implementation="xla")

  # The fused path gives a fully masked row uniform weights, so it returns the mean value.
  np.testing.assert_array_equal(ours[1], 0.0)
  np.testing.assert_allclose(fused[1], np.broadcast_to(value[1].mean(axis=0), (T, N, D)),
                             rtol=RTOL, atol=ATOL)


# The default backward pass is hand-written (jax.custom_vjp), so it has reverse mode only.
# With gradient="autodiff" it also has forward mode.
@pytest.mark.parametrize("gradient, modes", [("manual", ("rev",)),
                                             ("autodiff", ("fwd", "rev"))])
def test_dot_product_attention_check_grads(gradient, modes):
  query, key, value = (a[:, :2, :1, :2] for a in _qkv())  # T=2, S=2, N=1
  mask = np.array([True, False])[None, None, None, :]

  def f(query, key, value):
    return attention.dot_product_attention(query, key, value, mask=mask, causal=True,
                                           gradient=gradient)

  # Finite differences in float32 with eps=1e-3 are only accurate to about 1e-2. jit keeps
  # the many small evaluations fast.
  check_grads(jax.jit(f), (query, key, value), order=1, modes=modes, eps=1e-3,
              atol=1e-2, rtol=1e-2)


def _attention_loss(query, key, value, mask, causal, gradient):
  """Weight the output and the attention weights with fixed random factors and sum."""
  out, weights = attention.dot_product_attention(
      query, key, value, mask=mask, causal=causal, return_weights=True, gradient=gradient)
  out_factor = _normal(40, out.shape)
  weight_factor = _normal(41, weights.shape)
  return jnp.sum(out * out_factor) + jnp.sum(weights * weight_factor)


@pytest.mark.parametrize("case", MASK_CASES)
@pytest.mark.parametrize("chunk_elements", [None, 1])
def test_manual_gradient_matches_autodiff(case, chunk_elements, monkeypatch):
  # chunk_elements=1 makes every example its own chunk, so lax.map runs over the batch.
  if chunk_elements is not None:
    monkeypatch.setattr(attention, "_CHUNK_ELEMENTS", chunk_elements)
  mask, causal, _ = MASK_CASES[case]
  query, key, value = _qkv()

  grad_fn = jax.value_and_grad(_attention_loss, argnums=(0, 1, 2))
  manual_loss, manual = jax.jit(grad_fn, static_argnums=(4, 5))(
      query, key, value, mask, causal, "manual")
  autodiff_loss, autodiff = jax.jit(grad_fn, static_argnums=(4, 5))(
      query, key, value, mask, causal, "autodiff")

  np.testing.assert_allclose(manual_loss, autodiff_loss, rtol=RTOL)
  for got, expected in zip(manual, autodiff):
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


def test_manual_gradient_partial_last_chunk(monkeypatch):
  # 2 examples per chunk over a batch of 5: two chunks in lax.map and one of 1 example.
  monkeypatch.setattr(attention, "_CHUNK_ELEMENTS", 2 * N * T * S)
  query, key, value = (_normal(seed, (5, steps, N, depth)) for seed, steps, depth in
                       ((50, T, D), (51, S, D), (52, S, DV)))
  lengths = np.array([5, 0, 3, 1, 4])
  mask = attention.padding_mask(np.arange(S)[None, :] < lengths[:, None])

  manual_out, manual_weights = attention.dot_product_attention(
      query, key, value, mask=mask, return_weights=True)
  expected_out, expected_weights = _reference_attention(
      query, key, value, np.broadcast_to(mask, (5, N, T, S)))
  np.testing.assert_allclose(manual_out, expected_out, rtol=RTOL, atol=ATOL)
  np.testing.assert_allclose(manual_weights, expected_weights, rtol=RTOL, atol=ATOL)

  grad_fn = jax.jit(jax.grad(_attention_loss, argnums=(0, 1, 2)), static_argnums=(4, 5))
  manual = grad_fn(query, key, value, mask, False, "manual")
  autodiff = grad_fn(query, key, value, mask, False, "autodiff")
  for got, expected in zip(manual, autodiff):
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
  # The example with no valid key gets zero gradients.
  for grad in manual:
    np.testing.assert_array_equal(grad[1], 0.0)


def test_dot_product_attention_bad_gradient():
  with pytest.raises(ValueError, match="gradient must be one of"):
    attention.dot_product_attention(*_qkv(), gradient="numeric")


def test_dot_product_attention_jit_matches_eager():
  mask, causal, _ = MASK_CASES["padding_causal"]
  query, key, value = _qkv()

  def f(query, key, value, mask):
    return attention.dot_product_attention(
        query, key, value, mask=mask, causal=causal, return_weights=True)

  eager = f(query, key, value, mask)
  jitted = jax.jit(f)(query, key, value, mask)

  for got, want in zip(jitted, eager, strict=True):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_dot_product_attention_eval_shape(dtype):
  query, key, value = (jnp.asarray(a, dtype) for a in _qkv())

  shapes = jax.eval_shape(
      lambda q, k, v: attention.dot_product_attention(q, k, v, return_weights=True),
      query, key, value)

  assert shapes[0].shape == (B, T, N, DV)
  assert shapes[0].dtype == dtype
  assert shapes[1].shape == (B, N, T, S)
  assert shapes[1].dtype == jnp.float32


def test_padding_mask():
  key_mask = _key_mask([2, S])

  mask = attention.padding_mask(key_mask)

  assert mask.shape == (B, 1, 1, S)
  np.testing.assert_array_equal(mask[:, 0, 0, :], key_mask)


def test_padding_mask_not_bool():
  with pytest.raises(ValueError, match=r"padding_mask: key_mask must be bool\[B, S\]"):
    attention.padding_mask(np.ones((B, S), np.int32))


@pytest.mark.parametrize("change, message", [
    (lambda q, k, v: (q[..., :3], k, v), "query has D=3 but key has D=4"),
    (lambda q, k, v: (q, k, v[:, :4]), "key has S=5 but value has S=4"),
    (lambda q, k, v: (q, k[:, :, :1], v), "must share N"),
    (lambda q, k, v: (q, k[:1], v), "must share B"),
    (lambda q, k, v: (q[0], k, v), r"query must have rank 4 \[B, T, N, D\]"),
    (lambda q, k, v: (q, k, v.astype(np.float16)), "inputs must share one floating dtype"),
])
def test_dot_product_attention_bad_inputs(change, message):
  query, key, value = change(*_qkv())
  with pytest.raises(ValueError, match=f"dot_product_attention: .*{message}"):
    attention.dot_product_attention(query, key, value)


@pytest.mark.parametrize("mask, message", [
    (np.ones((B, S), bool), "does not broadcast to .* padding_mask"),
    (np.ones((B, N, T, S + 1), bool), "does not broadcast to"),
    (np.ones((B, 1, 1, S), np.float32), "mask must be bool"),
])
def test_dot_product_attention_bad_mask(mask, message):
  with pytest.raises(ValueError, match=f"dot_product_attention: .*{message}"):
    attention.dot_product_attention(*_qkv(), mask=mask)


def test_dot_product_attention_bad_implementation():
  with pytest.raises(ValueError, match="implementation must be one of"):
    attention.dot_product_attention(*_qkv(), implementation="flash")


def test_dot_product_attention_fused_limits():
  with pytest.raises(ValueError, match="needs value depth Dv == D=4, got Dv=6"):
    attention.dot_product_attention(*_qkv(), implementation="xla")
  with pytest.raises(ValueError, match="return_weights needs implementation=None"):
    attention.dot_product_attention(*_qkv(dv=D), implementation="xla", return_weights=True)


# Self-attention without parameters: x is query, key and value.

SELF_LENGTHS = [5, 3, 0, 1, 4]  # example 2 is all padding


def _self_inputs(seed=60, batch=len(SELF_LENGTHS), steps=5, channels=4):
  x = _normal(seed, (batch, steps, channels))
  mask = np.arange(steps)[None, :] < np.asarray(SELF_LENGTHS[:batch])[:, None]  # [B, T]
  return x, mask


def _self_valid(mask):
  """bool[B, 1, T, S]: real queries attend to real keys."""
  return mask[:, None, :, None] & mask[:, None, None, :]


@pytest.mark.parametrize("masked", [True, False], ids=["mask", "no_mask"])
def test_self_attention_matches_reference(masked):
  x, mask = _self_inputs()
  if not masked:
    mask = np.ones_like(mask)

  out, weights = attention.self_attention(x, mask=mask if masked else None,
                                          return_weights=True)

  heads = x[:, :, None, :]
  expected_out, expected_weights = _reference_attention(heads, heads, heads, _self_valid(mask))
  np.testing.assert_allclose(out, expected_out[:, :, 0], rtol=RTOL, atol=ATOL)
  np.testing.assert_allclose(weights, expected_weights[:, 0], rtol=RTOL, atol=ATOL)
  assert out.dtype == jnp.float32
  assert weights.dtype == jnp.float32
  if masked:
    np.testing.assert_array_equal(np.asarray(out)[2], 0.0)
    np.testing.assert_array_equal(np.asarray(out)[1, 3:], 0.0)


def _self_attention_loss(x, mask, gradient):
  """Weight the output and the attention weights with fixed random factors and sum."""
  out, weights = attention.self_attention(x, mask=mask, return_weights=True, gradient=gradient)
  return jnp.sum(out * _normal(61, out.shape)) + jnp.sum(weights * _normal(62, weights.shape))


def _dot_product_self_attention_loss(x, mask):
  """The same loss through `dot_product_attention` with x as query, key and value."""
  heads = x[:, :, None, :]
  out, weights = attention.dot_product_attention(
      heads, heads, heads, mask=_self_valid(mask), return_weights=True, gradient="autodiff")
  return (jnp.sum(out[:, :, 0] * _normal(61, out[:, :, 0].shape))
          + jnp.sum(weights[:, 0] * _normal(62, weights[:, 0].shape)))


# None keeps the whole batch in one chunk. 2 examples per chunk over a batch of 5 runs two
# chunks in lax.map and a last chunk of one example.
@pytest.mark.parametrize("chunk_examples", [None, 1, 2])
@pytest.mark.parametrize("gradient", ["manual", "autodiff"])
def test_self_attention_gradient_matches_dot_product_attention(chunk_examples, gradient,
                                                               monkeypatch):
  x, mask = _self_inputs()
  if chunk_examples is not None:
    monkeypatch.setattr(attention, "_SELF_ATTENTION_CHUNK_ELEMENTS",
                        chunk_examples * x.shape[1] ** 2)

  loss, grad = jax.jit(jax.value_and_grad(_self_attention_loss), static_argnums=2)(
      x, mask, gradient)
  expected_loss, expected_grad = jax.jit(jax.value_and_grad(_dot_product_self_attention_loss))(
      x, mask)

  np.testing.assert_allclose(loss, expected_loss, rtol=RTOL)
  np.testing.assert_allclose(grad, expected_grad, rtol=RTOL, atol=ATOL)
  np.testing.assert_array_equal(np.asarray(grad)[2], 0.0)  # all padding
  np.testing.assert_array_equal(np.asarray(grad)[1, 3:], 0.0)  # padded steps


@pytest.mark.parametrize("gradient, modes", [("manual", ("rev",)),
                                             ("autodiff", ("fwd", "rev"))])
def test_self_attention_check_grads(gradient, modes):
  x, mask = _self_inputs(batch=2, steps=3, channels=2)

  def f(x):
    return attention.self_attention(x, mask=mask[:, :3], gradient=gradient)

  check_grads(jax.jit(f), (x,), order=1, modes=modes, eps=1e-3, atol=1e-2, rtol=1e-2)


def test_self_attention_low_precision():
  x, mask = _self_inputs()

  out, weights = attention.self_attention(jnp.asarray(x, jnp.bfloat16), mask=mask,
                                          return_weights=True)
  grad = jax.grad(lambda x: jnp.sum(attention.self_attention(x, mask=mask).astype(
      jnp.float32)))(jnp.asarray(x, jnp.bfloat16))

  assert out.dtype == jnp.bfloat16
  assert grad.dtype == jnp.bfloat16
  assert weights.dtype == jnp.float32
  rounded = np.asarray(jnp.asarray(x, jnp.bfloat16), np.float32)
  expected_out, expected_weights = attention.self_attention(rounded, mask=mask,
                                                            return_weights=True)
  np.testing.assert_allclose(weights, expected_weights, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(out, np.float32), expected_out, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("x, mask, gradient, message", [
    (np.ones((2, 3), np.float32), None, "manual", r"x must be a float array \[B, T, C\]"),
    (np.ones((2, 3, 4), np.int32), None, "manual", r"x must be a float array"),
    (np.ones((2, 3, 4), np.float32), np.ones((2, 3), np.float32), "manual",
     r"mask must be bool\[B, T\] = bool\[2, 3\]"),
    (np.ones((2, 3, 4), np.float32), np.ones((2, 4), bool), "manual",
     r"got bool\[2, 4\]"),
    (np.ones((2, 3, 4), np.float32), None, "jvp", "gradient must be one of"),
])
def test_self_attention_bad_inputs(x, mask, gradient, message):
  with pytest.raises(ValueError, match=f"self_attention: .*{message}"):
    attention.self_attention(x, mask=mask, gradient=gradient)


# Multi-head attention.

C, CKV, O = 5, 3, 7


def _random_mha_params(seed=0, in_features=C, kv_features=CKV, heads=N, depth=D,
                       value_depth=DV, out_features=O):
  def dense(offset, fan_in, fan_out):
    return {"kernel": _normal(seed + offset, (fan_in, fan_out), 0.5),
            "bias": _normal(seed + offset + 10, (fan_out,), 0.5)}

  return {
      "query": dense(1, in_features, heads * depth),
      "key": dense(2, kv_features, heads * depth),
      "value": dense(3, kv_features, heads * value_depth),
      "output": dense(4, heads * value_depth, out_features),
  }


def _reference_mha(params, query_inputs, kv_inputs, heads, valid):
  """Project per head with explicit column slices, attend, and project back."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  query_inputs, kv_inputs = (np.asarray(a, np.float64) for a in (query_inputs, kv_inputs))
  depth = p["query"]["kernel"].shape[1] // heads
  value_depth = p["value"]["kernel"].shape[1] // heads

  def heads_of(name, x, width):
    projected = x @ p[name]["kernel"] + p[name]["bias"]  # [B, L, N*W]
    return np.stack([projected[..., h * width:(h + 1) * width] for h in range(heads)],
                    axis=2)  # [B, L, N, W]

  query = heads_of("query", query_inputs, depth)
  key = heads_of("key", kv_inputs, depth)
  value = heads_of("value", kv_inputs, value_depth)
  out, weights = _reference_attention(query, key, value, valid)
  merged = out.reshape(out.shape[0], out.shape[1], heads * value_depth)
  return merged @ p["output"]["kernel"] + p["output"]["bias"], weights


@pytest.mark.parametrize("case", ["none", "padding", "padding_causal", "general"])
def test_multi_head_attention_matches_reference(case):
  mask, causal, valid = MASK_CASES[case]
  params = _random_mha_params()
  query_inputs, kv_inputs = _normal(20, (B, T, C)), _normal(21, (B, S, CKV))

  out, weights = attention.multi_head_attention(
      params, query_inputs, kv_inputs, num_heads=N, mask=mask, causal=causal,
      return_weights=True)

  expected_out, expected_weights = _reference_mha(params, query_inputs, kv_inputs, N, valid)
  np.testing.assert_allclose(out, expected_out, rtol=RTOL, atol=ATOL)
  np.testing.assert_allclose(weights, expected_weights, rtol=RTOL, atol=ATOL)
  assert out.shape == (B, T, O)
  assert out.dtype == jnp.float32


def test_multi_head_attention_self_attention():
  params = _random_mha_params(kv_features=C, value_depth=D)
  x = _normal(22, (B, S, C))
  valid = np.ones((B, N, S, S), bool) & _causal(S, S)

  out = attention.multi_head_attention(params, x, x, num_heads=N, causal=True)
  fused = attention.multi_head_attention(params, x, x, num_heads=N, causal=True,
                                         implementation="xla")

  expected, _ = _reference_mha(params, x, x, N, valid)
  np.testing.assert_allclose(out, expected, rtol=RTOL, atol=ATOL)
  np.testing.assert_allclose(fused, expected, rtol=RTOL, atol=ATOL)


def test_multi_head_attention_bfloat16():
  params = _random_mha_params()
  query_inputs, kv_inputs = _normal(20, (B, T, C)), _normal(21, (B, S, CKV))
  mask, _, valid = MASK_CASES["padding"]

  out = attention.multi_head_attention(
      params, jnp.asarray(query_inputs, jnp.bfloat16), jnp.asarray(kv_inputs, jnp.bfloat16),
      num_heads=N, mask=mask)

  assert out.dtype == jnp.bfloat16
  expected, _ = _reference_mha(params, query_inputs, kv_inputs, N, valid)
  # bfloat16 rounds inputs, parameters and each projection to 8 mantissa bits, and
  # outputs reach about 5 in magnitude.
  np.testing.assert_allclose(np.asarray(out, np.float32), expected, rtol=2e-2, atol=5e-2)


def test_multi_head_attention_check_grads():
  params = _random_mha_params(in_features=2, kv_features=2, heads=1, depth=2,
                              value_depth=2, out_features=2)
  query_inputs, kv_inputs = _normal(23, (1, 2, 2)), _normal(24, (1, 3, 2))
  mask = np.array([True, True, False])[None, None, None, :]

  def f(params, query_inputs, kv_inputs, gradient):
    return attention.multi_head_attention(params, query_inputs, kv_inputs, num_heads=1,
                                          mask=mask, gradient=gradient)

  # Finite differences in float32 with eps=1e-3 are only accurate to about 1e-2. jit keeps
  # the many small evaluations fast. The default hand-written backward pass has reverse
  # mode only.
  for gradient, modes in (("manual", ("rev",)), ("autodiff", ("fwd", "rev"))):
    check_grads(jax.jit(functools.partial(f, gradient=gradient)),
                (params, query_inputs, kv_inputs), order=1, modes=modes, eps=1e-3,
                atol=1e-2, rtol=1e-2)


def test_multi_head_attention_jit_and_eval_shape():
  params = _random_mha_params()
  query_inputs, kv_inputs = _normal(20, (B, T, C)), _normal(21, (B, S, CKV))
  mask = MASK_CASES["padding"][0]

  def f(params, query_inputs, kv_inputs, mask):
    return attention.multi_head_attention(params, query_inputs, kv_inputs, num_heads=N,
                                          mask=mask)

  eager = f(params, query_inputs, kv_inputs, mask)
  jitted = jax.jit(f)(params, query_inputs, kv_inputs, mask)
  shape = jax.eval_shape(f, params, query_inputs, kv_inputs, mask)

  np.testing.assert_allclose(jitted, eager, rtol=RTOL, atol=ATOL)
  assert shape.shape == eager.shape == (B, T, O)
  assert shape.dtype == eager.dtype == jnp.float32


def test_multi_head_attention_init(key):
  params = attention.init_multi_head_attention(key, 6, num_heads=3, head_dim=4,
                                               out_features=5)

  shapes = jax.tree.map(jnp.shape, params)
  assert shapes == {
      "query": {"kernel": (6, 12), "bias": (12,)},
      "key": {"kernel": (6, 12), "bias": (12,)},
      "value": {"kernel": (6, 12), "bias": (12,)},
      "output": {"kernel": (12, 5), "bias": (5,)},
  }
  np.testing.assert_array_equal(params["query"]["bias"], 0.0)
  assert np.all(np.abs(params["output"]["kernel"]) <= np.sqrt(6.0 / (12 + 5)))
  assert not np.array_equal(params["query"]["kernel"], params["key"]["kernel"])
  out = attention.multi_head_attention(params, _normal(0, (B, T, 6)), _normal(1, (B, S, 6)),
                                       num_heads=3)
  assert out.shape == (B, T, 5)


@pytest.mark.parametrize("num_heads", [3, 0])
def test_multi_head_attention_bad_num_heads(num_heads):
  with pytest.raises(ValueError, match=f"num_heads={num_heads} must divide the query width 8"):
    attention.multi_head_attention(_random_mha_params(), _normal(0, (B, T, C)),
                                   _normal(1, (B, S, CKV)), num_heads=num_heads)


@pytest.mark.parametrize("params_change, message", [
    (dict(in_features=C + 1), r"query kernel must have shape \[5, W\]"),
    (dict(kv_features=CKV + 1), r"key kernel must have shape \[3, W\]"),
])
def test_multi_head_attention_bad_kernel(params_change, message):
  params = _random_mha_params(**params_change)
  with pytest.raises(ValueError, match=f"multi_head_attention: .*{message}"):
    attention.multi_head_attention(params, _normal(0, (B, T, C)), _normal(1, (B, S, CKV)),
                                   num_heads=N)


def test_multi_head_attention_key_width_mismatch():
  params = _random_mha_params()
  params["key"] = _random_mha_params(depth=D + 2)["key"]
  with pytest.raises(ValueError, match="key kernel must have width 8"):
    attention.multi_head_attention(params, _normal(0, (B, T, C)), _normal(1, (B, S, CKV)),
                                   num_heads=N)


def test_multi_head_attention_bad_mask():
  with pytest.raises(ValueError, match="dot_product_attention: mask of shape"):
    attention.multi_head_attention(_random_mha_params(), _normal(0, (B, T, C)),
                                   _normal(1, (B, S, CKV)), num_heads=N,
                                   mask=np.ones((B, S), bool))


# Additive attention.

DQ, DK, A = 3, 4, 5


def _random_additive_params(seed=0, query_dim=DQ, key_dim=DK, units=A):
  return {
      "query_kernel": _normal(seed, (query_dim, units), 0.5),
      "key_kernel": _normal(seed + 1, (key_dim, units), 0.5),
      "bias": _normal(seed + 2, (units,), 0.5),
      "score_vector": _normal(seed + 3, (units,)),
  }


def _additive_inputs(seed=30):
  return (_normal(seed, (B, T, DQ)), _normal(seed + 1, (B, S, DK)),
          _normal(seed + 2, (B, S, DV)))


def _reference_additive(params, query, key, value, valid):
  """Loop over b, t and s with valid bool[B, T, S]."""
  p = {name: np.asarray(leaf, np.float64) for name, leaf in params.items()}
  query, key, value = (np.asarray(a, np.float64) for a in (query, key, value))
  batch, steps, _ = query.shape
  out = np.zeros((batch, steps, value.shape[-1]))
  weights = np.zeros((batch, steps, key.shape[1]))
  for b in range(batch):
    for t in range(steps):
      scores = np.array([
          p["score_vector"] @ np.tanh(query[b, t] @ p["query_kernel"]
                                      + key[b, s] @ p["key_kernel"] + p["bias"])
          for s in range(key.shape[1])])
      weights[b, t] = _reference_softmax(scores, valid[b, t])
      out[b, t] = weights[b, t] @ value[b]
  return out, weights


def _additive_mask_cases():
  key_mask = _key_mask([S, 0])  # batch 1 has no valid key
  full = np.random.default_rng(8).random((B, T, S)) < 0.6
  full[0, 1] = False
  return {
      "none": (None, np.ones((B, T, S), bool)),
      "key_mask": (key_mask, np.broadcast_to(key_mask[:, None, :], (B, T, S))),
      "query_key_mask": (full, full),
  }


ADDITIVE_MASK_CASES = _additive_mask_cases()


@pytest.mark.parametrize("case", ADDITIVE_MASK_CASES)
def test_additive_attention_matches_reference(case):
  mask, valid = ADDITIVE_MASK_CASES[case]
  params = _random_additive_params()
  query, key, value = _additive_inputs()

  out, weights = attention.additive_attention(params, query, key, value, mask=mask,
                                              return_weights=True)

  expected_out, expected_weights = _reference_additive(params, query, key, value, valid)
  np.testing.assert_allclose(out, expected_out, rtol=RTOL, atol=ATOL)
  np.testing.assert_allclose(weights, expected_weights, rtol=RTOL, atol=ATOL)
  np.testing.assert_array_equal(np.asarray(weights)[~valid], 0.0)
  assert out.shape == (B, T, DV)
  assert weights.dtype == jnp.float32


def test_additive_attention_fully_masked_rows():
  mask, _ = ADDITIVE_MASK_CASES["key_mask"]
  # A large score vector makes scores of order 1e30.
  params = _random_additive_params()
  params["score_vector"] = params["score_vector"] * np.float32(1e30)
  query, key, value = _additive_inputs()

  def loss(params, query, key, value):
    return jnp.sum(attention.additive_attention(params, query, key, value, mask=mask))

  out = attention.additive_attention(params, query, key, value, mask=mask)
  grads = jax.jit(jax.grad(loss, argnums=(1, 2, 3)))(params, query, key, value)

  np.testing.assert_array_equal(out[1], 0.0)
  assert np.all(np.isfinite(out))
  for grad in grads:
    assert np.all(np.isfinite(grad))
    np.testing.assert_array_equal(grad[1], 0.0)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_additive_attention_low_precision(dtype):
  mask, valid = ADDITIVE_MASK_CASES["key_mask"]
  params = _random_additive_params()
  query, key, value = (jnp.asarray(a, dtype) for a in _additive_inputs())

  out, weights = attention.additive_attention(params, query, key, value, mask=mask,
                                              return_weights=True)

  assert out.dtype == dtype
  assert weights.dtype == jnp.float32
  expected_out, _ = _reference_additive(
      params, *(np.asarray(a, np.float32) for a in (query, key, value)), valid)
  np.testing.assert_allclose(np.asarray(out, np.float32), expected_out, rtol=1e-2, atol=1e-2)
  np.testing.assert_array_equal(np.asarray(out, np.float32)[1], 0.0)


def test_additive_attention_check_grads():
  params = _random_additive_params(query_dim=2, key_dim=2, units=2)
  query, key, value = _normal(40, (1, 2, 2)), _normal(41, (1, 3, 2)), _normal(42, (1, 3, 2))
  mask = np.array([[True, False, True]])

  def f(params, query, key, value):
    return attention.additive_attention(params, query, key, value, mask=mask)

  # Finite differences in float32 with eps=1e-3 are only accurate to about 1e-2. jit keeps
  # the many small evaluations fast.
  check_grads(jax.jit(f), (params, query, key, value), order=1, modes=("fwd", "rev"), eps=1e-3,
              atol=1e-2, rtol=1e-2)


def test_additive_attention_jit_and_eval_shape():
  params = _random_additive_params()
  query, key, value = _additive_inputs()
  mask, _ = ADDITIVE_MASK_CASES["query_key_mask"]

  def f(params, query, key, value, mask):
    return attention.additive_attention(params, query, key, value, mask=mask,
                                        return_weights=True)

  eager = f(params, query, key, value, mask)
  jitted = jax.jit(f)(params, query, key, value, mask)
  shapes = jax.eval_shape(f, params, query, key, value, mask)

  for got, want in zip(jitted, eager, strict=True):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
  assert shapes[0].shape == (B, T, DV)
  assert shapes[1].shape == (B, T, S)
  assert shapes[1].dtype == jnp.float32


def test_additive_attention_init(key):
  params = attention.init_additive_attention(key, 3, 4, 6)

  assert jax.tree.map(jnp.shape, params) == {
      "query_kernel": (3, 6), "key_kernel": (4, 6), "bias": (6,), "score_vector": (6,)}
  np.testing.assert_array_equal(params["bias"], 0.0)
  assert np.all(np.abs(params["score_vector"]) <= np.sqrt(6.0 / (6 + 1)))
  assert np.any(params["score_vector"] != 0.0)


@pytest.mark.parametrize("change, message", [
    (lambda q, k, v: (q, k, v[:, :4]), "key has S=5 but value has S=4"),
    (lambda q, k, v: (q, k[:1], v[:1]), "must share B"),
    (lambda q, k, v: (q[..., :2], k, v), r"query_kernel must have shape \[Dq=2, A\]"),
    (lambda q, k, v: (q, k[..., :2], v), r"key_kernel must have shape \(2, 5\)"),
    (lambda q, k, v: (q, k, v[0]), r"value must have rank 3 \[B, S, Dv\]"),
])
def test_additive_attention_bad_inputs(change, message):
  query, key, value = change(*_additive_inputs())
  with pytest.raises(ValueError, match=f"additive_attention: .*{message}"):
    attention.additive_attention(_random_additive_params(), query, key, value)


@pytest.mark.parametrize("mask, message", [
    (np.ones((B, S + 1), bool), r"does not broadcast to \[B, S\]"),
    (np.ones((B, T + 1, S), bool), r"does not broadcast to \[B, T, S\]"),
    (np.ones((B, S), np.int32), "mask must be bool"),
])
def test_additive_attention_bad_mask(mask, message):
  with pytest.raises(ValueError, match=f"additive_attention: .*{message}"):
    attention.additive_attention(_random_additive_params(), *_additive_inputs(), mask=mask)
