"""Load the TREC question classification data set (Li and Roth, 2002) with its 6 coarse classes.

Each line of the files is `COARSE:fine question text`, for example
`DESC:manner How did serfdom develop in and then leave Russia ?`. The training file
train_5500.label has 5,452 questions and the test file TREC_10.label has 500.

The files are ASCII except for one byte 0xF0 in line 66 of train_5500.label, between "sister"
and "city", so they are not valid UTF-8. Lines are split on the byte b"\\n" and decoded as
latin-1, which maps every byte to one character. The 0xF0 byte becomes "ð", a letter, so
`tokenize` keeps "sisterðcity" as one word.
"""

import os
import pathlib

import numpy as np

from jaxmodels.data.errors import DataFormatError, missing_files_error

TREC_CLASSES = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")

_SPLIT_FILES = {"train": "train_5500.label", "test": "TREC_10.label"}
_CLASS_IDS = {name: index for index, name in enumerate(TREC_CLASSES)}


def _parse_line(line: str, path: pathlib.Path, line_number: int) -> tuple[str, int]:
  label, _, text = line.partition(" ")
  coarse, _, fine = label.partition(":")
  text = text.strip()
  where = f"{path}, line {line_number}"
  if coarse not in _CLASS_IDS or not fine:
    raise DataFormatError(
        f"{where}: expected a label COARSE:fine with COARSE one of {', '.join(TREC_CLASSES)}, "
        f"got {label!r} in line {line!r}"
    )
  if not text:
    raise DataFormatError(f"{where}: label {label!r} is not followed by question text")
  return text, _CLASS_IDS[coarse]


def read_trec_file(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
  """Read one TREC label file.

  Args:
    path: file with one `COARSE:fine question text` line per question, ending in b"\\n".

  Returns:
    (texts, labels): the question texts with the label and surrounding whitespace removed,
    and i32[N] coarse class ids, indices into `TREC_CLASSES`.

  Raises:
    FileNotFoundError: `path` does not exist.
    DataFormatError: a line is blank, has no question text, or its label is not
      `COARSE:fine` with a known coarse class. The message gives the line number.
  """
  path = pathlib.Path(path)
  lines = path.read_bytes().split(b"\n")

  # A file that ends in a newline leaves one empty piece after the last split.
  if lines[-1] == b"":
    lines.pop()

  texts = []
  labels = []
  for line_number, line in enumerate(lines, start=1):
    text, label = _parse_line(line.decode("latin-1"), path, line_number)
    texts.append(text)
    labels.append(label)
  return texts, np.array(labels, dtype=np.int32)


def load_trec(data_dir: str | os.PathLike[str]) -> dict[str, tuple[list[str], np.ndarray]]:
  """Load the TREC training and test splits with coarse labels.

  Args:
    data_dir: directory that contains train_5500.label and TREC_10.label.

  Returns:
    {"train": (texts, labels), "test": (texts, labels)}, where texts is a list of N question
    strings, unchanged except for the decoding, and labels is i32[N] of indices into
    `TREC_CLASSES`. The fine labels are dropped.

  Raises:
    DataFileNotFoundError: a file is missing. The message lists every missing path.
    DataFormatError: a line is malformed (see `read_trec_file`).
  """
  data_dir = pathlib.Path(data_dir)
  paths = {split: data_dir / name for split, name in _SPLIT_FILES.items()}
  missing = [str(path) for path in paths.values() if not path.is_file()]
  if missing:
    raise missing_files_error(
        "TREC",
        data_dir,
        missing,
        source="The files are the question classification data of Li and Roth (2002), "
        "distributed by the Cognitive Computation Group (cogcomp).",
    )
  return {split: read_trec_file(path) for split, path in paths.items()}
