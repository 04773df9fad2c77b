"""Prototype: several train steps per compiled call with `lax.scan`.

  python benchmarks/prototypes/scan_steps.py [--model=cnn] [--batch-sizes=32,128] \
      [--steps-per-call=1,4,16] [--scan=rolled,unrolled] [--rounds=7] [--window-steps=64]

Builds the jaxmodels trainer of `jaxmodels_runner` (model, optimizer, state and shardings as
`experiments/run.py` builds them), then compiles `steps.train_step` inside a `lax.scan` over K
stacked batches, f32[K, B, ...], that one `put_batch`-style transfer places on the mesh. K = 1
is the loop's own compiled step, fed one batch per call. Each K > 1 runs twice: as a rolled
`lax.scan` (an XLA while loop) and fully unrolled. The windows of all variants alternate.
"""

import argparse
import functools
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # pylint: disable=g-import-not-at-top
import jaxmodels_runner  # pylint: disable=g-import-not-at-top
from jax.sharding import NamedSharding  # pylint: disable=g-import-not-at-top
from jax.sharding import PartitionSpec as P  # pylint: disable=g-import-not-at-top
from jaxmodels.train import parallel  # pylint: disable=g-import-not-at-top
from jaxmodels.train import steps  # pylint: disable=g-import-not-at-top


class ScanTrainer:
  """A jaxmodels trainer whose compiled call runs `steps_per_call` steps under `lax.scan`."""

  def __init__(self, model: str, batch_size: int, steps_per_call: int, *, unroll: bool):
    self.base = jaxmodels_runner.create_trainer(model, batch_size, seed=0)
    self.steps_per_call = steps_per_call
    mesh = self.base.mesh
    train_step = functools.partial(steps.train_step, model=self.base.model, tx=self.base.tx)

    def multi_step(state, sums, batches):
      def body(carry, batch):
        return train_step(*carry, batch), None

      carry, _ = jax.lax.scan(body, (state, sums), batches, unroll=unroll)
      return carry

    # Steps along the leading axis, each batch split over `data` as `put_batch` splits it.
    self.stacked_sharding = NamedSharding(mesh, P(None, parallel.DATA_AXIS))
    self.multi_step = jax.jit(multi_step, donate_argnums=(0, 1))

    # Stack K batches, cycling through the random ones.
    picks = [self.base.batches[k % len(self.base.batches)] for k in range(steps_per_call)]
    self.stacked = {name: np.stack([batch[name] for batch in picks]) for name in picks[0]}

  def run(self, num_calls: int) -> None:
    base = self.base
    with jax.set_mesh(base.mesh):
      for _ in range(num_calls):
        batches = jax.device_put(self.stacked, self.stacked_sharding)
        base.state, base.sums = self.multi_step(base.state, base.sums, batches)
      jax.block_until_ready((base.state, base.sums))


def time_conv_gradients_in_loop(num_iterations: int = 16) -> None:
  """Time the two gradients of the CNN's middle convolution in a rolled and an unrolled loop.

  Isolates where a rolled scan of train steps loses time: the inputs are jit arguments, so
  nothing is constant-folded, and each iteration scales x so no iteration can be reused.
  """
  x = jnp.ones((32, 13, 13, 32), jnp.float32)
  kernel = jnp.full((3, 3, 32, 64), 0.01, jnp.float32)

  def conv(x, kernel):
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

  print("\n| conv gradient, x f32[32, 13, 13, 32] | rolled loop (us/iter) | unrolled (us/iter) |")
  print("|---|---:|---:|")
  for argnum, name in ((0, "input gradient"), (1, "kernel gradient")):
    grad = jax.grad(lambda x, kernel: jnp.sum(conv(x, kernel)), argnums=argnum)
    timings = []
    for unroll in (False, True):

      def loop(x, kernel, grad=grad, unroll=unroll):
        def body(i, total):
          return total + jnp.sum(grad(x * i.astype(jnp.float32), kernel))

        return jax.lax.fori_loop(0, num_iterations, body, jnp.float32(0), unroll=unroll)

      compiled = jax.jit(loop)
      compiled(x, kernel).block_until_ready()
      start = time.perf_counter()
      for _ in range(3):
        out = compiled(x, kernel)
      out.block_until_ready()
      timings.append((time.perf_counter() - start) / 3 / num_iterations)
    print(f"| {name} | {timings[0] * 1e6:,.0f} | {timings[1] * 1e6:,.0f} |")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="cnn", choices=common.MODELS)
  parser.add_argument("--batch-sizes", default="32,128")
  parser.add_argument("--steps-per-call", default="1,4,16")
  parser.add_argument("--rounds", type=int, default=7)
  parser.add_argument("--window-steps", type=int, default=64,
                      help="train steps per timed window, rounded up to whole calls")
  parser.add_argument("--scan", default="rolled,unrolled",
                      help="forms of the scan to time for K > 1: rolled, unrolled or both")
  args = parser.parse_args()
  forms = [form.strip() for form in args.scan.split(",") if form.strip()]
  if not forms or set(forms) - {"rolled", "unrolled"}:
    parser.error(f"--scan must list 'rolled' and/or 'unrolled', got {args.scan!r}")

  variants = [(1, False)]
  for count in common.parse_batch_sizes(args.steps_per_call):
    if count > 1:
      variants += [(count, form == "unrolled") for form in forms]
  print("| model | batch | steps per call | scan | examples/s (median) | min-max | "
        "vs 1 step per call |")
  print("|---|---:|---:|---|---:|---:|---:|")
  for batch_size in common.parse_batch_sizes(args.batch_sizes):
    trainers = {}
    for count, unroll in variants:
      if count == 1:
        trainer = jaxmodels_runner.create_trainer(args.model, batch_size, seed=0)
      else:
        trainer = ScanTrainer(args.model, batch_size, count, unroll=unroll)
      trainer.run(2)
      trainers[count, unroll] = trainer

    rates = {variant: [] for variant in variants}
    for _ in range(args.rounds):
      for (count, unroll), trainer in trainers.items():
        calls = -(-args.window_steps // count)
        start = time.perf_counter()
        trainer.run(calls)
        rates[count, unroll].append(calls * count * batch_size / (time.perf_counter() - start))
    baseline = float(np.median(rates[variants[0]]))
    for count, unroll in variants:
      median, low, high = common.median_and_range(rates[count, unroll])
      if count == 1:
        scan = "none"
      else:
        scan = "unrolled" if unroll else "rolled"
      print(f"| {args.model} | {batch_size} | {count} | {scan} | {median:,.0f} | "
            f"{low:,.0f}-{high:,.0f} | {median / baseline:.2f} |")
  if args.model == "cnn":
    time_conv_gradients_in_loop()


if __name__ == "__main__":
  main()
