"""Checks of a run's config that run before any data is read or any step is compiled.

Type errors and unknown keys are caught by `ml_collections` itself when the config is locked
(`config_flags` locks it; so does `lock_config`). The checks here cover values: ranges, names,
and sizes that must fit the device mesh. Each error names the full key, its value and a fix.
"""

import math

import ml_collections

from jaxmodels import errors
from jaxmodels.train import optim as optim_lib
from jaxmodels.train import parallel


def _require(condition: bool, message: str) -> None:
  if not condition:
    raise errors.ConfigError(message)


def validate_config(
    config: ml_collections.ConfigDict,
    *,
    device_count: int,
    process_count: int = 1,
    platform: str = "cpu",
    known_models: tuple[str, ...] = (),
    known_datasets: tuple[str, ...] = (),
) -> None:
  """Raise `jaxmodels.errors.ConfigError` (a ValueError) for the first invalid value.

  Args:
    config: the run's config.
    device_count: number of devices of all processes, to check mesh and batch sizes.
    process_count: number of processes, which split each batch into equal parts.
    platform: platform of the devices, such as "cpu" or "tpu". Microbatches apply on "cpu"
      only, so their sizes are checked there only.
    known_models: accepted values of `config.model.name` (unchecked when empty).
    known_datasets: accepted values of `config.data.name` (unchecked when empty).
  """
  data, train, optim = config.data, config.train, config.optim

  _require(config.seed >= 0, f"config.seed={config.seed} must be a non-negative integer.")
  if known_datasets:
    _require(
        data.name in known_datasets,
        f"config.data.name={data.name!r} is not a known data set; use one of {known_datasets}.",
    )
  if known_models:
    _require(
        config.model.name in known_models,
        f"config.model.name={config.model.name!r} is not a known model; use one of "
        f"{known_models}.",
    )

  # Data.
  _require(
      0.0 <= data.validation_fraction < 1.0,
      f"config.data.validation_fraction={data.validation_fraction} must be in [0, 1): the "
      "share of the training split to hold out, or 0 for none.",
  )
  _require(
      data.validation_seed >= 0,
      f"config.data.validation_seed={data.validation_seed} must be a non-negative integer.",
  )

  # Optimizer.
  _require(
      optim.name in optim_lib.OPTIMIZERS,
      f"config.optim.name={optim.name!r} is not a known optimizer; use one of "
      f"{optim_lib.OPTIMIZERS}.",
  )
  _require(
      optim.schedule in optim_lib.SCHEDULES,
      f"config.optim.schedule={optim.schedule!r} is not a known schedule; use one of "
      f"{optim_lib.SCHEDULES}.",
  )
  _require(
      optim.learning_rate > 0,
      f"config.optim.learning_rate={optim.learning_rate} must be positive.",
  )
  for name in ("warmup_steps", "clip_norm", "weight_decay", "momentum", "max_norm"):
    value = optim[name]
    _require(value >= 0, f"config.optim.{name}={value} must be zero (off) or positive.")

  # Loop.
  _require(train.num_epochs >= 1, f"config.train.num_epochs={train.num_epochs} must be at least 1.")
  _require(
      train.log_every_steps >= 1,
      f"config.train.log_every_steps={train.log_every_steps} must be at least 1.",
  )
  _require(
      train.steps_per_call >= 1,
      f"config.train.steps_per_call={train.steps_per_call} must be at least 1.",
  )
  _require(
      train.cpu_microbatch_size >= 0,
      f"config.train.cpu_microbatch_size={train.cpu_microbatch_size} must be 0 (whole batches) "
      "or positive.",
  )
  _require(
      config.checkpoint.every_steps >= 0,
      f"config.checkpoint.every_steps={config.checkpoint.every_steps} must be 0 (save at epoch "
      "ends only) or positive.",
  )
  _require(
      config.checkpoint.keep_latest >= 1,
      f"config.checkpoint.keep_latest={config.checkpoint.keep_latest} must be at least 1, so "
      "that a run can resume.",
  )

  early = train.early_stopping
  _require(
      early.metric in ("accuracy", "loss"),
      f"config.train.early_stopping.metric={early.metric!r} must be 'accuracy' or 'loss'.",
  )
  _require(
      early.patience_epochs >= 0,
      f"config.train.early_stopping.patience_epochs={early.patience_epochs} must be 0 (off) "
      "or positive.",
  )
  _require(
      not ((early.patience_epochs or data.validation_fraction) and early.restore_best
           and config.checkpoint.keep_best < 1),
      "config.train.early_stopping.restore_best=True with early stopping or a validation "
      "split needs config.checkpoint.keep_best >= 1, so that the best checkpoint is kept.",
  )
  plateau = optim.reduce_on_plateau
  _require(
      0 < plateau.factor < 1,
      f"config.optim.reduce_on_plateau.factor={plateau.factor} must be in (0, 1).",
  )
  _require(
      0 <= plateau.rtol <= 1,
      f"config.optim.reduce_on_plateau.rtol={plateau.rtol} must be in [0, 1].",
  )

  # Mesh and batch sizes.
  _require(
      config.parallel.backend in parallel.BACKENDS,
      f"config.parallel.backend={config.parallel.backend!r} is not one of {parallel.BACKENDS}.",
  )
  data_devices, _ = parallel.mesh_shape(config.parallel, device_count)
  for key in ("batch_size", "eval_batch_size"):
    size = data[key]
    _require(size >= 1, f"config.data.{key}={size} must be at least 1.")
    multiple = math.lcm(data_devices, process_count)
    if size % multiple:
      lower, upper = parallel.nearest_valid_batch_sizes(size, multiple)
      processes = "process" if process_count == 1 else "processes"
      raise errors.ConfigError(
          f"config.data.{key}={size} does not divide by the {data_devices} devices of the data "
          f"axis (and {process_count} {processes}); use a multiple of {multiple}, such as "
          f"{lower} or {upper}."
      )

  if train.cpu_microbatch_size and platform == "cpu":
    _check_microbatch_size(train.cpu_microbatch_size, data.batch_size, data_devices,
                           process_count)


def _check_microbatch_size(size: int, batch_size: int, data_devices: int,
                           process_count: int) -> None:
  """Require a microbatch size that divides the batch and spreads evenly over the devices."""
  # Each microbatch takes an equal share of every device's examples, so its size must divide
  # by the devices (and processes) as the batch size does.
  multiple = math.lcm(data_devices, process_count)
  valid = [m for m in range(multiple, batch_size + 1, multiple) if batch_size % m == 0]
  _require(
      batch_size % size == 0 and size % multiple == 0,
      f"config.train.cpu_microbatch_size={size} must divide config.data.batch_size={batch_size} "
      f"and be a multiple of {multiple}, the least common multiple of the device count of the "
      f"data axis ({data_devices}) and the process count ({process_count}). Use one of {valid}, "
      "or 0 for whole batches.",
  )
