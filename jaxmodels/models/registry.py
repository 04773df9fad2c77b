"""Models by name, built from `config.model` and the data set they train on."""

from collections.abc import Callable

import flax.linen as nn
import ml_collections

from jaxmodels import errors
from jaxmodels.models import cnn
from jaxmodels.models import lstm
from jaxmodels.models import lstm_attention
from jaxmodels.models import text_cnn
from jaxmodels.models import text_layers
from jaxmodels.models import transformer

ModelFactory = Callable[[ml_collections.ConfigDict, object], nn.Module]


def _create_cnn(model: ml_collections.ConfigDict, dataset) -> nn.Module:
  return cnn.CNN(
      num_classes=dataset.num_classes,
      conv_features=tuple(model.conv_features),
      hidden_units=model.hidden_units,
  )


def _text_vocab_size(model: ml_collections.ConfigDict, dataset) -> int:
  """Return the embedding table size of a text data set, or raise for other data."""
  if getattr(dataset, "vocab_size", None) is None:
    raise ValueError(
        f"config.model.name={model.name!r} reads token ids, but the data set has no "
        "vocabulary; set config.data.name to a text data set such as 'trec' or 'mr'."
    )
  return dataset.vocab_size


def _create_lstm(model: ml_collections.ConfigDict, dataset) -> nn.Module:
  return lstm.LSTMClassifier(
      num_classes=dataset.num_classes,
      vocab_size=_text_vocab_size(model, dataset),
      embedding_dim=model.embedding_dim,
      lstm_units=tuple(model.lstm_units),
      dropout_rate=model.dropout_rate,
  )


def _create_lstm_attention(model: ml_collections.ConfigDict, dataset) -> nn.Module:
  return lstm_attention.LSTMAttentionClassifier(
      num_classes=dataset.num_classes,
      vocab_size=_text_vocab_size(model, dataset),
      embedding_dim=model.embedding_dim,
      lstm_units=tuple(model.lstm_units),
      dropout_rate=model.dropout_rate,
  )


def _create_text_cnn(model: ml_collections.ConfigDict, dataset) -> nn.Module:
  return text_cnn.TextCNN(
      num_classes=dataset.num_classes,
      vocab_size=_text_vocab_size(model, dataset),
      embedding_dim=model.embedding_dim,
      filter_widths=tuple(model.filter_widths),
      num_filters=model.num_filters,
      dropout_rate=model.dropout_rate,
      convolution=model.convolution,
      # Configs saved before this key existed used the default.
      embedding_init_scale=model.get("embedding_init_scale", 0.05),
  )


def _create_transformer(model: ml_collections.ConfigDict, dataset) -> nn.Module:
  return transformer.TransformerClassifier(
      num_classes=dataset.num_classes,
      vocab_size=_text_vocab_size(model, dataset),
      width=model.width,
      num_layers=model.num_layers,
      num_heads=model.num_heads,
      mlp_dim=model.mlp_dim,
      dropout_rate=model.dropout_rate,
      position_embedding=model.position_embedding,
      max_positions=model.max_positions,
      pooling=model.pooling,
  )


MODELS: dict[str, ModelFactory] = {
    "cnn": _create_cnn,
    "lstm": _create_lstm,
    "lstm_attention": _create_lstm_attention,
    "text_cnn": _create_text_cnn,
    "transformer": _create_transformer,
}


def register(name: str, factory: ModelFactory) -> None:
  """Register `factory(config.model, dataset) -> nn.Module` under `config.model.name == name`."""
  MODELS[name] = factory


def create_model(config: ml_collections.ConfigDict, dataset) -> nn.Module:
  """Build the model named by `config.model.name` for `dataset`."""
  if config.model.name not in MODELS:
    raise ValueError(
        f"config.model.name={config.model.name!r} is not a known model; use one of "
        f"{tuple(MODELS)}."
    )
  return MODELS[config.model.name](config.model, dataset)

# The string options of each model and their allowed values.
CHOICES: dict[str, dict[str, tuple[str, ...]]] = {
    "text_cnn": {"convolution": text_cnn.CONVOLUTIONS},
    "transformer": {
        "position_embedding": text_layers.POSITION_EMBEDDINGS,
        "pooling": transformer.POOLINGS,
    },
}


def check_model_config(model: ml_collections.ConfigDict) -> None:
  """Raise `ConfigError` for a string option of `config.model` outside its allowed values.

  Runs before any data is read or written, so that a typo such as
  `--config.model.convolution=Wide` stops the run at once.
  """
  for key, allowed in CHOICES.get(model.name, {}).items():
    value = model.get(key)
    if value not in allowed:
      raise errors.ConfigError(
          f"config.model.{key}={value!r} is not one of {allowed}. Set "
          f"--config.model.{key} to one of them.")

