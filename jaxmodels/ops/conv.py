"""Convolutions on channels-last arrays, built on `jax.lax.conv_general_dilated`.

Shape letters: B batch, T steps, H W height and width, C channels in, O channels out.
Images are f32[B, H, W, C] (NHWC) with f32[KH, KW, C, O] kernels (HWIO). Sequences are
f32[B, T, C] with f32[K, C, O] kernels (WIO). KH, KW and K are kernel sizes.

Padding is "VALID" (no padding), "SAME" or explicit non-negative (low, high) pairs, one per
spatial axis. The strings are case-insensitive. "SAME" gives output size ceil(input / stride).
When its total padding is odd, the extra row or column goes at the end, as in TensorFlow and
Keras.
"""

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

Padding = str | Sequence[tuple[int, int]]

_PADDING_STRINGS = ("VALID", "SAME")


def conv2d(
    params: Mapping[str, jax.typing.ArrayLike],
    x: jax.typing.ArrayLike,
    *,
    strides: int | Sequence[int] = (1, 1),
    padding: Padding = "VALID",
    dilation: int | Sequence[int] = (1, 1),
    precision: jax.lax.PrecisionLike = None,
) -> jax.Array:
  """Convolve images with an HWIO kernel and add an optional bias, as Keras `Conv2D`.

  Computes in the dtype of `x`: the kernel and bias are cast to it. For 16-bit floats the
  products are accumulated in float32 and the bias is added before rounding back.

  Args:
    params: `kernel` f32[KH, KW, C, O] and optionally `bias` f32[O].
    x: f32[B, H, W, C] images.
    strides: step between windows, one int for both axes or (height, width).
    padding: "VALID", "SAME" or ((top, bottom), (left, right)).
    dilation: kernel dilation (atrous rate), one int or (height, width).
    precision: passed to `lax.conv_general_dilated`. The default follows
      `jax_default_matmul_precision`, which on some GPUs computes float32 through TF32.

  Returns:
    f32[B, H', W', O] in the dtype of `x`.

  Raises:
    ValueError: on a wrong rank, mismatched channels or bias, non-positive strides or
      dilation, or unknown padding or parameter names.
  """
  return _conv("conv2d", params, x, num_spatial=2, strides=strides, padding=padding,
               dilation=dilation, precision=precision)


def conv1d(
    params: Mapping[str, jax.typing.ArrayLike],
    x: jax.typing.ArrayLike,
    *,
    stride: int = 1,
    padding: str | tuple[int, int] | Sequence[tuple[int, int]] = "VALID",
    dilation: int = 1,
    precision: jax.lax.PrecisionLike = None,
) -> jax.Array:
  """Convolve sequences over their steps with a WIO kernel, as Keras `Conv1D`.

  Computes in the dtype of `x` as `conv2d` does. Keras's "causal" padding is the explicit
  padding ((K - 1) * dilation, 0).

  Args:
    params: `kernel` f32[K, C, O] and optionally `bias` f32[O].
    x: f32[B, T, C] sequences.
    stride: step between windows.
    padding: "VALID", "SAME", (low, high) or ((low, high),).
    dilation: kernel dilation.
    precision: as in `conv2d`.

  Returns:
    f32[B, T', O] in the dtype of `x`.

  Raises:
    ValueError: as `conv2d`.
  """
  # A bare (low, high) pair is the one-axis form of the per-axis list.
  if (isinstance(padding, Sequence) and not isinstance(padding, str) and len(padding) == 2
      and all(_is_int(p) for p in padding)):
    padding = (tuple(padding),)
  return _conv("conv1d", params, x, num_spatial=1, strides=stride, padding=padding,
               dilation=dilation, precision=precision)


def _conv(
    name: str,
    params: Mapping[str, jax.typing.ArrayLike],
    x: jax.typing.ArrayLike,
    *,
    num_spatial: int,
    strides: int | Sequence[int],
    padding: Padding,
    dilation: int | Sequence[int],
    precision: jax.lax.PrecisionLike,
) -> jax.Array:
  """Check the arguments of a channels-last convolution with `num_spatial` axes and run it."""
  x = jnp.asarray(x)
  kernel, bias = _kernel_and_bias(name, params)
  spatial_letters = "H, W" if num_spatial == 2 else "T"
  kernel_letters = "KH, KW" if num_spatial == 2 else "K"

  if x.ndim != num_spatial + 2:
    raise ValueError(f"{name}: x must have shape [B, {spatial_letters}, C], got {x.shape}")
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise ValueError(f"{name}: x must be floating point, got {x.dtype}. Cast it first, "
                     "for example with x.astype(jnp.float32)")
  if kernel.ndim != num_spatial + 2:
    raise ValueError(f"{name}: kernel must have shape [{kernel_letters}, C, O], "
                     f"got {kernel.shape}")
  if kernel.shape[-2] != x.shape[-1]:
    raise ValueError(f"{name}: kernel has C={kernel.shape[-2]} input channels "
                     f"but x has C={x.shape[-1]}")
  if bias is not None and bias.shape != kernel.shape[-1:]:
    raise ValueError(f"{name}: bias must have shape ({kernel.shape[-1]},) to match the "
                     f"kernel's O={kernel.shape[-1]}, got {bias.shape}")

  strides = _positive_ints(name, "strides" if num_spatial == 2 else "stride", strides,
                           num_spatial)
  dilation = _positive_ints(name, "dilation", dilation, num_spatial)
  padding = _canonical_padding(name, padding, num_spatial)

  # XLA's CPU back end differentiates a convolution padded before the first element far more
  # slowly than one padded only after the last: 8x on the wide text CNN's convolutions, 1.3x
  # on a 3x3 SAME one. Padding the input first gives the same windows and the fast form.
  if padding == "SAME":
    window = [(size - 1) * rate + 1 for size, rate in zip(kernel.shape[:-2], dilation)]
    padding = tuple(jax.lax.padtype_to_pads(x.shape[1:-1], window, strides, "SAME"))
  if padding != "VALID" and any(low for low, _ in padding):
    x = jnp.pad(x, ((0, 0), *((low, 0) for low, _ in padding), (0, 0)))  # [B, ..., C]
    padding = tuple((0, high) for _, high in padding)

  # 16-bit inputs accumulate in float32, and wider ones in their own dtype.
  dtype = x.dtype
  accumulate_dtype = jnp.float32 if jnp.finfo(dtype).bits < 32 else None
  spec = ("NHWC", "HWIO", "NHWC") if num_spatial == 2 else ("NWC", "WIO", "NWC")
  y = jax.lax.conv_general_dilated(
      x,
      kernel.astype(dtype),
      window_strides=strides,
      padding=padding,
      rhs_dilation=dilation,
      dimension_numbers=spec,
      precision=precision,
      preferred_element_type=accumulate_dtype,
  )  # [B, ..., O]

  if bias is not None:
    y = y + bias.astype(y.dtype).reshape((1,) * (y.ndim - 1) + bias.shape)
  return y.astype(dtype)


def _kernel_and_bias(
    name: str, params: Mapping[str, jax.typing.ArrayLike]
) -> tuple[jax.Array, jax.Array | None]:
  """Return `params["kernel"]` and `params.get("bias")`, rejecting other names."""
  unknown = sorted(set(params) - {"kernel", "bias"})
  if "kernel" not in params or unknown:
    raise ValueError(f"{name}: params must contain 'kernel' and optionally 'bias', "
                     f"got keys {sorted(params)}")
  kernel = jnp.asarray(params["kernel"])
  bias = params.get("bias")
  if bias is not None:
    bias = jnp.asarray(bias)
  return kernel, bias


def _is_int(value) -> bool:
  """Return whether `value` is a Python or NumPy integer, excluding bool."""
  return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _positive_ints(name: str, argument: str, value: int | Sequence[int],
                   length: int) -> tuple[int, ...]:
  """Expand an int to `length` copies and check that every entry is a positive int."""
  if _is_int(value):
    values = (value,) * length
  elif isinstance(value, Sequence):
    values = tuple(value)
  else:
    values = ()
  if len(values) != length or not all(_is_int(v) and v > 0 for v in values):
    expected = "a positive int" if length == 1 else f"a positive int or {length} positive ints"
    raise ValueError(f"{name}: {argument} must be {expected}, got {value!r}")
  return tuple(int(v) for v in values)


def _canonical_padding(name: str, padding: Padding,
                       num_spatial: int) -> str | tuple[tuple[int, int], ...]:
  """Upper-case a padding string or check explicit (low, high) pairs, one per spatial axis."""
  if isinstance(padding, str):
    if padding.upper() not in _PADDING_STRINGS:
      raise ValueError(f"{name}: padding must be 'VALID', 'SAME' or one (low, high) pair per "
                       f"spatial axis, got {padding!r}")
    return padding.upper()

  def is_pair(pair) -> bool:
    return (isinstance(pair, Sequence) and len(pair) == 2
            and all(_is_int(p) and p >= 0 for p in pair))

  if (not isinstance(padding, Sequence) or len(padding) != num_spatial
      or not all(is_pair(pair) for pair in padding)):
    raise ValueError(f"{name}: explicit padding must be one (low, high) pair of non-negative "
                     f"ints per spatial axis, {num_spatial} in all, got {padding!r}")
  return tuple((int(low), int(high)) for low, high in padding)
