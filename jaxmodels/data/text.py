"""Tokenize sentences, build a word vocabulary and encode text as padded id arrays.

Legend: N texts, T tokens per text (max_len).

`tokenize` lower-cases the text (unless `lowercase=False`) and returns the matches of this
regular expression, in order:

    [^\\W_]+(?=n't\\b)          word before a "n't" clitic: "do" in "don't", "ca" in "can't"
  | n't\\b                      the "n't" clitic itself
  | '(?:s|re|ve|d|ll|m)\\b      the clitics 's 're 've 'd 'll 'm
  | [^\\W_]+(?:-[^\\W_]+)*       a run of letters and digits, with internal hyphens kept
  | \\S                         any other character except whitespace, as a token of its own

`[^\\W_]` is a character for which `str.isalnum()` is true: a Unicode letter or digit.
Clitics are split off as in the Penn Treebank, so "doesn't" and the pre-split "does n't" both
give ["does", "n't"], and "he's" gives ["he", "'s"]. Punctuation becomes single-character
tokens: "3.5" gives ["3", ".", "5"]. Only the ASCII apostrophe (') starts a clitic, and a
typographic one (’) is a punctuation token.

A `Vocabulary` records whether its words were lower-cased, and `encode_batch` tokenizes new text
the same way, so a saved vocabulary encodes prediction inputs as it encoded the training text.
"""

import collections
import json
import os
import pathlib
import re
from collections.abc import Iterable, Sequence

import numpy as np

PAD = "<pad>"
UNK = "<unk>"
PAD_ID = 0
UNK_ID = 1

_TOKEN_PATTERN = re.compile(
    r"""
      [^\W_]+(?=n't\b)
    | n't\b
    | '(?:s|re|ve|d|ll|m)\b
    | [^\W_]+(?:-[^\W_]+)*
    | \S
    """,
    re.VERBOSE,
)
_FILE_FORMAT = "jaxmodels.vocabulary"
# Version 2 added "lowercase". Version 1 files were always lower-cased.
_FILE_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_SIDES = ("pre", "post")


def tokenize(text: str, lowercase: bool = True) -> list[str]:
  """Split text into tokens with the regular expression in the module docstring.

  Args:
    text: one sentence or document.
    lowercase: lower-case the text first. With False, "What" and "what" are different words.

  Returns:
    The tokens in order, for example ["it", "does", "n't", "work", "."] for "It doesn't work."
    (["It", "does", "n't", "work", "."] with `lowercase=False`).
  """
  return _TOKEN_PATTERN.findall(text.lower() if lowercase else text)


class Vocabulary:
  """Word list that maps tokens to integer ids.

  Id 0 is the padding token "<pad>" and id 1 the unknown-word token "<unk>". Words follow from
  id 2. `encode` maps every token outside the list to id 1, including a literal "<pad>", so id 0
  only ever marks padding.
  """

  def __init__(self, words: Sequence[str], *, lowercase: bool = True):
    """Create a vocabulary from its words in id order.

    Args:
      words: "<pad>", "<unk>", then distinct words. The position of a word is its id.
      lowercase: whether the words come from lower-cased text. `encode_batch` tokenizes
        with this setting.

    Raises:
      ValueError: the first two words are not "<pad>" and "<unk>", a word is not a str, a
        word appears twice, or `lowercase` is not a bool.
    """
    if not isinstance(lowercase, bool):
      raise ValueError(f"Vocabulary: lowercase must be a bool, got {lowercase!r}")
    words = tuple(words)
    if words[:2] != (PAD, UNK):
      raise ValueError(
          f"Vocabulary: words must start with {PAD!r}, {UNK!r}, got {list(words[:2])}"
      )
    ids = {}
    for index, word in enumerate(words):
      if not isinstance(word, str):
        raise ValueError(f"Vocabulary: word {index} must be a str, got {word!r}")
      if word in ids:
        raise ValueError(f"Vocabulary: word {word!r} appears at ids {ids[word]} and {index}")
      ids[word] = index
    del ids[PAD]
    self._words = words
    self._ids = ids
    self._lowercase = lowercase

  @classmethod
  def build(cls, token_lists: Iterable[Sequence[str]], vocab_size: int = 10000, *,
            lowercase: bool = True) -> "Vocabulary":
    """Build a vocabulary from the most frequent tokens of a corpus.

    Pass the tokens of the training split only, so that test words do not leak into the
    vocabulary. Words are ranked by count, highest first, and ties by code-point order of
    the word, so the result does not depend on the order of the corpus.

    Args:
      token_lists: tokens of each text, for example `[tokenize(t) for t in train_texts]`.
        The reserved tokens "<pad>" and "<unk>" are not counted.
      vocab_size: maximum number of ids including "<pad>" and "<unk>", so at most
        `vocab_size - 2` words are kept. A corpus with fewer distinct words gives a smaller
        vocabulary, so size embedding tables by `vocab_size` or by `len(vocab)`, the actual
        size. Every id is below both.
      lowercase: the `lowercase` argument the tokens were made with, recorded so that
        `encode_batch` tokenizes new text the same way.

    Returns:
      The vocabulary.

    Raises:
      ValueError: `vocab_size` is not an int of at least 3 (3 leaves room for one word), or
        `token_lists` or one of its items is a str rather than a list of tokens.
    """
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 3:
      raise ValueError(
          f"Vocabulary.build: vocab_size must be an int of at least 3, got {vocab_size!r}"
      )
    if isinstance(token_lists, str):
      raise ValueError("Vocabulary.build: token_lists must be a list of token lists, got a str")

    counts = collections.Counter()
    for tokens in token_lists:
      if isinstance(tokens, str):
        raise ValueError(
            f"Vocabulary.build: each item of token_lists must be a list of tokens, got the "
            f"str {tokens!r}. Call tokenize() on each text first"
        )
      counts.update(tokens)
    counts.pop(PAD, None)
    counts.pop(UNK, None)

    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    words = [word for word, _ in ranked[: vocab_size - 2]]
    return cls([PAD, UNK, *words], lowercase=lowercase)

  @property
  def words(self) -> tuple[str, ...]:
    """All entries in id order, starting with "<pad>" and "<unk>"."""
    return self._words

  @property
  def lowercase(self) -> bool:
    """Whether the words come from lower-cased text."""
    return self._lowercase

  def __len__(self) -> int:
    return len(self._words)

  def __eq__(self, other: object) -> bool:
    if not isinstance(other, Vocabulary):
      return NotImplemented
    return self._words == other._words and self._lowercase == other._lowercase

  def __hash__(self) -> int:
    return hash((self._words, self._lowercase))

  def __repr__(self) -> str:
    return (f"Vocabulary(size={len(self)}, lowercase={self._lowercase}, "
            f"words={list(self._words[2:7])}...)")

  def encode(self, tokens: Iterable[str]) -> list[int]:
    """Map tokens to ids, giving id 1 ("<unk>") to tokens outside the vocabulary."""
    return [self._ids.get(token, UNK_ID) for token in tokens]

  def decode(self, ids: Iterable[int]) -> list[str]:
    """Map ids back to tokens for inspecting encoded text. Id 0 gives "<pad>"."""
    return [self._words[int(index)] for index in ids]

  def save(self, path: str | os.PathLike[str]) -> None:
    """Write the vocabulary to `path` as UTF-8 JSON with a format name and version."""
    record = {"format": _FILE_FORMAT, "version": _FILE_VERSION, "lowercase": self._lowercase,
              "words": list(self._words)}
    text = json.dumps(record, ensure_ascii=False, indent=0)
    pathlib.Path(path).write_text(text + "\n", encoding="utf-8")

  @classmethod
  def load(cls, path: str | os.PathLike[str]) -> "Vocabulary":
    """Read a vocabulary written by `save`. A version 1 file has lower-cased words.

    Raises:
      FileNotFoundError: `path` does not exist.
      ValueError: the file is not a vocabulary file of a supported version, or its word list
        is invalid. The message names the file.
    """
    try:
      record = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
      raise ValueError(f"{path}: not a vocabulary file: {error}") from error
    if not isinstance(record, dict) or record.get("format") != _FILE_FORMAT:
      raise ValueError(
          f"{path}: not a vocabulary file. Expected a JSON object with \"format\": "
          f"{_FILE_FORMAT!r}, as written by Vocabulary.save"
      )
    version = record.get("version")
    if isinstance(version, bool) or version not in _READABLE_VERSIONS:
      raise ValueError(
          f"{path}: vocabulary file version {version!r} is not supported. This version of "
          f"jaxmodels reads versions {', '.join(map(str, _READABLE_VERSIONS))}"
      )
    words = record.get("words")
    if not isinstance(words, list):
      raise ValueError(f"{path}: \"words\" must be a list, got {type(words).__name__}")
    lowercase = record.get("lowercase") if version >= 2 else True
    if not isinstance(lowercase, bool):
      raise ValueError(f"{path}: \"lowercase\" must be true or false, got {lowercase!r}")
    try:
      return cls(words, lowercase=lowercase)
    except ValueError as error:
      raise ValueError(f"{path}: {error}") from error


def _check_side(name: str, value: str) -> None:
  if value not in _SIDES:
    raise ValueError(f"encode_batch: {name} must be 'pre' or 'post', got {value!r}")


def encode_batch(
    texts: Sequence[str],
    vocab: Vocabulary,
    *,
    max_len: int = 100,
    padding_side: str = "post",
    truncation_side: str = "post",
) -> np.ndarray:
  """Tokenize, encode and pad texts into one id array.

  By default both sides are "post": a text longer than `max_len` keeps its first `max_len`
  tokens, and a shorter one is followed by padding. Token t then sits at position t in every
  row, and a mask `ids != 0` marks the real tokens, so position embeddings and masked
  recurrences or attention see the same layout in every row. Keras `pad_sequences` defaults
  to "pre" for both, which suits a recurrent layer without a mask that reads its last state.
  Pass "pre" for both to match Keras.

  Args:
    texts: raw texts, tokenized with `tokenize` and the vocabulary's `lowercase` setting.
    vocab: vocabulary for the ids. Tokens outside it become id 1.
    max_len: number of positions T per row, at least 1.
    padding_side: "post" pads after the tokens, "pre" before them.
    truncation_side: "post" drops tokens from the end, "pre" from the start.

  Returns:
    i32[N, T] of token ids, 0 at padded positions. An empty text gives a row of zeros, which
    has no real token to attend to or pool over.

  Raises:
    ValueError: `max_len` is below 1, a side is not "pre" or "post", or `texts` is a single
      str rather than a sequence of texts.
  """
  if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
    raise ValueError(f"encode_batch: max_len must be an int of at least 1, got {max_len!r}")
  _check_side("padding_side", padding_side)
  _check_side("truncation_side", truncation_side)
  if isinstance(texts, str):
    raise ValueError("encode_batch: texts must be a sequence of texts, got a single str")

  ids = np.full((len(texts), max_len), PAD_ID, dtype=np.int32)  # [N, T]
  for row, text in enumerate(texts):
    if not isinstance(text, str):
      raise ValueError(f"encode_batch: texts[{row}] must be a str, got {type(text).__name__}")
    tokens = vocab.encode(tokenize(text, lowercase=vocab.lowercase))
    tokens = tokens[-max_len:] if truncation_side == "pre" else tokens[:max_len]
    if padding_side == "pre":
      ids[row, max_len - len(tokens):] = tokens
    else:
      ids[row, : len(tokens)] = tokens
  return ids
