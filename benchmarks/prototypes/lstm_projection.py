"""Prototype: the LSTM input projection before the scan instead of inside each step.

  python benchmarks/prototypes/lstm_projection.py [--model=lstm] [--batch-sizes=32,128]

`jaxmodels.ops.recurrent.lstm` multiplies x_t by the kernel inside each scan step, as Keras's
LSTM (JAX back end) does. The common alternative projects the inputs of all steps with one
product before `lax.scan`, so that each step multiplies only the recurrent kernel. This
prototype swaps `recurrent.lstm` (in this process only) for that form, checks it against the
op, and times the jaxmodels train step with each, in turns. Both let JAX differentiate the
scan (`gradient="autodiff"`), because the op's hand-written backward pass exists only for the
per-step form.

Shape letters: B batch, T steps, C input features, U units.
"""

import functools
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # pylint: disable=g-import-not-at-top


def lstm_before_scan(params, x, *, mask=None, initial_state=None, reverse=False,
                     return_sequences=False, unroll=1):
  """Run `recurrent.lstm` with the input product before the scan, in the forward direction only."""
  if initial_state is not None or reverse:
    raise ValueError("the prototype supports neither initial_state nor reverse")
  kernel, recurrent_kernel, bias = (params[name] for name in
                                    ("kernel", "recurrent_kernel", "bias"))
  batch, units = x.shape[0], recurrent_kernel.shape[0]
  projected = jnp.swapaxes(x @ kernel + bias, 0, 1)  # [T, B, 4U]
  if mask is None:
    mask = jnp.ones(x.shape[:2], jnp.bool_)
  ms = jnp.swapaxes(mask, 0, 1)[:, :, None]  # [T, B, 1]

  def step(carry, inputs):
    h, c = carry
    z_x, m_t = inputs
    z = z_x + h @ recurrent_kernel  # [B, 4U]
    z_i, z_f, z_g, z_o = jnp.split(z, 4, axis=-1)
    new_c = jax.nn.sigmoid(z_f) * c + jax.nn.sigmoid(z_i) * jnp.tanh(z_g)
    new_h = jax.nn.sigmoid(z_o) * jnp.tanh(new_c)

    # Masked steps keep the old state and output zeros, as in `recurrent.lstm`.
    carry = (jnp.where(m_t, new_h, h), jnp.where(m_t, new_c, c))
    y_t = jnp.where(m_t, new_h, jnp.zeros_like(new_h)) if return_sequences else None
    return carry, y_t

  zeros = jnp.zeros((batch, units), x.dtype)
  (h, c), ys = jax.lax.scan(step, (zeros, zeros), (projected, ms), unroll=unroll)
  outputs = jnp.swapaxes(ys, 0, 1) if return_sequences else h  # [B, T, U] | [B, U]
  return outputs, (h, c)


def main() -> None:
  parser = common.prototype_parser(__doc__)
  parser.add_argument("--model", default="lstm", choices=("lstm", "lstm_attention"))
  args = parser.parse_args()

  import jaxmodels_runner  # pylint: disable=g-import-not-at-top
  from jaxmodels.ops import recurrent  # pylint: disable=g-import-not-at-top

  per_step = functools.partial(recurrent.lstm, gradient="autodiff")

  # Both forms must agree before their speed means anything.
  key_x, key_p = jax.random.split(jax.random.key(0))
  x = jax.random.normal(key_x, (4, 7, 5))
  params = recurrent.init_lstm(key_p, 5, 6)
  mask = jnp.arange(7)[None, :] < jnp.array([[7], [3], [1], [5]])
  for return_sequences in (True, False):
    expected, _ = per_step(params, x, mask=mask, return_sequences=return_sequences)
    actual, _ = lstm_before_scan(params, x, mask=mask, return_sequences=return_sequences)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)

  print("| model | batch | product before scan (ex/s) | inside step (ex/s) | inside / before |")
  print("|---|---:|---:|---:|---:|")
  for batch_size in common.parse_batch_sizes(args.batch_sizes):
    rates = jaxmodels_runner.compare_variants(
        args.model, batch_size, recurrent, "lstm",
        {"before": lstm_before_scan, "inside": per_step}, rounds=args.rounds)
    print(f"| {args.model} | {batch_size} | {rates['before']:,.0f} | {rates['inside']:,.0f} | "
          f"{rates['inside'] / rates['before']:.2f} |", flush=True)


if __name__ == "__main__":
  main()
