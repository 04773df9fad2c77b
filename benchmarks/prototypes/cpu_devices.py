"""Prototype: the train step on one CPU device against the host CPU split into several.

  python benchmarks/prototypes/cpu_devices.py [--model=lstm] [--batch-sizes=32,128] \
      [--devices=2] [--rounds=7]

`config.parallel.cpu_devices` splits the host CPU into JAX devices, and the mesh
`(-1, 1)` gives each device an equal share of every batch. This prototype times the jaxmodels
train step of the benchmark, in turns, on one device (mesh `(1, 1)`), and on all devices with
the `jit` and the `pmap` back ends. All run in one process split into `--devices` devices,
since JAX fixes the count when it starts. The one-device variant leaves the other devices idle.
"""

import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # pylint: disable=g-import-not-at-top


def create_config(model, batch_size, *, original, devices, mesh_shape, backend):
  """Stand in for `jaxmodels_runner.create_config` with the given parallel settings."""
  config = original(model, batch_size)
  config.parallel.cpu_devices = devices
  config.parallel.mesh_shape = mesh_shape
  config.parallel.backend = backend
  return config


def main() -> None:
  parser = common.prototype_parser(__doc__)
  parser.add_argument("--model", default="lstm", choices=common.MODELS)
  parser.add_argument("--devices", type=int, default=2,
                      help="JAX devices the host CPU is split into")
  args = parser.parse_args()

  import jaxmodels_runner  # pylint: disable=g-import-not-at-top

  settings = {
      "one device, jit": ((1, 1), "jit"),
      f"{args.devices} devices, jit": ((-1, 1), "jit"),
      f"{args.devices} devices, pmap": ((-1, 1), "pmap"),
  }
  variants = {
      name: functools.partial(create_config, original=jaxmodels_runner.create_config,
                              devices=args.devices, mesh_shape=mesh_shape, backend=backend)
      for name, (mesh_shape, backend) in settings.items()
  }

  print("| model | batch | devices, back end | examples/s (median) | vs one device |")
  print("|---|---:|---|---:|---:|")
  for batch_size in common.parse_batch_sizes(args.batch_sizes):
    rates = jaxmodels_runner.compare_variants(args.model, batch_size, jaxmodels_runner,
                                              "create_config", variants, rounds=args.rounds)
    for name, rate in rates.items():
      print(f"| {args.model} | {batch_size} | {name} | {rate:,.0f} | "
            f"{rate / rates['one device, jit']:.2f} |", flush=True)


if __name__ == "__main__":
  main()
