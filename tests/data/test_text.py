"""Tests for jaxmodels.data.text."""

import json

import numpy as np
import pytest

from jaxmodels.data import text
from jaxmodels.data.text import Vocabulary


@pytest.mark.parametrize(
    "sentence, expected",
    [
        ("It doesn't work.", ["it", "does", "n't", "work", "."]),
        ("does n't", ["does", "n't"]),
        ("Can't stop", ["ca", "n't", "stop"]),
        ("He's here, isn't he?", ["he", "'s", "here", ",", "is", "n't", "he", "?"]),
        ("I'm we'll they'd you've we're", ["i", "'m", "we", "'ll", "they", "'d", "you", "'ve",
                                           "we", "'re"]),
        ("What 's the 21st century 's", ["what", "'s", "the", "21st", "century", "'s"]),
        ("a well-made co-op -- x-", ["a", "well-made", "co-op", "-", "-", "x", "-"]),
        ("3.5 , 1,000", ["3", ".", "5", ",", "1", ",", "000"]),
        ("'dogs' o'brien", ["'", "dogs", "'", "o", "'", "brien"]),
        ("Café NAÏVE sisterðcity", ["café", "naïve", "sisterðcity"]),
        ("snake_case", ["snake", "_", "case"]),
        ("interwoven… “quoted”", ["interwoven", "…", "“", "quoted", "”"]),
        ("  \t\n ", []),
        ("", []),
    ],
)
def test_tokenize_examples(sentence, expected):
  assert text.tokenize(sentence) == expected


def test_tokenize_keeps_case_on_request():
  assert text.tokenize("Who wrote NASA's Café guide?", lowercase=False) == [
      "Who", "wrote", "NASA", "'s", "Café", "guide", "?"]
  assert text.tokenize("Who wrote NASA's Café guide?", lowercase=True) == [
      "who", "wrote", "nasa", "'s", "café", "guide", "?"]


def test_vocabulary_build_ids_and_order():
  corpus = [["b", "a", "c", "a"], ["c", "a", "d"], ["b", "e"]]
  # Counts: a 3, b 2, c 2, d 1, e 1. Ties go in alphabetical order.

  vocab = Vocabulary.build(corpus, vocab_size=100)

  assert vocab.words == ("<pad>", "<unk>", "a", "b", "c", "d", "e")
  assert len(vocab) == 7
  assert vocab.encode(["a", "b", "c", "d", "e"]) == [2, 3, 4, 5, 6]


def test_vocabulary_build_order_independent():
  corpus = [["x", "y"], ["z", "y"], ["x", "w"]]

  forward = Vocabulary.build(corpus)
  backward = Vocabulary.build([list(reversed(tokens)) for tokens in reversed(corpus)])

  assert forward == backward
  assert forward.words[2:] == ("x", "y", "w", "z")


def test_vocabulary_build_size_cap():
  corpus = [["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 2 + ["e"]]

  vocab = Vocabulary.build(corpus, vocab_size=5)

  assert len(vocab) == 5
  assert vocab.words == ("<pad>", "<unk>", "a", "b", "c")
  ids = vocab.encode(["a", "b", "c", "d", "e"])
  assert ids == [2, 3, 4, 1, 1]
  assert max(ids) < 5


def test_vocabulary_build_fewer_words_than_size():
  vocab = Vocabulary.build([["only", "two"]], vocab_size=10000)

  assert len(vocab) == 4


def test_vocabulary_build_uses_given_lists_only():
  train = [["seen", "seen", "also"]]

  vocab = Vocabulary.build(train)

  assert vocab.encode(["seen", "also", "unseen"]) == [2, 3, 1]
  assert "unseen" not in vocab.words


def test_vocabulary_reserved_tokens():
  vocab = Vocabulary.build([["<pad>", "<unk>", "<pad>", "word"]])

  assert vocab.words == ("<pad>", "<unk>", "word")
  # A literal "<pad>" in the input is unknown, so id 0 only marks padding.
  assert vocab.encode(["<pad>", "<unk>", "word"]) == [1, 1, 2]


def test_vocabulary_decode():
  vocab = Vocabulary.build([["a", "b"]])

  assert vocab.decode([2, 0, 1, 3]) == ["a", "<pad>", "<unk>", "b"]
  assert vocab.decode(np.array([3], np.int32)) == ["b"]


@pytest.mark.parametrize("vocab_size", [2, 0, -1, 3.5, True])
def test_vocabulary_build_invalid_size(vocab_size):
  with pytest.raises(ValueError, match="vocab_size"):
    Vocabulary.build([["a"]], vocab_size=vocab_size)


def test_vocabulary_build_rejects_strings():
  with pytest.raises(ValueError, match="tokenize"):
    Vocabulary.build(["a sentence", "another"])


@pytest.mark.parametrize(
    "words, match",
    [
        (["<unk>", "<pad>", "a"], "must start with"),
        (["<pad>", "<unk>", "a", "a"], "'a' appears at ids 2 and 3"),
        (["<pad>", "<unk>", 5], "word 2 must be a str"),
    ],
)
def test_vocabulary_invalid_words(words, match):
  with pytest.raises(ValueError, match=match):
    Vocabulary(words)


def test_vocabulary_save_load_round_trip(tmp_path):
  vocab = Vocabulary.build([["naïve", "b", "é"], ["b", "‘quote"]])
  path = tmp_path / "vocab.json"

  vocab.save(path)
  loaded = Vocabulary.load(path)

  assert loaded == vocab
  assert loaded.words == vocab.words
  assert loaded.lowercase
  record = json.loads(path.read_text(encoding="utf-8"))
  assert record["version"] == 2
  assert record["lowercase"] is True
  assert record["words"] == list(vocab.words)


def test_vocabulary_save_load_keeps_case_setting(tmp_path):
  vocab = Vocabulary.build([["Who", "who", "NASA"]], lowercase=False)
  path = tmp_path / "vocab.json"

  vocab.save(path)
  loaded = Vocabulary.load(path)

  assert not loaded.lowercase
  assert loaded == vocab
  assert loaded != Vocabulary(vocab.words, lowercase=True)
  assert json.loads(path.read_text(encoding="utf-8"))["lowercase"] is False


def test_vocabulary_load_version_1_is_lower_case(tmp_path):
  path = tmp_path / "vocab.json"
  path.write_text('{"format": "jaxmodels.vocabulary", "version": 1, '
                  '"words": ["<pad>", "<unk>", "who"]}', encoding="utf-8")

  loaded = Vocabulary.load(path)

  assert loaded.lowercase
  assert loaded.words == ("<pad>", "<unk>", "who")


@pytest.mark.parametrize(
    "content, match",
    [
        ("not json", "not a vocabulary file"),
        ('["<pad>", "<unk>"]', "not a vocabulary file"),
        ('{"format": "jaxmodels.vocabulary", "version": 99, "words": []}', "version 99"),
        ('{"format": "jaxmodels.vocabulary", "version": 1, "words": "ab"}', "must be a list"),
        ('{"format": "jaxmodels.vocabulary", "version": 1, "words": ["a"]}', "must start with"),
        ('{"format": "jaxmodels.vocabulary", "version": true, "words": []}', "version True"),
        ('{"format": "jaxmodels.vocabulary", "version": 2, "words": ["<pad>", "<unk>"]}',
         "\"lowercase\" must be true or false, got None"),
        ('{"format": "jaxmodels.vocabulary", "version": 2, "lowercase": "no", '
         '"words": ["<pad>", "<unk>"]}', "\"lowercase\" must be true or false, got 'no'"),
    ],
)
def test_vocabulary_load_invalid(tmp_path, content, match):
  path = tmp_path / "vocab.json"
  path.write_text(content, encoding="utf-8")

  with pytest.raises(ValueError, match=match) as info:
    Vocabulary.load(path)

  assert str(path) in str(info.value)


@pytest.fixture
def vocab():
  # Ids: <pad> 0, <unk> 1, a 2, b 3, c 4, d 5, e 6.
  return Vocabulary(["<pad>", "<unk>", "a", "b", "c", "d", "e"])


@pytest.mark.parametrize(
    "padding_side, truncation_side, expected",
    [
        ("post", "post", [[2, 3, 4, 5], [2, 3, 0, 0], [0, 0, 0, 0]]),
        ("pre", "post", [[2, 3, 4, 5], [0, 0, 2, 3], [0, 0, 0, 0]]),
        ("post", "pre", [[3, 4, 5, 6], [2, 3, 0, 0], [0, 0, 0, 0]]),
        ("pre", "pre", [[3, 4, 5, 6], [0, 0, 2, 3], [0, 0, 0, 0]]),
    ],
)
def test_encode_batch_sides(vocab, padding_side, truncation_side, expected):
  texts = ["A b c d e", "a B", ""]

  ids = text.encode_batch(
      texts, vocab, max_len=4, padding_side=padding_side, truncation_side=truncation_side
  )

  assert ids.dtype == np.int32
  np.testing.assert_array_equal(ids, expected)


def test_encode_batch_defaults(vocab):
  ids = text.encode_batch(["a z b", "e"], vocab)

  expected = np.zeros((2, 100), np.int32)
  expected[0, :3] = [2, 1, 3]
  expected[1, 0] = 6
  assert ids.dtype == np.int32
  np.testing.assert_array_equal(ids, expected)


def test_encode_batch_uses_vocabulary_case():
  words = ["<pad>", "<unk>", "Who", "who", "NASA"]

  texts = ["Who who NASA nasa"]

  case_kept = text.encode_batch(texts, Vocabulary(words, lowercase=False), max_len=4)
  lowered = text.encode_batch(texts, Vocabulary(words), max_len=4)

  np.testing.assert_array_equal(case_kept, [[2, 3, 4, 1]])
  np.testing.assert_array_equal(lowered, [[3, 3, 1, 1]])


def test_vocabulary_rejects_non_bool_lowercase():
  with pytest.raises(ValueError, match="lowercase must be a bool, got 'yes'"):
    Vocabulary(["<pad>", "<unk>"], lowercase="yes")


def test_encode_batch_exact_length(vocab):
  ids = text.encode_batch(["a b c"], vocab, max_len=3, padding_side="pre",
                          truncation_side="pre")

  np.testing.assert_array_equal(ids, [[2, 3, 4]])


def test_encode_batch_empty_list(vocab):
  ids = text.encode_batch([], vocab, max_len=7)

  assert ids.shape == (0, 7)
  assert ids.dtype == np.int32


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_len": 0}, "max_len"),
        ({"max_len": 2.0}, "max_len"),
        ({"padding_side": "left"}, "padding_side"),
        ({"truncation_side": "right"}, "truncation_side"),
    ],
)
def test_encode_batch_invalid_options(vocab, kwargs, match):
  with pytest.raises(ValueError, match=match):
    text.encode_batch(["a"], vocab, **kwargs)


def test_encode_batch_rejects_single_string(vocab):
  with pytest.raises(ValueError, match="single str"):
    text.encode_batch("a b", vocab)


def test_encode_batch_rejects_token_lists(vocab):
  with pytest.raises(ValueError, match=r"texts\[1\] must be a str"):
    text.encode_batch(["a", ["a", "b"]], vocab)
