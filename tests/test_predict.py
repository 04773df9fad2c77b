"""End-to-end tests of the text models: train on tiny TREC and MR files, then predict."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from experiments.configs import lstm_attention_trec
from experiments.configs import lstm_trec
from experiments.configs import text_cnn_mr
from experiments.configs import text_cnn_trec
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
  """Shrink the smoke variant of `module` to tiny files: batch 8, lr 1e-2, 3 epochs of 12 steps."""
  config = module.get_config("smoke")
  config.data_dir = str(data_dir)
  config.workdir = str(workdir)
  config.data.max_len = 12
  config.data.batch_size = 8
  config.data.eval_batch_size = 16
  config.optim.learning_rate = 1e-2
  config.optim.schedule = "constant"
  config.train.num_epochs = 3
  config.train.log_every_steps = 12
  config.train.progress_bar = False
  config.logging.plots = False
  config.logging.tensorboard = False
  return config


# One recurrent and one convolutional model, one data format each.
CASES = {
    "lstm_attention_trec": (lstm_attention_trec, write_tiny_trec),
    "text_cnn_mr": (text_cnn_mr, write_tiny_mr),
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

  # The LSTM config runs several steps per call, and stretches between logs one step each.
  assert result.trace_counts["eval_step"] == 1
  assert all(count == 1 for count in result.trace_counts.values()), result.trace_counts
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


def test_predict_batches_and_empty_input(trained):
  config, _ = trained
  predictor = predict.load_predictor(config.workdir, checkpoint="latest", batch_size=4)
  texts = [f"who {filler} ?" for filler in FILLERS[:9]]

  labels, probabilities = predictor.predict(texts)
  single = [predictor.predict([t])[1][0] for t in texts[:2]]
  no_labels, no_probabilities = predictor.predict([])

  # 9 texts run as batches of 4, 4 and 1 padded to 4.
  assert labels.shape == (9,)
  np.testing.assert_allclose(probabilities[:2], single, rtol=1e-5, atol=1e-6)
  assert no_labels.shape == (0,)
  assert no_probabilities.shape == (0, len(predictor.class_names))


def test_predict_best_checkpoint_has_highest_accuracy(trained):
  config, result = trained
  evals = [r for r in result.history if r["split"] == "eval"]

  predictor = predict.load_predictor(config.workdir, checkpoint="best")

  best = max(evals, key=lambda r: (r["accuracy"], r["step"]))
  assert predictor.step == best["step"]


def test_predict_final_is_the_tested_state(trained):
  config, result = trained

  # Without a validation split or early stopping, the run tested its last state.
  predictor = predict.load_predictor(config.workdir)

  assert predictor.step == int(result.state.step)
  assert predictor.step == result.history[-1]["step"]


def test_predict_reads_vocabulary_of_workdir(trained):
  config, result = trained

  predictor = predict.load_predictor(config.workdir)

  assert predictor.vocab == result.dataset.vocab
  assert predictor.vocab == text.Vocabulary.load(pathlib.Path(config.workdir) / "vocab.json")


@pytest.mark.parametrize("trained", ["text_cnn_mr"], indirect=True)
def test_predict_command_line(trained, tmp_path):
  config, _ = trained
  input_file = tmp_path / "sentences.txt"
  input_file.write_text("which animal river king ?\n\na superb film .\n", encoding="utf-8")

  result = subprocess.run(
      [sys.executable, str(REPO / "experiments" / "predict.py"), f"--workdir={config.workdir}",
       f"--input_file={input_file}", "who wrote it ?"],
      capture_output=True, text=True, timeout=120, cwd=REPO,
      env={**os.environ, "JAX_PLATFORMS": "cpu"})

  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert lines[0].startswith(f"# {config.workdir}, checkpoint step ")
  # The arguments come first, then the non-blank lines of the file.
  assert [line.split("\t")[-1] for line in lines[1:]] == [
      "who wrote it ?", "which animal river king ?", "a superb film ."]
  class_names = text_datasets.CLASS_NAMES[config.data.name]
  for line in lines[1:]:
    name, probability, spread, _ = line.split("\t")
    assert name in class_names
    assert 0.0 <= float(probability) <= 1.0
    assert len(spread.strip("[]").split()) == len(class_names)


def test_predict_missing_workdir_files(tmp_path):
  with pytest.raises(FileNotFoundError, match="config.json not found"):
    predict.load_predictor(tmp_path)

  config = lstm_trec.get_config("smoke")
  (tmp_path / "config.json").write_text(config.to_json(), encoding="utf-8")
  with pytest.raises(FileNotFoundError, match="vocab.json not found"):
    predict.load_predictor(tmp_path)

  text.Vocabulary(["<pad>", "<unk>", "who"]).save(tmp_path / "vocab.json")
  with pytest.raises(FileNotFoundError, match="checkpoints not found"):
    predict.load_predictor(tmp_path)


def test_predict_rejects_image_config(tmp_path):
  from experiments.configs import cnn_mnist  # pylint: disable=g-import-not-at-top

  with pytest.raises(ValueError, match="'mnist' is not a text data set"):
    predict.load_predictor(tmp_path, config=cnn_mnist.get_config())


def test_read_config_restores_tuples_and_new_defaults(tmp_path):
  config = text_cnn_trec.get_config()
  saved = json.loads(config.to_json())
  del saved["optim"]["eps"]
  (tmp_path / "config.json").write_text(json.dumps(saved), encoding="utf-8")

  restored = predict.read_config(tmp_path)

  assert restored.model.filter_widths == [3, 4, 5]
  assert restored.parallel.mesh_shape == (-1, 1)
  assert restored.optim.eps == config.optim.eps


def test_resume_reuses_saved_vocabulary(tmp_path):
  data_dir = write_tiny_trec(tmp_path / "data")
  config = tiny_config(text_cnn_trec, data_dir, tmp_path / "workdir")
  config.train.num_epochs = 1
  loop.train_and_evaluate(config, max_steps=2)
  saved = text.Vocabulary.load(tmp_path / "workdir" / "vocab.json")

  # New frequent words would change a vocabulary built again from the training split.
  extra = "".join(f"HUM:ind who zebra yak {index} ?\n" for index in range(40))
  with open(data_dir / "train_5500.label", "a", encoding="ascii") as file:
    file.write(extra)
  resumed = loop.train_and_evaluate(config)

  assert "zebra" not in saved.words
  assert resumed.dataset.vocab == saved
  assert text.Vocabulary.load(tmp_path / "workdir" / "vocab.json") == saved
  assert int(resumed.state.step) > 2


def test_predict_best_follows_validation_split(tmp_path):
  config = tiny_config(text_cnn_mr, write_tiny_mr(tmp_path / "data"), tmp_path / "workdir")
  config.data.validation_fraction = 0.2
  config.train.early_stopping.metric = "loss"

  result = loop.train_and_evaluate(config)
  predictor = predict.load_predictor(config.workdir, checkpoint="best")
  (_, _), (test_texts, _) = text_datasets.read_splits(config)
  labels, _ = predictor.predict(test_texts)

  # "best" is the step with the lowest validation loss, the state that the run tested, and
  # so also the "final" one.
  validations = [r for r in result.history if r["split"] == "validation"]
  assert predictor.step == min(validations, key=lambda r: (r["loss"], -r["step"]))["step"]
  assert predictor.step == int(result.state.step)
  assert predict.load_predictor(config.workdir).step == predictor.step
  np.testing.assert_array_equal(labels, result.eval_predictions)
