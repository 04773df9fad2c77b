"""Tests of the checkpoint keep policy across a reopened directory."""

import jax.numpy as jnp

from jaxmodels.train import checkpoints


def test_best_checkpoint_survives_reopen(tmp_path):
  state = {"w": jnp.ones(3)}
  first = checkpoints.Checkpointer(tmp_path, keep_latest=1, keep_best=1)
  first.save(1, state, {"step": 1}, metrics={"eval_accuracy": 0.9})
  first.save(2, state, {"step": 2})
  first.close()

  # A resumed run opens the directory again and saves steps without metrics.
  second = checkpoints.Checkpointer(tmp_path, keep_latest=1, keep_best=1)
  second.save(3, state, {"step": 3})
  second.wait()

  assert second.all_steps() == [1, 3]
  assert second.best_step() == 1
