"""Prototype: dropout masks from 16-bit random words against `jax.random.bernoulli`.

  python benchmarks/prototypes/dropout_bits.py [--batch-sizes=32,128] [--rounds=7]

`jax.random.bernoulli` turns each 32-bit threefry word into a float32 uniform and compares it
with the keep probability. `jaxmodels.ops.basic.dropout` compares 16-bit words with an integer
threshold instead, so one 32-bit word serves two elements. This script times one mask of the
Transformer's activation shape f32[B, 100, 64] both ways, then the whole Transformer train step
(dropout 0.1, as in the benchmark) with `jaxmodels.ops.basic.dropout` swapped for the
bernoulli form (in this process only).

Shape letters: B batch, T time steps, D model width.
"""

import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # pylint: disable=g-import-not-at-top

from jaxmodels.ops import basic  # pylint: disable=g-import-not-at-top


def dropout_bernoulli(x, *, rate, key=None, deterministic):
  """Inverted dropout with a float32 uniform per element (the earlier jaxmodels form)."""
  x = jnp.asarray(x)
  if deterministic or rate == 0.0:
    return x
  keep_probability = 1.0 - rate
  keep = jax.random.bernoulli(key, keep_probability, x.shape)
  return jnp.where(keep, x / keep_probability, jnp.zeros_like(x))


def _time_mask(function, shape: tuple[int, ...], rounds: int, calls: int = 50) -> float:
  """Return the median milliseconds of one jit-compiled mask over `rounds` windows."""
  x = jnp.ones(shape)
  step = jax.jit(lambda x, key: function(x, rate=0.1, key=key, deterministic=False))
  keys = jax.random.split(jax.random.key(0), calls)
  jax.block_until_ready(step(x, keys[0]))
  times = []
  for _ in range(rounds):
    start = time.perf_counter()
    for key in keys:
      out = step(x, key)
    jax.block_until_ready(out)
    times.append((time.perf_counter() - start) / calls)
  return float(np.median(times)) * 1e3


def main() -> None:
  parser = common.prototype_parser(__doc__)
  args = parser.parse_args()
  batch_sizes = common.parse_batch_sizes(args.batch_sizes)

  print("| mask shape | bernoulli (ms) | 16-bit words (ms) | bernoulli / 16-bit |")
  print("|---|---:|---:|---:|")
  for batch_size in batch_sizes:
    shape = (batch_size, 100, 64)
    old = _time_mask(dropout_bernoulli, shape, args.rounds)
    new = _time_mask(basic.dropout, shape, args.rounds)
    print(f"| {shape} | {old:.2f} | {new:.2f} | {old / new:.2f} |")

  import jaxmodels_runner  # pylint: disable=g-import-not-at-top

  print("\n| Transformer train step | batch | bernoulli (ex/s) | 16-bit words (ex/s) | "
        "16-bit / bernoulli |")
  print("|---|---:|---:|---:|---:|")
  for batch_size in batch_sizes:
    rates = jaxmodels_runner.compare_variants(
        "transformer", batch_size, basic, "dropout",
        {"bernoulli": dropout_bernoulli, "bits16": basic.dropout}, rounds=args.rounds,
        examples_per_window=1024)
    print(f"| transformer | {batch_size} | {rates['bernoulli']:,.0f} | {rates['bits16']:,.0f} | "
          f"{rates['bits16'] / rates['bernoulli']:.2f} |")


if __name__ == "__main__":
  main()
