"""Prototype: where the Transformer's train step spends its time, by removing one part at a time.

  python benchmarks/prototypes/transformer_ablation.py [--batch-sizes=32,128] [--rounds=5]

Each row times the jaxmodels Transformer train step as it is against the same step with one
part replaced by something nearly free, in alternating windows (in this process only). The
results are no longer those of the model; the speed-up bounds what making that part faster
could gain:

- dropout: `jaxmodels.ops.basic.dropout` returns its input.
- attention: `jaxmodels.ops.attention.dot_product_attention` returns the values, so the
  logits, the softmax and both products are gone (the four projections stay).
- gelu: `jax.nn.gelu` becomes `jax.nn.relu`.
"""

import os
import sys

import jax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # pylint: disable=g-import-not-at-top


def main() -> None:
  args = common.prototype_parser(__doc__, rounds=5).parse_args()
  batch_sizes = common.parse_batch_sizes(args.batch_sizes)

  import jaxmodels_runner  # pylint: disable=g-import-not-at-top
  from jaxmodels.ops import attention  # pylint: disable=g-import-not-at-top
  from jaxmodels.ops import basic  # pylint: disable=g-import-not-at-top

  def no_dropout(x, **unused_kwargs):
    return x

  def no_attention(query, key, value, *, return_weights=False, **unused_kwargs):
    del key
    out = value  # [B, T, N, Dv], as the attention output
    if return_weights:
      batch, steps, heads, _ = query.shape
      return out, jax.numpy.zeros((batch, heads, steps, value.shape[1]))  # [B, N, T, S]
    return out

  parts = {
      "dropout": (basic, "dropout", no_dropout),
      "attention": (attention, "dot_product_attention", no_attention),
      "gelu": (jax.nn, "gelu", jax.nn.relu),
  }
  print("| part removed | batch | as is (ex/s) | without it (ex/s) | speed-up |")
  print("|---|---:|---:|---:|---:|")
  for batch_size in batch_sizes:
    for part, (module, attribute, replacement) in parts.items():
      rates = jaxmodels_runner.compare_variants(
          "transformer", batch_size, module, attribute,
          {"as is": getattr(module, attribute), "without": replacement}, rounds=args.rounds,
          examples_per_window=1024)
      print(f"| {part} | {batch_size} | {rates['as is']:,.0f} | {rates['without']:,.0f} | "
            f"{rates['without'] / rates['as is']:.2f} |", flush=True)


if __name__ == "__main__":
  main()
