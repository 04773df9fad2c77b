"""Load the MR movie review polarity data (Pang and Lee, 2005) and split it into folds.

The files rt-polarity.pos and rt-polarity.neg contain 5,331 snippets each, one per line,
lower-cased and tokenized, in Windows-1252 (cp1252). MR has no fixed test split, so results
are reported by 10-fold cross-validation, and `split_mr` picks one fold.

Lines are split on the byte b"\\n" before decoding. This matters because cp1252 byte 0x85 is
an ellipsis, while latin-1 maps it to U+0085 (NEXT LINE), which `str.splitlines` treats as a
line break: decoding as latin-1 and calling `splitlines` gives 5,346 positive lines.
"""

import os
import pathlib
from collections.abc import Sequence

import numpy as np

from jaxmodels.data.errors import DataFormatError, missing_files_error

MR_CLASSES = ("negative", "positive")

# `load_mr` returns the positive snippets first, then the negative ones.
_FILES = (("rt-polarity.pos", 1), ("rt-polarity.neg", 0))


def _read_lines(path: pathlib.Path) -> list[str]:
  lines = path.read_bytes().split(b"\n")

  # A file that ends in a newline leaves one empty piece after the last split.
  if lines[-1] == b"":
    lines.pop()

  texts = []
  for line_number, line in enumerate(lines, start=1):
    where = f"{path}, line {line_number}"
    try:
      text = line.decode("cp1252")
    except UnicodeDecodeError as error:
      raise DataFormatError(
          f"{where}: byte 0x{line[error.start]:02x} is not defined in Windows-1252 (cp1252), "
          f"the encoding of the MR files. Copy the original rt-polarity files again."
      ) from error
    # Most lines end with a space before the newline. A "\r" would come from a CRLF copy.
    text = text.rstrip(" \r")
    if not text:
      raise DataFormatError(f"{where}: line is blank, but every line must contain one snippet")
    texts.append(text)
  return texts


def load_mr(data_dir: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
  """Load all MR snippets with their polarity labels.

  Args:
    data_dir: directory that contains rt-polarity.pos and rt-polarity.neg.

  Returns:
    (texts, labels): N snippet strings with trailing spaces removed, all positive snippets
    in file order followed by all negative ones, and i32[N] labels, 1 for positive and
    0 for negative (indices into `MR_CLASSES`).

  Raises:
    DataFileNotFoundError: a file is missing. The message lists every missing path.
    DataFormatError: a line is blank or contains a byte that cp1252 does not define.
  """
  data_dir = pathlib.Path(data_dir)
  missing = [str(data_dir / name) for name, _ in _FILES if not (data_dir / name).is_file()]
  if missing:
    raise missing_files_error(
        "MR",
        data_dir,
        missing,
        source="The files are in rt-polaritydata.tar.gz, the sentence polarity data set v1.0 "
        "of Pang and Lee (Cornell movie review data).",
    )

  texts = []
  labels = []
  for name, label in _FILES:
    file_texts = _read_lines(data_dir / name)
    texts.extend(file_texts)
    labels.extend([label] * len(file_texts))
  return texts, np.array(labels, dtype=np.int32)


def split_mr(
    texts: Sequence[str],
    labels: np.ndarray,
    *,
    num_folds: int = 10,
    fold: int = 0,
    seed: int = 0,
) -> tuple[tuple[list[str], np.ndarray], tuple[list[str], np.ndarray]]:
  """Split the data into the training and test parts of one cross-validation fold.

  The examples are shuffled by a permutation drawn from `seed` and cut into `num_folds`
  contiguous parts with `np.array_split`, so the first `N % num_folds` parts contain one example
  more than the rest. Fold k tests on part k and trains on the others, so with num_folds=10,
  fold k's test part is the k-th tenth of the permutation. The test parts of one seed partition
  the data. The split is plain, not stratified. MR has as many positive as negative snippets,
  so each part is close to balanced.

  Args:
    texts: N snippets, as returned by `load_mr`.
    labels: i32[N] labels.
    num_folds: number of parts K, between 2 and N.
    fold: index of the test part, in [0, K).
    seed: seed of the permutation.

  Returns:
    ((train_texts, train_labels), (test_texts, test_labels)), each part in permutation order.

  Raises:
    ValueError: lengths differ, `num_folds` is outside [2, N], or `fold` is outside [0, K).
  """
  labels = np.asarray(labels)
  if labels.ndim != 1 or len(labels) != len(texts):
    raise ValueError(
        f"split_mr: labels must have shape [N] with N = len(texts) = {len(texts)}, got shape "
        f"{list(labels.shape)}"
    )
  if not 2 <= num_folds <= len(texts):
    raise ValueError(
        f"split_mr: num_folds must be between 2 and the number of examples ({len(texts)}), "
        f"got {num_folds}"
    )
  if not 0 <= fold < num_folds:
    raise ValueError(f"split_mr: fold must be in [0, {num_folds}), got {fold}")

  # RandomState, unlike np.random.Generator, keeps its stream fixed across NumPy releases,
  # so a seed selects the same folds after an upgrade.
  permutation = np.random.RandomState(seed).permutation(len(texts))
  parts = np.array_split(permutation, num_folds)
  test_indices = parts[fold]
  train_indices = np.concatenate(parts[:fold] + parts[fold + 1:])

  def take(indices: np.ndarray) -> tuple[list[str], np.ndarray]:
    return [texts[i] for i in indices], labels[indices]

  return take(train_indices), take(test_indices)
