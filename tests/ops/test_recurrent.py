"""Tests for jaxmodels.ops.recurrent against a step-by-step NumPy version of the Keras equations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxmodels.ops import recurrent

# Legend: B batch, T time steps, C input features, U units.
B, T, C, U = 3, 6, 5, 4
RTOL, ATOL = 1e-5, 1e-6
_STATIC = ("reverse", "return_sequences", "unroll")

CELLS = {
    "simple_rnn": (recurrent.simple_rnn, recurrent.init_simple_rnn, 1),
    "lstm": (recurrent.lstm, recurrent.init_lstm, 4),
    "gru": (recurrent.gru, recurrent.init_gru, 3),
}

# Eager calls compile the scan anew each time. Tests that call a layer many times with
# the same shapes use these jitted versions, which compile once per shape.
# test_recurrent_jit_matches_eager ties the two together.
JITTED = {kind: jax.jit(fn, static_argnames=_STATIC) for kind, (fn, _, _) in CELLS.items()}


def _sigmoid(z):
  return 1.0 / (1.0 + np.exp(-z))


def _random_params(kind, seed=0, in_features=C, units=U):
  """Draw every leaf at random, bias included, in the Keras layout."""
  rng = np.random.default_rng(seed)
  gates = CELLS[kind][2]
  bias_shape = (2, 3 * units) if kind == "gru" else (gates * units,)
  shapes = {
      "kernel": (in_features, gates * units),
      "recurrent_kernel": (units, gates * units),
      "bias": bias_shape,
  }
  return {name: (0.5 * rng.standard_normal(shape)).astype(np.float32)
          for name, shape in shapes.items()}


def _random_state(kind, seed, batch=B, units=U):
  rng = np.random.default_rng(seed)
  draw = lambda: (0.5 * rng.standard_normal((batch, units))).astype(np.float32)
  return (draw(), draw()) if kind == "lstm" else draw()


def _reference_step(kind, params, x_t, state):
  """Apply one Keras step in float64 to a single example and its state tuple."""
  kernel, recurrent_kernel, bias = (
      np.asarray(params[name], np.float64)
      for name in ("kernel", "recurrent_kernel", "bias"))
  units = recurrent_kernel.shape[0]
  if kind == "simple_rnn":
    (h,) = state
    return (np.tanh(x_t @ kernel + h @ recurrent_kernel + bias),)
  if kind == "lstm":
    h, c = state
    z = x_t @ kernel + h @ recurrent_kernel + bias
    i = _sigmoid(z[:units])
    f = _sigmoid(z[units:2 * units])
    g = np.tanh(z[2 * units:3 * units])
    o = _sigmoid(z[3 * units:])
    c = f * c + i * g
    return (o * np.tanh(c), c)
  (h,) = state
  a = x_t @ kernel + bias[0]
  u = h @ recurrent_kernel + bias[1]
  z = _sigmoid(a[:units] + u[:units])
  r = _sigmoid(a[units:2 * units] + u[units:2 * units])
  candidate = np.tanh(a[2 * units:] + r * u[2 * units:])
  return (z * h + (1 - z) * candidate,)


def _reference(kind, params, x, *, mask=None, initial_state=None, reverse=False):
  """Run each sequence alone over its real steps only, with zero outputs at padding.

  Returns outputs [B, T, U] and the final state as a tuple of [B, U] arrays.
  """
  x = np.asarray(x, np.float64)
  batch, steps, _ = x.shape
  units = np.shape(params["recurrent_kernel"])[0]
  num_states = 2 if kind == "lstm" else 1
  if initial_state is None:
    initial_state = tuple(np.zeros((batch, units)) for _ in range(num_states))
  elif num_states == 1:
    initial_state = (initial_state,)
  mask = np.ones((batch, steps), bool) if mask is None else np.asarray(mask)

  outputs = np.zeros((batch, steps, units))
  finals = [np.zeros((batch, units)) for _ in range(num_states)]
  for b in range(batch):
    state = tuple(np.asarray(s[b], np.float64) for s in initial_state)
    real_steps = [t for t in range(steps) if mask[b, t]]
    for t in (reversed(real_steps) if reverse else real_steps):
      state = _reference_step(kind, params, x[b, t], state)
      outputs[b, t] = state[0]
    for i, s in enumerate(state):
      finals[i][b] = s
  return outputs, tuple(finals)


def _as_tuple(state):
  return state if isinstance(state, tuple) else (state,)


def _inputs(seed=1, batch=B, steps=T, features=C):
  rng = np.random.default_rng(seed)
  return rng.standard_normal((batch, steps, features)).astype(np.float32)


def _right_padding(lengths, steps=T):
  return np.arange(steps)[None, :] < np.asarray(lengths)[:, None]


def _left_padding(lengths, steps=T):
  return np.arange(steps)[None, :] >= steps - np.asarray(lengths)[:, None]


@pytest.mark.parametrize("kind", CELLS)
@pytest.mark.parametrize("reverse", [False, True])
def test_recurrent_matches_reference(kind, reverse):
  fn = CELLS[kind][0]
  params, x = _random_params(kind), _inputs()

  outputs, state = fn(params, x, reverse=reverse, return_sequences=True)

  expected_outputs, expected_state = _reference(kind, params, x, reverse=reverse)
  np.testing.assert_allclose(outputs, expected_outputs, rtol=RTOL, atol=ATOL)
  for got, want in zip(_as_tuple(state), expected_state, strict=True):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kind", CELLS)
def test_recurrent_final_output(kind):
  fn = CELLS[kind][0]
  params, x = _random_params(kind), _inputs()

  outputs, state = fn(params, x, return_sequences=False)

  _, expected_state = _reference(kind, params, x)
  np.testing.assert_allclose(outputs, expected_state[0], rtol=RTOL, atol=ATOL)
  for got, want in zip(_as_tuple(state), expected_state, strict=True):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def _padded_batch(sequences, rows):
  """Place sequences in a padded batch.

  Args:
    sequences: list of f[L, C] arrays.
    rows: list of (sequence index or None, bool[T] mask) with mask.sum() == L.

  Returns:
    x f32[len(rows), T, C] and mask bool[len(rows), T]. Padding contains large random values,
    so any leak of padding into the results shows.
  """
  mask = np.stack([row_mask for _, row_mask in rows])
  x = 10 * _inputs(seed=99, batch=len(rows))
  for b, (index, row_mask) in enumerate(rows):
    if index is not None:
      x[b][row_mask] = sequences[index]
  return x, mask


def _padding_rows():
  """Return rows for _padded_batch: two sequences of lengths 4 and 2 padded many ways."""
  gap = np.zeros(T, bool)
  gap[[1, 4]] = True
  return [
      (0, _right_padding([4])[0]),
      (0, _left_padding([4])[0]),
      (1, _left_padding([2])[0]),
      (1, _right_padding([2])[0]),
      (1, gap),
      (None, np.zeros(T, bool)),
  ]


@pytest.mark.parametrize("kind", CELLS)
@pytest.mark.parametrize("reverse", [False, True])
def test_recurrent_padding_invariance(kind, reverse):
  fn = CELLS[kind][0]
  params, sequences = _random_params(kind), [_inputs(batch=1, steps=4)[0],
                                             _inputs(seed=2, batch=1, steps=2)[0]]
  x, mask = _padded_batch(sequences, _padding_rows())

  alone = [fn(params, sequence[None], reverse=reverse, return_sequences=True)
           for sequence in sequences]
  outputs, state = fn(params, x, mask=mask, reverse=reverse, return_sequences=True)

  state = _as_tuple(state)
  for b, (index, row_mask) in enumerate(_padding_rows()):
    np.testing.assert_array_equal(outputs[b][~row_mask], 0.0)
    if index is None:
      # A row made only of padding keeps the zero initial state.
      for s in state:
        np.testing.assert_array_equal(s[b], 0.0)
      continue
    alone_outputs, alone_state = alone[index]
    np.testing.assert_allclose(outputs[b][row_mask], alone_outputs[0], rtol=RTOL, atol=ATOL)
    for got, want in zip(state, _as_tuple(alone_state), strict=True):
      np.testing.assert_allclose(got[b], want[0], rtol=RTOL, atol=ATOL)

  expected_outputs, expected_state = _reference(kind, params, x, mask=mask, reverse=reverse)
  np.testing.assert_allclose(outputs, expected_outputs, rtol=RTOL, atol=ATOL)
  for got, want in zip(state, expected_state, strict=True):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kind", CELLS)
@pytest.mark.parametrize("reverse", [False, True])
def test_recurrent_initial_state(kind, reverse):
  fn = CELLS[kind][0]
  params, x = _random_params(kind), _inputs()
  initial_state = _random_state(kind, seed=3)
  mask = _right_padding([0, 3, T])

  outputs, state = fn(params, x, mask=mask, initial_state=initial_state, reverse=reverse,
                      return_sequences=True)

  expected_outputs, expected_state = _reference(
      kind, params, x, mask=mask, initial_state=initial_state, reverse=reverse)
  np.testing.assert_allclose(outputs, expected_outputs, rtol=RTOL, atol=ATOL)
  for got, want in zip(_as_tuple(state), expected_state, strict=True):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
  # Row 0 is all padding: zero outputs, and the initial state comes back unchanged.
  np.testing.assert_array_equal(outputs[0], 0.0)
  for got, want in zip(_as_tuple(state), _as_tuple(initial_state), strict=True):
    np.testing.assert_array_equal(got[0], want[0])


@pytest.mark.parametrize("kind", CELLS)
def test_recurrent_masked_gradients(kind):
  fn = CELLS[kind][0]
  params, x = _random_params(kind), _inputs()
  mask = _left_padding([0, 3, T])

  def loss(params, x):
    outputs, state = fn(params, x, mask=mask, return_sequences=True)
    return jnp.sum(outputs ** 2) + sum(jnp.sum(s) for s in _as_tuple(state))

  param_grads, x_grads = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x)

  for name, grad in param_grads.items():
    assert np.all(np.isfinite(grad)), name
  assert np.all(np.isfinite(x_grads))
  # Padded steps never reach the state, so their inputs get no gradient.
  np.testing.assert_array_equal(x_grads[~mask], 0.0)
  assert np.any(x_grads[mask] != 0.0)


# The LSTM's default backward pass is hand-written (jax.custom_vjp), so it has reverse mode
# only. With gradient="autodiff" it also has forward mode.
@pytest.mark.parametrize("kind, options, modes", [
    ("simple_rnn", {}, ("fwd", "rev")),
    ("gru", {}, ("fwd", "rev")),
    ("lstm", {}, ("rev",)),
    ("lstm", {"gradient": "autodiff"}, ("fwd", "rev")),
])
def test_recurrent_check_grads(kind, options, modes):
  fn = CELLS[kind][0]
  params = _random_params(kind, units=2, in_features=3)
  x = _inputs(batch=2, steps=3, features=3)
  mask = _right_padding([3, 2], steps=3)

  @jax.jit
  def f(params, x):
    outputs, _ = fn(params, x, mask=mask, return_sequences=True, **options)
    return outputs

  # Finite differences in float32 with eps=1e-3 are only accurate to about 1e-2.
  check_grads(f, (params, x), order=1, modes=modes, eps=1e-3, atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("padding", ["none", "right", "left"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("with_initial_state", [False, True])
def test_lstm_manual_gradient_matches_autodiff(padding, reverse, return_sequences,
                                               with_initial_state):
  params, x = _random_params("lstm"), _inputs()
  mask = {"none": None, "right": _right_padding([T, 2, 0]),
          "left": _left_padding([T, 4, 0])}[padding]
  initial_state = _random_state("lstm", seed=3) if with_initial_state else None
  rng = np.random.default_rng(4)
  output_shape = (B, T, U) if return_sequences else (B, U)
  weights = [rng.standard_normal(shape).astype(np.float32)
             for shape in (output_shape, (B, U), (B, U))]

  def loss(params, x, initial_state, gradient):
    outputs, (h, c) = recurrent.lstm(
        params, x, mask=mask, initial_state=initial_state, reverse=reverse,
        return_sequences=return_sequences, gradient=gradient)
    return (jnp.sum(outputs * weights[0]) + jnp.sum(h * weights[1])
            + jnp.sum(c * weights[2]))

  grad_fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)), static_argnums=3)
  manual_value, manual = grad_fn(params, x, initial_state, "manual")
  autodiff_value, autodiff = grad_fn(params, x, initial_state, "autodiff")

  np.testing.assert_allclose(manual_value, autodiff_value, rtol=RTOL)
  for got, expected in zip(jax.tree.leaves(manual), jax.tree.leaves(autodiff)):
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
  # A sequence made only of padding passes its initial state through unchanged.
  if padding != "none":
    np.testing.assert_array_equal(manual[1][2], 0.0)
    if with_initial_state:
      np.testing.assert_array_equal(manual[2][0][2], weights[1][2] + (
          0.0 if return_sequences else weights[0][2]))


@pytest.mark.parametrize("kind", CELLS)
def test_recurrent_jit_matches_eager(kind):
  fn = CELLS[kind][0]
  params, x = _random_params(kind), _inputs()
  mask = _left_padding([T, 2, 4])

  def run(params, x, mask):
    return fn(params, x, mask=mask, return_sequences=True, reverse=True)

  eager = run(params, x, mask)
  jitted = jax.jit(run)(params, x, mask)

  for got, want in zip(jax.tree.leaves(jitted), jax.tree.leaves(eager), strict=True):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kind", CELLS)
def test_recurrent_eval_shape(kind):
  fn = CELLS[kind][0]
  params, x = _random_params(kind), _inputs()

  for return_sequences, expected in ((True, (B, T, U)), (False, (B, U))):
    outputs, state = jax.eval_shape(
        lambda p, x: fn(p, x, return_sequences=return_sequences), params, x)

    assert outputs.shape == expected
    assert outputs.dtype == jnp.float32
    for s in _as_tuple(state):
      assert s.shape == (B, U)
      assert s.dtype == jnp.float32


@pytest.mark.parametrize("kind", CELLS)
def test_recurrent_bfloat16_dtype(kind):
  fn = CELLS[kind][0]
  params, x = _random_params(kind), _inputs()

  outputs, state = fn(params, jnp.asarray(x, jnp.bfloat16), return_sequences=True)

  assert outputs.dtype == jnp.bfloat16
  for s in _as_tuple(state):
    assert s.dtype == jnp.bfloat16
  expected_outputs, _ = _reference(kind, params, x)
  # bfloat16 keeps 8 mantissa bits, and errors grow over the 6 steps.
  np.testing.assert_allclose(outputs.astype(np.float32), expected_outputs, atol=5e-2)


@pytest.mark.parametrize("kind", CELLS)
def test_recurrent_unroll(kind):
  fn = CELLS[kind][0]
  params = _random_params(kind)
  x = _inputs(steps=7)
  mask = _left_padding([7, 5, 2], steps=7)

  # unroll=3 does not divide T=7, so the scan also runs a remainder step.
  outputs, state = fn(params, x, mask=mask, return_sequences=True, unroll=3)

  expected_outputs, expected_state = _reference(kind, params, x, mask=mask)
  np.testing.assert_allclose(outputs, expected_outputs, rtol=RTOL, atol=ATOL)
  for got, want in zip(_as_tuple(state), expected_state, strict=True):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional_matches_reference(return_sequences):
  kind = "lstm"
  params_forward = _random_params(kind, seed=4)
  params_backward = _random_params(kind, seed=5)
  x = _inputs()
  mask = np.stack([_right_padding([3])[0], _left_padding([5])[0], np.ones(T, bool)])

  outputs, (forward_state, backward_state) = recurrent.bidirectional(
      recurrent.lstm, params_forward, params_backward, x, mask=mask,
      return_sequences=return_sequences)

  forward, forward_expected_state = _reference(kind, params_forward, x, mask=mask)
  backward, backward_expected_state = _reference(
      kind, params_backward, x, mask=mask, reverse=True)
  if not return_sequences:
    forward, backward = forward_expected_state[0], backward_expected_state[0]
  np.testing.assert_allclose(outputs, np.concatenate([forward, backward], axis=-1),
                             rtol=RTOL, atol=ATOL)
  for got, want in zip(forward_state, forward_expected_state, strict=True):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
  for got, want in zip(backward_state, backward_expected_state, strict=True):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_bidirectional_merge_modes():
  params_forward = _random_params("simple_rnn", seed=4)
  params_backward = _random_params("simple_rnn", seed=5)
  x = _inputs()

  (forward, backward), _ = recurrent.bidirectional(
      JITTED["simple_rnn"], params_forward, params_backward, x, merge=None,
      return_sequences=True)
  expected = {
      "concat": np.concatenate([forward, backward], axis=-1),
      "sum": forward + backward,
      "mul": forward * backward,
      "ave": (forward + backward) / 2,
  }

  reference_forward, _ = _reference("simple_rnn", params_forward, x)
  reference_backward, _ = _reference("simple_rnn", params_backward, x, reverse=True)
  np.testing.assert_allclose(forward, reference_forward, rtol=RTOL, atol=ATOL)
  np.testing.assert_allclose(backward, reference_backward, rtol=RTOL, atol=ATOL)
  for merge, want in expected.items():
    got, _ = recurrent.bidirectional(JITTED["simple_rnn"], params_forward, params_backward,
                                     x, merge=merge, return_sequences=True)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=merge)


def test_bidirectional_padding_invariance():
  params_forward = _random_params("gru", seed=6)
  params_backward = _random_params("gru", seed=7)
  sequences = [_inputs(batch=1, steps=4)[0], _inputs(seed=2, batch=1, steps=2)[0]]
  rows = _padding_rows()
  x, mask = _padded_batch(sequences, rows)

  alone = [recurrent.bidirectional(recurrent.gru, params_forward, params_backward,
                                   sequence[None], return_sequences=True)[0][0]
           for sequence in sequences]
  outputs, _ = recurrent.bidirectional(recurrent.gru, params_forward, params_backward, x,
                                       mask=mask, return_sequences=True)

  for b, (index, row_mask) in enumerate(rows):
    np.testing.assert_array_equal(outputs[b][~row_mask], 0.0)
    if index is not None:
      np.testing.assert_allclose(outputs[b][row_mask], alone[index], rtol=RTOL, atol=ATOL)


def test_bidirectional_bad_merge():
  params = _random_params("gru")
  with pytest.raises(ValueError, match="merge must be one of"):
    recurrent.bidirectional(recurrent.gru, params, params, _inputs(), merge="max")


def test_lstm_parameter_count(key):
  params = recurrent.init_lstm(key, 64, 64)

  count = sum(leaf.size for leaf in jax.tree.leaves(params))

  assert count == 4 * (64 * (64 + 64) + 64)
  assert count == 33_024


@pytest.mark.parametrize("kind", CELLS)
def test_recurrent_init(kind, key):
  _, init, gates = CELLS[kind]
  in_features, units = 7, 5

  params = init(key, in_features, units)

  assert params["kernel"].shape == (in_features, gates * units)
  assert params["recurrent_kernel"].shape == (units, gates * units)
  for leaf in jax.tree.leaves(params):
    assert leaf.dtype == jnp.float32
  # Glorot-uniform bound sqrt(6 / (fan_in + fan_out)).
  limit = np.sqrt(6.0 / (in_features + gates * units))
  assert np.all(np.abs(params["kernel"]) <= limit)
  # An orthogonal [U, G*U] matrix has orthonormal rows.
  recurrent_kernel = np.asarray(params["recurrent_kernel"])
  np.testing.assert_allclose(recurrent_kernel @ recurrent_kernel.T, np.eye(units),
                             atol=1e-5)

  bias = np.asarray(params["bias"])
  if kind == "lstm":
    # Keras unit_forget_bias=True: the forget-gate slice starts at 1.
    np.testing.assert_array_equal(bias[units:2 * units], 1.0)
    np.testing.assert_array_equal(bias[:units], 0.0)
    np.testing.assert_array_equal(bias[2 * units:], 0.0)
  else:
    np.testing.assert_array_equal(bias, 0.0)
  assert bias.shape == ((2, 3 * units) if kind == "gru" else (gates * units,))


@pytest.mark.parametrize("kind", CELLS)
def test_recurrent_bad_x_rank(kind):
  fn = CELLS[kind][0]
  with pytest.raises(ValueError, match=rf"{kind}: x must have rank 3 \[B, T, C\]"):
    fn(_random_params(kind), _inputs()[0])


@pytest.mark.parametrize("kind", CELLS)
def test_recurrent_bad_kernel(kind):
  fn = CELLS[kind][0]
  params = _random_params(kind, in_features=C + 1)
  with pytest.raises(ValueError, match=rf"{kind}: kernel must have shape .* C={C}"):
    fn(params, _inputs())


@pytest.mark.parametrize("kind", CELLS)
def test_recurrent_bad_recurrent_kernel(kind):
  fn = CELLS[kind][0]
  params = _random_params(kind)
  params["recurrent_kernel"] = params["recurrent_kernel"][:, :-1]
  with pytest.raises(ValueError, match=rf"{kind}: recurrent_kernel must have shape"):
    fn(params, _inputs())


@pytest.mark.parametrize("kind", CELLS)
def test_recurrent_bad_bias(kind):
  fn = CELLS[kind][0]
  params = _random_params(kind)
  params["bias"] = params["bias"][..., :-1]
  with pytest.raises(ValueError, match=rf"{kind}: bias must have shape"):
    fn(params, _inputs())


@pytest.mark.parametrize("kind", CELLS)
def test_recurrent_bad_mask(kind):
  fn = CELLS[kind][0]
  mask = np.ones((B, T + 1), bool)
  with pytest.raises(ValueError, match=rf"{kind}: mask must have shape \[B, T\]"):
    fn(_random_params(kind), _inputs(), mask=mask)


@pytest.mark.parametrize("kind", CELLS)
def test_recurrent_bad_initial_state(kind):
  fn = CELLS[kind][0]
  initial_state = _random_state(kind, seed=0, units=U + 1)
  with pytest.raises(ValueError, match=rf"{kind}: initial_state must have shape"):
    fn(_random_params(kind), _inputs(), initial_state=initial_state)


def test_recurrent_mask_not_bool():
  mask = np.ones((B, T), np.int32)
  with pytest.raises(ValueError, match="lstm: mask must be bool"):
    recurrent.lstm(_random_params("lstm"), _inputs(), mask=mask)


def test_lstm_initial_state_not_pair():
  with pytest.raises(ValueError, match="lstm: initial_state must be a tuple of 2"):
    recurrent.lstm(_random_params("lstm"), _inputs(), initial_state=np.zeros((B, U)))


def test_lstm_bad_gradient():
  with pytest.raises(ValueError, match="lstm: gradient must be one of"):
    recurrent.lstm(_random_params("lstm"), _inputs(), gradient="numeric")


def test_recurrent_bad_unroll():
  with pytest.raises(ValueError, match="gru: unroll must be a positive int"):
    recurrent.gru(_random_params("gru"), _inputs(), unroll=0)


def test_recurrent_integer_x():
  x = np.zeros((B, T, C), np.int32)
  with pytest.raises(ValueError, match="simple_rnn: x must have a floating dtype"):
    recurrent.simple_rnn(_random_params("simple_rnn"), x)
