"""Errors raised by the data loaders.

A caller can catch `DataFileNotFoundError` (a `FileNotFoundError`) for a data set that is not on
disk and `DataFormatError` (a `ValueError`) for a file that is present but cannot be parsed. Each
message names the file and the fix.
"""

import os
from collections.abc import Sequence


# Command-line flag that sets the data directory of a run (the `data_dir` key of the config).
DATA_DIR_FLAG = "--config.data_dir"


class DataFileNotFoundError(FileNotFoundError):
  """A file that a loader needs is not in the data directory."""


class DataFormatError(ValueError):
  """A data file exists but its contents are invalid."""


def missing_files_error(
    dataset: str,
    data_dir: str | os.PathLike[str],
    expected: Sequence[str],
    *,
    source: str,
) -> DataFileNotFoundError:
  """Build the error for data files that are not found in `data_dir`.

  Args:
    dataset: data set name for the message, such as "MNIST".
    data_dir: directory that was searched.
    expected: one line per missing file, giving the path or paths that were tried.
    source: where the files can be obtained, as a sentence.

  Returns:
    An error that lists the expected paths and names the flag that sets `data_dir`.
  """
  lines = [f"{dataset}: data file(s) not found in data_dir={os.fspath(data_dir)!r}:"]
  if os.path.exists(data_dir) and not os.path.isdir(data_dir):
    lines = [f"{dataset}: data_dir={os.fspath(data_dir)!r} is a file, not a directory. "
             "Expected:"]
  elif not os.path.isdir(data_dir):
    lines = [f"{dataset}: data directory {os.fspath(data_dir)!r} does not exist. Expected:"]
  lines.extend(f"  {path}" for path in expected)
  lines.append(
      f"Set {DATA_DIR_FLAG}=/path/to/{dataset.lower()} to the directory that contains "
      f"these files. {source}"
  )
  return DataFileNotFoundError("\n".join(lines))
