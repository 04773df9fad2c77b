"""Fixtures shared by the whole suite.

Tests of our own array code (`tests/ops`, `tests/models`) run with strict dtype promotion and
rank promotion set to "raise", which turn silent upcasts and silent broadcasting into errors, so
a shape bug fails a test instead of producing a plausible number. Training tests run with JAX's
defaults, because Optax mixes Python floats with integer step counters.
"""

import gzip
import pathlib
import struct

import jax
import numpy as np
import pytest

STRICT_FOLDERS = ("ops", "models")


@pytest.fixture(autouse=True)
def strict_promotion(request):
  """Run tests under tests/ops and tests/models with strict dtype and rank promotion."""
  if pathlib.Path(request.node.fspath).parent.name in STRICT_FOLDERS:
    with jax.numpy_dtype_promotion("strict"), jax.numpy_rank_promotion("raise"):
      yield
  else:
    yield


@pytest.fixture
def key():
  """Fresh PRNG key for a test."""
  return jax.random.key(0)


def _idx_bytes(array: np.ndarray) -> bytes:
  """Encode a uint8 array as IDX: magic 0x000008<ndim>, big-endian sizes, then the values."""
  header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
  return header + array.astype(np.uint8).tobytes()


def _learnable_digits(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
  """Return 28x28 images whose class is the position of one bright 6x6 square, plus noise."""
  labels = rng.integers(0, 10, size=count).astype(np.uint8)
  images = rng.integers(0, 60, size=(count, 28, 28)).astype(np.uint8)
  for image, label in zip(images, labels):
    row, column = divmod(int(label), 5)
    image[2 + row * 12:8 + row * 12, 1 + column * 5:7 + column * 5] = 255
  return images, labels


@pytest.fixture(scope="session")
def tiny_mnist_dir(tmp_path_factory) -> pathlib.Path:
  """A gzip-compressed MNIST folder with 256 training and 100 test images of a learnable task."""
  directory = tmp_path_factory.mktemp("tiny_mnist")
  rng = np.random.default_rng(0)
  train, test = _learnable_digits(rng, 256), _learnable_digits(rng, 100)
  names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
  for name, array in zip(names, (*train, *test)):
    (directory / f"{name}.gz").write_bytes(gzip.compress(_idx_bytes(array)))
  return directory


@pytest.fixture
def tiny_cnn_config(tiny_mnist_dir, tmp_path):
  """The cnn_mnist config shrunk to the tiny data set: batch 32, 2 epochs of 8 steps."""
  from experiments.configs import cnn_mnist  # pylint: disable=g-import-not-at-top

  config = cnn_mnist.get_config()
  config.data_dir = str(tiny_mnist_dir)
  config.workdir = str(tmp_path / "workdir")
  config.data.batch_size = 32
  config.data.eval_batch_size = 64
  config.model.conv_features = (8, 16, 16)
  config.model.hidden_units = 16
  config.train.num_epochs = 2
  config.train.log_every_steps = 4
  config.train.progress_bar = False
  config.logging.plots = False
  return config
