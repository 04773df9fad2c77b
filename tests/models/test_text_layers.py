"""Tests for jaxmodels.models.text_layers against direct NumPy versions on small shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxmodels.models import text_layers
from jaxmodels.ops import recurrent

# Legend: B batch, T steps, C channels.
B, T, C = 3, 7, 4
RTOL, ATOL = 1e-5, 1e-6

# Real tokens of each row form one contiguous run: lengths 5, 2 (after 2 padded steps), 0.
MASK = np.array([
    [1, 1, 1, 1, 1, 0, 0],
    [0, 0, 1, 1, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0],
], bool)


def _random(shape, seed=0):
  return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_lstm_layer_params_follow_keras_layout(key):
  layer = text_layers.LSTM(5)
  params = layer.init(key, jnp.zeros((1, T, C), jnp.float32))["params"]

  assert params["kernel"].shape == (C, 20)
  assert params["recurrent_kernel"].shape == (5, 20)
  np.testing.assert_array_equal(params["bias"], np.r_[np.zeros(5), np.ones(5), np.zeros(10)])
  # [U, 4U] with orthonormal rows.
  recurrent_kernel = np.asarray(params["recurrent_kernel"])
  np.testing.assert_allclose(recurrent_kernel @ recurrent_kernel.T, np.eye(5), atol=1e-5)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_lstm_layer_matches_op(key, return_sequences):
  x = _random((B, T, C))
  layer = text_layers.LSTM(5, return_sequences=return_sequences)
  params = layer.init(key, x)["params"]

  outputs = layer.apply({"params": params}, x, mask=MASK)

  expected, _ = recurrent.lstm(params, x, mask=MASK, return_sequences=return_sequences)
  np.testing.assert_array_equal(outputs, expected)


def _reference_self_attention(x, mask):
  """Softmax(x x^T / sqrt(C)) x per row over real keys, in float64; padded queries get 0."""
  x = np.asarray(x, np.float64)
  out = np.zeros_like(x)
  weights = np.zeros((x.shape[0], x.shape[1], x.shape[1]))
  for b in range(x.shape[0]):
    real = np.flatnonzero(mask[b])
    for t in real:
      logits = np.array([x[b, t] @ x[b, s] for s in real]) / np.sqrt(x.shape[-1])
      w = np.exp(logits - logits.max())
      w /= w.sum()
      weights[b, t, real] = w
      out[b, t] = w @ x[b, real]
  return out, weights


def test_dot_product_self_attention_values():
  x = _random((B, T, C))
  layer = text_layers.DotProductSelfAttention()

  out, state = layer.apply({}, x, mask=MASK, mutable=["intermediates"])

  expected_out, expected_weights = _reference_self_attention(x, MASK)
  (weights,) = state["intermediates"]["attention_weights"]
  assert out.shape == (B, T, C)
  assert weights.shape == (B, T, T)
  np.testing.assert_allclose(out, expected_out, rtol=RTOL, atol=ATOL)
  np.testing.assert_allclose(weights, expected_weights, rtol=RTOL, atol=ATOL)


def test_dot_product_self_attention_without_mask():
  x = _random((B, T, C))

  out = text_layers.DotProductSelfAttention().apply({}, x)

  expected, _ = _reference_self_attention(x, np.ones((B, T), bool))
  np.testing.assert_allclose(out, expected, rtol=RTOL, atol=ATOL)


def test_multi_head_self_attention_params_and_shapes(key):
  x = _random((B, T, 8))
  layer = text_layers.MultiHeadSelfAttention(num_heads=2)
  params = layer.init(key, x)["params"]

  out, state = layer.apply({"params": params}, x, mask=MASK, mutable=["intermediates"])

  assert {name: params[name]["kernel"].shape for name in params} == {
      "query": (8, 8), "key": (8, 8), "value": (8, 8), "output": (8, 8)}
  assert out.shape == (B, T, 8)
  assert out.dtype == jnp.float32
  (weights,) = state["intermediates"]["attention_weights"]
  assert weights.shape == (B, 2, T, T)
  # Padded keys get weight 0, and each query's weights over the real keys sum to 1.
  weights = np.asarray(weights)
  for b in range(2):
    np.testing.assert_array_equal(weights[b][:, :, ~MASK[b]], 0.0)
    np.testing.assert_allclose(weights[b].sum(-1), 1.0, rtol=RTOL)


def test_multi_head_self_attention_values(key):
  x = _random((2, 4, 6))
  mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
  layer = text_layers.MultiHeadSelfAttention(num_heads=3, head_dim=2, out_features=5)
  params = layer.init(key, x)["params"]

  out = layer.apply({"params": params}, x, mask=mask)

  # Direct loops over batch, heads and real positions, in float64.
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  x64 = np.asarray(x, np.float64)
  expected = np.zeros((2, 4, 5))
  for b in range(2):
    real = np.flatnonzero(mask[b])
    heads = []
    for h in range(3):
      cols = slice(2 * h, 2 * h + 2)
      q = x64[b] @ p["query"]["kernel"][:, cols] + p["query"]["bias"][cols]
      k = x64[b] @ p["key"]["kernel"][:, cols] + p["key"]["bias"][cols]
      v = x64[b] @ p["value"]["kernel"][:, cols] + p["value"]["bias"][cols]
      logits = q @ k[real].T / np.sqrt(2)
      w = np.exp(logits - logits.max(-1, keepdims=True))
      w /= w.sum(-1, keepdims=True)
      heads.append(w @ v[real])
    expected[b] = np.concatenate(heads, -1) @ p["output"]["kernel"] + p["output"]["bias"]
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_multi_head_self_attention_rejects_indivisible_width(key):
  with pytest.raises(ValueError, match="num_heads=3 must divide the input width C=8"):
    text_layers.MultiHeadSelfAttention(num_heads=3).init(key, jnp.zeros((1, 2, 8), jnp.float32))


@pytest.mark.parametrize("features", [5, 6])
def test_sinusoidal_positions_values(features):
  positions = np.array([[0, 1, 5], [2, 0, 9]], np.int32)

  encoding = text_layers.sinusoidal_positions(jnp.asarray(positions), features)

  expected = np.zeros((2, 3, features))
  for index in np.ndindex(*positions.shape):
    for j in range(features):
      angle = positions[index] / 10000 ** (2 * (j // 2) / features)
      expected[index][j] = np.sin(angle) if j % 2 == 0 else np.cos(angle)
  assert encoding.dtype == jnp.float32
  np.testing.assert_allclose(encoding, expected, rtol=RTOL, atol=ATOL)


def test_position_embedding_learned_rejects_long_input(key):
  layer = text_layers.PositionEmbedding(4, max_positions=5)

  with pytest.raises(ValueError, match="6 steps do not fit the learned table of max_positions=5"):
    layer.init(key, jnp.zeros((1, 6), jnp.int32))


def test_position_embedding_rejects_unknown_kind(key):
  layer = text_layers.PositionEmbedding(4, kind="rotary")

  with pytest.raises(ValueError, match="kind must be one of"):
    layer.init(key, jnp.zeros((1, 3), jnp.int32))


def test_token_positions_count_real_tokens():
  positions = text_layers.token_positions(jnp.asarray(MASK))

  np.testing.assert_array_equal(positions, [
      [0, 1, 2, 3, 4, 0, 0],
      [0, 0, 0, 1, 0, 0, 0],
      [0, 0, 0, 0, 0, 0, 0],
  ])


def test_masked_mean_values():
  x = _random((B, T, C))

  pooled = text_layers.masked_mean(jnp.asarray(x), jnp.asarray(MASK))

  expected = np.stack([x[b, MASK[b]].mean(0) if MASK[b].any() else np.zeros(C)
                       for b in range(B)])
  np.testing.assert_allclose(pooled, expected, rtol=RTOL, atol=ATOL)


def test_masked_max_over_time_values():
  x = _random((B, T, C))

  pooled = text_layers.masked_max_over_time(jnp.asarray(x), jnp.asarray(MASK))

  expected = np.stack([x[b, MASK[b]].max(0) if MASK[b].any() else np.zeros(C)
                       for b in range(B)])
  np.testing.assert_array_equal(pooled, expected)


def test_masked_max_over_time_ignores_large_invalid_values():
  x = _random((B, T, C))
  x[~MASK] = 1e30

  pooled = text_layers.masked_max_over_time(jnp.asarray(x), jnp.asarray(MASK))

  assert np.all(np.asarray(pooled) < 1e30)


def test_masked_max_over_time_empty_row_grads():
  x = jnp.asarray(_random((B, T, C)))

  grads = jax.grad(lambda v: text_layers.masked_max_over_time(v, jnp.asarray(MASK)).sum())(x)

  grads = np.asarray(grads)
  assert np.all(np.isfinite(grads))
  np.testing.assert_array_equal(grads[2], 0.0)
  # One winner per channel in each row with real steps.
  np.testing.assert_array_equal(grads[:2].sum(1), 1.0)


def test_masked_max_over_time_check_grads():
  # Distinct values keep the arg max away from ties, where the max is not differentiable.
  x = jnp.asarray(np.arange(B * T * C, dtype=np.float32).reshape(B, T, C) % 11 * 0.37)
  mask = jnp.asarray(MASK)
  # float32: finite differences with eps=1e-3 need a loose tolerance.
  check_grads(lambda v: text_layers.masked_max_over_time(v, mask), (x,), order=1,
              modes=("fwd", "rev"), eps=1e-3, atol=1e-2, rtol=1e-2)


def _reference_window_mask(mask, width):
  """Loop version of `narrow_window_mask` for one contiguous run of real steps per row."""
  valid = np.zeros_like(mask)
  for b, row in enumerate(mask):
    real = np.flatnonzero(row)
    if len(real) == 0:
      continue
    if len(real) < width:
      valid[b, real[0]] = True
      continue
    for t in real:
      valid[b, t] = t + width - 1 <= real[-1]
  return valid


@pytest.mark.parametrize("width", [1, 2, 3, 5, 8])
def test_narrow_window_mask_matches_loop(width):
  valid = text_layers.narrow_window_mask(jnp.asarray(MASK), width)

  np.testing.assert_array_equal(valid, _reference_window_mask(MASK, width))


def test_narrow_window_mask_pre_padding():
  mask = np.array([[0, 0, 0, 1, 1, 1, 1]], bool)

  valid = text_layers.narrow_window_mask(jnp.asarray(mask), 3)

  np.testing.assert_array_equal(valid, [[0, 0, 0, 1, 1, 0, 0]])


@pytest.mark.parametrize("width", [1, 2, 3, 8])
def test_wide_window_mask_matches_loop(width):
  valid = text_layers.wide_window_mask(jnp.asarray(MASK), width)

  # Window j covers steps j - width + 1 .. j of the input.
  expected = np.zeros((B, T + width - 1), bool)
  for b, j in np.ndindex(*expected.shape):
    expected[b, j] = MASK[b, max(j - width + 1, 0):j + 1].any()
  np.testing.assert_array_equal(valid, expected)


@pytest.mark.parametrize("ids", [np.zeros((2, 3), np.float32), np.zeros((2,), np.int32)])
def test_check_ids_rejects_non_token_arrays(ids):
  with pytest.raises(ValueError, match="ids must be int"):
    text_layers.check_ids("Model", jnp.asarray(ids))


def test_transformer_block_shapes_and_dropout(key):
  x = _random((B, T, 8))
  block = text_layers.TransformerBlock(num_heads=2, mlp_dim=16, dropout_rate=0.5)
  params = block.init(key, x, mask=MASK, train=False)["params"]

  evaluated = block.apply({"params": params}, x, mask=MASK, train=False)
  trained = [block.apply({"params": params}, x, mask=MASK, train=True,
                         rngs={"dropout": jax.random.key(seed)}) for seed in (1, 2)]

  assert evaluated.shape == (B, T, 8)
  assert evaluated.dtype == jnp.float32
  np.testing.assert_array_equal(evaluated, block.apply({"params": params}, x, mask=MASK,
                                                       train=False))
  assert not np.allclose(trained[0], trained[1])
