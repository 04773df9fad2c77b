"""Tests for jaxmodels.data.mnist on tiny IDX files written by each test."""

import gzip
import pathlib
import re
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmodels.data import mnist
from jaxmodels.data.errors import DataFileNotFoundError, DataFormatError

REAL_DIR = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"
FILE_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def idx_bytes(array: np.ndarray) -> bytes:
  """Encode a uint8 array as IDX: magic 0x000008<ndim>, big-endian sizes, then the values."""
  header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
  return header + array.astype(np.uint8).tobytes()


def write(path: pathlib.Path, data: bytes, *, compress: bool = False) -> pathlib.Path:
  path.write_bytes(gzip.compress(data) if compress else data)
  return path


def make_split(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
  images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
  labels = rng.integers(0, 10, size=count, dtype=np.uint8)
  return images, labels


def write_mnist(directory: pathlib.Path, *, compress: bool = True, train_count: int = 5,
                test_count: int = 3) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """Write a tiny MNIST directory and return {split: (images, labels)}."""
  rng = np.random.default_rng(0)
  splits = {"train": make_split(rng, train_count), "test": make_split(rng, test_count)}
  suffix = ".gz" if compress else ""
  for name, array in zip(FILE_NAMES, [*splits["train"], *splits["test"]]):
    write(directory / f"{name}{suffix}", idx_bytes(array), compress=compress)
  return splits


def test_read_idx_literal_label_file(tmp_path):
  # Magic 0x00000801, count 3, labels 7 0 9, written out byte by byte.
  path = write(tmp_path / "labels", b"\x00\x00\x08\x01\x00\x00\x00\x03\x07\x00\x09")

  labels = mnist.read_idx(path)

  np.testing.assert_array_equal(labels, [7, 0, 9])
  assert labels.dtype == np.uint8


@pytest.mark.parametrize(
    "name, compress",
    [("images", False), ("images.gz", True), ("images", True), ("images.gz", False)],
)
def test_read_idx_raw_or_gzip_by_content(tmp_path, name, compress):
  images = np.random.default_rng(1).integers(0, 256, size=(4, 3, 5), dtype=np.uint8)
  path = write(tmp_path / name, idx_bytes(images), compress=compress)

  result = mnist.read_idx(path)

  np.testing.assert_array_equal(result, images)
  assert result.dtype == np.uint8
  assert result.flags.writeable


def test_read_idx_truncated_payload(tmp_path):
  data = idx_bytes(np.zeros((2, 4, 4), np.uint8))
  path = write(tmp_path / "images", data[:-1])

  with pytest.raises(DataFormatError, match=re.escape(str(path)) + ".*truncated"):
    mnist.read_idx(path)


def test_read_idx_extra_bytes(tmp_path):
  data = idx_bytes(np.zeros((2, 4, 4), np.uint8))
  path = write(tmp_path / "images", data + b"\0\0")

  with pytest.raises(DataFormatError, match=re.escape(str(path)) + ".*2 more"):
    mnist.read_idx(path)


@pytest.mark.parametrize("data", [b"", b"\x00\x00\x08", b"\x00\x00\x08\x03\x00\x00\x00\x02"])
def test_read_idx_truncated_header(tmp_path, data):
  path = write(tmp_path / "images", data)

  with pytest.raises(DataFormatError, match=re.escape(str(path))):
    mnist.read_idx(path)


@pytest.mark.parametrize(
    "header",
    [
        b"\x00\x00\x0d\x01",  # float32 IDX, not supported
        b"\x01\x00\x08\x01",  # nonzero leading byte
        b"\x00\x00\x08\x00",  # zero dimensions
        b"PK\x03\x04",  # a zip archive
    ],
)
def test_read_idx_wrong_magic(tmp_path, header):
  path = write(tmp_path / "labels", header + b"\x00\x00\x00\x01\x05")

  with pytest.raises(DataFormatError, match=re.escape(str(path)) + ".*magic number"):
    mnist.read_idx(path)


def test_read_idx_gzip_bad_crc(tmp_path):
  data = bytearray(gzip.compress(idx_bytes(np.arange(10, dtype=np.uint8))))
  # The gzip trailer is the CRC-32 and then the size, 4 bytes each. Flip a bit of the CRC.
  data[-8] ^= 0x01
  path = write(tmp_path / "labels.gz", bytes(data))

  with pytest.raises(DataFormatError, match=re.escape(str(path)) + ".*invalid gzip"):
    mnist.read_idx(path)


def test_read_idx_gzip_truncated_stream(tmp_path):
  data = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))
  path = write(tmp_path / "labels.gz", data[: len(data) // 2])

  with pytest.raises(DataFormatError, match=re.escape(str(path)) + ".*invalid gzip"):
    mnist.read_idx(path)


def test_read_idx_gzip_damaged_deflate_data(tmp_path):
  data = bytearray(gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8))))
  # Byte 10 is the first byte of the deflate stream, after the 10-byte gzip header. 0xff
  # declares the reserved block type 3.
  data[10] = 0xFF
  path = write(tmp_path / "labels.gz", bytes(data))

  with pytest.raises(DataFormatError, match=re.escape(str(path)) + ".*invalid gzip"):
    mnist.read_idx(path)


def test_read_idx_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError):
    mnist.read_idx(tmp_path / "absent")


def test_data_format_error_is_value_error():
  assert issubclass(DataFormatError, ValueError)
  assert issubclass(DataFileNotFoundError, FileNotFoundError)


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_values(tmp_path, compress):
  expected = write_mnist(tmp_path, compress=compress)

  data = mnist.load_mnist(tmp_path)

  assert set(data) == {"train", "test"}
  for split, (images, labels) in expected.items():
    assert set(data[split]) == {"image", "label"}
    assert data[split]["image"].shape == (len(images), 28, 28, 1)
    assert data[split]["image"].dtype == np.uint8
    assert data[split]["label"].dtype == np.int32
    np.testing.assert_array_equal(data[split]["image"][..., 0], images)
    np.testing.assert_array_equal(data[split]["label"], labels)


def test_load_mnist_mixed_raw_and_gzip(tmp_path):
  expected = write_mnist(tmp_path, compress=True)
  # Replace one compressed file by its raw version under the plain name.
  raw = gzip.decompress((tmp_path / "t10k-labels-idx1-ubyte.gz").read_bytes())
  (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
  write(tmp_path / "t10k-labels-idx1-ubyte", raw)

  data = mnist.load_mnist(tmp_path)

  np.testing.assert_array_equal(data["test"]["label"], expected["test"][1])


def test_load_mnist_prefers_plain_name(tmp_path):
  write_mnist(tmp_path, compress=True)
  labels = np.array([9, 8, 7, 6, 5], np.uint8)
  write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(labels))

  data = mnist.load_mnist(tmp_path)

  np.testing.assert_array_equal(data["train"]["label"], labels)


def test_load_mnist_missing_files(tmp_path):
  write_mnist(tmp_path, compress=True)
  (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
  (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()

  with pytest.raises(DataFileNotFoundError) as info:
    mnist.load_mnist(tmp_path)

  message = str(info.value)
  assert str(tmp_path / "train-labels-idx1-ubyte") in message
  assert str(tmp_path / "t10k-images-idx3-ubyte") in message
  assert "train-images-idx3-ubyte" not in message
  assert "--config.data_dir=" in message
  assert "MNIST mirror" in message


def test_load_mnist_missing_directory(tmp_path):
  directory = tmp_path / "absent"

  with pytest.raises(FileNotFoundError, match="does not exist") as info:
    mnist.load_mnist(directory)

  for name in FILE_NAMES:
    assert str(directory / name) in str(info.value)
  assert "data_dir" in str(info.value)


def test_load_mnist_count_mismatch(tmp_path):
  write_mnist(tmp_path, compress=False, train_count=5)
  path = write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros(4, np.uint8)))

  with pytest.raises(DataFormatError, match=re.escape(str(path)) + ".*4 labels.*5 images"):
    mnist.load_mnist(tmp_path)


def test_load_mnist_label_out_of_range(tmp_path):
  write_mnist(tmp_path, compress=False, test_count=3)
  labels = np.array([1, 10, 255], np.uint8)
  path = write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(labels))

  with pytest.raises(DataFormatError, match=re.escape(str(path)) + ".*label 10 at index 1"):
    mnist.load_mnist(tmp_path)


def test_load_mnist_swapped_files(tmp_path):
  write_mnist(tmp_path, compress=False)
  images_path = tmp_path / "train-images-idx3-ubyte"
  labels_path = tmp_path / "train-labels-idx1-ubyte"
  images, labels = images_path.read_bytes(), labels_path.read_bytes()
  write(images_path, labels)
  write(labels_path, images)

  with pytest.raises(DataFormatError, match=re.escape(str(images_path)) + ".*shape"):
    mnist.load_mnist(tmp_path)


def test_load_mnist_wrong_image_size(tmp_path):
  write_mnist(tmp_path, compress=False)
  path = write(tmp_path / "train-images-idx3-ubyte", idx_bytes(np.zeros((5, 32, 32), np.uint8)))

  with pytest.raises(DataFormatError, match=re.escape(str(path)) + r".*\[5, 32, 32\]"):
    mnist.load_mnist(tmp_path)


def test_images_to_float_values():
  images = np.arange(256, dtype=np.uint8).reshape(4, 8, 8, 1)

  result = mnist.images_to_float(images)

  # The float64 product of two float32 values is exact, so one rounding to float32 gives the
  # correctly rounded float32 product.
  scale = np.float64(np.float32(1 / 255))
  expected = (images.astype(np.float64) * scale).astype(np.float32)
  assert result.dtype == np.float32
  assert result.shape == images.shape
  np.testing.assert_array_equal(result, expected)
  quotient = (images.astype(np.float64) / 255).astype(np.float32)
  ulp = np.spacing(quotient)
  assert np.all(np.abs(result.astype(np.float64) - quotient) <= ulp)
  assert result.min() == 0.0
  assert result.max() == 1.0


def test_images_to_float_jax_array():
  images = np.arange(256, dtype=np.uint8).reshape(4, 8, 8, 1)

  result = mnist.images_to_float(jnp.asarray(images))

  assert isinstance(result, jax.Array)
  assert result.dtype == jnp.float32
  np.testing.assert_array_equal(np.asarray(result), mnist.images_to_float(images))


def test_images_to_float_rejects_float():
  with pytest.raises(ValueError, match="uint8.*float32"):
    mnist.images_to_float(np.zeros((1, 28, 28, 1), np.float32))


@pytest.mark.skipif(not REAL_DIR.is_dir(), reason=f"{REAL_DIR} not present")
def test_load_mnist_real_counts():
  data = mnist.load_mnist(REAL_DIR)

  assert data["train"]["image"].shape == (60000, 28, 28, 1)
  assert data["test"]["image"].shape == (10000, 28, 28, 1)
  # Per-class counts of the original release.
  np.testing.assert_array_equal(
      np.bincount(data["train"]["label"]),
      [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
  )
  np.testing.assert_array_equal(
      np.bincount(data["test"]["label"]),
      [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
  )
