"""Data sets by name, loaded into memory as NumPy arrays ready for the training loop."""

import dataclasses
from typing import Any

import ml_collections
import numpy as np

from jaxmodels.data import mnist
from jaxmodels.ops import losses


@dataclasses.dataclass
class Dataset:
  """A classification data set held in memory.

  Attributes:
    train: training split, `{"inputs": array[N, ...], "labels": i32[N]}`.
    test: test split, same layout.
    num_classes: number of classes K; every label is in [0, K).
    class_names: K readable class names.
    vocab: the text vocabulary for text data sets, else None.
  """

  train: dict[str, np.ndarray]
  test: dict[str, np.ndarray]
  num_classes: int
  class_names: tuple[str, ...]
  vocab: Any = None


def _load_mnist(config: ml_collections.ConfigDict) -> Dataset:
  splits = mnist.load_mnist(config.data_dir)
  arrays = {
      name: {
          "inputs": mnist.images_to_float(split["image"]),  # f32[N, 28, 28, 1] in [0, 1]
          "labels": split["label"],
      }
      for name, split in splits.items()
  }
  return Dataset(
      train=arrays["train"],
      test=arrays["test"],
      num_classes=10,
      class_names=tuple(str(digit) for digit in range(10)),
  )


LOADERS = {"mnist": _load_mnist}


def register(name: str, loader) -> None:
  """Register `loader(config) -> Dataset` under `config.data.name == name`."""
  LOADERS[name] = loader


def load_dataset(config: ml_collections.ConfigDict) -> Dataset:
  """Load the data set named by `config.data.name` from `config.data_dir`.

  Labels of both splits are checked on the host against the number of classes, because a
  device-side gather would clamp an out-of-range label silently.
  """
  if config.data.name not in LOADERS:
    raise ValueError(
        f"config.data.name={config.data.name!r} is not a known data set; use one of "
        f"{tuple(LOADERS)}."
    )
  dataset = LOADERS[config.data.name](config)
  for split in ("train", "test"):
    losses.check_labels(getattr(dataset, split)["labels"], dataset.num_classes)
  return dataset
