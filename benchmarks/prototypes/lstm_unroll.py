"""Prototype: unrolling the LSTM scans of the recurrent models by several steps.

  python benchmarks/prototypes/lstm_unroll.py [--model=lstm_attention] [--batch-sizes=32,128] \
      [--unroll=1,2,4,8] [--rounds=7]

`jaxmodels.ops.recurrent.lstm` passes `unroll` to both of its scans, forward and backward. The
models default to 1. This prototype builds the benchmark's model with each unroll factor and
times the jaxmodels train step with each, in turns.
"""

import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # pylint: disable=g-import-not-at-top


class _Factories:
  """Exposes one entry of `registry.MODELS` as an attribute for `compare_variants`."""

  def __init__(self, models: dict, name: str):
    self._models = models
    self._name = name

  @property
  def factory(self):
    return self._models[self._name]

  @factory.setter
  def factory(self, value):
    self._models[self._name] = value


def main() -> None:
  parser = common.prototype_parser(__doc__)
  parser.add_argument("--model", default="lstm_attention", choices=("lstm", "lstm_attention"))
  parser.add_argument("--unroll", default="1,2,4,8",
                      help="unroll factors, the first of them the baseline")
  args = parser.parse_args()
  unrolls = [int(part) for part in args.unroll.split(",") if part.strip()]

  import jaxmodels_runner  # pylint: disable=g-import-not-at-top
  from jaxmodels.models import registry  # pylint: disable=g-import-not-at-top

  original = registry.MODELS[args.model]

  def with_unroll(model_config, dataset, *, unroll):
    return original(model_config, dataset).clone(unroll=unroll)

  variants = {str(unroll): functools.partial(with_unroll, unroll=unroll) for unroll in unrolls}
  print("| model | batch | unroll | examples/s (median) | vs the first |")
  print("|---|---:|---:|---:|---:|")
  for batch_size in common.parse_batch_sizes(args.batch_sizes):
    rates = jaxmodels_runner.compare_variants(
        args.model, batch_size, _Factories(registry.MODELS, args.model), "factory", variants,
        rounds=args.rounds)
    baseline = rates[str(unrolls[0])]
    for name, rate in rates.items():
      print(f"| {args.model} | {batch_size} | {name} | {rate:,.0f} | {rate / baseline:.2f} |",
            flush=True)


if __name__ == "__main__":
  main()
