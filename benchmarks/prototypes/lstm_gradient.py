"""Prototype: the LSTM with a hand-written backward pass against JAX's derivative of the scan.

  python benchmarks/prototypes/lstm_gradient.py [--model=lstm] [--batch-sizes=32,128]

`jaxmodels.ops.recurrent.lstm` takes `gradient="manual"` (its default) or `gradient="autodiff"`.
The manual backward pass scans back through time carrying only (dh, dc) and stacks the gate
gradients, then forms the kernel, recurrent-kernel and input gradients as three large matrix
products after the scan. JAX's derivative of the forward scan instead accumulates small
per-step weight products inside the loop. This prototype compiles the jaxmodels train step
with each and times them in turns.
"""

import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # pylint: disable=g-import-not-at-top


def main() -> None:
  parser = common.prototype_parser(__doc__)
  parser.add_argument("--model", default="lstm", choices=("lstm", "lstm_attention"))
  args = parser.parse_args()

  import jaxmodels_runner  # pylint: disable=g-import-not-at-top
  from jaxmodels.ops import recurrent  # pylint: disable=g-import-not-at-top

  variants = {"autodiff": functools.partial(recurrent.lstm, gradient="autodiff"),
              "manual": functools.partial(recurrent.lstm, gradient="manual")}

  print("| model | batch | JAX derivative (ex/s) | manual backward (ex/s) | manual / JAX |")
  print("|---|---:|---:|---:|---:|")
  for batch_size in common.parse_batch_sizes(args.batch_sizes):
    rates = jaxmodels_runner.compare_variants(args.model, batch_size, recurrent, "lstm",
                                              variants, rounds=args.rounds)
    print(f"| {args.model} | {batch_size} | {rates['autodiff']:,.0f} | {rates['manual']:,.0f} | "
          f"{rates['manual'] / rates['autodiff']:.2f} |", flush=True)


if __name__ == "__main__":
  main()
