"""Classification losses and metrics on logits with integer labels.

Shape letters: B batch, K classes. "..." stands for any number of leading axes, usually [B].
"""

import jax
import jax.numpy as jnp
import numpy as np


def softmax_cross_entropy(logits: jax.typing.ArrayLike, labels: jax.typing.ArrayLike) -> jax.Array:
  """Compute the per-example cross-entropy -log softmax(logits)[label].

  Computed in at least float32 as log_softmax, which subtracts the row maximum before the
  exponent, so bfloat16 logits keep their precision and a label logit close to the maximum
  loses no digits to cancellation. Labels outside [0, K) give NaN rather than a plausible
  number, so padding examples must carry a valid label such as 0: a zero weight does not
  cancel NaN. This function runs under `jit` and cannot raise on values, so validate labels
  on the host with `check_labels`.

  Args:
    logits: f32[..., K] unnormalized log-probabilities.
    labels: int[...] class indices.

  Returns:
    f32[...] loss per example (f64 for float64 logits).

  Raises:
    ValueError: on non-float logits, non-integer labels, or labels whose shape is not the
      shape of `logits` without its last axis.
  """
  logits, labels = _check_logits_and_labels("softmax_cross_entropy", logits, labels)
  if jnp.finfo(logits.dtype).bits < 32:
    logits = logits.astype(jnp.float32)

  # optax.softmax_cross_entropy_with_integer_labels (optax 0.2.8) is not used: it computes
  # logsumexp - logit, which cancels digits when the label logit is near the maximum,
  # and it wraps negative labels to real classes.
  num_classes = logits.shape[-1]
  log_probs = jax.nn.log_softmax(logits, axis=-1)  # [..., K]
  in_range = (labels >= 0) & (labels < num_classes)  # [...]
  safe_labels = jnp.where(in_range, labels, jnp.zeros_like(labels))
  label_log_probs = jnp.take_along_axis(log_probs, safe_labels[..., None], axis=-1)[..., 0]
  return jnp.where(in_range, -label_log_probs, jnp.full_like(label_log_probs, jnp.nan))


def accuracy(logits: jax.typing.ArrayLike, labels: jax.typing.ArrayLike) -> jax.Array:
  """Return 1.0 where the largest logit is at the label and 0.0 elsewhere.

  Per-example values let callers weight or mask before summing. Ties go to the lowest class
  index, as in `jnp.argmax`. A label outside [0, K) never matches.

  Args:
    logits: f32[..., K].
    labels: int[...] class indices.

  Returns:
    f32[...] of 0.0 and 1.0.

  Raises:
    ValueError: as `softmax_cross_entropy`.
  """
  logits, labels = _check_logits_and_labels("accuracy", logits, labels)
  predictions = jnp.argmax(logits, axis=-1)  # [...]
  return (predictions.astype(labels.dtype) == labels).astype(jnp.float32)


def check_labels(labels: np.typing.ArrayLike, num_classes: int) -> None:
  """Raise ValueError unless every label is in [0, num_classes).

  Runs on the host with NumPy, so call it in the data pipeline, not under `jit`. A JAX array
  is copied to the host.

  Args:
    labels: int[...] class indices.
    num_classes: number of classes K.

  Raises:
    ValueError: naming the first out-of-range label, its index and how many labels are out of
      range. Also raised on non-integer labels or a non-positive `num_classes`.
  """
  is_int = isinstance(num_classes, (int, np.integer)) and not isinstance(num_classes, bool)
  if not is_int or num_classes <= 0:
    raise ValueError(f"check_labels: num_classes must be a positive int, got {num_classes!r}")
  labels = np.asarray(labels)
  if not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f"check_labels: labels must be integers, got {labels.dtype}")

  out_of_range = (labels < 0) | (labels >= num_classes)
  if out_of_range.any():
    index = tuple(int(i) for i in np.argwhere(out_of_range)[0])
    if len(index) == 1:
      index = index[0]
    raise ValueError(
        f"check_labels: label {labels[out_of_range].flat[0]} at index {index} is outside the "
        f"valid range [0, {num_classes}), and {out_of_range.sum()} of {labels.size} labels "
        "are out of range. Fix the labels or raise num_classes.")


def _check_logits_and_labels(
    name: str, logits: jax.typing.ArrayLike, labels: jax.typing.ArrayLike
) -> tuple[jax.Array, jax.Array]:
  """Check dtypes and shapes, and widen 8- and 16-bit labels to int32."""
  logits = jnp.asarray(logits)
  labels = jnp.asarray(labels)
  if logits.ndim < 1 or not jnp.issubdtype(logits.dtype, jnp.floating):
    raise ValueError(f"{name}: logits must be a floating-point array of shape [..., K], "
                     f"got {logits.dtype}{list(logits.shape)}")
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise ValueError(f"{name}: labels must be integers, got {labels.dtype}")
  if labels.shape != logits.shape[:-1]:
    raise ValueError(f"{name}: labels must have shape {logits.shape[:-1]} to match logits of "
                     f"shape {logits.shape}, got {labels.shape}")

  # Comparing narrow labels with K could overflow, for example uint8 labels with K=300.
  if jnp.iinfo(labels.dtype).bits < 32:
    labels = labels.astype(jnp.int32)
  return logits, labels
