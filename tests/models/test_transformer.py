"""Tests of the Transformer text classifier: shapes, padding, pooling, positions, dropout."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmodels.data import datasets
from jaxmodels.models import registry
from jaxmodels.models import text_layers
from jaxmodels.models import transformer
from jaxmodels.train import state
from tests.models import compiled_calls

RTOL, ATOL = 1e-5, 1e-6


# Rows of lengths 4, 1 and 0 (all padding), padded after the tokens to T = 6.
IDS = np.array([[5, 9, 2, 7, 0, 0], [3, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], np.int32)

VARIANTS = [
    {"position_embedding": "learned", "pooling": "mean"},
    {"position_embedding": "sinusoidal", "pooling": "mean"},
    {"position_embedding": "learned", "pooling": "cls"},
    {"position_embedding": "sinusoidal", "pooling": "cls"},
]


def _small_model(**overrides):
  return transformer.TransformerClassifier(
      **{"num_classes": 3, "vocab_size": 12, "width": 8, "num_layers": 2, "num_heads": 2,
         "mlp_dim": 16, "dropout_rate": 0.3, "max_positions": 16, **overrides})


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


def test_transformer_parameter_count():
  model = transformer.TransformerClassifier(num_classes=6, vocab_size=10000)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 40), jnp.int32)))

  width, mlp_dim = 64, 128
  attention = 4 * (width * width + width)
  mlp = width * mlp_dim + mlp_dim + mlp_dim * width + width
  norms = 2 * 2 * width
  expected = (10000 * width + 128 * width + 2 * (attention + mlp + norms) + 2 * width
              + width * 6 + 6)
  assert state.count_params(variables["params"]) == expected


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(v.values()))
def test_transformer_logits_shape_and_dtype(key, variant):
  model = _small_model(**variant)
  variables = compiled_calls.init(model, key, IDS)

  logits = compiled_calls.apply(model, variables, IDS)

  assert logits.shape == (3, 3)
  assert logits.dtype == jnp.float32
  assert np.all(np.isfinite(logits))
  assert jax.eval_shape(model.apply, variables, IDS).shape == (3, 3)


def test_transformer_jit_matches_eager(key):
  model = _small_model(pooling="cls")
  variables = compiled_calls.init(model, key, IDS)

  logits = compiled_calls.apply(model, variables, IDS)

  np.testing.assert_allclose(model.apply(variables, IDS), logits, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("side", ["post", "pre"])
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(v.values()))
def test_transformer_padding_invariance(key, variant, side):
  model = _small_model(**variant)
  variables = compiled_calls.init(model, key, IDS)

  short = compiled_calls.apply(model, variables, _repad(IDS, 6, side))
  long = compiled_calls.apply(model, variables, _repad(IDS, 11, side))

  np.testing.assert_allclose(long, short, rtol=RTOL, atol=ATOL)


def test_transformer_mean_pooling_matches_layers(key):
  model = _small_model()
  params = compiled_calls.init(model, key, IDS)["params"]
  block = jax.jit(text_layers.TransformerBlock(2, 16).apply, static_argnames="train")

  logits = compiled_calls.apply(model, {"params": params}, IDS)

  # The same computation from the text layers, one sentence at a time without padding.
  for row, ids in enumerate(IDS[:2]):
    tokens = jnp.asarray(ids[ids != 0][None])  # [1, L]
    x = params["embedding"]["embedding"][tokens]
    x = x + params["position_embedding"]["embedding"][jnp.arange(tokens.shape[1])][None]
    for name in ("block0", "block1"):
      x = block({"params": params[name]}, x, mask=None, train=False)
    x = jax.nn.standardize(x, axis=-1, epsilon=1e-6)
    x = x * params["final_norm"]["scale"][None, None] + params["final_norm"]["bias"][None, None]
    pooled = jnp.mean(x, axis=1)
    expected = pooled @ params["logits"]["kernel"] + params["logits"]["bias"][None]
    np.testing.assert_allclose(logits[row], expected[0], rtol=1e-5, atol=1e-5)


def test_transformer_cls_pooling_has_class_token(key):
  model = _small_model(pooling="cls")

  params = compiled_calls.init(model, key, IDS)["params"]

  assert params["class_token"].shape == (8,)


def test_transformer_dropout_only_in_training(key):
  model = _small_model()
  variables = compiled_calls.init(model, key, IDS)

  evaluated, trained = compiled_calls.outputs_in_both_modes(model, variables, IDS)

  np.testing.assert_array_equal(evaluated[0], evaluated[1])
  assert not np.allclose(trained[0], trained[1])


def test_transformer_exposes_attention_weights(key):
  model = _small_model()
  variables = compiled_calls.init(model, key, IDS)

  _, state_ = compiled_calls.apply(model, variables, IDS, mutable="intermediates")

  (weights,) = state_["intermediates"]["block0"]["attention"]["attention_weights"]
  assert weights.shape == (3, 2, 6, 6)


def test_transformer_rejects_too_long_input_for_learned_positions(key):
  model = _small_model(max_positions=5)

  with pytest.raises(ValueError, match="max_positions=5"):
    jax.eval_shape(model.init, key, IDS)


def test_transformer_cls_needs_one_more_position(key):
  ids = np.ones((1, 5), np.int32)

  jax.eval_shape(_small_model(max_positions=5).init, key, ids)
  with pytest.raises(ValueError, match="6 steps"):
    jax.eval_shape(_small_model(max_positions=5, pooling="cls").init, key, ids)


@pytest.mark.parametrize("overrides, message", [
    ({"pooling": "max"}, "pooling must be one of"),
    ({"num_heads": 3}, "num_heads=3 must divide width=8"),
])
def test_transformer_rejects_bad_settings(key, overrides, message):
  with pytest.raises(ValueError, match=message):
    _small_model(**overrides).init(key, IDS)


@pytest.mark.parametrize("name", ["transformer_trec", "transformer_mr"])
@pytest.mark.parametrize("variant", [None, "smoke"])
def test_transformer_configs_build_model(name, variant):
  config = importlib.import_module(f"experiments.configs.{name}").get_config(variant)
  dataset = datasets.Dataset(train={}, test={}, num_classes=4, class_names=tuple("abcd"),
                             vocab_size=config.data.vocab_size)
  model = registry.create_model(config, dataset)
  ids = jnp.zeros((2, config.data.max_len), jnp.int32)

  logits = jax.eval_shape(lambda: model.apply(model.init(jax.random.key(0), ids), ids))

  assert config.model.name == "transformer"
  assert logits.shape == (2, 4)
