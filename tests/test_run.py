"""Tests of the command line: flag errors before any compile, and a SIGTERM stop that resumes."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from jaxmodels.data import text
from tests.test_predict import write_tiny_trec

REPO = pathlib.Path(__file__).resolve().parents[1]
RUN = [sys.executable, str(REPO / "experiments" / "run.py")]
CNN_CONFIG = "--config=" + str(REPO / "experiments" / "configs" / "cnn_mnist.py")


def run(*flags, timeout=120):
  return subprocess.run(
      [*RUN, *flags], capture_output=True, text=True, timeout=timeout, cwd=REPO,
      env={**os.environ, "JAX_PLATFORMS": "cpu"},
  )


def test_run_rejects_unknown_config_key(tmp_path):
  result = run(CNN_CONFIG, "--config.optim.learning_rat=0.1", f"--config.workdir={tmp_path}")

  assert result.returncode == 1
  assert ("--config.optim.learning_rat=0.1: config key 'learning_rat' not found. Did you mean "
          '"learning_rate"' in result.stderr)
  assert "Traceback" not in result.stderr
  assert not (tmp_path / "checkpoints").exists()


def test_run_reports_missing_config_file_in_one_line(tmp_path):
  missing = REPO / "experiments" / "configs" / "cnn_mnits.py"
  result = run(f"--config={missing}", f"--config.workdir={tmp_path}")

  assert result.returncode == 1
  assert f"--config={missing}: the config file failed to load" in result.stderr
  assert "No such file or directory" in result.stderr
  assert "Traceback" not in result.stderr


def test_run_reports_unknown_variant_in_one_line(tmp_path):
  result = run(CNN_CONFIG + ":smok", f"--config.workdir={tmp_path}")

  assert result.returncode == 1
  assert "Unknown config variant 'smok'; use 'smoke' or none." in result.stderr
  assert "Traceback" not in result.stderr


def test_run_rejects_wrong_value_type(tmp_path):
  result = run(CNN_CONFIG, "--config.data.batch_size=big", f"--config.workdir={tmp_path}")

  assert result.returncode != 0
  assert "batch_size" in result.stderr
  assert "big" in result.stderr


def test_run_rejects_non_boolean_in_one_line(tmp_path):
  result = run(CNN_CONFIG, "--config.train.progress_bar=maybe", f"--config.workdir={tmp_path}")

  assert result.returncode == 1
  assert ("--config.train.progress_bar=maybe: 'maybe' is not a boolean. Use "
          "--config.train.progress_bar=true or --config.train.progress_bar=false."
          in result.stderr)
  assert "Traceback" not in result.stderr


def test_run_rejects_other_case_vocabulary(tmp_path):
  workdir = tmp_path / "workdir"
  workdir.mkdir()
  vocab_path = workdir / "vocab.json"
  text.Vocabulary(["<pad>", "<unk>", "Who"], lowercase=False).save(vocab_path)
  saved = vocab_path.read_bytes()
  trec_config = "--config=" + str(REPO / "experiments" / "configs" / "lstm_trec.py")

  result = run(trec_config, f"--config.data_dir={write_tiny_trec(tmp_path / 'trec')}",
               f"--config.workdir={workdir}")

  assert result.returncode == 1
  assert (f"ConfigError: {vocab_path} was built with lowercase=False but "
          "config.data.lowercase=True. Resume with --config.data.lowercase=False, or use a new "
          "workdir." in result.stderr)
  assert "Traceback" not in result.stderr
  assert vocab_path.read_bytes() == saved


def test_run_names_missing_data_dir(tmp_path):
  missing = tmp_path / "no_mnist"
  result = run(CNN_CONFIG, f"--config.data_dir={missing}", f"--config.workdir={tmp_path / 'w'}")

  assert result.returncode != 0
  assert str(missing) in result.stderr
  assert "--config.data_dir" in result.stderr
  # The message is the whole report: no traceback, and no run record in the workdir.
  assert "Traceback" not in result.stderr
  assert not (tmp_path / "w" / "config.json").exists()


def test_run_reports_invalid_value_without_traceback(tmp_path):
  result = run(CNN_CONFIG, "--config.data.validation_fraction=1.5",
               f"--config.workdir={tmp_path}")

  assert result.returncode == 1
  assert ("ConfigError: config.data.validation_fraction=1.5 must be in [0, 1)"
          in result.stderr)
  assert "Traceback" not in result.stderr


def test_run_reports_negative_cpu_devices(tmp_path):
  result = run(CNN_CONFIG, "--config.parallel.cpu_devices=-2", f"--config.workdir={tmp_path}")

  assert result.returncode == 1
  assert "ConfigError: config.parallel.cpu_devices=-2 must be 0" in result.stderr
  assert "Traceback" not in result.stderr


def test_run_sigterm_saves_checkpoint_and_resumes(tiny_mnist_dir, tmp_path):
  workdir = tmp_path / "workdir"

  def tiny_flags(num_epochs):
    return [
        CNN_CONFIG, f"--config.data_dir={tiny_mnist_dir}", f"--config.workdir={workdir}",
        "--config.data.batch_size=32", f"--config.train.num_epochs={num_epochs}",
        "--config.train.log_every_steps=1", "--config.train.progress_bar=False",
        "--config.model.conv_features=(4, 4, 4)", "--config.model.hidden_units=8",
    ]

  flags = tiny_flags(400)
  process = subprocess.Popen(
      [*RUN, *flags], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
      env={**os.environ, "JAX_PLATFORMS": "cpu"},
  )
  try:
    # Wait until training runs, then ask the process to stop.
    deadline = time.monotonic() + 120
    for line in process.stdout:
      if "Step 3:" in line or time.monotonic() > deadline:
        break
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0]
  finally:
    if process.poll() is None:
      process.kill()
      process.wait()

  assert process.returncode == 0, output
  assert "Received SIGTERM" in output
  steps = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
  assert steps and 3 <= steps[-1] < 400 * 8

  # The same command continues from the saved step.
  resumed = run(*tiny_flags(400 if steps[-1] + 8 > 400 * 8 else (steps[-1] + 8) // 8 + 1))
  assert resumed.returncode == 0, resumed.stderr
  assert f"(step {steps[-1]})" in resumed.stderr
