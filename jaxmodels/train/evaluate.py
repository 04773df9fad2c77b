"""Evaluation over a whole data split, each example counted exactly once."""

from collections.abc import Callable, Mapping
from typing import Any

import jax
from jax.experimental import multihost_utils
import numpy as np

from jaxmodels.data import pipeline
from jaxmodels.train import parallel


def evaluate(
    eval_fn: Callable[..., Any],
    params: Any,
    arrays: Mapping[str, np.ndarray],
    *,
    batch_size: int,
    mesh: jax.sharding.Mesh,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, float], np.ndarray]:
  """Run a compiled eval step over every example of `arrays`.

  Args:
    eval_fn: compiled `eval_step(params, batch)`.
    params: model parameters.
    arrays: the split, `{"inputs": ..., "labels": i32[N]}`.
    batch_size: global evaluation batch size; the last batch is padded and masked.
    mesh: device mesh; batches are split over its `data` axis.
    progress: called with the number of real examples after each batch.

  Returns:
    `{"loss", "accuracy", "count"}` weighted by example, and i32[N] predictions in example
    order (gathered from all processes).
  """
  totals = None
  predictions = []
  batches = pipeline.eval_batches(
      arrays,
      batch_size=batch_size,
      process_index=jax.process_index(),
      process_count=jax.process_count(),
  )
  size = pipeline.num_examples(arrays)
  for batch in batches:
    sums, batch_predictions = eval_fn(params, parallel.put_batch(batch, mesh))
    totals = sums if totals is None else jax.tree.map(lambda a, b: a + b, totals, sums)

    # The padding sits at the end of the global batch, so the first `real` rows are examples.
    real = min(batch_size, size - len(predictions) * batch_size)
    if jax.process_count() > 1:
      batch_predictions = multihost_utils.process_allgather(batch_predictions, tiled=True)
    predictions.append(batch_predictions[:real])
    if progress is not None:
      progress(real)

  totals = jax.device_get(totals)
  count = float(totals["count"])
  metrics = {
      "loss": float(totals["loss_sum"]) / count,
      "accuracy": float(totals["correct"]) / count,
      "count": count,
  }
  return metrics, np.concatenate(jax.device_get(predictions))
