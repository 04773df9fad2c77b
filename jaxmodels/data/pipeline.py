"""Deterministic NumPy batching for in-memory data sets.

Training batches are a pure function of (seed, step): epoch `e` visits the examples in the order of
a permutation drawn from `(seed, e)` and drops the last partial batch. A run resumed at step `s`
therefore sees exactly the batches an uninterrupted run sees from step `s` on.

Evaluation visits every example once in order. The last batch is padded to full size and carries
`weights` 0 on the padding, so metrics weighted by `weights` count each example exactly once.

With several processes, each global batch is split into equal row blocks and process `p` returns
block `p`; the blocks together form the global batch of a single-process run.
"""

from collections.abc import Iterator, Mapping

import numpy as np

Arrays = Mapping[str, np.ndarray]


def num_examples(arrays: Arrays) -> int:
  """Return the common leading size of `arrays`, raising ValueError when the sizes differ."""
  sizes = {name: len(array) for name, array in arrays.items()}
  if len(set(sizes.values())) != 1:
    raise ValueError(f"Arrays of one data split must have the same length; got {sizes}.")
  return next(iter(sizes.values()))


def steps_per_epoch(arrays: Arrays, batch_size: int) -> int:
  """Return the number of full training batches in one epoch."""
  steps = num_examples(arrays) // batch_size
  if steps == 0:
    raise ValueError(
        f"config.data.batch_size={batch_size} is larger than the training split "
        f"({num_examples(arrays)} examples); lower the batch size."
    )
  return steps


def epoch_permutation(size: int, *, seed: int, epoch: int) -> np.ndarray:
  """Return the example order of `epoch`, drawn from `(seed, epoch)`."""
  return np.random.default_rng([seed, epoch]).permutation(size)


def _process_rows(
    global_size: int, process_index: int, process_count: int
) -> slice:
  """Return the rows of a global batch that belong to one process."""
  if global_size % process_count:
    raise ValueError(
        f"Global batch size {global_size} must divide by the process count {process_count}."
    )
  local_size = global_size // process_count
  return slice(process_index * local_size, (process_index + 1) * local_size)


def train_batches(
    arrays: Arrays,
    *,
    batch_size: int,
    seed: int,
    start_step: int = 0,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
  """Yield shuffled training batches forever, starting at global step `start_step`.

  Args:
    arrays: the training split, e.g. `{"inputs": f32[N, ...], "labels": i32[N]}`.
    batch_size: global batch size B.
    seed: shuffling seed.
    start_step: number of batches to skip, i.e. the step a resumed run continues from.
    process_index, process_count: this process and the number of processes.

  Yields:
    This process's rows of each global batch: `{name: array[B / process_count, ...]}`.
  """
  size = num_examples(arrays)
  per_epoch = steps_per_epoch(arrays, batch_size)
  rows = _process_rows(batch_size, process_index, process_count)
  step = start_step
  while True:
    epoch, offset = divmod(step, per_epoch)
    order = epoch_permutation(size, seed=seed, epoch=epoch)
    for position in range(offset, per_epoch):
      indices = order[position * batch_size:(position + 1) * batch_size][rows]
      yield {name: array[indices] for name, array in arrays.items()}
    step = (epoch + 1) * per_epoch


def eval_batches(
    arrays: Arrays,
    *,
    batch_size: int,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
  """Yield every example once, in order, in batches of `batch_size` with a `weights` entry.

  The last batch is filled up to `batch_size` by repeating example 0; those rows have weight 0.

  Yields:
    This process's rows of each global batch, with `weights` f32[B / process_count].
  """
  size = num_examples(arrays)
  rows = _process_rows(batch_size, process_index, process_count)
  for start in range(0, size, batch_size):
    indices = np.arange(start, start + batch_size)
    weights = (indices < size).astype(np.float32)
    indices = np.where(indices < size, indices, 0)[rows]
    batch = {name: array[indices] for name, array in arrays.items()}
    batch["weights"] = weights[rows]
    yield batch
