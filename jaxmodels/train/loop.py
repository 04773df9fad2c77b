"""The training loop: init or resume, train, evaluate each epoch, checkpoint, stop cleanly.

`train_and_evaluate(config)` is the one entry point that `experiments/run.py`, the notebooks and
the tests share.
"""

import collections
import dataclasses
import functools
import math
import time
from typing import Any, NamedTuple

from absl import logging
import jax
import ml_collections
import numpy as np

from jaxmodels.data import datasets
from jaxmodels.data import pipeline
from jaxmodels.models import registry
from jaxmodels.models import summary
from jaxmodels.train import checkpoints
from jaxmodels.train import early_stopping
from jaxmodels.train import evaluate as evaluate_lib
from jaxmodels.train import optim as optim_lib
from jaxmodels.train import parallel
from jaxmodels.train import plots
from jaxmodels.train import preemption
from jaxmodels.train import progress
from jaxmodels.train import records
from jaxmodels.train import state as state_lib
from jaxmodels.train import steps
from jaxmodels.train import validate
from jaxmodels.train import writer as writer_lib


class NonFiniteLossError(FloatingPointError):
  """The training loss became NaN or infinite."""


@dataclasses.dataclass
class TrainResult:
  """What a finished (or stopped) run returns.

  Attributes:
    state: the final train state. With a validation split and
      `config.train.early_stopping.restore_best`, it is the best checkpoint's state.
    eval_metrics: metrics (`loss`, `accuracy`, `count`) of the last test-set evaluation, or
      None. Without a validation split the test set is evaluated each epoch. With one it is
      evaluated once, when training ends, so a run stopped by a signal or a step limit has
      None.
    eval_predictions: i32[N] test-set predictions of that evaluation, or None.
    validation_metrics: metrics of the last validation evaluation, that of the final state
      when training ended, or None without a validation split.
    history: every logged record, as written to `metrics.jsonl`.
    trace_counts: how often each step function was traced; 1 each in a healthy run.
    stopped_early: True when the run stopped before its last step (preemption or a step limit).
    dataset: the data set the run trained on.
    model: the Flax module.
  """

  state: state_lib.TrainState
  eval_metrics: dict[str, float] | None
  eval_predictions: np.ndarray | None
  validation_metrics: dict[str, float] | None
  history: list[dict[str, Any]]
  trace_counts: dict[str, int]
  stopped_early: bool
  dataset: datasets.Dataset
  model: Any


def _count_traces(name: str, function, counts: collections.Counter):
  """Wrap `function` so that each trace (Python execution under jit) increments `counts[name]`."""

  @functools.wraps(function)
  def counted(*args, **kwargs):
    counts[name] += 1
    return function(*args, **kwargs)

  return counted


def _check_finite(loss: float, first_step: int, last_step: int) -> None:
  if not math.isfinite(loss):
    raise NonFiniteLossError(
        f"Training loss became {loss} between steps {first_step} and {last_step}. Lower "
        "config.optim.learning_rate, set config.optim.clip_norm, or resume from an earlier "
        "checkpoint."
    )


def num_microbatches(config: ml_collections.ConfigDict, platform: str) -> int:
  """Return the number of microbatches of a training batch on devices of `platform`.

  `config.train.cpu_microbatch_size` applies to "cpu" only. Other platforms, and a size of 0,
  take each batch in one pass.
  """
  size = config.train.cpu_microbatch_size
  if platform != "cpu" or not size:
    return 1
  return config.data.batch_size // size


class CompiledSteps(NamedTuple):
  """The compiled steps of a run.

  Attributes:
    train_fn: `train_fn(state, metrics, batch) -> (state, metrics)`, one train step. It donates
      its state and metrics buffers.
    eval_fn: `eval_fn(params, batch) -> (sums, predictions)`.
    multi_fn: `multi_fn(state, metrics, batches) -> (state, metrics)`, K train steps on K
      stacked batches [K, B, ...] from `parallel.put_batches`. It donates like `train_fn` and
      compiles once per K. None when `config.train.steps_per_call` is 1.
  """

  train_fn: Any
  eval_fn: Any
  multi_fn: Any | None


def compile_steps(
    model,
    tx,
    config: ml_collections.ConfigDict,
    *,
    mesh: jax.sharding.Mesh,
    state_shardings: Any,
    trace_counts: collections.Counter | None = None,
) -> CompiledSteps:
  """Compile the train and eval steps of `model` for `mesh`, once for a whole run.

  The config sets the back end (`parallel.backend`), the steps per call
  (`train.steps_per_call`) and, on CPU, the microbatches of a step
  (`train.cpu_microbatch_size`).

  Args:
    model: the Flax module.
    tx: the Optax optimizer.
    config: the run config.
    mesh: device mesh.
    state_shardings: shardings of the train state, from `parallel.state_shardings`.
    trace_counts: if given, counts traces of each step under `train_step`, `train_steps` and
      `eval_step`.

  Returns:
    The compiled steps.
  """
  trace_counts = collections.Counter() if trace_counts is None else trace_counts
  backend = config.parallel.backend
  step_options = {"mesh": mesh, "backend": backend, "state_shardings": state_shardings,
                  "trace_counts": trace_counts,
                  "num_microbatches": num_microbatches(config, mesh.devices.flat[0].platform)}
  batch_shardings = parallel.batch_sharding(mesh)
  train_fn = _compile_train("train_step", steps.train_step, model, tx, batch_shardings,
                            **step_options)
  multi_fn = None
  if config.train.steps_per_call > 1:
    multi_fn = _compile_train("train_steps", steps.train_steps, model, tx,
                              parallel.stacked_batch_sharding(mesh), **step_options)

  metric_shardings = _metric_shardings(mesh)
  eval_fn = parallel.compile_step(
      _count_traces("eval_step", functools.partial(steps.eval_step, model=model), trace_counts),
      mesh=mesh,
      backend=backend,
      in_shardings=(state_shardings.params, batch_shardings),
      out_shardings=(metric_shardings, batch_shardings),
      batch_argnum=1,
  )
  return CompiledSteps(train_fn=train_fn, eval_fn=eval_fn, multi_fn=multi_fn)


def _metric_shardings(mesh: jax.sharding.Mesh) -> Any:
  """Return the shardings of the running metric sums: replicated on every device."""
  replicated = parallel.replicated(mesh)
  return jax.tree.map(lambda _: replicated, steps.zero_metrics())


def _compile_train(name: str, step_fn, model, tx, batch_sharding, *, mesh: jax.sharding.Mesh,
                   backend: str, state_shardings: Any, trace_counts: collections.Counter,
                   num_microbatches: int):
  """Compile `step_fn(state, metrics, batch)`, counting its traces under `name`.

  The compiled function donates its state and metrics buffers, and its batch argument has
  `batch_sharding`.
  """
  metric_shardings = _metric_shardings(mesh)
  return parallel.compile_step(
      _count_traces(name, functools.partial(step_fn, model=model, tx=tx,
                                            num_microbatches=num_microbatches), trace_counts),
      mesh=mesh,
      backend=backend,
      in_shardings=(state_shardings, metric_shardings, batch_sharding),
      out_shardings=(state_shardings, metric_shardings),
      batch_argnum=2,
      donate_argnums=(0, 1),
  )


def _steps_to_boundary(step: int, periods: tuple[int, ...], last_step: int) -> int:
  """Return how many steps after `step` the next multiple of a period, or `last_step`, is."""
  remaining = last_step - step
  for period in periods:
    if period > 0:
      remaining = min(remaining, period - step % period)
  return remaining


def train_and_evaluate(
    config: ml_collections.ConfigDict, *, max_steps: int | None = None
) -> TrainResult:
  """Train the model of `config` on its data set, resuming from `config.workdir` if possible.

  Args:
    config: a config as returned by `experiments/configs/*.py:get_config`.
    max_steps: stop after this global step, with a checkpoint, as a preemption would; the run
      continues from there when called again. None trains to the end.

  Returns:
    A `TrainResult`.
  """
  parallel.set_cpu_devices(config.parallel)
  validate.validate_config(
      config,
      device_count=jax.device_count(),
      process_count=jax.process_count(),
      platform=jax.devices()[0].platform,
      known_models=tuple(registry.MODELS),
      known_datasets=tuple(datasets.LOADERS),
  )
  registry.check_model_config(config.model)
  workdir = config.workdir
  is_writer = jax.process_index() == 0

  # Data, model, optimizer. The run record is written once the data has loaded, so a missing
  # data file leaves no workdir behind.
  dataset = datasets.load_dataset(config)
  records.log_setup(config)
  per_epoch = pipeline.steps_per_epoch(dataset.train, config.data.batch_size)
  total_steps = per_epoch * config.train.num_epochs
  model = registry.create_model(config, dataset)
  tx, schedule = optim_lib.create_optimizer(
      config.optim, total_steps=total_steps, steps_per_epoch=per_epoch
  )
  mesh = parallel.create_mesh(config.parallel)
  validation_count = 0 if dataset.validation is None else len(dataset.validation["labels"])
  logging.info(
      "Data %s: %d train, %d validation, %d test examples, %d classes; %d steps per epoch, "
      "%d in all.",
      config.data.name, len(dataset.train["labels"]), validation_count,
      len(dataset.test["labels"]), dataset.num_classes, per_epoch, total_steps,
  )
  logging.info("Mesh: %s, back end %s.", dict(mesh.shape), config.parallel.backend)

  with jax.set_mesh(mesh):
    return _run(config, workdir, dataset, model, tx, schedule, mesh, per_epoch, total_steps,
                max_steps, is_writer)


def _run(config, workdir, dataset, model, tx, schedule, mesh, per_epoch, total_steps, max_steps,
         is_writer) -> TrainResult:
  """Body of `train_and_evaluate` once the mesh is set."""
  trace_counts = collections.Counter()
  example = {name: array[:1] for name, array in dataset.train.items()}

  # Initialize directly into the target shardings.
  def init(key):
    return state_lib.create_train_state(model, tx, key=key, example_inputs=example["inputs"])

  abstract_state = jax.eval_shape(init, jax.random.key(config.seed))
  state_shardings = parallel.state_shardings(mesh, abstract_state)
  state = jax.jit(init, out_shardings=state_shardings)(jax.random.key(config.seed))
  logging.info(
      "Model %s:\n%s", config.model.name, summary.summarize(model, example["inputs"])
  )

  # Each epoch is evaluated on the validation split when there is one, else on the test split
  # (recorded as "eval"). Early stopping and the best checkpoint follow that evaluation.
  has_validation = dataset.validation is not None
  epoch_split = "validation" if has_validation else "eval"

  # Resume from the newest complete checkpoint of the workdir.
  early = config.train.early_stopping
  ranking, mode = checkpoints.ranking_metric(config)
  stopper = early_stopping.EarlyStopping(
      patience=early.patience_epochs, mode=mode, min_delta=early.min_delta
  )
  checkpointer = checkpoints.Checkpointer(
      f"{workdir}/checkpoints",
      keep_latest=config.checkpoint.keep_latest,
      keep_best=config.checkpoint.keep_best,
      metric=ranking,
      mode=mode,
  )
  start_step = 0
  latest = checkpointer.latest_step()
  if latest is not None:
    state, meta = checkpointer.restore(latest, state)
    start_step = int(meta["step"])
    if "early_stopping" in meta:
      stopper.load_state_dict(meta["early_stopping"])
    records.check_resume_config(meta, config)
    logging.info("Resumed from %s/checkpoints/%d (step %d).", workdir, latest, start_step)

  train_fn, eval_fn, multi_fn = compile_steps(
      model, tx, config, mesh=mesh, state_shardings=state_shardings, trace_counts=trace_counts)
  steps_per_call = config.train.steps_per_call
  # A call of K steps never crosses a step where the loop logs, evaluates or saves, so those
  # happen at the same steps for every K. Shorter stretches run one step per call.
  boundaries = (config.train.log_every_steps, per_epoch, config.checkpoint.every_steps)
  replicated = parallel.replicated(mesh)

  writer = writer_lib.MetricWriter(workdir, tensorboard=config.logging.tensorboard) if is_writer else None
  history = []
  show_progress = config.train.progress_bar and is_writer
  eval_metrics, eval_predictions, validation_metrics = None, None, None
  last_step = total_steps if max_steps is None else min(total_steps, max_steps)

  def record(step: int, split: str, values: dict[str, float]) -> None:
    history.append({"step": step, "split": split, **values})
    if writer is not None:
      writer.write(step, split, values)

  saved_steps = set(checkpointer.all_steps())

  def save(step: int, metrics: dict[str, float] | None = None) -> None:
    if step in saved_steps:
      return
    saved_steps.add(step)
    meta = records.checkpoint_meta(config, step=step, steps_per_epoch=per_epoch)
    meta["early_stopping"] = stopper.state_dict()
    checkpointer.save(step, state, meta, metrics=metrics)

  def run_eval(step: int, split: str) -> dict[str, float]:
    """Evaluate `split` ("eval" is the test split), record it and return its metrics."""
    nonlocal eval_metrics, eval_predictions, validation_metrics
    data = dataset.validation if split == "validation" else dataset.test
    with progress.progress_bar(
        pipeline.num_examples(data), desc=split, unit="example", leave=False,
        enabled=show_progress,
    ) as eval_bar:
      metrics, predictions = evaluate_lib.evaluate(
          eval_fn, state.params, data, batch_size=config.data.eval_batch_size,
          mesh=mesh, progress=eval_bar.update,
      )
    logging.info(
        "Step %d, epoch %d: %s loss %.4f, accuracy %.4f on %d %s examples.",
        step, step // per_epoch, split, metrics["loss"], metrics["accuracy"], metrics["count"],
        "validation" if split == "validation" else "test",
    )
    record(step, split, metrics)
    if split == "validation":
      validation_metrics = metrics
    else:
      eval_metrics, eval_predictions = metrics, predictions
    return metrics

  batches = pipeline.train_batches(
      dataset.train,
      batch_size=config.data.batch_size,
      seed=config.seed,
      start_step=start_step,
      process_index=jax.process_index(),
      process_count=jax.process_count(),
  )
  sums = jax.device_put(steps.zero_metrics(), replicated)
  interval_start, interval_time = start_step, time.perf_counter()
  step = start_step
  stopped_early = False

  if stopper.stopped or step > last_step:
    # A run that stopped early stays stopped, and a workdir past this config's last step (say
    # after lowering num_epochs) trains no further.
    last_step = step
  with preemption.StopOnSignal() as stop_signal, progress.progress_bar(
      last_step, initial=start_step, desc="train", unit="step", enabled=show_progress
  ) as train_bar:
    while step < last_step:
      if (multi_fn is not None
          and _steps_to_boundary(step, boundaries, last_step) >= steps_per_call):
        stacked = parallel.put_batches([next(batches) for _ in range(steps_per_call)], mesh)
        state, sums = multi_fn(state, sums, stacked)
        advanced = steps_per_call
      else:
        state, sums = train_fn(state, sums, parallel.put_batch(next(batches), mesh))
        advanced = 1
      step += advanced
      train_bar.update(advanced)

      # One host sync per logging interval.
      if step % config.train.log_every_steps == 0 or step == last_step:
        host_sums = jax.device_get(sums)
        sums = jax.device_put(steps.zero_metrics(), replicated)
        elapsed = time.perf_counter() - interval_time
        train_metrics = {
            "loss": float(host_sums["loss_sum"] / host_sums["count"]),
            "accuracy": float(host_sums["correct"] / host_sums["count"]),
            "learning_rate": float(schedule(step - 1)),
            "examples_per_second": float(host_sums["count"]) / elapsed,
        }
        _check_finite(train_metrics["loss"], interval_start + 1, step)
        logging.info(
            "Step %d: train loss %.4f, accuracy %.4f, %.0f examples/s.",
            step, train_metrics["loss"], train_metrics["accuracy"],
            train_metrics["examples_per_second"],
        )
        record(step, "train", train_metrics)
        train_bar.set_postfix(
            {"loss": train_metrics["loss"], "accuracy": train_metrics["accuracy"]}
        )
        interval_start, interval_time = step, time.perf_counter()

      if step % per_epoch == 0 or step == total_steps:
        epoch_metrics = run_eval(step, epoch_split)
        if stopper.update(epoch_metrics[early.metric]):
          logging.info(
              "Early stopping at step %d: %s %s has not improved on %.4f for %d epochs.",
              step, epoch_split, early.metric, stopper.best, stopper.wait,
          )
        save(step, {f"{epoch_split}_{name}": epoch_metrics[name]
                    for name in ("accuracy", "loss")})
        if stopper.stopped:
          break
      elif (config.checkpoint.every_steps and step % config.checkpoint.every_steps == 0) or (
          step == last_step
      ):
        save(step)

      if stop_signal.received and step < last_step:
        logging.warning("Received %s at step %d: saving a checkpoint and stopping.",
                        stop_signal.received, step)
        save(step)
        stopped_early = True
        break

  if max_steps is not None and step < total_steps and not stopper.stopped:
    stopped_early = True
  if step == start_step:
    logging.info("No steps left to train in this workdir; evaluating its latest state.")

  # The best checkpoint replaces the last state after early stopping, and with a validation
  # split whenever training has ended, since the validation split chose it.
  restored = False
  if early.restore_best and not stopped_early and (stopper.stopped or has_validation):
    best_step = checkpointer.best_step()
    if best_step is not None and best_step != step:
      state, _ = checkpointer.restore(best_step, state)
      restored = True
      logging.info("Restored the best checkpoint by %s %s, step %d.", epoch_split,
                   early.metric, best_step)
  # These evaluations are recorded under the step of the evaluated state.
  if has_validation and not stopped_early:
    logging.info("Testing the state of step %d, %s.", int(state.step),
                 f"the best by validation {early.metric}" if early.restore_best
                 else "the last (restore_best is off)")
    if restored or step == start_step:
      run_eval(int(state.step), epoch_split)
    run_eval(int(state.step), "eval")
  elif not has_validation and (restored or step == start_step):
    run_eval(int(state.step), "eval")

  checkpointer.close()
  if writer is not None:
    writer.close()
    if config.logging.plots and eval_predictions is not None:
      paths = plots.save_run_plots(
          workdir, labels=dataset.test["labels"], predictions=eval_predictions,
          class_names=dataset.class_names,
      )
      logging.info("Plots: %s", ", ".join(paths))
  return TrainResult(
      state=state,
      eval_metrics=eval_metrics,
      eval_predictions=eval_predictions,
      validation_metrics=validation_metrics,
      history=history,
      trace_counts=dict(trace_counts),
      stopped_early=stopped_early,
      dataset=dataset,
      model=model,
  )
