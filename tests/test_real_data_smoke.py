"""A short training run on the real MNIST files, when they are present beside the repository."""

import pathlib

import pytest

from experiments.configs import cnn_mnist
from jaxmodels.train import loop

MNIST_DIR = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"real MNIST files not found in {MNIST_DIR}")
def test_cnn_mnist_smoke_beats_95_percent(tmp_path):
  config = cnn_mnist.get_config("smoke")
  config.data_dir = str(MNIST_DIR)
  config.workdir = str(tmp_path)
  config.train.num_epochs = 1
  config.train.progress_bar = False

  result = loop.train_and_evaluate(config)

  # One epoch is 468 steps of 128 examples; the whole test set is evaluated.
  assert int(result.state.step) == 468
  assert result.eval_metrics["count"] == 10_000
  assert result.eval_metrics["accuracy"] > 0.95
