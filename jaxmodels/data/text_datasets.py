"""Text classification data sets as padded token-id arrays: TREC and MR.

`load_text_data(config)` reads the sentences of `config.data.name` from `config.data_dir`,
builds a `Vocabulary` from the training split only, and encodes both splits as i32[N, T] with
T = `config.data.max_len`. Id 0 is padding and id 1 an unknown word. The tokenizer lower-cases
the text when `config.data.lowercase` is True. Padding goes after the
tokens by default (`config.data.padding_side = "post"`), and text longer than T loses its end
(`config.data.truncation_side = "post"`).

MR has no fixed split: `config.data.fold` of `config.data.num_folds` folds is the test split,
from a permutation drawn from `config.data.split_seed` (see `jaxmodels.data.mr.split_mr`). The
split seed is separate from `config.seed`, so runs with different training seeds share a split.
With `config.data.validation_fraction` above 0, that share of the training split (drawn from
`config.data.validation_seed`) becomes a validation split before the vocabulary is built, so
validation words are as new to the model as test words.

The vocabulary of a run is stored as `vocab.json` in `config.workdir` when the data is first
loaded, and read back from there when it exists. A resumed run and a prediction from the
checkpoints therefore map words to the ids the embeddings were trained with, even if the data
files or the tokenizer change in between. Delete `vocab.json` together with the checkpoints to
start a run over.
"""

import os
import pathlib
from collections.abc import Sequence
from typing import NamedTuple

import jax
import ml_collections
import numpy as np

from jaxmodels import errors
from jaxmodels.data import mr
from jaxmodels.data import splits
from jaxmodels.data import text
from jaxmodels.data import trec
from jaxmodels.ops import basic

VOCAB_FILE = "vocab.json"

# Class names of each text data set, by `config.data.name`.
CLASS_NAMES: dict[str, tuple[str, ...]] = {"trec": trec.TREC_CLASSES, "mr": mr.MR_CLASSES}

Split = tuple[list[str], np.ndarray]


class TextData(NamedTuple):
  """Encoded splits of a text data set.

  Attributes:
    train: `{"inputs": i32[N, T], "labels": i32[N]}`.
    test: the same for the test split.
    class_names: K class names; labels index into them.
    vocab: the vocabulary that produced the ids.
    validation: the same for the validation split, or None without one.
  """

  train: dict[str, np.ndarray]
  test: dict[str, np.ndarray]
  class_names: tuple[str, ...]
  vocab: text.Vocabulary
  validation: dict[str, np.ndarray] | None = None


def read_splits(config: ml_collections.ConfigDict) -> tuple[Split, Split]:
  """Read the raw (texts, labels) of the training and test splits of `config.data.name`.

  Raises:
    ValueError: if `config.data.name` is not a text data set.
    DataFileNotFoundError, DataFormatError: from the loaders in `jaxmodels.data`.
  """
  name = config.data.name
  if name == "trec":
    splits = trec.load_trec(config.data_dir)
    return splits["train"], splits["test"]
  if name == "mr":
    texts, labels = mr.load_mr(config.data_dir)
    return mr.split_mr(texts, labels, num_folds=config.data.num_folds, fold=config.data.fold,
                       seed=config.data.split_seed)
  raise ValueError(
      f"config.data.name={name!r} is not a text data set; use one of {tuple(CLASS_NAMES)}.")


def vocabulary_path(workdir: str | os.PathLike[str]) -> pathlib.Path:
  """Return the path of the vocabulary file of a run's workdir."""
  return pathlib.Path(workdir) / VOCAB_FILE


def workdir_vocabulary(config: ml_collections.ConfigDict,
                       train_texts: Sequence[str]) -> text.Vocabulary:
  """Return the vocabulary saved in `config.workdir`, or build one and save it there.

  A new vocabulary contains the `config.data.vocab_size - 2` most frequent tokens of
  `train_texts`, tokenized with `config.data.lowercase`. Only process 0 writes the file,
  through a temporary file and a rename, so a reader never sees half of it.

  Raises:
    ConfigError: the saved vocabulary has more entries than `config.data.vocab_size`, so its
      ids would not fit the embedding table, or it was built with another `lowercase` setting.
    ValueError: the file is not a vocabulary file.
  """
  path = vocabulary_path(config.workdir)
  vocab_size = config.data.vocab_size
  lowercase = config.data.lowercase
  if path.exists():
    vocab = text.Vocabulary.load(path)
    if len(vocab) > vocab_size:
      raise errors.ConfigError(
          f"{path} contains {len(vocab)} entries but config.data.vocab_size={vocab_size}. Resume "
          f"with the vocab_size the run started with, or use a new workdir.")
    if vocab.lowercase != lowercase:
      raise errors.ConfigError(
          f"{path} was built with lowercase={vocab.lowercase} but "
          f"config.data.lowercase={lowercase}. Resume with "
          f"--config.data.lowercase={vocab.lowercase}, or use a new workdir.")
    return vocab

  token_lists = [text.tokenize(t, lowercase=lowercase) for t in train_texts]
  vocab = text.Vocabulary.build(token_lists, vocab_size=vocab_size, lowercase=lowercase)
  if jax.process_index() == 0:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    vocab.save(temporary)
    os.replace(temporary, path)
  return vocab


def encode(config: ml_collections.ConfigDict, vocab: text.Vocabulary,
           texts: Sequence[str]) -> np.ndarray:
  """Encode texts as i32[N, T] ids with the length and sides of `config.data`.

  The ids are checked on the host against `config.data.vocab_size`, the size of the embedding
  table, because the embedding lookup cannot raise under `jit`.
  """
  ids = text.encode_batch(
      texts, vocab, max_len=config.data.max_len, padding_side=config.data.padding_side,
      truncation_side=config.data.truncation_side)  # [N, T]
  basic.check_token_ids(ids, config.data.vocab_size)
  return ids


def load_text_data(config: ml_collections.ConfigDict) -> TextData:
  """Read, split and encode the text data set of `config`, with the workdir's vocabulary.

  Args:
    config: a run config. Reads `data_dir`, `workdir` and `data.name`, `data.vocab_size`,
      `data.lowercase`, `data.max_len`, `data.padding_side`, `data.truncation_side`, and for MR
      `data.num_folds`, `data.fold` and `data.split_seed`, and `data.validation_fraction`
      and `data.validation_seed`.

  Returns:
    The encoded splits, class names and vocabulary.
  """
  (train_texts, train_labels), (test_texts, test_labels) = read_splits(config)

  # The validation part is removed from the training split before the vocabulary is built.
  validation = None
  if config.data.validation_fraction:
    train_index, validation_index = splits.validation_indices(
        len(train_texts), config.data.validation_fraction, config.data.validation_seed)
    validation = ([train_texts[i] for i in validation_index], train_labels[validation_index])
    train_texts, train_labels = [train_texts[i] for i in train_index], train_labels[train_index]

  vocab = workdir_vocabulary(config, train_texts)
  return TextData(
      train={"inputs": encode(config, vocab, train_texts), "labels": train_labels},
      test={"inputs": encode(config, vocab, test_texts), "labels": test_labels},
      class_names=CLASS_NAMES[config.data.name],
      vocab=vocab,
      validation=None if validation is None else {
          "inputs": encode(config, vocab, validation[0]), "labels": validation[1]},
  )
