"""Benchmark rows, random batches, FLOP counts and the CPU's peak rate, shared by all workers.

Every framework trains the same model on the same shapes: float32, Adam, softmax cross-entropy
on integer labels, random data. Images are f32[B, 28, 28, 1] (NHWC), which the PyTorch peer
transposes to NCHW. Token ids are i32[B, T] in [1, V), so no sequence contains padding (id 0).
The models still compute their padding masks as they would on real data.
"""

import argparse
import dataclasses
import math
import os
import re

import numpy as np

MODELS = ("cnn", "lstm", "lstm_attention", "transformer")
NUM_CLASSES = 10

# The tutorial CNN on MNIST shapes.
IMAGE_SHAPE = (28, 28, 1)
CONV_FEATURES = (32, 64, 64)
CONV_KERNEL = 3
HIDDEN_UNITS = 64

# The text models.
VOCAB_SIZE = 10_000
SEQUENCE_LENGTH = 100
EMBEDDING_DIM = 64
LSTM_UNITS = 64
TRANSFORMER_WIDTH = 64
TRANSFORMER_HEADS = 4
TRANSFORMER_MLP = 128
TRANSFORMER_BLOCKS = 2
TRANSFORMER_DROPOUT = 0.1
LAYER_NORM_EPSILON = 1e-6  # flax.linen.LayerNorm's default, which jaxmodels uses.

LEARNING_RATE = 1e-3
ADAM_EPSILON = 1e-7  # Keras's default; also set in the PyTorch peer.

# Distinct random batches that each trainer cycles through.
NUM_BATCHES = 4


@dataclasses.dataclass(frozen=True)
class Batch:
  """One batch of model inputs and i32[B] labels, as NumPy arrays."""

  inputs: np.ndarray
  labels: np.ndarray


def make_batches(model: str, batch_size: int, *, seed: int = 0) -> list[Batch]:
  """Draw `NUM_BATCHES` random batches for `model`: f32[B, 28, 28, 1] images or i32[B, T] ids."""
  if model not in MODELS:
    raise ValueError(f"model must be one of {MODELS}, got {model!r}")
  rng = np.random.default_rng(seed)
  batches = []
  for _ in range(NUM_BATCHES):
    if model == "cnn":
      inputs = rng.standard_normal((batch_size, *IMAGE_SHAPE), dtype=np.float32)
    else:
      inputs = rng.integers(1, VOCAB_SIZE, (batch_size, SEQUENCE_LENGTH), dtype=np.int32)
    labels = rng.integers(0, NUM_CLASSES, (batch_size,), dtype=np.int32)
    batches.append(Batch(inputs=inputs, labels=labels))
  return batches


def cnn_forward_macs() -> int:
  """Count the multiply-accumulates of one forward pass of the tutorial CNN on one image.

  A VALID 3x3 convolution from C to O channels on an H x W input costs
  (H - 2) * (W - 2) * O * 9 * C MACs, and a dense layer costs C * O. Each 2x2 max pooling halves
  H and W, rounding down. Bias adds, ReLU and pooling are left out (under 1% of the total).
  """
  height, width, channels = IMAGE_SHAPE
  macs = 0
  for index, features in enumerate(CONV_FEATURES):
    height, width = height - CONV_KERNEL + 1, width - CONV_KERNEL + 1
    macs += height * width * features * CONV_KERNEL * CONV_KERNEL * channels
    channels = features
    if index < len(CONV_FEATURES) - 1:
      height, width = height // 2, width // 2
  flat = height * width * channels
  macs += flat * HIDDEN_UNITS + HIDDEN_UNITS * NUM_CLASSES
  return macs


def cnn_train_flops_per_example() -> int:
  """Estimate the FLOPs of one training step per image: 3 * 2 * forward MACs.

  The backward pass costs about twice the forward pass (one product for the input gradient and
  one for the weight gradient per layer), and each MAC is 2 FLOPs. The first convolution needs no
  input gradient, so this slightly overstates the work (by about 2%).
  """
  return 3 * 2 * cnn_forward_macs()


@dataclasses.dataclass(frozen=True)
class CpuPeak:
  """An estimate of the float32 peak of this CPU, with the numbers it is made of."""

  model_name: str
  cores: int
  clock_ghz: float
  flops_per_cycle: int
  reason: str

  @property
  def gflops(self) -> float:
    return self.cores * self.clock_ghz * self.flops_per_cycle


def _cpuinfo_fields() -> dict[str, str]:
  """Return the fields of the first processor in /proc/cpuinfo, or {} where it is missing."""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as file:
      text = file.read()
  except OSError:
    return {}
  fields = {}
  for line in text.split("\n\n")[0].splitlines():
    key, _, value = line.partition(":")
    fields[key.strip()] = value.strip()
  return fields


def estimate_cpu_peak(*, flops_per_cycle: int | None = None) -> CpuPeak:
  """Estimate the float32 peak as cores x clock x FLOPs per cycle per core.

  The clock is the `cpu MHz` of /proc/cpuinfo, which inside a virtual machine is the nominal
  clock. Boost clocks can be higher. FLOPs per cycle per core are 2 FMA pipes x float32 lanes x 2.
  The lanes are 8 for AVX2, 8 for AMD Zen 4 (family 25 with AVX-512, because Zen 4 executes a
  512-bit FMA as two 256-bit halves), 16 for other AVX-512 CPUs and 4 with SSE only. Pass
  `flops_per_cycle` to override the guess.
  """
  fields = _cpuinfo_fields()
  cores = os.cpu_count() or 1
  clock_ghz = float(fields.get("cpu MHz", "0") or 0) / 1000.0
  flags = set(fields.get("flags", "").split())
  vendor = fields.get("vendor_id", "")
  family = int(fields.get("cpu family", "0") or 0)

  if flops_per_cycle is not None:
    reason = "given on the command line"
  elif "avx512f" in flags and vendor == "AuthenticAMD" and family == 25:
    flops_per_cycle = 2 * 8 * 2
    reason = "AMD Zen 4: 2 FMA pipes x 8 float32 lanes (512-bit FMA split in two halves) x 2"
  elif "avx512f" in flags:
    flops_per_cycle = 2 * 16 * 2
    reason = "AVX-512: 2 FMA pipes x 16 float32 lanes x 2"
  elif "fma" in flags and "avx2" in flags:
    flops_per_cycle = 2 * 8 * 2
    reason = "AVX2: 2 FMA pipes x 8 float32 lanes x 2"
  else:
    flops_per_cycle = 2 * 4 * 2
    reason = "SSE: 2 pipes x 4 float32 lanes x 2"
  return CpuPeak(
      model_name=fields.get("model name", "unknown"),
      cores=cores,
      clock_ghz=clock_ghz,
      flops_per_cycle=flops_per_cycle,
      reason=reason,
  )


def prototype_parser(doc: str, rounds: int = 7) -> argparse.ArgumentParser:
  """Return a parser with the `--batch-sizes` and `--rounds` flags that the prototypes share.

  The description is the first line of `doc`, the prototype's module docstring.
  """
  parser = argparse.ArgumentParser(description=doc.splitlines()[0])
  parser.add_argument("--batch-sizes", default="32,128")
  parser.add_argument("--rounds", type=int, default=rounds)
  return parser


def parse_batch_sizes(text: str) -> tuple[int, ...]:
  """Parse a comma-separated list of positive batch sizes such as "32,128"."""
  sizes = tuple(int(part) for part in re.split(r"[,\s]+", text.strip()) if part)
  if not sizes or any(size <= 0 for size in sizes):
    raise ValueError(f"batch sizes must be positive integers, got {text!r}")
  return sizes


def median_and_range(values: list[float]) -> tuple[float, float, float]:
  """Return the median, minimum and maximum of `values` (NaN for an empty list)."""
  if not values:
    return math.nan, math.nan, math.nan
  return float(np.median(values)), min(values), max(values)
