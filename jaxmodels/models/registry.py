"""Models by name, built from `config.model` and the data set they train on."""

from collections.abc import Callable

import flax.linen as nn
import ml_collections

from jaxmodels.models import cnn

ModelFactory = Callable[[ml_collections.ConfigDict, object], nn.Module]


def _create_cnn(model: ml_collections.ConfigDict, dataset) -> nn.Module:
  return cnn.CNN(
      num_classes=dataset.num_classes,
      conv_features=tuple(model.conv_features),
      hidden_units=model.hidden_units,
  )


MODELS: dict[str, ModelFactory] = {"cnn": _create_cnn}


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
