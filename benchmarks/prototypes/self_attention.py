"""Prototype: the LSTM model's self-attention through `self_attention` or `dot_product_attention`.

  python benchmarks/prototypes/self_attention.py [--batch-sizes=32,128] [--rounds=11]

`jaxmodels.models.text_layers.DotProductSelfAttention` attends over x f32[B, T, C] with x as
query, key and value. `dot_product_attention` on x[:, :, None, :] (one head) differentiates
the logits as for separate queries and keys, with four batched products in the backward
pass. `self_attention` uses the symmetry of x x^T and needs three. This prototype times the
train step of the benchmark's LSTM-with-attention model with the former path and with
`self_attention` in batch chunks of 16, 32 and 64 examples and in one piece, in turns.
"""

import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # pylint: disable=g-import-not-at-top

_STEPS = 100  # The benchmark's sequence length.


def main() -> None:
  args = common.prototype_parser(__doc__, rounds=11).parse_args()

  import jaxmodels_runner  # pylint: disable=g-import-not-at-top
  from jaxmodels.models import text_layers  # pylint: disable=g-import-not-at-top
  from jaxmodels.ops import attention  # pylint: disable=g-import-not-at-top

  def one_head(x, *, mask=None, return_weights=False):
    heads = x[:, :, None, :]  # [B, T, 1, C]
    valid = mask[:, None, :, None] & mask[:, None, None, :]  # [B, 1, T, S]
    out, weights = attention.dot_product_attention(heads, heads, heads, mask=valid,
                                                   return_weights=True)
    return (out[:, :, 0], weights[:, 0]) if return_weights else out[:, :, 0]

  def chunked(examples):
    def self_attention(x, *, mask=None, return_weights=False):
      # The chunk size is read while the train step is traced.
      original = attention._SELF_ATTENTION_CHUNK_ELEMENTS  # pylint: disable=protected-access
      attention._SELF_ATTENTION_CHUNK_ELEMENTS = examples * _STEPS * _STEPS  # pylint: disable=protected-access
      try:
        return attention.self_attention(x, mask=mask, return_weights=return_weights)
      finally:
        attention._SELF_ATTENTION_CHUNK_ELEMENTS = original  # pylint: disable=protected-access

    return types.SimpleNamespace(self_attention=self_attention)

  variants = {"dot_product_attention, one head": types.SimpleNamespace(self_attention=one_head)}
  for examples in (16, 32, 64):
    variants[f"self_attention, chunks of {examples}"] = chunked(examples)
  variants["self_attention, whole batch"] = chunked(10**6)

  print("| batch | attention | examples/s (median) | vs the first |")
  print("|---:|---|---:|---:|")
  for batch_size in common.parse_batch_sizes(args.batch_sizes):
    rates = jaxmodels_runner.compare_variants(
        "lstm_attention", batch_size, text_layers, "attention", variants, rounds=args.rounds)
    baseline = next(iter(rates.values()))
    for name, rate in rates.items():
      print(f"| {batch_size} | {name} | {rate:,.0f} | {rate / baseline:.2f} |", flush=True)


if __name__ == "__main__":
  main()
