"""Tests for jaxmodels.data.mr on tiny snippet files written by each test."""

import pathlib
import re

import numpy as np
import pytest

from jaxmodels.data import mr
from jaxmodels.data.errors import DataFileNotFoundError, DataFormatError

REAL_DIR = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mr"

# In cp1252, 0x85 is an ellipsis, 0x97 an em dash and 0xe9 "é".
POS_BYTES = (
    b"a gorgeous , witty , seductive movie . \n"
    b"interwoven\x85 [the film] addresses race \x97 and commerce . \n"
    b"the caf\xe9 scene is great \n"
)
NEG_BYTES = (
    b"simplistic , silly and tedious . \n"
    b"it's so laddish and juvenile\x85 \n"
)


def write_mr(directory: pathlib.Path, pos: bytes = POS_BYTES, neg: bytes = NEG_BYTES) -> None:
  (directory / "rt-polarity.pos").write_bytes(pos)
  (directory / "rt-polarity.neg").write_bytes(neg)


def test_mr_classes_order():
  assert mr.MR_CLASSES == ("negative", "positive")


def test_load_mr_values(tmp_path):
  write_mr(tmp_path)

  texts, labels = mr.load_mr(tmp_path)

  assert texts == [
      "a gorgeous , witty , seductive movie .",
      "interwoven\u2026 [the film] addresses race \u2014 and commerce .",
      "the caf\u00e9 scene is great",
      "simplistic , silly and tedious .",
      "it's so laddish and juvenile\u2026",
  ]
  assert labels.dtype == np.int32
  np.testing.assert_array_equal(labels, [1, 1, 1, 0, 0])


def test_load_mr_ellipsis_does_not_split(tmp_path):
  write_mr(tmp_path)

  texts, _ = mr.load_mr(tmp_path)

  # Decoded as latin-1, 0x85 would become U+0085, a line break for str.splitlines.
  assert len(texts) == 5
  assert all(len(text.splitlines()) == 1 for text in texts)
  assert not any("\x85" in text for text in texts)


def test_load_mr_without_final_newline(tmp_path):
  write_mr(tmp_path, pos=b"good \ngreat", neg=b"bad \n")

  texts, labels = mr.load_mr(tmp_path)

  assert texts == ["good", "great", "bad"]
  np.testing.assert_array_equal(labels, [1, 1, 0])


def test_load_mr_blank_line(tmp_path):
  write_mr(tmp_path, neg=b"bad \n \nworse \n")
  path = tmp_path / "rt-polarity.neg"

  with pytest.raises(DataFormatError, match=re.escape(f"{path}, line 2") + ".*blank"):
    mr.load_mr(tmp_path)


def test_load_mr_undefined_byte(tmp_path):
  # 0x81 is one of the five bytes that cp1252 leaves undefined.
  write_mr(tmp_path, pos=b"good \nfine \x81 \n")
  path = tmp_path / "rt-polarity.pos"

  with pytest.raises(DataFormatError, match=re.escape(f"{path}, line 2") + ".*0x81"):
    mr.load_mr(tmp_path)


def test_load_mr_missing_file(tmp_path):
  write_mr(tmp_path)
  (tmp_path / "rt-polarity.neg").unlink()

  with pytest.raises(DataFileNotFoundError) as info:
    mr.load_mr(tmp_path)

  message = str(info.value)
  assert str(tmp_path / "rt-polarity.neg") in message
  assert str(tmp_path / "rt-polarity.pos") not in message
  assert "--config.data_dir=" in message


def test_load_mr_missing_directory(tmp_path):
  directory = tmp_path / "absent"

  with pytest.raises(FileNotFoundError, match="does not exist") as info:
    mr.load_mr(directory)

  assert str(directory / "rt-polarity.pos") in str(info.value)
  assert str(directory / "rt-polarity.neg") in str(info.value)


def make_data(count: int) -> tuple[list[str], np.ndarray]:
  texts = [f"snippet {i}" for i in range(count)]
  labels = (np.arange(count) % 2).astype(np.int32)
  return texts, labels


@pytest.mark.parametrize("count, num_folds", [(23, 10), (20, 10), (7, 3), (5, 5)])
def test_split_mr_folds_partition(count, num_folds):
  texts, labels = make_data(count)

  test_parts = []
  for fold in range(num_folds):
    (train_texts, train_labels), (test_texts, test_labels) = mr.split_mr(
        texts, labels, num_folds=num_folds, fold=fold, seed=3
    )
    assert sorted(train_texts + test_texts) == sorted(texts)
    assert not set(train_texts) & set(test_texts)
    # Each text keeps its own label.
    for part_texts, part_labels in ((train_texts, train_labels), (test_texts, test_labels)):
      np.testing.assert_array_equal(part_labels, [int(t.split()[1]) % 2 for t in part_texts])
    assert len(test_texts) in (count // num_folds, count // num_folds + 1)
    test_parts.append(test_texts)

  # The test parts of all folds are disjoint and together hold every example once.
  all_test = [text for part in test_parts for text in part]
  assert sorted(all_test) == sorted(texts)


def test_split_mr_test_part_is_slice_of_permutation():
  texts, labels = make_data(20)
  permutation = np.random.RandomState(7).permutation(20)

  _, (test_texts, _) = mr.split_mr(texts, labels, num_folds=10, fold=3, seed=7)

  assert test_texts == [texts[i] for i in permutation[6:8]]


def test_split_mr_deterministic_by_seed():
  texts, labels = make_data(50)

  first = mr.split_mr(texts, labels, fold=2, seed=11)
  second = mr.split_mr(texts, labels, fold=2, seed=11)
  other = mr.split_mr(texts, labels, fold=2, seed=12)

  assert first[0][0] == second[0][0]
  assert first[1][0] == second[1][0]
  np.testing.assert_array_equal(first[1][1], second[1][1])
  assert first[1][0] != other[1][0]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"fold": 10}, r"fold must be in \[0, 10\), got 10"),
        ({"fold": -1}, r"fold must be in \[0, 10\), got -1"),
        ({"num_folds": 1}, "num_folds must be between 2"),
        ({"num_folds": 21}, "num_folds must be between 2"),
    ],
)
def test_split_mr_invalid_options(kwargs, match):
  texts, labels = make_data(20)

  with pytest.raises(ValueError, match=match):
    mr.split_mr(texts, labels, **kwargs)


def test_split_mr_length_mismatch():
  texts, labels = make_data(20)

  with pytest.raises(ValueError, match="N = len"):
    mr.split_mr(texts, labels[:-1])


@pytest.mark.skipif(not REAL_DIR.is_dir(), reason=f"{REAL_DIR} not present")
def test_load_mr_real_counts():
  texts, labels = mr.load_mr(REAL_DIR)

  assert len(texts) == 10662
  np.testing.assert_array_equal(np.bincount(labels), [5331, 5331])
  assert len(set(texts)) == len(texts)
  assert all(text == text.rstrip() and text for text in texts)
