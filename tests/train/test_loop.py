"""End-to-end tests of the training loop on a tiny, learnable IDX data set."""

import json
import os
import pathlib
import shutil

import jax
import numpy as np
import pytest

from jaxmodels.train import checkpoints
from jaxmodels.train import config as config_lib
from jaxmodels.train import loop
from jaxmodels.train import parallel
from jaxmodels.train import writer


def assert_trees_equal(actual, expected):
  """Assert two PyTrees have the same structure and bitwise-equal leaves."""
  assert jax.tree.structure(actual) == jax.tree.structure(expected)
  for a, b in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_train_and_evaluate_learns_tiny_task(tiny_cnn_config):
  config = tiny_cnn_config
  config.train.num_epochs = 6
  config.optim.learning_rate = 3e-3

  result = loop.train_and_evaluate(config)

  # 6 epochs of 8 steps on a task a linear model can solve.
  assert int(result.state.step) == 48
  assert result.eval_metrics["count"] == 100
  assert result.eval_metrics["accuracy"] > 0.8
  assert result.eval_predictions.shape == (100,)
  assert not result.stopped_early


def test_train_and_evaluate_traces_each_step_once(tiny_cnn_config):
  result = loop.train_and_evaluate(tiny_cnn_config)

  assert result.trace_counts == {"train_step": 1, "eval_step": 1}


def test_train_and_evaluate_writes_run_record(tiny_cnn_config):
  config = tiny_cnn_config

  loop.train_and_evaluate(config)

  workdir = pathlib.Path(config.workdir)
  records = writer.read_metrics(config.workdir)
  train = [r for r in records if r["split"] == "train"]
  evals = [r for r in records if r["split"] == "eval"]
  assert [r["step"] for r in train] == [4, 8, 12, 16]
  assert [r["step"] for r in evals] == [8, 16]
  assert all(r["count"] == 100 for r in evals)
  assert json.loads((workdir / "config.json").read_text())["optim"]["name"] == "adam"
  environment = json.loads((workdir / "environment.json").read_text())
  assert environment["versions"]["jax"] == jax.__version__
  assert any(name.startswith("events.out.tfevents") for name in os.listdir(workdir))


def test_resume_matches_uninterrupted_run_bitwise(tiny_cnn_config, tmp_path):
  config = tiny_cnn_config
  config.workdir = str(tmp_path / "uninterrupted")
  uninterrupted = loop.train_and_evaluate(config)

  # Stop mid-epoch at step 5, then run the same config again to the end.
  config.workdir = str(tmp_path / "resumed")
  stopped = loop.train_and_evaluate(config, max_steps=5)
  resumed = loop.train_and_evaluate(config)

  assert stopped.stopped_early
  assert int(stopped.state.step) == 5
  assert int(resumed.state.step) == 16
  assert_trees_equal(resumed.state.params, uninterrupted.state.params)
  assert_trees_equal(resumed.state.opt_state, uninterrupted.state.opt_state)
  assert resumed.eval_metrics == uninterrupted.eval_metrics


def test_resume_of_finished_run_only_evaluates(tiny_cnn_config):
  first = loop.train_and_evaluate(tiny_cnn_config)

  second = loop.train_and_evaluate(tiny_cnn_config)

  assert "train_step" not in second.trace_counts
  assert int(second.state.step) == 16
  assert second.eval_metrics == first.eval_metrics


def test_resume_ignores_half_written_checkpoint(tiny_cnn_config):
  config = tiny_cnn_config
  loop.train_and_evaluate(config, max_steps=5)

  # A save killed part way leaves only Orbax's temporary folder.
  checkpoint_dir = pathlib.Path(config.workdir) / "checkpoints"
  partial = checkpoint_dir / "7.orbax-checkpoint-tmp"
  shutil.copytree(checkpoint_dir / "5", partial)
  (partial / "state" / "manifest.ocdbt").write_bytes(b"truncated")

  assert checkpoints.Checkpointer(checkpoint_dir).latest_step() == 5
  result = loop.train_and_evaluate(config)
  assert int(result.state.step) == 16


def test_resume_with_other_model_lists_mismatched_keys(tiny_cnn_config):
  config = tiny_cnn_config
  loop.train_and_evaluate(config, max_steps=2)

  config.model.hidden_units = 24
  with pytest.raises(checkpoints.CheckpointMismatchError) as error:
    loop.train_and_evaluate(config)

  message = str(error.value)
  assert "params/dense0/kernel: checkpoint float32[144, 16], model float32[144, 24]" in message
  assert "params/logits/kernel" in message
  assert "new workdir" in message


def test_checkpoints_keep_latest_and_best(tiny_cnn_config):
  config = tiny_cnn_config
  config.train.num_epochs = 4
  config.checkpoint.every_steps = 2
  config.checkpoint.keep_latest = 2
  config.checkpoint.keep_best = 1

  loop.train_and_evaluate(config)

  checkpointer = checkpoints.Checkpointer(pathlib.Path(config.workdir) / "checkpoints")
  steps = checkpointer.all_steps()
  evals = [r for r in writer.read_metrics(config.workdir) if r["split"] == "eval"]
  best = max(evals, key=lambda r: r["accuracy"])["step"]
  assert steps[-2:] == [30, 32]
  assert best in steps
  assert set(steps) <= {30, 32, best}


def test_non_finite_loss_stops_with_step_range(tiny_cnn_config):
  config = tiny_cnn_config
  config.optim.name = "sgd"
  config.optim.learning_rate = 1e30

  with pytest.raises(loop.NonFiniteLossError, match=r"between steps \d+ and \d+"):
    loop.train_and_evaluate(config)


def test_early_stopping_restores_best_checkpoint(tiny_cnn_config):
  config = tiny_cnn_config
  config.train.num_epochs = 30
  config.train.early_stopping.patience_epochs = 1
  config.train.early_stopping.metric = "loss"
  config.train.early_stopping.min_delta = 10.0  # No epoch can improve by this much.

  result = loop.train_and_evaluate(config)

  # Epoch 2 cannot beat epoch 1 by min_delta, so training stops after it. The final state is
  # the checkpoint with the lowest eval loss of the two. When that is epoch 1's, it is
  # restored and evaluated again.
  evals = [r for r in result.history if r["split"] == "eval"]
  best = min(evals[:2], key=lambda r: r["loss"])
  assert [r["step"] for r in evals] == ([8, 16, 8] if best["step"] == 8 else [8, 16])
  assert int(result.state.step) == best["step"]
  assert evals[-1]["loss"] == best["loss"]
  assert not result.stopped_early


@pytest.mark.parametrize("restore_best", [True, False])
def test_validation_split_picks_tested_checkpoint(tiny_cnn_config, restore_best):
  config = tiny_cnn_config
  config.train.num_epochs = 3
  config.data.validation_fraction = 0.25  # 64 of the 256 training images.
  config.train.early_stopping.restore_best = restore_best

  result = loop.train_and_evaluate(config)

  # 192 training images at batch 32 make 6 steps per epoch. Each epoch is evaluated on the
  # validation split, and the test split once at the end.
  assert len(result.dataset.train["labels"]) == 192
  validations = [r for r in result.history if r["split"] == "validation"]
  evals = [r for r in result.history if r["split"] == "eval"]
  assert [r["step"] for r in validations[:3]] == [6, 12, 18]
  assert all(r["count"] == 64 for r in validations)
  assert [r["count"] for r in evals] == [100]

  # The tested state is the checkpoint with the best validation accuracy (the later step on
  # a tie), or the last one without restore_best. A restored checkpoint is evaluated on the
  # validation split again, and the final records carry its step.
  best = max(validations[:3], key=lambda r: (r["accuracy"], r["step"]))
  final_step = best["step"] if restore_best else 18
  assert int(result.state.step) == final_step
  assert len(validations) == (3 if final_step == 18 else 4)
  assert validations[-1]["step"] == final_step
  epoch_record = next(r for r in validations[:3] if r["step"] == final_step)
  assert validations[-1]["accuracy"] == epoch_record["accuracy"]
  assert evals[0]["step"] == final_step
  assert result.eval_metrics["accuracy"] == evals[0]["accuracy"]
  assert result.validation_metrics["accuracy"] == validations[-1]["accuracy"]
  metrics = checkpoints.Checkpointer(f"{config.workdir}/checkpoints").restore_meta(
      best["step"])["metrics"]
  assert metrics["validation_accuracy"] == best["accuracy"]


def test_validation_split_early_stopping_and_resume(tiny_cnn_config):
  config = tiny_cnn_config
  config.train.num_epochs = 30
  config.data.validation_fraction = 0.25
  config.train.early_stopping.patience_epochs = 1
  config.train.early_stopping.metric = "loss"
  config.train.early_stopping.min_delta = 10.0  # No epoch can improve by this much.

  result = loop.train_and_evaluate(config)
  again = loop.train_and_evaluate(config)

  # Epoch 2 cannot beat epoch 1 on validation loss, so training stops after it and tests the
  # better of the two. Running the finished workdir again trains nothing and tests the same.
  validations = [r for r in result.history if r["split"] == "validation"]
  assert [r["step"] for r in validations] == [6, 12]
  assert int(result.state.step) == min(validations, key=lambda r: r["loss"])["step"]
  assert "train_step" not in again.trace_counts
  assert again.eval_metrics == result.eval_metrics
  assert not result.stopped_early


def test_validation_split_step_limit_skips_test(tiny_cnn_config):
  config = tiny_cnn_config
  config.data.validation_fraction = 0.25

  stopped = loop.train_and_evaluate(config, max_steps=8)
  finished = loop.train_and_evaluate(config)

  assert stopped.stopped_early
  assert stopped.eval_metrics is None
  assert stopped.validation_metrics["count"] == 64
  assert finished.eval_metrics["count"] == 100


def test_reduce_on_plateau_scales_updates(tiny_cnn_config):
  config = tiny_cnn_config
  config.train.num_epochs = 4
  config.optim.reduce_on_plateau.enabled = True
  config.optim.reduce_on_plateau.patience_epochs = 1
  config.optim.reduce_on_plateau.rtol = 1.0  # Only a loss below 0 would count as progress.

  result = loop.train_and_evaluate(config)

  plateau_state = result.state.opt_state[-1]
  assert float(plateau_state.scale) < 1.0


def test_max_norm_caps_output_columns(tiny_cnn_config):
  config = tiny_cnn_config
  config.optim.learning_rate = 3e-3
  config.optim.max_norm = 0.5

  result = loop.train_and_evaluate(config)

  params = result.state.params
  norms = np.linalg.norm(np.asarray(params["logits"]["kernel"]), axis=0)  # [K]
  assert np.all(norms <= 0.5 * (1 + 1e-6)), norms
  # The cap acted: with it off, the same run ends with larger columns.
  config.optim.max_norm = 0.0
  config.workdir = config.workdir + "_uncapped"
  uncapped = loop.train_and_evaluate(config).state.params["logits"]["kernel"]
  assert np.max(np.linalg.norm(np.asarray(uncapped), axis=0)) > 0.5


def test_max_norm_unknown_layer_is_named(tiny_cnn_config):
  config = tiny_cnn_config
  config.optim.max_norm = 3.0
  config.optim.max_norm_layer = "classifier"

  with pytest.raises(ValueError, match="'classifier'"):
    loop.train_and_evaluate(config)


def test_resume_with_fewer_epochs_only_evaluates(tiny_cnn_config):
  loop.train_and_evaluate(tiny_cnn_config)

  tiny_cnn_config.train.num_epochs = 1
  result = loop.train_and_evaluate(tiny_cnn_config)

  assert "train_step" not in result.trace_counts
  assert int(result.state.step) == 16
  assert result.eval_metrics["count"] == 100


# Logs fall every 4 steps and epochs end every 8: calls of 4 fill every stretch, while calls of 3
# leave single steps before each boundary.
@pytest.mark.parametrize("steps_per_call, single_step_traces", [(3, 1), (4, 0)])
def test_steps_per_call_matches_single_steps(tiny_cnn_config, tmp_path, steps_per_call,
                                             single_step_traces):
  config = tiny_cnn_config
  single = loop.train_and_evaluate(config)
  config.train.steps_per_call = steps_per_call
  config.workdir = str(tmp_path / f"steps_per_call_{steps_per_call}")

  grouped = loop.train_and_evaluate(config)

  assert grouped.trace_counts["train_steps"] == 1
  assert grouped.trace_counts["eval_step"] == 1
  assert grouped.trace_counts.get("train_step", 0) == single_step_traces
  assert int(grouped.state.step) == int(single.state.step) == 16
  # Logs, evaluations and checkpoints fall on the same steps.
  assert ([(r["step"], r["split"]) for r in grouped.history]
          == [(r["step"], r["split"]) for r in single.history])
  # XLA may compile the convolutions inside the scan to other kernels, so the parameters
  # agree to rounding rather than bit for bit.
  for a, b in zip(jax.tree.leaves(grouped.state.params), jax.tree.leaves(single.state.params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


def test_microbatches_match_whole_batches(tiny_cnn_config, tmp_path):
  config = tiny_cnn_config
  config.train.cpu_microbatch_size = 0
  whole = loop.train_and_evaluate(config)
  config.train.cpu_microbatch_size = 8
  config.workdir = str(tmp_path / "microbatches")

  split = loop.train_and_evaluate(config)

  assert loop.num_microbatches(config, "cpu") == 4
  assert loop.num_microbatches(config, "gpu") == 1
  assert split.trace_counts["train_step"] == 1
  assert int(split.state.step) == int(whole.state.step) == 16
  assert [r["step"] for r in split.history] == [r["step"] for r in whole.history]
  for a, b in zip(split.history, whole.history):
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-4)
  # The tutorial CNN has no dropout, so only the order of the gradient sums differs.
  for a, b in zip(jax.tree.leaves(split.state.params), jax.tree.leaves(whole.state.params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("step, periods, last_step, expected", [
    (0, (4, 8, 0), 16, 4),
    (3, (4, 8, 0), 16, 1),
    (4, (100, 86, 0), 500, 82),
    (80, (100, 86, 0), 500, 6),
    (14, (4, 8, 0), 15, 1),
    (0, (0, 0, 0), 7, 7),
])
def test_steps_to_boundary(step, periods, last_step, expected):
  assert loop._steps_to_boundary(step, periods, last_step) == expected


def test_put_batches_stacks_along_new_axis():
  mesh = parallel.create_mesh(config_lib.base_config().parallel)
  batches = [{"inputs": np.full((4, 3), k, np.float32), "labels": np.full((4,), k, np.int32)}
             for k in range(5)]

  stacked = parallel.put_batches(batches, mesh)

  assert stacked["inputs"].shape == (5, 4, 3)
  assert stacked["labels"].shape == (5, 4)
  np.testing.assert_array_equal(np.asarray(stacked["labels"])[:, 0], np.arange(5))
  assert stacked["inputs"].sharding.spec == parallel.stacked_batch_sharding(mesh).spec
