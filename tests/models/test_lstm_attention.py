"""Tests of the LSTM classifier with self-attention: count, shapes, masks, attention weights."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmodels.data import datasets
from jaxmodels.models import lstm_attention
from jaxmodels.models import registry
from jaxmodels.models import summary
from jaxmodels.ops import recurrent
from jaxmodels.train import state
from tests.models import compiled_calls

RTOL, ATOL = 1e-5, 1e-6


# Rows of lengths 4, 1 and 0 (all padding), padded after the tokens to T = 6.
IDS = np.array([[5, 9, 2, 7, 0, 0], [3, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], np.int32)


def _small_model(**overrides):
  return lstm_attention.LSTMAttentionClassifier(
      **{"num_classes": 3, "vocab_size": 12, "embedding_dim": 4, "lstm_units": (5, 6),
         **overrides})


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


def test_lstm_attention_parameter_count_matches_lstm():
  model = lstm_attention.LSTMAttentionClassifier(num_classes=10, vocab_size=10000)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 100), jnp.int32)))

  # The attention has no parameters, so the count is that of the two-LSTM model.
  assert state.count_params(variables["params"]) == 706_698


def test_lstm_attention_logits_shape_dtype_and_jit(key):
  model = _small_model()
  variables = compiled_calls.init(model, key, IDS)

  logits = compiled_calls.apply(model, variables, IDS)

  assert logits.shape == (3, 3)
  assert logits.dtype == jnp.float32
  assert jax.eval_shape(model.apply, variables, IDS).shape == (3, 3)
  np.testing.assert_allclose(model.apply(variables, IDS), logits, rtol=RTOL, atol=ATOL)


def test_lstm_attention_logits_match_reference(key):
  model = _small_model()
  params = compiled_calls.init(model, key, IDS)["params"]

  logits = compiled_calls.apply(model, {"params": params}, IDS)

  # One sentence at a time without padding, with the attention written out in NumPy.
  for row, ids in enumerate(IDS[:2]):
    tokens = ids[ids != 0][None]  # [1, L]
    x = np.asarray(params["embedding"]["embedding"])[tokens]
    hidden, _ = recurrent.lstm(params["lstm0"], x, return_sequences=True)
    hidden = np.asarray(hidden, np.float64)[0]  # [L, U]
    scores = hidden @ hidden.T / np.sqrt(hidden.shape[-1])
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    attended = (weights @ hidden).astype(np.float32)[None]  # [1, L, U]
    final, _ = recurrent.lstm(params["lstm1"], attended)
    expected = final @ params["logits"]["kernel"] + params["logits"]["bias"][None]
    np.testing.assert_allclose(logits[row], expected[0], rtol=1e-5, atol=1e-5)


def test_lstm_attention_weights_are_exposed(key):
  model = _small_model()
  variables = compiled_calls.init(model, key, IDS)

  _, state_ = compiled_calls.apply(model, variables, IDS, mutable="intermediates")

  (weights,) = state_["intermediates"]["attention"]["attention_weights"]
  weights = np.asarray(weights)
  mask = IDS != 0
  assert weights.shape == (3, 6, 6)
  # Real queries spread weight 1 over real keys; padded queries and keys get 0.
  np.testing.assert_allclose(weights.sum(-1), mask.astype(np.float32), rtol=RTOL, atol=ATOL)
  for b in range(3):
    np.testing.assert_array_equal(weights[b][:, ~mask[b]], 0.0)
    np.testing.assert_array_equal(weights[b][~mask[b]], 0.0)


@pytest.mark.parametrize("side", ["post", "pre"])
def test_lstm_attention_padding_invariance(key, side):
  model = _small_model()
  variables = compiled_calls.init(model, key, IDS)

  short = compiled_calls.apply(model, variables, _repad(IDS, 6, side))
  long = compiled_calls.apply(model, variables, _repad(IDS, 11, side))

  np.testing.assert_allclose(long, short, rtol=RTOL, atol=ATOL)


def test_lstm_attention_dropout_only_in_training(key):
  model = _small_model(dropout_rate=0.5)
  variables = compiled_calls.init(model, key, IDS)

  evaluated, trained = compiled_calls.outputs_in_both_modes(model, variables, IDS)

  np.testing.assert_array_equal(evaluated[0], evaluated[1])
  assert not np.allclose(trained[0], trained[1])


def test_summary_rows_follow_call_order():
  model = lstm_attention.LSTMAttentionClassifier(num_classes=6, vocab_size=100)

  table = summary.summarize(model, jnp.zeros((1, 12), jnp.int32))

  names = [line.split()[0] for line in table.splitlines()[2:-2]]
  assert names == ["embedding", "lstm0", "attention", "lstm1", "dropout", "logits"]


def test_lstm_attention_rejects_three_lstms(key):
  with pytest.raises(ValueError, match="two LSTMs, got \\(4, 4, 4\\)"):
    _small_model(lstm_units=(4, 4, 4)).init(key, IDS)


@pytest.mark.parametrize("name", ["lstm_attention_trec", "lstm_attention_mr"])
@pytest.mark.parametrize("variant", [None, "smoke"])
def test_lstm_attention_configs_build_model(name, variant):
  config = importlib.import_module(f"experiments.configs.{name}").get_config(variant)
  dataset = datasets.Dataset(train={}, test={}, num_classes=4, class_names=tuple("abcd"),
                             vocab_size=config.data.vocab_size)
  model = registry.create_model(config, dataset)
  ids = jnp.zeros((2, config.data.max_len), jnp.int32)

  logits = jax.eval_shape(lambda: model.apply(model.init(jax.random.key(0), ids), ids))

  assert config.model.name == "lstm_attention"
  assert logits.shape == (2, 4)
