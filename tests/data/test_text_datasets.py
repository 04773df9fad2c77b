"""Tests for jaxmodels.data.text_datasets on tiny TREC and MR files written by each test."""

import pathlib

import numpy as np
import pytest

from experiments.configs import lstm_mr
from experiments.configs import lstm_trec
from jaxmodels.data import datasets
from jaxmodels.data import splits
from jaxmodels.data import text
from jaxmodels.data import text_datasets

TRAIN_LINES = [
    "HUM:ind Who wrote the novel ?",
    "LOC:city Where is the old bridge ?",
    "NUM:count How many moons does Mars have ?",
    "HUM:ind Who painted the bridge ?",
    "DESC:def What is a novel ?",
    "ENTY:animal What animal is the fastest ?",
]
TEST_LINES = [
    "LOC:country Where is Zanzibar ?",
    "ABBR:exp What does NASA stand for ?",
]
POS_LINES = ["a warm and witty film . ", "witty , warm and wise . ", "a fine film . "]
NEG_LINES = ["a dull and tired film . ", "dull , dull , dull . "]


def write_trec(directory: pathlib.Path, train=TRAIN_LINES, test=TEST_LINES) -> pathlib.Path:
  directory.mkdir(parents=True, exist_ok=True)
  (directory / "train_5500.label").write_bytes("".join(f"{line}\n" for line in train).encode())
  (directory / "TREC_10.label").write_bytes("".join(f"{line}\n" for line in test).encode())
  return directory


def write_mr(directory: pathlib.Path, pos=POS_LINES, neg=NEG_LINES) -> pathlib.Path:
  directory.mkdir(parents=True, exist_ok=True)
  (directory / "rt-polarity.pos").write_bytes("".join(f"{line}\n" for line in pos).encode())
  (directory / "rt-polarity.neg").write_bytes("".join(f"{line}\n" for line in neg).encode())
  return directory


@pytest.fixture
def trec_config(tmp_path):
  config = lstm_trec.get_config("smoke")
  config.data_dir = str(write_trec(tmp_path / "trec"))
  config.workdir = str(tmp_path / "workdir")
  config.data.max_len = 8
  return config


@pytest.fixture
def mr_config(tmp_path):
  config = lstm_mr.get_config("smoke")
  config.data_dir = str(write_mr(tmp_path / "mr"))
  config.workdir = str(tmp_path / "workdir")
  config.data.max_len = 8
  return config


def test_load_dataset_trec_arrays(trec_config):
  dataset = datasets.load_dataset(trec_config)

  assert dataset.train["inputs"].shape == (6, 8)
  assert dataset.train["inputs"].dtype == np.int32
  assert dataset.test["inputs"].shape == (2, 8)
  np.testing.assert_array_equal(dataset.train["labels"], [3, 4, 5, 3, 1, 2])
  np.testing.assert_array_equal(dataset.test["labels"], [4, 0])
  assert dataset.num_classes == 6
  assert dataset.class_names == ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
  assert dataset.vocab_size == trec_config.data.vocab_size


def test_load_dataset_trec_ids_decode_to_tokens(trec_config):
  dataset = datasets.load_dataset(trec_config)

  # Post padding: the tokens first, then zeros.
  row = dataset.train["inputs"][2]
  assert dataset.vocab.decode(row) == [
      "how", "many", "moons", "does", "mars", "have", "?", "<pad>"]
  # "zanzibar", "nasa" and "stand" occur only in the test split, so they are unknown.
  assert dataset.vocab.decode(dataset.test["inputs"][0][:4]) == ["where", "is", "<unk>", "?"]
  assert "nasa" not in dataset.vocab.words


def test_load_dataset_trec_keeps_case(trec_config):
  trec_config.data.lowercase = False

  dataset = datasets.load_dataset(trec_config)

  assert not dataset.vocab.lowercase
  assert dataset.vocab.decode(dataset.train["inputs"][2][:6]) == [
      "How", "many", "moons", "does", "Mars", "have"]
  assert "how" not in dataset.vocab.words
  saved = text.Vocabulary.load(pathlib.Path(trec_config.workdir) / "vocab.json")
  assert not saved.lowercase
  # Encoding new text, as prediction does, keeps the case too.
  ids = text_datasets.encode(trec_config, dataset.vocab, ["Who painted Mars ?", "who ?"])
  assert dataset.vocab.decode(ids[0][:4]) == ["Who", "painted", "Mars", "?"]
  assert dataset.vocab.decode(ids[1][:2]) == ["<unk>", "?"]


def test_load_dataset_rejects_other_case_vocabulary(trec_config):
  pathlib.Path(trec_config.workdir).mkdir(parents=True)
  text.Vocabulary(["<pad>", "<unk>", "Who"], lowercase=False).save(
      pathlib.Path(trec_config.workdir) / "vocab.json")

  with pytest.raises(ValueError, match=r"built with lowercase=False but "
                     r"config.data.lowercase=True\. Resume with --config.data.lowercase=False"):
    datasets.load_dataset(trec_config)


def test_load_dataset_trec_pre_padding(trec_config):
  trec_config.data.padding_side = "pre"

  dataset = datasets.load_dataset(trec_config)

  row = dataset.train["inputs"][0]
  np.testing.assert_array_equal(row[:3], [0, 0, 0])
  assert dataset.vocab.decode(row[3:]) == ["who", "wrote", "the", "novel", "?"]


def test_load_dataset_writes_vocabulary(trec_config):
  dataset = datasets.load_dataset(trec_config)

  path = pathlib.Path(trec_config.workdir) / "vocab.json"
  assert text.Vocabulary.load(path) == dataset.vocab
  assert not path.with_name("vocab.json.tmp").exists()


def test_load_dataset_reuses_saved_vocabulary(trec_config):
  saved = text.Vocabulary(["<pad>", "<unk>", "bridge", "who"])
  pathlib.Path(trec_config.workdir).mkdir(parents=True)
  saved.save(pathlib.Path(trec_config.workdir) / "vocab.json")

  dataset = datasets.load_dataset(trec_config)

  assert dataset.vocab == saved
  assert dataset.vocab.decode(dataset.train["inputs"][3][:4]) == ["who", "<unk>", "<unk>",
                                                                   "bridge"]


def test_load_dataset_rejects_saved_vocabulary_larger_than_table(trec_config):
  trec_config.data.vocab_size = 3
  pathlib.Path(trec_config.workdir).mkdir(parents=True)
  text.Vocabulary(["<pad>", "<unk>", "bridge", "who"]).save(
      pathlib.Path(trec_config.workdir) / "vocab.json")

  with pytest.raises(ValueError, match="contains 4 entries but config.data.vocab_size=3"):
    datasets.load_dataset(trec_config)


def test_load_dataset_vocab_size_caps_vocabulary(trec_config):
  trec_config.data.vocab_size = 5

  dataset = datasets.load_dataset(trec_config)

  # The three most frequent training tokens: "?" 6 times, "the" 4 times, "is" 3 times.
  assert dataset.vocab.words == ("<pad>", "<unk>", "?", "the", "is")
  assert dataset.train["inputs"].max() < 5


def test_load_dataset_mr_classes(mr_config):
  dataset = datasets.load_dataset(mr_config)

  assert dataset.num_classes == 2
  assert dataset.class_names == ("negative", "positive")
  # 5 snippets in 5 folds: one test snippet.
  assert len(dataset.train["labels"]) == 4
  assert len(dataset.test["labels"]) == 1


def test_read_splits_mr_folds_partition_data(mr_config):
  test_texts = []
  for fold in range(mr_config.data.num_folds):
    mr_config.data.fold = fold
    (train_texts, _), (texts, _) = text_datasets.read_splits(mr_config)
    assert not set(train_texts) & set(texts)
    test_texts.extend(texts)

  expected = [line.rstrip() for line in POS_LINES + NEG_LINES]
  assert sorted(test_texts) == sorted(expected)


def test_read_splits_mr_split_ignores_training_seed(mr_config):
  first = text_datasets.read_splits(mr_config)
  mr_config.seed = 7
  second = text_datasets.read_splits(mr_config)
  mr_config.data.split_seed = 3
  third = text_datasets.read_splits(mr_config)

  assert first[1][0] == second[1][0]
  assert [first[1][0], first[0][0]] != [third[1][0], third[0][0]]


def test_read_splits_rejects_other_data_sets(trec_config):
  trec_config.data.name = "mnist"

  with pytest.raises(ValueError, match="'mnist' is not a text data set"):
    text_datasets.read_splits(trec_config)


def test_validation_split_excluded_from_vocabulary(trec_config):
  trec_config.data.validation_fraction = 1 / 3

  dataset = datasets.load_dataset(trec_config)

  # 2 of the 6 training questions move to the validation split, with their labels.
  assert dataset.validation["inputs"].shape == (2, 8)
  assert dataset.train["inputs"].shape == (4, 8)
  _, validation_index = splits.validation_indices(6, 1 / 3, seed=0)
  labels = np.array([3, 4, 5, 3, 1, 2])
  np.testing.assert_array_equal(dataset.validation["labels"], labels[validation_index])
  # The vocabulary has only the words of the remaining 4 training questions.
  train_words = {word for i in sorted(set(range(6)) - set(validation_index))
                 for word in text.tokenize(TRAIN_LINES[i].split(" ", 1)[1])}
  assert set(dataset.vocab.words) == train_words | {"<pad>", "<unk>"}
