"""Pure train and evaluation steps for classifiers.

Both steps are plain functions of arrays. The loop compiles them with `jax.jit` over a device mesh,
or runs them once per device under `jax.shard_map` (the `pmap` back end); `axis_name` tells a step
which of the two it runs under, so one definition serves both.

`train_step` can take the gradient of a batch in microbatches (`num_microbatches`): one forward
and backward pass per microbatch, with the gradients summed into the gradient of the whole
batch. XLA's CPU back end runs the CNN's convolution gradients faster on small batches, so this
speeds up its training step (see docs/benchmarks.md).
"""

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxmodels.ops import losses
from jaxmodels.train.state import TrainState

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


def zero_metrics() -> Metrics:
  """Return zeroed running sums for `train_step`."""
  return {
      "loss_sum": jnp.zeros((), jnp.float32),
      "correct": jnp.zeros((), jnp.float32),
      "count": jnp.zeros((), jnp.float32),
  }


def split_microbatches(batch: Batch, num_microbatches: int) -> list[Batch]:
  """Split a batch [B, ...] into `num_microbatches` strided microbatches [B / n, ...].

  Microbatch k contains examples k, k + n, k + 2n, ... A device that contains a contiguous block
  of the batch, of a size divisible by n, thus contributes an equal share to each microbatch, and
  no example moves between devices.

  Raises:
    ValueError: B does not divide by `num_microbatches`.
  """
  size = batch["labels"].shape[0]
  if size % num_microbatches:
    raise ValueError(
        f"A batch of {size} examples does not split into {num_microbatches} microbatches. "
        f"Use a batch size divisible by {num_microbatches}.")

  def interleave(x):  # [B, ...] -> [B / n, n, ...]
    return x.reshape(size // num_microbatches, num_microbatches, *x.shape[1:])

  interleaved = jax.tree.map(interleave, batch)
  return [jax.tree.map(lambda x, k=k: x[:, k], interleaved) for k in range(num_microbatches)]


def train_step(
    state: TrainState,
    metrics: Metrics,
    batch: Batch,
    *,
    model,
    tx: optax.GradientTransformation,
    axis_name: str | None = None,
    num_microbatches: int = 1,
) -> tuple[TrainState, Metrics]:
  """Apply one optimizer update and add the batch's loss and accuracy sums to `metrics`.

  Args:
    state: the current train state.
    metrics: running sums `loss_sum`, `correct`, `count` since the last log.
    batch: `inputs` (model inputs, leading axis B) and `labels` i32[B].
    model: Flax module called as `model.apply(variables, inputs, train=True, rngs=...)`.
    tx: Optax optimizer.
    axis_name: the mapped device axis when the step runs once per device under `shard_map`;
      gradients and sums are then averaged or added over it. None under `jax.jit`.
    num_microbatches: n > 1 takes the gradient in n passes over the microbatches of
      `split_microbatches`, unrolled in the compiled step, and sums them. The gradient is
      that of the whole batch up to rounding, but dropout draws other masks, one key per
      microbatch.

  Returns:
    The new state and the updated sums.
  """
  # A new dropout key per step; per device under shard_map, so devices draw different masks.
  step_key = jax.random.fold_in(state.key, state.step)
  if axis_name is not None:
    step_key = jax.random.fold_in(step_key, jax.lax.axis_index(axis_name))
  batch_size = batch["labels"].shape[0]

  def loss_fn(params, microbatch, key):
    logits = model.apply(
        {"params": params}, microbatch["inputs"], train=True, rngs={"dropout": key}
    )
    per_example = losses.softmax_cross_entropy(logits, microbatch["labels"])  # [b]
    # The sum over the whole batch's size, so that the microbatch gradients add up to the
    # gradient of the batch mean.
    return jnp.sum(per_example) / batch_size, (per_example, logits)

  params = state.params
  if axis_name is not None:
    # Under shard_map, jax.grad with respect to replicated parameters would already sum the
    # gradients of all devices. Marking the parameters as varying gives each device its own
    # gradient, which lax.pmean then averages.
    params = jax.tree.map(lambda p: jax.lax.pcast(p, axis_name, to="varying"), params)

  grad_fn = jax.grad(loss_fn, has_aux=True)
  labels = batch["labels"]
  if num_microbatches == 1:
    grads, (per_example, logits) = grad_fn(params, batch, step_key)  # [B], [B, K]
  else:
    # The passes are unrolled, because on XLA's CPU back end a loop around convolution
    # gradients runs several times slower.
    microbatches = split_microbatches(batch, num_microbatches)
    grads, per_example, logits = None, [], []
    for index, microbatch in enumerate(microbatches):
      key = jax.random.fold_in(step_key, index)
      microbatch_grads, (microbatch_losses, microbatch_logits) = grad_fn(params, microbatch, key)
      if grads is None:
        grads = microbatch_grads
      else:
        grads = jax.tree.map(jnp.add, grads, microbatch_grads)
      per_example.append(microbatch_losses)
      logits.append(microbatch_logits)
    # The examples in microbatch order. The sums and the mean below do not depend on it.
    per_example = jnp.concatenate(per_example)  # [B]
    logits = jnp.concatenate(logits)  # [B, K]
    labels = jnp.concatenate([microbatch["labels"] for microbatch in microbatches])  # [B]

  if axis_name is not None:
    grads = jax.lax.pmean(grads, axis_name)

  # `value` feeds optax.contrib.reduce_on_plateau; other transformations ignore it.
  loss = jnp.mean(per_example)
  if axis_name is not None:
    loss = jax.lax.pmean(loss, axis_name)
  updates, opt_state = tx.update(grads, state.opt_state, state.params, value=loss)
  params = optax.apply_updates(state.params, updates)
  new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)

  batch_sums = {
      "loss_sum": jnp.sum(per_example),
      "correct": jnp.sum(losses.accuracy(logits, labels)),
      "count": jnp.asarray(per_example.shape[0], jnp.float32),
  }
  if axis_name is not None:
    batch_sums = jax.lax.psum(batch_sums, axis_name)
  return new_state, jax.tree.map(jnp.add, metrics, batch_sums)


def train_steps(
    state: TrainState,
    metrics: Metrics,
    batches: Batch,
    *,
    model,
    tx: optax.GradientTransformation,
    axis_name: str | None = None,
    num_microbatches: int = 1,
) -> tuple[TrainState, Metrics]:
  """Apply `train_step` to each batch along the leading axis K of `batches`, in a `lax.scan`.

  Args:
    state: the current train state.
    metrics: running sums, as in `train_step`.
    batches: `inputs` [K, B, ...] and `labels` i32[K, B].
    model: as in `train_step`.
    tx: as in `train_step`.
    axis_name: as in `train_step`.
    num_microbatches: as in `train_step`.

  Returns:
    The state after K updates and the sums over the K batches added to `metrics`.
  """

  def body(carry, batch):
    return train_step(*carry, batch, model=model, tx=tx, axis_name=axis_name,
                      num_microbatches=num_microbatches), None

  (state, metrics), _ = jax.lax.scan(body, (state, metrics), batches)
  return state, metrics


def eval_step(
    params: Any, batch: Batch, *, model, axis_name: str | None = None
) -> tuple[Metrics, jax.Array]:
  """Return loss and accuracy sums over the real examples of a batch, and its predictions.

  Args:
    params: model parameters.
    batch: `inputs`, `labels` i32[B] and `weights` f32[B], which is 1 for real examples and 0
      for the padding that fills the last batch.
    model: Flax module.
    axis_name: as in `train_step`.

  Returns:
    Sums `loss_sum`, `correct`, `count` weighted by `weights`, and i32[B] predicted classes.
  """
  logits = model.apply({"params": params}, batch["inputs"], train=False)
  weights = batch["weights"]
  sums = {
      "loss_sum": jnp.sum(losses.softmax_cross_entropy(logits, batch["labels"]) * weights),
      "correct": jnp.sum(losses.accuracy(logits, batch["labels"]) * weights),
      "count": jnp.sum(weights),
  }
  if axis_name is not None:
    sums = jax.lax.psum(sums, axis_name)
  return sums, jnp.argmax(logits, axis=-1).astype(jnp.int32)
