"""Tests of the two-LSTM text classifier: Keras parameter count, shapes, masks, dropout."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmodels.data import datasets
from jaxmodels.models import lstm
from jaxmodels.models import registry
from jaxmodels.ops import recurrent
from jaxmodels.train import state
from tests.models import compiled_calls

RTOL, ATOL = 1e-5, 1e-6


# Rows of lengths 4, 1 and 0 (all padding), padded after the tokens to T = 6.
IDS = np.array([[5, 9, 2, 7, 0, 0], [3, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], np.int32)


def _small_model(**overrides):
  return lstm.LSTMClassifier(**{"num_classes": 3, "vocab_size": 12, "embedding_dim": 4,
                                "lstm_units": (5, 6), **overrides})


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


def test_lstm_parameter_count_matches_keras():
  model = lstm.LSTMClassifier(num_classes=10, vocab_size=10000)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 100), jnp.int32)))

  # Embedding 10000 * 64, two LSTMs 4 * 64 * (64 + 64 + 1) each, Dense 64 * 10 + 10.
  assert state.count_params(variables["params"]) == 706_698


def test_lstm_parameter_shapes():
  model = lstm.LSTMClassifier(num_classes=10, vocab_size=10000)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 100), jnp.int32)))
  params = variables["params"]

  assert params["embedding"]["embedding"].shape == (10000, 64)
  assert params["lstm0"]["kernel"].shape == (64, 256)
  assert params["lstm1"]["recurrent_kernel"].shape == (64, 256)
  assert params["logits"]["kernel"].shape == (64, 10)


def test_lstm_logits_shape_dtype_and_jit(key):
  model = _small_model()
  variables = compiled_calls.init(model, key, IDS)

  logits = compiled_calls.apply(model, variables, IDS)

  assert logits.shape == (3, 3)
  assert logits.dtype == jnp.float32
  assert jax.eval_shape(model.apply, variables, IDS).shape == (3, 3)
  np.testing.assert_allclose(model.apply(variables, IDS), logits, rtol=RTOL, atol=ATOL)


def test_lstm_logits_match_ops(key):
  model = _small_model()
  params = compiled_calls.init(model, key, IDS)["params"]

  logits = compiled_calls.apply(model, {"params": params}, IDS)

  # The same layers written out with the ops, one sentence at a time without padding.
  for row, ids in enumerate(IDS):
    tokens = ids[ids != 0][None]  # [1, L]
    x = np.asarray(params["embedding"]["embedding"])[tokens]  # [1, L, E]
    hidden, _ = recurrent.lstm(params["lstm0"], x, return_sequences=True)
    final, _ = recurrent.lstm(params["lstm1"], hidden)
    expected = final @ params["logits"]["kernel"] + params["logits"]["bias"][None]
    np.testing.assert_allclose(logits[row], expected[0], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("side", ["post", "pre"])
def test_lstm_padding_invariance(key, side):
  model = _small_model()
  variables = compiled_calls.init(model, key, IDS)

  short = compiled_calls.apply(model, variables, _repad(IDS, 6, side))
  long = compiled_calls.apply(model, variables, _repad(IDS, 11, side))

  np.testing.assert_allclose(long, short, rtol=RTOL, atol=ATOL)


def test_lstm_dropout_only_in_training(key):
  model = _small_model(dropout_rate=0.5)
  variables = compiled_calls.init(model, key, IDS)

  evaluated, trained = compiled_calls.outputs_in_both_modes(model, variables, IDS)

  np.testing.assert_array_equal(evaluated[0], evaluated[1])
  assert not np.allclose(trained[0], trained[1])
  assert not np.allclose(trained[0], evaluated[0])


def test_lstm_rejects_float_inputs(key):
  with pytest.raises(ValueError, match="LSTMClassifier: ids must be int"):
    _small_model().init(key, jnp.zeros((2, 4), jnp.float32))


def test_lstm_empty_row_gives_finite_logits(key):
  model = _small_model()
  variables = compiled_calls.init(model, key, IDS)

  logits = compiled_calls.apply(model, variables, IDS)

  # An all-padding row keeps the zero initial state: logits equal the output bias.
  assert np.all(np.isfinite(logits))
  np.testing.assert_allclose(logits[2], variables["params"]["logits"]["bias"], rtol=RTOL,
                             atol=ATOL)



@pytest.mark.parametrize("name", ["lstm_trec", "lstm_mr"])
@pytest.mark.parametrize("variant", [None, "smoke"])
def test_lstm_configs_build_model(name, variant):
  config = importlib.import_module(f"experiments.configs.{name}").get_config(variant)
  dataset = datasets.Dataset(train={}, test={}, num_classes=4, class_names=tuple("abcd"),
                             vocab_size=config.data.vocab_size)
  model = registry.create_model(config, dataset)
  ids = jnp.zeros((2, config.data.max_len), jnp.int32)

  logits = jax.eval_shape(lambda: model.apply(model.init(jax.random.key(0), ids), ids))

  assert config.model.name == "lstm"
  assert logits.shape == (2, 4)
