"""Data and model parallelism on forced CPU devices, in subprocesses, and the CPU device count.

Each test starts fresh Python processes with `--xla_force_host_platform_device_count`, because a
process fixes its device count when JAX starts. Devices reduce gradients in a different order
than one device does, so losses agree to a tolerance, not bitwise.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile

import jax
import ml_collections
import numpy as np
import pytest

from jaxmodels import errors
from jaxmodels.train import parallel
from tests.test_predict import write_tiny_trec

WORKER = pathlib.Path(__file__).with_name("parallel_worker.py")
# Losses over the first steps; reduction order changes the last bits, which grow a little.
RTOL = 1e-4


def start_worker(spec, *, device_count, env=None):
  """Start a worker whose output goes to temporary files, so no pipe can fill and block it."""
  environment = {
      **os.environ,
      "XLA_FLAGS": f"--xla_force_host_platform_device_count={device_count}",
      "JAX_PLATFORMS": "cpu",
      **(env or {}),
  }
  stdout, stderr = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
  process = subprocess.Popen(
      [sys.executable, str(WORKER), json.dumps(spec)], stdout=stdout, stderr=stderr,
      text=True, env=environment,
  )
  return process, stdout, stderr


def finish_worker(worker, timeout=600):
  process, stdout, stderr = worker
  try:
    process.wait(timeout=timeout)
  finally:
    if process.poll() is None:
      process.kill()
      process.wait()
  stdout.seek(0)
  stderr.seek(0)
  output, errors = stdout.read(), stderr.read()
  assert process.returncode == 0, errors[-5000:]
  line = next(l for l in output.splitlines() if l.startswith("RESULTS "))
  return json.loads(line[len("RESULTS "):])


def run_worker(spec, *, device_count):
  return finish_worker(start_worker(spec, device_count=device_count))


def mesh_runs(tmp_path, runs, key, *, max_steps):
  """Return worker runs for (mesh, backend, value) triples that set config `key` to value."""
  return [
      {"workdir": str(tmp_path / f"{backend}_{mesh[0]}_{value}"), "parallel.mesh_shape": mesh,
       "parallel.backend": backend, key: value, "max_steps": max_steps}
      for mesh, backend, value in runs
  ]


def assert_runs_match_first(results, labels):
  """Assert that every run logged the losses and ended with the parameters of the first."""
  reference = results[0]
  for label, result in zip(labels, results):
    np.testing.assert_allclose(result["losses"], reference["losses"], rtol=RTOL, err_msg=label)
    for leaf, expected in zip(result["params"], reference["params"]):
      np.testing.assert_allclose(
          np.array(leaf), np.array(expected), rtol=RTOL, atol=1e-6, err_msg=label
      )


@pytest.fixture
def cnn_spec(tiny_mnist_dir):
  return {
      "config_name": "cnn_mnist",
      "config": {
          "data_dir": str(tiny_mnist_dir),
          "data.batch_size": 32,
          "data.eval_batch_size": 64,
          "model.conv_features": [8, 16, 16],
          "model.hidden_units": 16,
          "train.num_epochs": 1,
          # Plain SGD: unlike Adam, its update scales with the gradient, so a wrongly scaled
          # gradient on several devices changes losses and parameters.
          "optim.name": "sgd",
          "optim.learning_rate": 0.1,
          "train.log_every_steps": 1,
          "train.progress_bar": False,
          "logging.plots": False,
          "logging.tensorboard": False,
      },
  }


@pytest.fixture
def lstm_spec(tmp_path):
  return {
      "config_name": "lstm_trec",
      "config": {
          "data_dir": str(write_tiny_trec(tmp_path / "trec")),
          "data.max_len": 12,
          "data.batch_size": 16,
          "data.eval_batch_size": 16,
          "data.vocab_size": 64,
          "model.embedding_dim": 8,
          "model.lstm_units": [8, 8],
          "train.num_epochs": 1,
          "optim.name": "sgd",
          "optim.learning_rate": 0.5,
          "train.log_every_steps": 1,
          "train.progress_bar": False,
          "logging.plots": False,
          "logging.tensorboard": False,
      },
  }


@pytest.mark.parametrize("model", ["cnn", "lstm"])
def test_data_parallel_matches_one_device(model, cnn_spec, lstm_spec, tmp_path):
  spec = cnn_spec if model == "cnn" else lstm_spec
  meshes = [([1, 1], "jit"), ([2, 1], "jit"), ([4, 1], "jit"), ([8, 1], "jit"),
            ([8, 1], "pmap"), ([2, 1], "pmap")]
  spec["runs"] = [
      {"workdir": str(tmp_path / f"{backend}_{mesh[0]}"), "parallel.mesh_shape": mesh,
       "parallel.backend": backend, "max_steps": 4}
      for mesh, backend in meshes
  ]

  spec["return_params"] = True

  results = run_worker(spec, device_count=8)

  reference = results[0]
  assert len(reference["losses"]) == 4
  for (mesh, backend), result in zip(meshes, results):
    label = f"mesh {mesh}, backend {backend}"
    np.testing.assert_allclose(result["losses"], reference["losses"], rtol=RTOL, err_msg=label)
    for leaf, expected in zip(result["params"], reference["params"]):
      np.testing.assert_allclose(
          np.array(leaf), np.array(expected), rtol=RTOL, atol=1e-6, err_msg=label
      )
    assert result["trace_counts"]["train_step"] == 1


@pytest.mark.parametrize("model", ["cnn", "lstm"])
def test_model_axis_matches_data_parallel(model, cnn_spec, lstm_spec, tmp_path):
  spec = cnn_spec if model == "cnn" else lstm_spec
  spec["runs"] = [
      {"workdir": str(tmp_path / "data"), "parallel.mesh_shape": [8, 1], "max_steps": 4},
      {"workdir": str(tmp_path / "model"), "parallel.mesh_shape": [4, 2], "max_steps": 4},
  ]

  data_parallel, model_parallel = run_worker(spec, device_count=8)

  np.testing.assert_allclose(model_parallel["losses"], data_parallel["losses"], rtol=RTOL)


def test_steps_per_call_matches_on_every_mesh(lstm_spec, tmp_path):
  # Logs every 4 steps, so calls of 2 steps fill every stretch.
  lstm_spec["config"]["train.log_every_steps"] = 4
  runs = [([1, 1], "jit", 1), ([1, 1], "jit", 2), ([4, 1], "jit", 2), ([4, 1], "pmap", 2)]
  lstm_spec["runs"] = mesh_runs(tmp_path, runs, "train.steps_per_call", max_steps=8)
  lstm_spec["return_params"] = True

  results = run_worker(lstm_spec, device_count=4)

  assert len(results[0]["losses"]) == 2
  assert_runs_match_first(results, [f"mesh {mesh}, backend {backend}, {k} steps per call"
                                    for mesh, backend, k in runs])
  assert results[1]["trace_counts"]["train_steps"] == 1
  assert "train_step" not in results[3]["trace_counts"]


def test_microbatches_match_whole_batches_on_every_mesh(cnn_spec, tmp_path):
  # Batch 32: microbatches of 8 take 2 examples from each of 4 devices, 1 from each of 8.
  runs = [([1, 1], "jit", 0), ([1, 1], "jit", 8), ([4, 1], "jit", 8), ([4, 1], "pmap", 8),
          ([8, 1], "jit", 8), ([8, 1], "pmap", 8)]
  cnn_spec["runs"] = mesh_runs(tmp_path, runs, "train.cpu_microbatch_size", max_steps=4)
  cnn_spec["return_params"] = True

  results = run_worker(cnn_spec, device_count=8)

  assert len(results[0]["losses"]) == 4
  assert_runs_match_first(results, [f"mesh {mesh}, backend {backend}, microbatches of {size}"
                                    for mesh, backend, size in runs])


@pytest.mark.parametrize("saved_on, restored_on", [(8, 1), (1, 8)])
def test_restore_across_device_counts(cnn_spec, tmp_path, saved_on, restored_on):
  cnn_spec["runs"] = [
      {"workdir": str(tmp_path / "reference"), "parallel.mesh_shape": [restored_on, 1],
       "max_steps": 6},
      {"workdir": str(tmp_path / "moved"), "parallel.mesh_shape": [saved_on, 1], "max_steps": 3},
      {"workdir": str(tmp_path / "moved"), "parallel.mesh_shape": [restored_on, 1],
       "max_steps": 6},
  ]

  reference, first_half, second_half = run_worker(cnn_spec, device_count=8)

  assert first_half["step"] == 3
  assert second_half["step"] == 6
  np.testing.assert_allclose(
      first_half["losses"] + second_half["losses"], reference["losses"], rtol=RTOL
  )


def test_cpu_devices_from_config(lstm_spec, tmp_path):
  # No XLA_FLAGS: the two devices come from config.parallel.cpu_devices alone.
  lstm_spec["config"]["parallel.cpu_devices"] = 2
  runs = [([1, 1], "jit", 1), ([-1, 1], "pmap", 1), ([-1, 1], "pmap", 2)]
  lstm_spec["runs"] = mesh_runs(tmp_path, runs, "train.steps_per_call", max_steps=4)
  lstm_spec["return_params"] = True

  results = finish_worker(start_worker(lstm_spec, device_count=1, env={"XLA_FLAGS": ""}))

  assert [result["devices"] for result in results] == [2, 2, 2]
  assert len(results[0]["losses"]) == 4
  assert_runs_match_first(results, [f"mesh {mesh}, backend {backend}, {k} steps per call"
                                    for mesh, backend, k in runs])


def parallel_config(cpu_devices, backend="pmap"):
  return ml_collections.ConfigDict({"cpu_devices": cpu_devices, "backend": backend})


@pytest.mark.parametrize("count", [-1, 1.5, "2", True, None])
def test_set_cpu_devices_rejects_non_counts(count):
  with pytest.raises(errors.ConfigError, match=r"config\.parallel\.cpu_devices=.* must be 0"):
    parallel.set_cpu_devices(parallel_config(count))


def test_set_cpu_devices_after_jax_started():
  current = len(jax.devices("cpu"))  # Starts JAX if no test has yet.

  for count in (0, current):
    parallel.set_cpu_devices(parallel_config(count))

  with pytest.raises(errors.ConfigError,
                     match=f"already started with {current} CPU device.*use {current}, or 0"):
    parallel.set_cpu_devices(parallel_config(current + 1))
  assert len(jax.devices("cpu")) == current


def test_set_cpu_devices_warns_under_jit(caplog):
  count = len(jax.devices("cpu")) + 1

  with pytest.raises(errors.ConfigError, match="cannot take effect"):
    parallel.set_cpu_devices(parallel_config(count, backend="jit"))

  assert f"config.parallel.cpu_devices={count} with backend='jit'" in caplog.text
  assert "backend='pmap' runs each device's share" in caplog.text


def free_port():
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


def test_two_processes_match_one_process(cnn_spec, tmp_path):
  cnn_spec["return_params"] = True
  single = dict(cnn_spec, runs=[{"workdir": str(tmp_path / "single"), "max_steps": 4}])
  multi = dict(cnn_spec, runs=[{
      "workdir": str(tmp_path / "multi"), "max_steps": 4,
      "parallel.distributed.timeout_seconds": 120,
  }])

  # Two processes with 2 CPU devices each, coordinated on loopback.
  port = free_port()
  workers = [
      start_worker(multi, device_count=2, env={
          "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
          "JAX_NUM_PROCESSES": "2",
          "JAX_PROCESS_ID": str(index),
      })
      for index in range(2)
  ]
  try:
    results = [finish_worker(worker, timeout=300)[0] for worker in workers]
  finally:
    for process, _, _ in workers:
      if process.poll() is None:
        process.kill()
        process.wait()
  reference = run_worker(single, device_count=4)[0]

  for result in results:
    assert result["devices"] == 4
    np.testing.assert_allclose(result["losses"], reference["losses"], rtol=RTOL)
    for leaf, expected in zip(result["params"], reference["params"]):
      np.testing.assert_allclose(np.array(leaf), np.array(expected), rtol=RTOL, atol=1e-6)


@pytest.mark.parametrize("backend", ["jit", "pmap"])
def test_dropout_masks_differ_between_devices(backend):
  environment = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
                 "JAX_PLATFORMS": "cpu"}
  output = subprocess.run(
      [sys.executable, str(WORKER.with_name("dropout_worker.py"))], capture_output=True,
      text=True, env=environment, timeout=300, check=True,
  ).stdout
  masks = json.loads(output.split("RESULTS ", 1)[1])[backend]

  first, second = masks
  # Rows kept by one device only move by that device's share: three distinct moves besides 0.
  assert len(set(first) - {0.0}) == 3
  # The same step with the same key draws the same masks again.
  assert first == second
