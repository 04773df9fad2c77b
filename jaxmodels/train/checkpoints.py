"""Orbax checkpoints of the train state, kept behind one small class.

Each checkpoint is a step folder with two items: `state` (the `TrainState` PyTree) and `meta`
(JSON: config, step, data position, package versions). Orbax writes a step into a temporary
folder and renames it when complete, so a process killed while saving leaves only a temporary
folder, which `latest_step` ignores and the next start deletes.

Only this module imports Orbax, so a move to another Orbax API changes this file alone.
"""

from collections.abc import Mapping
import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers


def ranking_metric(config) -> tuple[str, str]:
  """Return the (metric, mode) by which the runs of `config` rank their checkpoints.

  The metric is the early-stopping metric of the per-epoch evaluation: `validation_accuracy`
  with a validation split (`config.data.validation_fraction` above 0), else `eval_accuracy`,
  or the `_loss` forms, for which lower is better.
  """
  metric = config.train.early_stopping.metric
  split = "validation" if config.data.get("validation_fraction", 0.0) else "eval"
  return f"{split}_{metric}", "min" if metric == "loss" else "max"


class CheckpointMismatchError(ValueError):
  """A checkpoint does not fit the model and optimizer that try to restore it."""


class Checkpointer:
  """Save and restore train states in one directory, keeping the latest and the best steps.

  Args:
    directory: folder of the checkpoints, created if missing.
    keep_latest: number of most recent checkpoints to keep.
    keep_best: number of checkpoints with the highest `metric` to keep besides them.
    metric: key of the `metrics` dict passed to `save` that ranks checkpoints.
    mode: "max" when a higher `metric` is better, "min" when lower is better.
  """

  def __init__(
      self,
      directory: str | os.PathLike,
      *,
      keep_latest: int = 2,
      keep_best: int = 1,
      metric: str = "eval_accuracy",
      mode: str = "max",
  ):
    if mode not in ("max", "min"):
      raise ValueError(f"Checkpointer mode={mode!r} must be 'max' or 'min'.")
    sign = 1.0 if mode == "max" else -1.0
    if keep_latest < 1:
      raise ValueError(
          f"config.checkpoint.keep_latest={keep_latest} must be at least 1, so that a run can resume."
      )
    policies = [checkpoint_managers.LatestN(n=keep_latest)]
    if keep_best > 0:
      policies.append(
          checkpoint_managers.BestN(
              get_metric_fn=lambda metrics: sign * metrics[metric],
              n=keep_best,
              keep_checkpoints_without_metrics=False,
          )
      )
    options = ocp.CheckpointManagerOptions(
        preservation_policy=checkpoint_managers.AnyPreservationPolicy(policies),
        # With best_fn set, the manager reads the stored metrics of earlier checkpoints when it
        # reopens a directory, so the best step survives a resume.
        best_fn=lambda metrics: sign * metrics[metric],
        best_mode="max",
        keep_checkpoints_without_metrics=False,
        cleanup_tmp_directories=True,
        create=True,
    )
    self.directory = os.path.abspath(os.fspath(directory))
    self.metric = metric
    self._sign = sign
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=options,
        item_handlers={
            "state": ocp.StandardCheckpointHandler(),
            "meta": ocp.JsonCheckpointHandler(),
        },
    )

  def latest_step(self) -> int | None:
    """Return the newest complete step, or None when the directory has none."""
    return self._manager.latest_step()

  def best_step(self) -> int | None:
    """Return the kept step with the highest metric, or None when no step has metrics."""
    scored = []
    for step in self.all_steps():
      metrics = self.restore_meta(step).get("metrics") or {}
      if self.metric in metrics:
        scored.append((self._sign * metrics[self.metric], step))
    return max(scored)[1] if scored else None

  def all_steps(self) -> list[int]:
    """Return every complete step kept in the directory, oldest first."""
    return sorted(self._manager.all_steps())

  def save(
      self,
      step: int,
      state: Any,
      meta: Mapping[str, Any],
      *,
      metrics: Mapping[str, float] | None = None,
  ) -> None:
    """Save `state` and JSON-serializable `meta` as `step`; `metrics` rank it for keep-best.

    `metrics` are also stored in `meta["metrics"]`. Saving runs in the background; `wait`
    blocks until it is complete.
    """
    meta = {**meta, "metrics": dict(metrics) if metrics is not None else None}
    self._manager.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
        ),
        metrics=dict(metrics) if metrics is not None else None,
        force=True,
    )

  def restore(self, step: int, target: Any) -> tuple[Any, dict[str, Any]]:
    """Restore `step` into the structure, shapes, dtypes and shardings of `target`.

    Args:
      step: a step from `all_steps`.
      target: a train state, or its `jax.ShapeDtypeStruct` tree; leaves with a `sharding` are
        placed on it, so a checkpoint written on N devices restores onto a mesh of M devices.

    Returns:
      The restored state and the `meta` dict saved with it.

    Raises:
      CheckpointMismatchError: the checkpoint holds other keys, shapes or dtypes than `target`;
        the message lists each of them.
    """
    self._check_matches(step, target)
    abstract = jax.tree.map(_abstract_leaf, target)
    restored = self._manager.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
        ),
    )
    return restored["state"], dict(restored["meta"])

  def restore_meta(self, step: int) -> dict[str, Any]:
    """Return the `meta` dict of `step` without reading the arrays."""
    restored = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
    return dict(restored["meta"])

  def wait(self) -> None:
    """Block until background saves are complete."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    """Finish pending saves and release the manager."""
    self._manager.close()

  def _check_matches(self, step: int, target: Any) -> None:
    """Raise CheckpointMismatchError listing every key whose presence, shape or dtype differs."""
    stored = self._manager.item_metadata(step)["state"]
    if stored is None:
      raise CheckpointMismatchError(
          f"Checkpoint {self.directory}/{step} has no readable 'state' item. Delete that step "
          "folder to resume from an earlier one, or use a new workdir."
      )
    stored_leaves = _leaves_by_path(stored)
    target_leaves = _leaves_by_path(target)

    problems = []
    for path in sorted(stored_leaves.keys() - target_leaves.keys()):
      problems.append(f"  {path}: in the checkpoint only")
    for path in sorted(target_leaves.keys() - stored_leaves.keys()):
      problems.append(f"  {path}: in the model only")
    for path in sorted(stored_leaves.keys() & target_leaves.keys()):
      stored_shape, stored_dtype = stored_leaves[path]
      target_shape, target_dtype = target_leaves[path]
      if stored_shape != target_shape or stored_dtype != target_dtype:
        problems.append(
            f"  {path}: checkpoint {stored_dtype}{list(stored_shape)}, "
            f"model {target_dtype}{list(target_shape)}"
        )
    if problems:
      raise CheckpointMismatchError(
          f"Checkpoint {self.directory}/{step} does not match the model and optimizer of this "
          f"config ({len(problems)} mismatched keys):\n" + "\n".join(problems) + "\n"
          "Use a new workdir for a different model, or restore with the config it was saved with."
      )


def _abstract_leaf(leaf: Any) -> jax.ShapeDtypeStruct:
  """Describe an array leaf by shape, dtype and, when it has one, sharding."""
  return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=getattr(leaf, "sharding", None))


def _leaves_by_path(tree: Any) -> dict[str, tuple[tuple[int, ...], str]]:
  """Map each leaf's key path to its (shape, dtype name)."""
  leaves = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    name = jax.tree_util.keystr(path, simple=True, separator="/")
    shape = tuple(int(d) for d in getattr(leaf, "shape", ()))
    dtype = np.dtype(leaf.dtype).name if hasattr(leaf, "dtype") else type(leaf).__name__
    leaves[name] = (shape, dtype)
  return leaves
