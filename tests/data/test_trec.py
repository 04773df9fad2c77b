"""Tests for jaxmodels.data.trec on tiny label files written by each test."""

import pathlib
import re

import numpy as np
import pytest

from jaxmodels.data import trec
from jaxmodels.data.errors import DataFileNotFoundError, DataFormatError

REAL_DIR = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data" / "trec"

TRAIN_BYTES = (
    b"DESC:manner How did serfdom develop in and then leave Russia ?\n"
    b"LOC:city Which city has the oldest relationship as a sister\xf0city with Los Angeles ?\n"
    b"ABBR:exp What does NASA stand for ?\n"
    b"NUM:date When was Ozzy Osbourne born ?\n"
)
TEST_BYTES = (
    b"HUM:ind Who was the first man on the moon ?\n"
    b"ENTY:animal What is the fastest fish ?\n"
)


def write_trec(directory: pathlib.Path, train: bytes = TRAIN_BYTES,
               test: bytes = TEST_BYTES) -> None:
  (directory / "train_5500.label").write_bytes(train)
  (directory / "TREC_10.label").write_bytes(test)


def test_trec_classes_order():
  assert trec.TREC_CLASSES == ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")


def test_load_trec_values(tmp_path):
  write_trec(tmp_path)

  data = trec.load_trec(tmp_path)

  assert set(data) == {"train", "test"}
  train_texts, train_labels = data["train"]
  assert train_texts == [
      "How did serfdom develop in and then leave Russia ?",
      "Which city has the oldest relationship as a sister\u00f0city with Los Angeles ?",
      "What does NASA stand for ?",
      "When was Ozzy Osbourne born ?",
  ]
  assert train_labels.dtype == np.int32
  np.testing.assert_array_equal(train_labels, [1, 4, 0, 5])
  test_texts, test_labels = data["test"]
  assert test_texts == ["Who was the first man on the moon ?", "What is the fastest fish ?"]
  np.testing.assert_array_equal(test_labels, [3, 2])


def test_read_trec_file_without_final_newline(tmp_path):
  path = tmp_path / "questions.label"
  path.write_bytes(b"HUM:ind Who ?\nNUM:count How many ?")

  texts, labels = trec.read_trec_file(path)

  assert texts == ["Who ?", "How many ?"]
  np.testing.assert_array_equal(labels, [3, 5])


def test_read_trec_file_crlf(tmp_path):
  path = tmp_path / "questions.label"
  path.write_bytes(b"HUM:ind Who ?\r\nNUM:count How many ?\r\n")

  texts, _ = trec.read_trec_file(path)

  assert texts == ["Who ?", "How many ?"]


@pytest.mark.parametrize(
    "bad_line",
    [
        b"FOO:bar What is this ?",  # unknown coarse class
        b"desc:manner How ?",  # coarse class in lower case
        b"DESC How did it happen ?",  # no fine class
        b"DESC: How did it happen ?",  # empty fine class
        b"DESC:manner",  # no question text
        b"DESC:manner   ",  # only spaces after the label
        b"",  # blank line
    ],
)
def test_read_trec_file_malformed_line(tmp_path, bad_line):
  path = tmp_path / "questions.label"
  path.write_bytes(b"HUM:ind Who ?\nNUM:count How many ?\n" + bad_line + b"\nHUM:ind Who ?\n")

  with pytest.raises(DataFormatError, match=re.escape(f"{path}, line 3")):
    trec.read_trec_file(path)


def test_load_trec_missing_file(tmp_path):
  write_trec(tmp_path)
  (tmp_path / "TREC_10.label").unlink()

  with pytest.raises(DataFileNotFoundError) as info:
    trec.load_trec(tmp_path)

  message = str(info.value)
  assert str(tmp_path / "TREC_10.label") in message
  assert str(tmp_path / "train_5500.label") not in message
  assert "--config.data_dir=" in message


def test_load_trec_missing_directory(tmp_path):
  directory = tmp_path / "absent"

  with pytest.raises(FileNotFoundError, match="does not exist") as info:
    trec.load_trec(directory)

  assert str(directory / "train_5500.label") in str(info.value)
  assert str(directory / "TREC_10.label") in str(info.value)


def test_load_trec_data_dir_is_file(tmp_path):
  path = tmp_path / "questions.txt"
  path.write_text("DESC:def What is a caldera ?\n")

  with pytest.raises(FileNotFoundError, match="is a file, not a directory") as info:
    trec.load_trec(path)

  assert str(path) in str(info.value)
  assert "--config.data_dir=" in str(info.value)


@pytest.mark.skipif(not REAL_DIR.is_dir(), reason=f"{REAL_DIR} not present")
def test_load_trec_real_counts():
  data = trec.load_trec(REAL_DIR)

  train_texts, train_labels = data["train"]
  test_texts, test_labels = data["test"]
  assert len(train_texts) == 5452
  assert len(test_texts) == 500
  # Per-class counts in TREC_CLASSES order.
  np.testing.assert_array_equal(np.bincount(train_labels), [86, 1162, 1250, 1223, 835, 896])
  np.testing.assert_array_equal(np.bincount(test_labels), [9, 138, 94, 65, 81, 113])
  assert "sister\u00f0city" in train_texts[65]
