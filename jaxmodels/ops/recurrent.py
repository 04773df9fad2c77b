"""Recurrent layers (simple RNN, LSTM, GRU) as pure functions over `jax.lax.scan`.

Legend: B batch, T time steps, C input features, U units, G gates per unit
(1 for the simple RNN, 4 for the LSTM, 3 for the GRU).

Parameters use the names and shapes of Keras 3 (`keras/src/layers/rnn/`), so Keras weights
load without reshaping:

  simple RNN  {"kernel": [C, U],  "recurrent_kernel": [U, U],  "bias": [U]}
  LSTM        {"kernel": [C, 4U], "recurrent_kernel": [U, 4U], "bias": [4U]}
  GRU         {"kernel": [C, 3U], "recurrent_kernel": [U, 3U], "bias": [2, 3U]}

Inputs are batch-major `[B, T, C]`. Each scan step projects its own input and the previous
state, `x_t W + h_{t-1} R + b`.

Gradients: the LSTM has a hand-written backward pass (`gradient="manual"`, the default) that
scans back through time carrying only the state gradients and stacks the gate gradients
f[T, B, 4U]; the kernel, recurrent-kernel and input gradients are then one matrix product
each over all T * B rows, instead of T small products accumulated inside the loop. The other
layers, and the LSTM with `gradient="autodiff"`, are differentiated by JAX.

Return convention: every layer returns a tuple `(outputs, final_state)`. `outputs` is
`[B, T, U]` with `return_sequences=True`, else the final hidden state `[B, U]`. The state is
the hidden state `h` for the simple RNN and the GRU and the pair `(h, c)` for the LSTM.

Padding: `mask` is `bool[B, T]`, True at real steps. At a masked step the state is carried
unchanged and the output is zero. A sequence therefore gives the same outputs at its real
steps and the same final state whether it is run alone or in a batch padded on either side,
and a sequence made only of padding returns the initial state.

Reverse: `reverse=True` processes steps from T-1 down to 0, so with a mask it starts at each
sequence's last real step. Its outputs stay aligned with the input positions, unlike Keras
`go_backwards=True`, which returns them in reversed order.
"""

from collections.abc import Callable
import functools
from typing import Any

import jax
import jax.numpy as jnp

Params = dict[str, Any]
State = jax.Array | tuple[jax.Array, jax.Array]

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)
_GRADIENTS = ("manual", "autodiff")


def _check_params(name: str, params: Params, x: jax.Array, num_gates: int,
                  bias_rows: int | None) -> int:
  """Validate `x` and the parameter shapes, and return the number of units U."""
  if x.ndim != 3:
    raise ValueError(f"{name}: x must have rank 3 [B, T, C], got shape {x.shape}")
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise ValueError(f"{name}: x must have a floating dtype, got {x.dtype}")

  recurrent_shape = jnp.shape(params["recurrent_kernel"])
  if len(recurrent_shape) != 2 or recurrent_shape[1] != num_gates * recurrent_shape[0]:
    raise ValueError(
        f"{name}: recurrent_kernel must have shape [U, {num_gates}*U], "
        f"got {recurrent_shape}")
  units = recurrent_shape[0]

  kernel_shape = jnp.shape(params["kernel"])
  expected_kernel = (x.shape[-1], num_gates * units)
  if kernel_shape != expected_kernel:
    raise ValueError(
        f"{name}: kernel must have shape [C, {num_gates}*U] = {expected_kernel} for "
        f"x with C={x.shape[-1]} and U={units}, got {kernel_shape}")

  bias_shape = jnp.shape(params["bias"])
  expected_bias = (num_gates * units,) if bias_rows is None else (
      bias_rows, num_gates * units)
  if bias_shape != expected_bias:
    raise ValueError(
        f"{name}: bias must have shape {expected_bias}, got {bias_shape}")
  return units


def _check_mask(name: str, mask: jax.typing.ArrayLike | None,
                x: jax.Array) -> jax.Array | None:
  if mask is None:
    return None
  mask = jnp.asarray(mask)
  if mask.shape != x.shape[:2]:
    raise ValueError(
        f"{name}: mask must have shape [B, T] = {x.shape[:2]}, got {mask.shape}")
  if mask.dtype != jnp.bool_:
    raise ValueError(
        f"{name}: mask must be bool (True at real steps), got {mask.dtype}. "
        "Convert a 0/1 mask with `mask.astype(bool)`")
  return mask


def _initial_state(name: str, initial_state: Any, x: jax.Array, units: int,
                   num_states: int, params: Any) -> tuple[jax.Array, ...]:
  """Return the initial state as a tuple of `num_states` arrays `[B, U]`.

  Under `jax.shard_map` the state is marked as varying wherever `x` or `params` vary, since
  the scan's steps mix them into it.
  """
  shape = (x.shape[0], units)
  sources = (x, *jax.tree.leaves(params))
  if initial_state is None:
    return tuple(_vary_like(jnp.zeros(shape, x.dtype), *sources) for _ in range(num_states))

  states = initial_state if num_states > 1 else (initial_state,)
  if not isinstance(states, (tuple, list)) or len(states) != num_states:
    raise ValueError(
        f"{name}: initial_state must be a tuple of {num_states} arrays, "
        f"got {type(initial_state).__name__}")
  states = tuple(jnp.asarray(state) for state in states)
  for state in states:
    if state.shape != shape:
      raise ValueError(
          f"{name}: initial_state must have shape [B, U] = {shape}, got {state.shape}")
  return tuple(_vary_like(state.astype(x.dtype), *sources) for state in states)


def _vary_like(state: jax.Array, *sources: jax.Array) -> jax.Array:
  """Mark `state` as varying over every mesh axis that one of `sources` varies over.

  Under `jax.shard_map` a scan carry must keep its type, and a step that mixes per-device
  values into it makes it vary over their axes. Outside `shard_map` no array varies, and
  `state` is returned as is.
  """

  def varying_axes(array):
    aval = jax.typeof(array)
    # jax 0.10 keeps the varying axes in `manual_axis_type`, and some other releases in `vma`.
    axis_type = getattr(aval, "manual_axis_type", None)
    return set(axis_type.varying if axis_type is not None else getattr(aval, "vma", ()))

  needed = set().union(*(varying_axes(source) for source in sources))
  missing = tuple(sorted(needed - varying_axes(state)))
  return jax.lax.pcast(state, missing, to="varying") if missing else state


def _check_unroll(name: str, unroll: Any) -> None:
  if isinstance(unroll, bool) or not isinstance(unroll, int) or unroll < 1:
    raise ValueError(f"{name}: unroll must be a positive int, got {unroll!r}")


def _time_major(x: jax.Array) -> jax.Array:
  """Return f[T, B, C] inputs, because scan runs over axis 0.

  NOTE: each step projects its own input (x_t W + b). One product for all steps before the
  scan is the common formulation, but on XLA's CPU back end it made two stacked LSTMs train
  1.4x to 1.8x slower (benchmarks/prototypes/lstm_projection.py).
  """
  return jnp.swapaxes(x, 0, 1)


def _run(name: str,
         cell: Callable[[tuple[jax.Array, ...], jax.Array], tuple[jax.Array, ...]],
         xs: jax.Array, mask: jax.Array | None, state: tuple[jax.Array, ...], *,
         reverse: bool, return_sequences: bool,
         unroll: int) -> tuple[jax.Array, tuple[jax.Array, ...]]:
  """Scan `cell` over time-major inputs `xs` f[T, B, C] and return (outputs, final state)."""
  _check_unroll(name, unroll)

  ms = None if mask is None else jnp.swapaxes(mask, 0, 1)[:, :, None]  # [T, B, 1]

  def step(carry, inputs):
    x_t, m_t = inputs
    new = cell(carry, x_t)
    if m_t is not None:
      # Masked steps keep the old state, so padding on either side is invisible.
      new = tuple(jnp.where(m_t, n, o) for n, o in zip(new, carry))
    if not return_sequences:
      return new, None
    y_t = new[0] if m_t is None else jnp.where(m_t, new[0], jnp.zeros_like(new[0]))
    return new, y_t

  # With reverse=True, scan visits t = T-1 .. 0 but stacks outputs at their own index.
  state, ys = jax.lax.scan(step, state, (xs, ms), reverse=reverse, unroll=unroll)
  outputs = jnp.swapaxes(ys, 0, 1) if return_sequences else state[0]  # [B, T, U] | [B, U]
  return outputs, state


def simple_rnn(
    params: Params,
    x: jax.typing.ArrayLike,
    *,
    mask: jax.typing.ArrayLike | None = None,
    initial_state: jax.typing.ArrayLike | None = None,
    reverse: bool = False,
    return_sequences: bool = False,
    unroll: int = 1,
) -> tuple[jax.Array, jax.Array]:
  """Run a simple (Elman) RNN, `h_t = tanh(x_t W + h_{t-1} R + b)`.

  Args:
    params: {"kernel": f[C, U], "recurrent_kernel": f[U, U], "bias": f[U]}, cast to
      the dtype of `x`.
    x: f[B, T, C] inputs.
    mask: bool[B, T], True at real steps. Masked steps carry the state unchanged and
      output zeros.
    initial_state: f[B, U] initial hidden state, zeros if None.
    reverse: process steps from T-1 down to 0. Outputs stay aligned with the input
      positions.
    return_sequences: return the hidden state of every step instead of the final one.
    unroll: scan steps unrolled per loop iteration, passed to `jax.lax.scan`.

  Returns:
    (outputs, h): outputs f[B, T, U] if `return_sequences` else f[B, U], the final
    hidden state h f[B, U].

  Raises:
    ValueError: on an `x` that is not a rank-3 float array, a parameter, mask or
      initial state of the wrong shape, a mask that is not bool, or an `unroll` that
      is not a positive int.
  """
  x = jnp.asarray(x)
  units = _check_params("simple_rnn", params, x, 1, None)
  mask = _check_mask("simple_rnn", mask, x)
  state = _initial_state("simple_rnn", initial_state, x, units, 1, params)
  kernel, recurrent_kernel, bias = (
      jnp.asarray(params[name]).astype(x.dtype)
      for name in ("kernel", "recurrent_kernel", "bias"))

  xs = _time_major(x)  # [T, B, C]

  def cell(carry, x_t):
    (h,) = carry
    return (jnp.tanh(x_t @ kernel + bias[None, :] + h @ recurrent_kernel),)

  outputs, (h,) = _run("simple_rnn", cell, xs, mask, state, reverse=reverse,
                       return_sequences=return_sequences, unroll=unroll)
  return outputs, h


def lstm(
    params: Params,
    x: jax.typing.ArrayLike,
    *,
    mask: jax.typing.ArrayLike | None = None,
    initial_state: tuple[jax.typing.ArrayLike, jax.typing.ArrayLike] | None = None,
    reverse: bool = False,
    return_sequences: bool = False,
    unroll: int = 1,
    gradient: str = "manual",
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
  """Run an LSTM with Keras gate order i, f, c, o and sigmoid gates.

  With `z = x_t W + h_{t-1} R + b` split into `z_i, z_f, z_g, z_o`:

    c_t = sigmoid(z_f) * c_{t-1} + sigmoid(z_i) * tanh(z_g)
    h_t = sigmoid(z_o) * tanh(c_t)

  This matches `keras.layers.LSTM` with its defaults (activation="tanh",
  recurrent_activation="sigmoid", one bias). Peepholes and dropout are not supported.

  Args:
    params: {"kernel": f[C, 4U], "recurrent_kernel": f[U, 4U], "bias": f[4U]}, cast
      to the dtype of `x`.
    x: f[B, T, C] inputs.
    mask: bool[B, T], True at real steps. Masked steps carry the state unchanged and
      output zeros.
    initial_state: (h, c), each f[B, U], zeros if None.
    reverse: process steps from T-1 down to 0. Outputs stay aligned with the input
      positions.
    return_sequences: return the hidden state of every step instead of the final one.
    unroll: scan steps unrolled per loop iteration, passed to `jax.lax.scan`.
    gradient: "manual" differentiates with a hand-written backward pass that scans back
      through time and then forms each weight gradient as one matrix product over all
      steps. "autodiff" lets JAX differentiate the scan, which is slower on CPU but also
      supports forward mode (`jax.jvp`, `jax.jacfwd`, `jax.hessian`).

  Returns:
    (outputs, (h, c)): outputs f[B, T, U] if `return_sequences` else f[B, U], and the
    final hidden and cell states, each f[B, U].

  Raises:
    ValueError: on an `x` that is not a rank-3 float array, a parameter, mask or
      initial state of the wrong shape, a mask that is not bool, an `unroll` that
      is not a positive int, or an unknown `gradient`.
  """
  if gradient not in _GRADIENTS:
    raise ValueError(f"lstm: gradient must be one of {_GRADIENTS}, got {gradient!r}")
  x = jnp.asarray(x)
  units = _check_params("lstm", params, x, 4, None)
  mask = _check_mask("lstm", mask, x)
  state = _initial_state("lstm", initial_state, x, units, 2, params)
  kernel, recurrent_kernel, bias = (
      jnp.asarray(params[name]).astype(x.dtype)
      for name in ("kernel", "recurrent_kernel", "bias"))

  xs = _time_major(x)  # [T, B, C]

  if gradient == "autodiff":
    def cell(carry, x_t):
      h, c = carry
      new_h, new_c, _ = _lstm_cell(kernel, recurrent_kernel, bias, x_t, h, c)
      return new_h, new_c

    outputs, (h, c) = _run("lstm", cell, xs, mask, state, reverse=reverse,
                           return_sequences=return_sequences, unroll=unroll)
    return outputs, (h, c)

  _check_unroll("lstm", unroll)
  ms = None if mask is None else jnp.swapaxes(mask, 0, 1)[:, :, None]  # [T, B, 1]
  ys, h, c = _lstm_scan(reverse, return_sequences, unroll, kernel, recurrent_kernel, bias,
                        xs, ms, *state)
  outputs = jnp.swapaxes(ys, 0, 1) if return_sequences else h  # [B, T, U] | [B, U]
  return outputs, (h, c)


def _lstm_cell(kernel: jax.Array, recurrent_kernel: jax.Array, bias: jax.Array,
               x_t: jax.Array, h: jax.Array, c: jax.Array
               ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Return (h_t, c_t, z_t) of one LSTM step, where z_t f[B, 4U] are the gate pre-activations."""
  z = x_t @ kernel + bias[None, :] + h @ recurrent_kernel  # [B, 4U]
  i, f, g, o = _lstm_gates(z)
  new_c = f * c + i * g
  return o * jnp.tanh(new_c), new_c, z


def _lstm_gates(z: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """Split pre-activations f[B, 4U] into the activated gates i, f, g, o, each f[B, U]."""
  z_i, z_f, z_g, z_o = jnp.split(z, 4, axis=-1)
  return jax.nn.sigmoid(z_i), jax.nn.sigmoid(z_f), jnp.tanh(z_g), jax.nn.sigmoid(z_o)


def _lstm_forward(reverse: bool, return_sequences: bool, unroll: int, kernel: jax.Array,
                  recurrent_kernel: jax.Array, bias: jax.Array, xs: jax.Array,
                  ms: jax.Array | None, h0: jax.Array, c0: jax.Array, *,
                  keep_residuals: bool) -> tuple[tuple[Any, ...], Any]:
  """Scan the LSTM over xs f[T, B, C] and return ((ys, h, c), per-step residuals or None)."""

  def step(carry, inputs):
    h, c = carry
    x_t, m_t = inputs
    new_h, new_c, z = _lstm_cell(kernel, recurrent_kernel, bias, x_t, h, c)
    y_t = new_h
    if m_t is not None:
      # Masked steps keep the old state and output zeros.
      y_t = jnp.where(m_t, new_h, jnp.zeros_like(new_h))
      new_h, new_c = jnp.where(m_t, new_h, h), jnp.where(m_t, new_c, c)
    residuals = (h, c, z) if keep_residuals else None
    return (new_h, new_c), (y_t if return_sequences else None, residuals)

  (h, c), (ys, residuals) = jax.lax.scan(step, (h0, c0), (xs, ms), reverse=reverse,
                                         unroll=unroll)
  return (ys, h, c), residuals


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _lstm_scan(reverse, return_sequences, unroll, kernel, recurrent_kernel, bias, xs, ms,
               h0, c0):
  """Run the LSTM over time-major xs f[T, B, C] and return (ys f[T, B, U] or None, h, c)."""
  outputs, _ = _lstm_forward(reverse, return_sequences, unroll, kernel, recurrent_kernel,
                             bias, xs, ms, h0, c0, keep_residuals=False)
  return outputs


def _lstm_scan_fwd(reverse, return_sequences, unroll, kernel, recurrent_kernel, bias, xs, ms,
                   h0, c0):
  outputs, (hs, cs, zs) = _lstm_forward(
      reverse, return_sequences, unroll, kernel, recurrent_kernel, bias, xs, ms, h0, c0,
      keep_residuals=True)
  return outputs, (kernel, recurrent_kernel, xs, ms, hs, cs, zs)


def _lstm_scan_bwd(reverse, return_sequences, unroll, residuals, cotangents):
  """Scan back through time carrying (dh, dc), then take the weight gradients in one product each.

  hs and cs are the states entering each step and zs the gate pre-activations f[T, B, 4U].
  The gates and tanh(c_t) are recomputed from them, which costs less on CPU than storing them.
  """
  kernel, recurrent_kernel, xs, ms, hs, cs, zs = residuals
  d_ys, d_h, d_c = cotangents
  if not return_sequences:
    d_ys = None
  # Under shard_map the carried gradients vary wherever the weights or the gates do.
  sources = (recurrent_kernel, zs, *([] if d_ys is None else [d_ys]))
  d_h, d_c = _vary_like(d_h, *sources), _vary_like(d_c, *sources)

  def step(carry, inputs):
    d_h, d_c = carry  # Gradients with respect to the state leaving this step.
    d_y, m_t, c_prev, z = inputs
    d_new_h = d_h if d_y is None else d_h + d_y
    d_new_c = d_c
    if m_t is not None:
      # A masked step passed the old state through and output zeros.
      d_new_h = jnp.where(m_t, d_new_h, jnp.zeros_like(d_new_h))
      d_new_c = jnp.where(m_t, d_new_c, jnp.zeros_like(d_new_c))

    i, f, g, o = _lstm_gates(z)  # [B, U] each
    tanh_c = jnp.tanh(f * c_prev + i * g)
    d_cell = d_new_c + d_new_h * o * (1 - tanh_c * tanh_c)  # Total gradient of c_t.
    d_z = jnp.concatenate([
        d_cell * g * i * (1 - i),
        d_cell * c_prev * f * (1 - f),
        d_cell * i * (1 - g * g),
        d_new_h * tanh_c * o * (1 - o),
    ], axis=-1)  # [B, 4U]

    d_h_prev = d_z @ recurrent_kernel.T  # [B, U]
    d_c_prev = d_cell * f
    if m_t is not None:
      d_h_prev = d_h_prev + jnp.where(m_t, jnp.zeros_like(d_h), d_h)
      d_c_prev = d_c_prev + jnp.where(m_t, jnp.zeros_like(d_c), d_c)
    return (d_h_prev, d_c_prev), d_z

  (d_h0, d_c0), d_zs = jax.lax.scan(step, (d_h, d_c), (d_ys, ms, cs, zs),
                                    reverse=not reverse, unroll=unroll)

  # One product over all T * B rows for each weight and for the inputs.
  steps, batch, features = xs.shape
  d_z2 = d_zs.reshape(steps * batch, -1)  # [T * B, 4U]
  d_kernel = xs.reshape(steps * batch, features).T @ d_z2  # [C, 4U]
  d_recurrent_kernel = hs.reshape(steps * batch, -1).T @ d_z2  # [U, 4U]
  d_bias = jnp.sum(d_z2, axis=0)  # [4U]
  d_xs = (d_z2 @ kernel.T).reshape(steps, batch, features)  # [T, B, C]
  return d_kernel, d_recurrent_kernel, d_bias, d_xs, None, d_h0, d_c0


_lstm_scan.defvjp(_lstm_scan_fwd, _lstm_scan_bwd)


def gru(
    params: Params,
    x: jax.typing.ArrayLike,
    *,
    mask: jax.typing.ArrayLike | None = None,
    initial_state: jax.typing.ArrayLike | None = None,
    reverse: bool = False,
    return_sequences: bool = False,
    unroll: int = 1,
) -> tuple[jax.Array, jax.Array]:
  """Run a GRU with Keras gate order z, r, h and the reset gate after the product.

  With `a = x_t W + b[0]` and `u = h_{t-1} R + b[1]`, each split into z, r, h parts:

    z = sigmoid(a_z + u_z),  r = sigmoid(a_r + u_r)
    candidate = tanh(a_h + r * u_h)
    h_t = z * h_{t-1} + (1 - z) * candidate

  This matches `keras.layers.GRU` with its defaults (reset_after=True,
  recurrent_activation="sigmoid"). The reset-before variant is not supported.

  Args:
    params: {"kernel": f[C, 3U], "recurrent_kernel": f[U, 3U], "bias": f[2, 3U]},
      cast to the dtype of `x`. bias[0] is the input bias and bias[1] the recurrent
      bias.
    x: f[B, T, C] inputs.
    mask: bool[B, T], True at real steps. Masked steps carry the state unchanged and
      output zeros.
    initial_state: f[B, U] initial hidden state, zeros if None.
    reverse: process steps from T-1 down to 0. Outputs stay aligned with the input
      positions.
    return_sequences: return the hidden state of every step instead of the final one.
    unroll: scan steps unrolled per loop iteration, passed to `jax.lax.scan`.

  Returns:
    (outputs, h): outputs f[B, T, U] if `return_sequences` else f[B, U], the final
    hidden state h f[B, U].

  Raises:
    ValueError: on an `x` that is not a rank-3 float array, a parameter, mask or
      initial state of the wrong shape, a mask that is not bool, or an `unroll` that
      is not a positive int.
  """
  x = jnp.asarray(x)
  units = _check_params("gru", params, x, 3, 2)
  mask = _check_mask("gru", mask, x)
  state = _initial_state("gru", initial_state, x, units, 1, params)
  kernel, recurrent_kernel, bias = (
      jnp.asarray(params[name]).astype(x.dtype)
      for name in ("kernel", "recurrent_kernel", "bias"))
  input_bias, recurrent_bias = bias[0], bias[1]

  xs = _time_major(x)  # [T, B, C]

  def cell(carry, x_t):
    (h,) = carry
    a_z, a_r, a_h = jnp.split(x_t @ kernel + input_bias[None, :], 3, axis=-1)
    u_z, u_r, u_h = jnp.split(h @ recurrent_kernel + recurrent_bias[None, :], 3, axis=-1)
    z = jax.nn.sigmoid(a_z + u_z)
    r = jax.nn.sigmoid(a_r + u_r)
    candidate = jnp.tanh(a_h + r * u_h)
    return (z * h + (1 - z) * candidate,)

  outputs, (h,) = _run("gru", cell, xs, mask, state, reverse=reverse,
                       return_sequences=return_sequences, unroll=unroll)
  return outputs, h


def bidirectional(
    cell_fn: Callable[..., tuple[jax.Array, State]],
    params_forward: Params,
    params_backward: Params,
    x: jax.typing.ArrayLike,
    *,
    mask: jax.typing.ArrayLike | None = None,
    return_sequences: bool = False,
    merge: str | None = "concat",
    unroll: int = 1,
) -> tuple[jax.Array | tuple[jax.Array, jax.Array], tuple[State, State]]:
  """Run `cell_fn` forward and backward over `x` and merge the two outputs.

  The backward pass starts at each sequence's last real step when `mask` is given,
  and its outputs are aligned with the input positions, as in
  `keras.layers.Bidirectional`.

  Args:
    cell_fn: `simple_rnn`, `lstm`, `gru` or a function with the same signature.
    params_forward: parameters of the forward layer.
    params_backward: parameters of the backward layer.
    x: f[B, T, C] inputs.
    mask: bool[B, T], True at real steps.
    return_sequences: merge per-step outputs f[B, T, U] instead of final states f[B, U].
    merge: "concat" (last axis becomes 2U), "sum", "mul", "ave", or None to return the
      pair (forward, backward) unmerged.
    unroll: passed to both passes.

  Returns:
    (outputs, (forward_state, backward_state)). The backward final state is the state
    after the first real step.

  Raises:
    ValueError: on an unknown `merge`, or anything `cell_fn` rejects.
  """
  if merge not in _MERGE_MODES:
    raise ValueError(
        f"bidirectional: merge must be one of {_MERGE_MODES}, got {merge!r}")

  forward, forward_state = cell_fn(
      params_forward, x, mask=mask, return_sequences=return_sequences, unroll=unroll)
  backward, backward_state = cell_fn(
      params_backward, x, mask=mask, reverse=True, return_sequences=return_sequences,
      unroll=unroll)

  if merge == "concat":
    outputs = jnp.concatenate([forward, backward], axis=-1)
  elif merge == "sum":
    outputs = forward + backward
  elif merge == "mul":
    outputs = forward * backward
  elif merge == "ave":
    outputs = (forward + backward) / 2
  else:
    outputs = (forward, backward)
  return outputs, (forward_state, backward_state)


def _init_params(key: jax.Array, in_features: int, units: int, num_gates: int,
                 bias: jax.Array) -> Params:
  kernel_key, recurrent_key = jax.random.split(key)
  kernel_init = jax.nn.initializers.glorot_uniform()
  recurrent_init = jax.nn.initializers.orthogonal()
  return {
      "kernel": kernel_init(kernel_key, (in_features, num_gates * units), jnp.float32),
      "recurrent_kernel": recurrent_init(
          recurrent_key, (units, num_gates * units), jnp.float32),
      "bias": bias,
  }


def init_simple_rnn(key: jax.Array, in_features: int, units: int) -> Params:
  """Initialize simple RNN parameters as Keras does by default.

  The kernel is Glorot-uniform, the recurrent kernel orthogonal and the bias zero,
  all float32.
  """
  return _init_params(key, in_features, units, 1, jnp.zeros((units,), jnp.float32))


def init_lstm(key: jax.Array, in_features: int, units: int) -> Params:
  """Initialize LSTM parameters as Keras does by default.

  The kernel is Glorot-uniform and the recurrent kernel orthogonal, with orthonormal
  rows because it is [U, 4U]. The bias is zero except the forget-gate slice [U:2U],
  which is 1 (Keras `unit_forget_bias=True`) so that early training keeps the cell
  state. All leaves are float32.
  """
  bias = jnp.zeros((4 * units,), jnp.float32).at[units:2 * units].set(1.0)
  return _init_params(key, in_features, units, 4, bias)


def init_gru(key: jax.Array, in_features: int, units: int) -> Params:
  """Initialize GRU parameters as Keras does by default.

  The kernel is Glorot-uniform, the recurrent kernel orthogonal and both bias rows
  zero, all float32.
  """
  return _init_params(key, in_features, units, 3,
                      jnp.zeros((2, 3 * units), jnp.float32))
