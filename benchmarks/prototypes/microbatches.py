"""Prototype: the train step's gradient in microbatches of several sizes.

  python benchmarks/prototypes/microbatches.py [--model=cnn] [--batch-sizes=32,128] \
      [--microbatch-sizes=0,32,16,8,4] [--rounds=7]

`config.train.cpu_microbatch_size` makes `steps.train_step` take the gradient of a batch in
passes over strided microbatches, unrolled in the compiled step, and sum them. This prototype
times the jaxmodels train step of the benchmark with each microbatch size, in turns. Size 0 is
the whole batch in one pass. Sizes that do not divide a batch size are skipped for it.
"""

import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # pylint: disable=g-import-not-at-top


def fixed_count(config, platform, *, count):
  """Stand in for `loop.num_microbatches`: return `count`, ignoring the config."""
  del config, platform
  return count


def main() -> None:
  parser = common.prototype_parser(__doc__)
  parser.add_argument("--model", default="cnn", choices=common.MODELS)
  parser.add_argument("--microbatch-sizes", default="0,32,16,8,4",
                      help="examples per microbatch, or 0 for the whole batch")
  args = parser.parse_args()
  sizes = [int(part) for part in args.microbatch_sizes.split(",") if part.strip()]

  import jaxmodels_runner  # pylint: disable=g-import-not-at-top
  from jaxmodels.train import loop  # pylint: disable=g-import-not-at-top

  print("| model | batch | microbatch size | examples/s (median) | vs whole batch |")
  print("|---|---:|---:|---:|---:|")
  for batch_size in common.parse_batch_sizes(args.batch_sizes):
    counts = {}
    for size in sizes:
      if size == 0 or size >= batch_size:
        counts.setdefault("whole", 1)
      elif batch_size % size == 0:
        counts[str(size)] = batch_size // size
    variants = {name: functools.partial(fixed_count, count=count)
                for name, count in counts.items()}
    rates = jaxmodels_runner.compare_variants(args.model, batch_size, loop, "num_microbatches",
                                              variants, rounds=args.rounds)
    for name, rate in rates.items():
      print(f"| {args.model} | {batch_size} | {name} | {rate:,.0f} | "
            f"{rate / rates['whole']:.2f} |", flush=True)


if __name__ == "__main__":
  main()
