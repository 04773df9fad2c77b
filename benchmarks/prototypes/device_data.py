"""Prototype: batches placed on the device once against a host-to-device copy every step.

  python benchmarks/prototypes/device_data.py [--models=cnn,lstm] [--batch-sizes=32,128]

The jaxmodels benchmark feeds every step through `parallel.put_batch`, as the training loop
does, so each step starts with a host-to-device transfer of NumPy arrays. This prototype
times the same compiled train step on batches that were placed on the mesh beforehand, in
alternating windows with the per-step transfer, to measure what keeping the data on the
device would save.
"""

import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # pylint: disable=g-import-not-at-top


def main() -> None:
  parser = common.prototype_parser(__doc__)
  parser.add_argument("--models", default="cnn,lstm")
  args = parser.parse_args()

  import jaxmodels_runner  # pylint: disable=g-import-not-at-top
  from jaxmodels.train import parallel  # pylint: disable=g-import-not-at-top

  print("| model | batch | copy per step (ex/s) | data on device (ex/s) | on device / copy |")
  print("|---|---:|---:|---:|---:|")
  for model in args.models.split(","):
    for batch_size in common.parse_batch_sizes(args.batch_sizes):
      trainer = jaxmodels_runner.create_trainer(model, batch_size, seed=0)
      trainer.run(3)
      with jax.set_mesh(trainer.mesh):
        placed = [parallel.put_batch(batch, trainer.mesh) for batch in trainer.batches]
      jax.block_until_ready(placed)

      def run_placed(num_steps, trainer=trainer, placed=placed):
        with jax.set_mesh(trainer.mesh):
          for step in range(num_steps):
            trainer.state, trainer.sums = trainer.train_fn(
                trainer.state, trainer.sums, placed[step % len(placed)])
          jax.block_until_ready((trainer.state, trainer.sums))

      run_placed(3)
      steps = max(3, 2048 // batch_size)
      rates = {"copy": [], "device": []}
      for _ in range(args.rounds):
        for name, run in (("copy", trainer.run), ("device", run_placed)):
          start = time.perf_counter()
          run(steps)
          rates[name].append(steps * batch_size / (time.perf_counter() - start))
      copy, device = (float(np.median(rates[name])) for name in ("copy", "device"))
      print(f"| {model} | {batch_size} | {copy:,.0f} | {device:,.0f} | {device / copy:.2f} |",
            flush=True)


if __name__ == "__main__":
  main()
