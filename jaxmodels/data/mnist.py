"""Load the MNIST handwritten digits from IDX files.

Legend: N images, H W height and width (28 each), C channels (1).

`load_mnist` keeps images as u8[N, H, W, C], which takes a quarter of the memory of float32
(47 MB instead of 188 MB for the training split) and a quarter of the host-to-device traffic.
Convert each batch with `images_to_float`, on the host or on the device, to get f32 in [0, 1].

Each of the four files may be stored raw or gzip-compressed, under its plain name or with `.gz`
appended. The plain name is tried first. Whether a file is decompressed depends on its first two
bytes, not on its name: gzip data starts with 1f 8b, while an IDX file starts with two zero bytes,
so the two cannot be confused. A `.gz` file that a browser has already decompressed still loads,
and gzip data under the plain name is still decompressed.

IDX format (big-endian): the magic number is two zero bytes, a type code (0x08 for unsigned
bytes) and the number of dimensions, so images have magic 0x00000803 and labels 0x00000801.
One 32-bit size per dimension follows, then the values in row-major order.
"""

import gzip
import math
import os
import pathlib
import struct
import zlib

import numpy as np

from jaxmodels.data.errors import DataFormatError, missing_files_error

NUM_CLASSES = 10
IMAGE_SIZE = 28

# File names of the original release, per split: (images, labels).
_SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_UNSIGNED_BYTE = 0x08
_IMAGES_MAGIC = 0x00000803
_LABELS_MAGIC = 0x00000801
_FIX_HINT = "Copy the file again from an MNIST mirror."


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
  """Read an unsigned-byte IDX file, raw or gzip-compressed.

  Args:
    path: file to read. Gzip data is recognized by its first two bytes, whatever the name.

  Returns:
    u8[d0, d1, ...], a writable array with the dimensions given in the header. An MNIST
    image file gives u8[N, H, W] and a label file u8[N].

  Raises:
    FileNotFoundError: `path` does not exist.
    DataFormatError: the gzip stream is damaged, the magic number is not that of an
      unsigned-byte IDX file, or the data is shorter or longer than the header declares.
  """
  path = pathlib.Path(path)
  data = path.read_bytes()
  if data[:2] == _GZIP_MAGIC:
    data = _decompress(data, path)
  return _parse_idx(data, path)


def _decompress(data: bytes, path: pathlib.Path) -> bytes:
  try:
    return gzip.decompress(data)
  except (EOFError, OSError, zlib.error) as error:
    # gzip raises EOFError for a cut-off stream and BadGzipFile (an OSError) for a bad CRC,
    # length or header. zlib.error means a damaged deflate block.
    raise DataFormatError(
        f"{path}: invalid gzip data ({error}). The file is damaged or truncated. {_FIX_HINT}"
    ) from error


def _parse_idx(data: bytes, path: pathlib.Path) -> np.ndarray:
  if len(data) < 4:
    raise DataFormatError(
        f"{path}: file has {len(data)} bytes, too short for an IDX header. {_FIX_HINT}"
    )
  (magic,) = struct.unpack(">I", data[:4])
  ndim = data[3]
  if data[:2] != b"\0\0" or data[2] != _UNSIGNED_BYTE or ndim == 0:
    raise DataFormatError(
        f"{path}: magic number 0x{magic:08x} is not that of an unsigned-byte IDX file "
        f"(0x{_LABELS_MAGIC:08x} for labels, 0x{_IMAGES_MAGIC:08x} for images). Check that "
        f"data_dir points at the MNIST IDX files, or copy them again from an MNIST mirror."
    )

  header_size = 4 + 4 * ndim
  if len(data) < header_size:
    raise DataFormatError(
        f"{path}: header declares {ndim} dimensions and needs {header_size} bytes, but the "
        f"file has {len(data)}. {_FIX_HINT}"
    )
  shape = struct.unpack(f">{ndim}I", data[4:header_size])

  # The payload must match the header exactly. A short file is truncated, and a long one
  # is not the file the header describes.
  expected = math.prod(shape)
  actual = len(data) - header_size
  dims = " x ".join(str(size) for size in shape)
  if actual < expected:
    raise DataFormatError(
        f"{path}: header declares {dims} = {expected} bytes of data but the file has only "
        f"{actual}, so the file is truncated. {_FIX_HINT}"
    )
  if actual > expected:
    raise DataFormatError(
        f"{path}: header declares {dims} = {expected} bytes of data but the file has "
        f"{actual - expected} more. {_FIX_HINT}"
    )
  values = np.frombuffer(data, dtype=np.uint8, count=expected, offset=header_size)
  return values.reshape(shape).copy()


def _find_file(data_dir: pathlib.Path, name: str) -> pathlib.Path | None:
  for candidate in (data_dir / name, data_dir / f"{name}.gz"):
    if candidate.is_file():
      return candidate
  return None


def _read_split(images_path: pathlib.Path, labels_path: pathlib.Path) -> dict[str, np.ndarray]:
  images = read_idx(images_path)
  if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
    raise DataFormatError(
        f"{images_path}: expected images of shape [N, {IMAGE_SIZE}, {IMAGE_SIZE}] (magic "
        f"0x{_IMAGES_MAGIC:08x}), got shape {list(images.shape)}. Check that this is an MNIST "
        f"image file and not a label file."
    )

  labels = read_idx(labels_path)
  if labels.ndim != 1:
    raise DataFormatError(
        f"{labels_path}: expected labels of shape [N] (magic 0x{_LABELS_MAGIC:08x}), got shape "
        f"{list(labels.shape)}. Check that this is an MNIST label file and not an image file."
    )
  if len(labels) != len(images):
    raise DataFormatError(
        f"{labels_path}: has {len(labels)} labels but {images_path} has {len(images)} images. "
        f"Both files must come from the same split of the same release. Copy them again from "
        f"an MNIST mirror."
    )
  invalid = np.flatnonzero(labels >= NUM_CLASSES)
  if invalid.size:
    raise DataFormatError(
        f"{labels_path}: label {labels[invalid[0]]} at index {invalid[0]} is outside 0..9 "
        f"({invalid.size} such labels). {_FIX_HINT}"
    )

  # A reshape adds the channel axis without copying.
  return {
      "image": images.reshape(*images.shape, 1),
      "label": labels.astype(np.int32),
  }


def load_mnist(data_dir: str | os.PathLike[str]) -> dict[str, dict[str, np.ndarray]]:
  """Load the MNIST training and test splits from the IDX files in `data_dir`.

  The directory must contain train-images-idx3-ubyte, train-labels-idx1-ubyte,
  t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each raw or gzip-compressed, with or
  without a `.gz` suffix (see the module docstring).

  Args:
    data_dir: directory with the four files.

  Returns:
    {"train": split, "test": split}, where each split is {"image": u8[N, H, W, C],
    "label": i32[N]} with grey levels 0..255 and labels 0..9. MNIST has N = 60,000 training
    and N = 10,000 test images.

  Raises:
    DataFileNotFoundError: a file is missing. The message lists every missing path.
    DataFormatError: a file is damaged or does not match its partner (see `read_idx`).
  """
  data_dir = pathlib.Path(data_dir)
  paths = {}
  missing = []
  for names in _SPLIT_FILES.values():
    for name in names:
      paths[name] = _find_file(data_dir, name)
      if paths[name] is None:
        missing.append(f"{data_dir / name} (or {name}.gz)")
  if missing:
    raise missing_files_error(
        "MNIST",
        data_dir,
        missing,
        source="The files can be copied from any MNIST mirror, raw or gzip-compressed.",
    )

  return {
      split: _read_split(paths[images_name], paths[labels_name])
      for split, (images_name, labels_name) in _SPLIT_FILES.items()
  }


def images_to_float(images: np.ndarray) -> np.ndarray:
  """Convert u8 grey levels to f32 in [0, 1] by multiplying by float32(1 / 255).

  Works on NumPy and on JAX arrays, and returns the same kind of array, so a training loop can
  send u8 batches to the device and convert them there. A product, unlike a division, gives
  the same bits in NumPy and in XLA, which compiles a division by a constant into a product
  with its reciprocal. Each value is within one float32 ulp of v / 255, and 255 gives 1.0.

  Args:
    images: u8[...], for example u8[B, H, W, C].

  Returns:
    f32[...] with the shape of `images`.

  Raises:
    ValueError: `images` is not uint8, which catches a second conversion of float images.
  """
  if images.dtype != np.uint8:
    raise ValueError(f"images_to_float: images must be uint8, got dtype {images.dtype}")
  return images.astype(np.float32) * np.float32(1 / 255)
