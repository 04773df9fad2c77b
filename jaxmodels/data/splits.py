"""Hold out a random part of a training split as a validation split.

Per-epoch evaluation, early stopping and the choice of the best checkpoint then look at the
validation split only, and the test split is evaluated once, at the end.
"""

import numpy as np

from jaxmodels import errors


def validation_indices(num_examples: int, fraction: float,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Split `range(num_examples)` at random into training and validation indices.

  The validation part contains `round(fraction * num_examples)` examples, taken from a
  permutation drawn from `seed` with `np.random.RandomState`, whose streams NumPy keeps fixed
  across versions. Both index arrays are sorted, so each part keeps the order of the source.

  Args:
    num_examples: size N of the training split.
    fraction: share of the examples to hold out, in (0, 1).
    seed: seed of the permutation.

  Returns:
    (train, validation): i64 index arrays that together hold each index once.

  Raises:
    jaxmodels.errors.ConfigError: if `fraction` is outside (0, 1) or leaves either part
      empty.
  """
  if not 0.0 < fraction < 1.0:
    raise errors.ConfigError(f"config.data.validation_fraction={fraction} must be in (0, 1), or 0 to "
                     "evaluate on the test split each epoch.")
  count = round(fraction * num_examples)
  if not 1 <= count < num_examples:
    raise errors.ConfigError(
        f"config.data.validation_fraction={fraction} makes a validation split of {count} of "
        f"{num_examples} training examples; choose a fraction between "
        f"{1 / num_examples:.2g} and {1 - 1 / num_examples:.4g}, so that each part keeps at "
        "least one example."
    )
  permutation = np.random.RandomState(seed).permutation(num_examples)
  return np.sort(permutation[count:]), np.sort(permutation[:count])


def take(split: dict[str, np.ndarray], indices: np.ndarray) -> dict[str, np.ndarray]:
  """Return the examples of `split` (arrays with a leading example axis) at `indices`."""
  return {name: array[indices] for name, array in split.items()}
