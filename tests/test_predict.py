"""End-to-end tests of the text models: train on tiny TREC and MR files, then predict."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from experiments.configs import lstm_attention_mr
from experiments.configs import lstm_trec
from experiments.configs import text_cnn_trec
from experiments.configs import transformer_mr
from jaxmodels.data import text
from jaxmodels.data import text_datasets
from jaxmodels.train import loop
from jaxmodels.train import predict

REPO = pathlib.Path(__file__).resolve().parents[1]

# The first words give the TREC class; the rest are drawn from a shared pool of fillers.
TREC_OPENINGS = {
    "ABBR:exp": "what does the abbreviation",
    "DESC:def": "why do",
    "ENTY:animal": "which animal",
    "HUM:ind": "who",
    "LOC:city": "where is",
    "NUM:count": "how many",
}
FILLERS = ("river", "king", "paper", "stone", "music", "glass", "winter", "city", "ship", "law",
           "garden", "film", "engine", "bird", "tower", "coin")
MR_WORDS = {"positive": ("wonderful", "moving", "superb"), "negative": ("boring", "awful", "dull")}


def _fillers(rng, count):
  return " ".join(rng.choice(FILLERS, size=count))


def write_tiny_trec(directory: pathlib.Path, seed: int = 0) -> pathlib.Path:
  """Write 96 training and 24 test questions whose class follows from their first words."""
  rng = np.random.default_rng(seed)
  directory.mkdir(parents=True, exist_ok=True)
  for name, count in (("train_5500.label", 96), ("TREC_10.label", 24)):
    lines = []
    for index in range(count):
      label = list(TREC_OPENINGS)[index % len(TREC_OPENINGS)]
      lines.append(f"{label} {TREC_OPENINGS[label]} {_fillers(rng, rng.integers(1, 5))} ?\n")
    (directory / name).write_bytes("".join(lines).encode("ascii"))
  return directory


def write_tiny_mr(directory: pathlib.Path, seed: int = 0) -> pathlib.Path:
  """Write 60 positive and 60 negative snippets that each contain one polar word."""
  rng = np.random.default_rng(seed)
  directory.mkdir(parents=True, exist_ok=True)
  for name, polarity in (("rt-polarity.pos", "positive"), ("rt-polarity.neg", "negative")):
    lines = [f"{_fillers(rng, 2)} {rng.choice(MR_WORDS[polarity])} {_fillers(rng, 2)} . \n"
             for _ in range(60)]
    # Distinct lines, as in the real files.
    lines = [f"{index} {line}" for index, line in enumerate(lines)]
    (directory / name).write_bytes("".join(lines).encode("cp1252"))
  return directory


def tiny_config(module, data_dir, workdir):
  """The smoke variant of `module` on tiny files: batch 16, lr 1e-2, 8 epochs."""
  config = module.get_config("smoke")
  config.data_dir = str(data_dir)
  config.workdir = str(workdir)
  config.data.max_len = 12
  config.data.batch_size = 16
  config.data.eval_batch_size = 16
  config.optim.learning_rate = 1e-2
  config.train.num_epochs = 8
  config.train.log_every_steps = 8
  config.train.progress_bar = False
  config.logging.plots = False
  config.logging.tensorboard = False
  return config


CASES = {
    "lstm_trec": (lstm_trec, write_tiny_trec),
    "lstm_attention_mr": (lstm_attention_mr, write_tiny_mr),
    "text_cnn_trec": (text_cnn_trec, write_tiny_trec),
    "transformer_mr": (transformer_mr, write_tiny_mr),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def trained(request, tmp_path_factory):
  """Train each case once for the tests of this module; return (config, result)."""
  module, write = CASES[request.param]
  root = tmp_path_factory.mktemp(request.param)
  config = tiny_config(module, write(root / "data"), root / "workdir")
  return config, loop.train_and_evaluate(config)


def test_train_text_models_learn_tiny_task(trained):
  config, result = trained

  assert result.trace_counts == {"train_step": 1, "eval_step": 1}
  assert result.eval_metrics["count"] == len(result.dataset.test["labels"])
  # Each class has a word that gives it away; chance is 1/6 on TREC and 1/2 on MR.
  assert result.eval_metrics["accuracy"] >= 0.75, config.model.name


def test_predict_matches_eval_predictions(trained):
  config, result = trained
  (_, _), (test_texts, _) = text_datasets.read_splits(config)

  predictor = predict.load_predictor(config.workdir, checkpoint="latest")
  labels, probabilities = predictor.predict(test_texts)

  assert predictor.step == int(result.state.step)
  np.testing.assert_array_equal(labels, result.eval_predictions)
  assert probabilities.shape == (len(test_texts), result.dataset.num_classes)
  assert probabilities.dtype == np.float32
  np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
  assert predictor.class_names == result.dataset.class_names
