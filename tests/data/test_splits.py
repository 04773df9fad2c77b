"""Tests for jaxmodels.data.splits."""

import numpy as np
import pytest

from jaxmodels.data import splits


def test_validation_indices_partition_the_split():
  train, validation = splits.validation_indices(50, 0.1, seed=3)

  assert len(validation) == 5
  assert len(train) == 45
  np.testing.assert_array_equal(np.sort(np.concatenate([train, validation])), np.arange(50))
  assert np.all(np.diff(train) > 0)
  assert np.all(np.diff(validation) > 0)


def test_validation_indices_follow_the_seed():
  first = splits.validation_indices(1000, 0.1, seed=0)[1]
  again = splits.validation_indices(1000, 0.1, seed=0)[1]
  other = splits.validation_indices(1000, 0.1, seed=1)[1]

  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)
  # The permutation is NumPy's RandomState stream for the seed, which NumPy keeps fixed.
  np.testing.assert_array_equal(first, np.sort(np.random.RandomState(0).permutation(1000)[:100]))


@pytest.mark.parametrize("fraction, message", [
    (0.0, r"validation_fraction=0.0 must be in \(0, 1\)"),
    (1.0, r"validation_fraction=1.0 must be in \(0, 1\)"),
    (0.01, r"validation_fraction=0.01 makes a validation split of 0 of 20 training examples"),
    (0.99, r"validation_fraction=0.99 makes a validation split of 20 of 20 training examples"),
])
def test_validation_indices_reject_empty_parts(fraction, message):
  with pytest.raises(ValueError, match=message):
    splits.validation_indices(20, fraction, seed=0)


def test_take_selects_rows_of_every_array():
  split = {"inputs": np.arange(12).reshape(6, 2), "labels": np.arange(6)}

  part = splits.take(split, np.array([1, 4]))

  np.testing.assert_array_equal(part["inputs"], [[2, 3], [8, 9]])
  np.testing.assert_array_equal(part["labels"], [1, 4])
