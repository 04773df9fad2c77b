"""Data sets by name, loaded into memory as NumPy arrays ready for the training loop."""

import dataclasses
from typing import Any

import ml_collections
import numpy as np

from jaxmodels.data import mnist
from jaxmodels.data import splits
from jaxmodels.data import text_datasets
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
    vocab_size: rows of the embedding table for text data sets (`config.data.vocab_size`),
      else None. Every token id is below it, and below `len(vocab)` too.
    validation: examples held out of the training split (`config.data.validation_fraction`),
      same layout, or None.
  """

  train: dict[str, np.ndarray]
  test: dict[str, np.ndarray]
  num_classes: int
  class_names: tuple[str, ...]
  vocab: Any = None
  vocab_size: int | None = None
  validation: dict[str, np.ndarray] | None = None


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


def _load_text(config: ml_collections.ConfigDict) -> Dataset:
  data = text_datasets.load_text_data(config)
  return Dataset(
      train=data.train,
      test=data.test,
      num_classes=len(data.class_names),
      class_names=data.class_names,
      vocab=data.vocab,
      vocab_size=config.data.vocab_size,
      validation=data.validation,
  )


LOADERS = {"mnist": _load_mnist, "trec": _load_text, "mr": _load_text}


def register(name: str, loader) -> None:
  """Register `loader(config) -> Dataset` under `config.data.name == name`."""
  LOADERS[name] = loader


def load_dataset(config: ml_collections.ConfigDict) -> Dataset:
  """Load the data set named by `config.data.name` from `config.data_dir`.

  With `config.data.validation_fraction` above 0 the data set gets a validation split held
  out of its training split (see `jaxmodels.data.splits`). Loaders that build something from
  the training split, such as the text vocabulary, hold it out themselves. For the other
  loaders it is taken here.

  Labels of every split are checked on the host against the number of classes, because a
  device-side gather would clamp an out-of-range label silently.
  """
  if config.data.name not in LOADERS:
    raise ValueError(
        f"config.data.name={config.data.name!r} is not a known data set; use one of "
        f"{tuple(LOADERS)}."
    )
  dataset = LOADERS[config.data.name](config)

  if config.data.validation_fraction and dataset.validation is None:
    train_index, validation_index = splits.validation_indices(
        len(dataset.train["labels"]), config.data.validation_fraction,
        config.data.validation_seed)
    dataset = dataclasses.replace(dataset, train=splits.take(dataset.train, train_index),
                                  validation=splits.take(dataset.train, validation_index))

  for split in ("train", "validation", "test"):
    arrays = getattr(dataset, split)
    if arrays is not None:
      losses.check_labels(arrays["labels"], dataset.num_classes)
  return dataset
