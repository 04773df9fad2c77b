"""Tests of Kim's text CNN: values against NumPy, padding, short sentences, max-norm."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxmodels.data import datasets
from jaxmodels.models import registry
from jaxmodels.models import text_cnn
from jaxmodels.train import state
from tests.models import compiled_calls

RTOL, ATOL = 1e-5, 1e-6


# Rows of lengths 6, 2 (shorter than every filter but the first), 1 and 0.
IDS = np.array([
    [5, 9, 2, 7, 4, 8, 0],
    [3, 6, 0, 0, 0, 0, 0],
    [11, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0],
], np.int32)


def _small_model(**overrides):
  return text_cnn.TextCNN(**{"num_classes": 3, "vocab_size": 12, "embedding_dim": 4,
                             "filter_widths": (1, 3, 4), "num_filters": 5, **overrides})


def _repad(ids, length, side):
  """Move each row's tokens into a row of `length` steps, padded on `side`."""
  out = np.zeros((len(ids), length), np.int32)
  for row, tokens in enumerate(ids):
    tokens = tokens[tokens != 0]
    if side == "post":
      out[row, :len(tokens)] = tokens
    else:
      out[row, length - len(tokens):] = tokens
  return out


def _reference_logits(params, ids, widths, convolution="narrow"):
  """Kim's CNN in float64 loops, one sentence at a time over its tokens only."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  logits = []
  for row in ids:
    x = p["embedding"]["embedding"][row[row != 0]]  # [L, E]
    features = []
    for width in widths:
      kernel, bias = p[f"conv{width}"]["kernel"], p[f"conv{width}"]["bias"]  # [K, E, O], [O]
      if len(x) == 0:
        features.append(np.zeros_like(bias))
        continue
      if convolution == "wide":
        # Kim's layout: width - 1 zero vectors on both sides of the sentence.
        zeros = np.zeros((width - 1, x.shape[1]))
        padded = np.concatenate([zeros, x, zeros])
      else:
        # A sentence shorter than the filter is padded with zero vectors to its width.
        padded = np.concatenate([x, np.zeros((max(width - len(x), 0), x.shape[1]))])
      windows = [sum(padded[t + k] @ kernel[k] for k in range(width)) + bias
                 for t in range(len(padded) - width + 1)]
      features.append(np.maximum(np.max(windows, axis=0), 0.0))
    hidden = np.concatenate(features)
    logits.append(hidden @ p["logits"]["kernel"] + p["logits"]["bias"])
  return np.stack(logits)


def test_text_cnn_parameter_count():
  model = text_cnn.TextCNN(num_classes=6, vocab_size=10000)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 40), jnp.int32)))

  embedding = 10000 * 300
  convolutions = sum(width * 300 * 100 + 100 for width in (3, 4, 5))
  dense = 300 * 6 + 6
  assert state.count_params(variables["params"]) == embedding + convolutions + dense


def test_text_cnn_logits_shape_dtype_and_jit(key):
  model = _small_model()
  variables = compiled_calls.init(model, key, IDS)

  logits = compiled_calls.apply(model, variables, IDS)

  assert logits.shape == (4, 3)
  assert logits.dtype == jnp.float32
  assert jax.eval_shape(model.apply, variables, IDS).shape == (4, 3)
  np.testing.assert_allclose(model.apply(variables, IDS), logits, rtol=RTOL, atol=ATOL)


def test_text_cnn_logits_match_reference(key):
  model = _small_model()
  params = compiled_calls.init(model, key, IDS)["params"]

  logits = compiled_calls.apply(model, {"params": params}, IDS)

  np.testing.assert_allclose(logits, _reference_logits(params, IDS, (1, 3, 4)), rtol=RTOL,
                             atol=ATOL)


def test_text_cnn_wide_logits_match_reference(key):
  model = _small_model(convolution="wide")
  params = compiled_calls.init(model, key, IDS)["params"]

  logits = compiled_calls.apply(model, {"params": params}, IDS)

  np.testing.assert_allclose(logits, _reference_logits(params, IDS, (1, 3, 4), "wide"),
                             rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("convolution", ["narrow", "wide"])
@pytest.mark.parametrize("side", ["post", "pre"])
def test_text_cnn_padding_invariance(key, side, convolution):
  model = _small_model(convolution=convolution)
  variables = compiled_calls.init(model, key, IDS)

  short = compiled_calls.apply(model, variables, _repad(IDS, 7, side))
  long = compiled_calls.apply(model, variables, _repad(IDS, 13, side))

  np.testing.assert_allclose(long, short, rtol=RTOL, atol=ATOL)


def test_text_cnn_input_shorter_than_filters(key):
  # Two steps in all, fewer than the widths 3 and 4.
  ids = np.array([[4, 2], [7, 0], [0, 0]], np.int32)
  model = _small_model()
  params = compiled_calls.init(model, key, ids)["params"]

  logits = compiled_calls.apply(model, {"params": params}, ids)

  np.testing.assert_allclose(logits, _reference_logits(params, ids, (1, 3, 4)), rtol=RTOL,
                             atol=ATOL)


@pytest.mark.parametrize("convolution", ["narrow", "wide"])
def test_text_cnn_grads_finite_on_empty_rows(key, convolution):
  model = _small_model(convolution=convolution)
  params = compiled_calls.init(model, key, IDS)["params"]

  def loss(params):
    return jnp.sum(compiled_calls.apply(model, {"params": params}, IDS) ** 2)

  grads = jax.grad(loss)(params)

  for leaf in jax.tree.leaves(grads):
    assert np.all(np.isfinite(leaf))
  # The padding row of the table never reaches a feature.
  np.testing.assert_array_equal(grads["embedding"]["embedding"][0], 0.0)


def test_text_cnn_rejects_unknown_convolution(key):
  with pytest.raises(ValueError, match="convolution must be one of"):
    jax.eval_shape(_small_model(convolution="same").init, key, IDS)


def test_text_cnn_dropout_only_in_training(key):
  model = _small_model(dropout_rate=0.5)
  variables = compiled_calls.init(model, key, IDS)

  evaluated, trained = compiled_calls.outputs_in_both_modes(model, variables, IDS)

  np.testing.assert_array_equal(evaluated[0], evaluated[1])
  assert not np.allclose(trained[0], trained[1])


@pytest.mark.parametrize("scale", [0.05, 0.25])
def test_text_cnn_embedding_init_scale(key, scale):
  model = text_cnn.TextCNN(num_classes=3, vocab_size=400, embedding_dim=50,
                           embedding_init_scale=scale)

  table = np.asarray(compiled_calls.init(model, key, IDS)["params"]["embedding"]["embedding"])

  # 20,000 draws from U[-scale, scale]: the extremes lie within 0.1% of the bounds.
  assert table.min() >= -scale
  assert table.max() <= scale
  assert table.min() < -0.999 * scale
  assert table.max() > 0.999 * scale
  np.testing.assert_allclose(table.std(), scale / np.sqrt(3), rtol=0.02)


def _params_for_max_norm():
  kernel = np.array([[3.0, 0.1, 1.0], [4.0, 0.2, 0.0]], np.float32)  # column norms 5, 0.22, 1
  return {"logits": {"kernel": jnp.asarray(kernel), "bias": jnp.zeros(3, jnp.float32)},
          "conv3": {"kernel": jnp.full((2, 2), 10.0, jnp.float32)}}


def test_max_norm_transform_caps_columns():
  params = _params_for_max_norm()
  updates = jax.tree.map(lambda leaf: jnp.full_like(leaf, 0.5), params)
  transform = text_cnn.max_norm_transform(3.0)

  new_updates, _ = transform.update(updates, transform.init(params), params)
  stepped = optax.apply_updates(params, new_updates)

  # Reference: step, then rescale each column whose norm exceeds 3 onto norm 3.
  expected = np.asarray(params["logits"]["kernel"], np.float64) + 0.5
  norms = np.linalg.norm(expected, axis=0)
  expected = expected * np.minimum(1.0, 3.0 / norms)
  np.testing.assert_allclose(stepped["logits"]["kernel"], expected, rtol=RTOL, atol=ATOL)
  np.testing.assert_allclose(np.linalg.norm(stepped["logits"]["kernel"], axis=0),
                             np.minimum(norms, 3.0), rtol=RTOL)
  # Other parameters keep their updates.
  np.testing.assert_array_equal(new_updates["logits"]["bias"], updates["logits"]["bias"])
  np.testing.assert_array_equal(new_updates["conv3"]["kernel"], updates["conv3"]["kernel"])


def test_max_norm_transform_keeps_small_columns_exact():
  params = _params_for_max_norm()
  updates = jax.tree.map(jnp.zeros_like, params)
  transform = text_cnn.max_norm_transform(3.0)

  new_updates, _ = transform.update(updates, transform.init(params), params)

  # Columns 1 and 2 are within the cap and keep a zero update; column 0 shrinks to norm 3.
  np.testing.assert_array_equal(np.asarray(new_updates["logits"]["kernel"])[:, 1:], 0.0)
  np.testing.assert_allclose(np.asarray(new_updates["logits"]["kernel"])[:, 0],
                             [3 * 0.6 - 3, 3 * 0.8 - 4], rtol=RTOL, atol=ATOL)


def test_max_norm_transform_in_chain_with_adam():
  params = _params_for_max_norm()
  grads = jax.tree.map(jnp.ones_like, params)
  tx = optax.chain(optax.adam(1.0), text_cnn.max_norm_transform(2.0))

  # Adam mixes Python floats with its integer step count, which strict promotion rejects.
  with jax.numpy_dtype_promotion("standard"):
    updates, _ = tx.update(grads, tx.init(params), params)
  stepped = optax.apply_updates(params, updates)

  norms = np.linalg.norm(np.asarray(stepped["logits"]["kernel"]), axis=0)
  assert np.all(norms <= 2.0 * (1 + 1e-6))


def test_max_norm_transform_needs_params():
  params = _params_for_max_norm()
  transform = text_cnn.max_norm_transform(3.0)

  with pytest.raises(ValueError, match="needs params"):
    transform.update(params, transform.init(params))


def test_max_norm_transform_rejects_missing_layer():
  params = {"dense": {"kernel": jnp.ones((2, 2), jnp.float32)}}
  transform = text_cnn.max_norm_transform(3.0)

  with pytest.raises(ValueError, match="\\['logits'\\]\\['kernel'\\]"):
    transform.update(params, transform.init(params), params)


@pytest.mark.parametrize("max_norm", [0.0, -1.0])
def test_max_norm_transform_rejects_non_positive_cap(max_norm):
  with pytest.raises(ValueError, match="max_norm must be positive"):
    text_cnn.max_norm_transform(max_norm)


@pytest.mark.parametrize("name", ["text_cnn_trec", "text_cnn_mr"])
@pytest.mark.parametrize("variant", [None, "smoke"])
def test_text_cnn_configs_build_model(name, variant):
  config = importlib.import_module(f"experiments.configs.{name}").get_config(variant)
  dataset = datasets.Dataset(train={}, test={}, num_classes=4, class_names=tuple("abcd"),
                             vocab_size=config.data.vocab_size)
  model = registry.create_model(config, dataset)
  ids = jnp.zeros((2, config.data.max_len), jnp.int32)

  logits = jax.eval_shape(lambda: model.apply(model.init(jax.random.key(0), ids), ids))

  assert config.model.name == "text_cnn"
  assert logits.shape == (2, 4)
