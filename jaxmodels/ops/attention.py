"""Attention as pure functions: scaled dot-product, self-attention without parameters,
multi-head and additive (Bahdanau).

Legend: B batch, T query steps, S key steps, N heads, D depth per head (query and key),
C channels in, O channels out, A additive-attention units. Value depth is written Dv
where it may differ from D.

Masks are boolean with True meaning "attend". Logits and softmax are computed in float32
for 16-bit and float32 inputs (float64 for float64 inputs), and the attention output is cast
back to the dtype of the inputs.

Masked softmax contract (with the default implementation=None): a masked key gets weight
exactly 0, and a query row whose keys are all masked gets all-zero weights, a zero output
and zero gradients. The softmax shifts by the maximum over valid keys only and applies
`jnp.where` both before and after `exp`, so inf or NaN logits at masked keys reach neither
the outputs nor the gradients.

Gradients: `dot_product_attention` (and `multi_head_attention` through it) and
`self_attention` have hand-written backward passes by default, which need only the weights,
and on CPU run both passes in batch chunks so that each chunk's logits stay in cache.
`gradient="autodiff"` lets JAX differentiate the plain computation instead, which forward
mode (`jax.jvp`) needs.
"""

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp

Params = dict[str, Any]

_IMPLEMENTATIONS = (None, "xla", "cudnn")
_GRADIENTS = ("manual", "autodiff")

# Logits per batch chunk on CPU. Measured on a 2-core Zen 4 with [B, 4, 100, 100] logits,
# 16 examples per chunk (640K floats, 2.5 MiB) ran forward and backward fastest, 8 and 32
# slower. NOTE: tuned on that one shape and CPU. In whole train steps the chunked form was
# within noise for the Transformer.
_CHUNK_ELEMENTS = 640 * 1024
# Logits per batch chunk of `self_attention` on CPU. In the LSTM-with-attention train step
# ([B, 100, 100] logits, same machine) 16 examples per chunk (160K floats) ran fastest at
# batch 32, and within the window spread of 32, 64 or whole batches at batch 128.
_SELF_ATTENTION_CHUNK_ELEMENTS = 160 * 1024


def padding_mask(key_mask: jax.typing.ArrayLike) -> jax.Array:
  """Turn a key padding mask into an attention mask.

  Args:
    key_mask: bool[B, S], True at real keys.

  Returns:
    bool[B, 1, 1, S], which broadcasts against [B, N, T, S].

  Raises:
    ValueError: if `key_mask` is not a rank-2 bool array.
  """
  key_mask = jnp.asarray(key_mask)
  if key_mask.ndim != 2 or key_mask.dtype != jnp.bool_:
    raise ValueError(
        f"padding_mask: key_mask must be bool[B, S], got {key_mask.dtype}{list(key_mask.shape)}")
  return key_mask[:, None, None, :]


def _masked_softmax(logits: jax.Array, valid: jax.Array | None) -> jax.Array:
  """Compute a softmax over the last axis of f32 `logits`, giving masked entries weight 0.

  Rows without a valid entry get all-zero weights. `valid` must broadcast to `logits`.
  """
  if valid is None:
    return jax.nn.softmax(logits, axis=-1)
  valid = jnp.broadcast_to(valid, logits.shape)

  # Shift by the max over valid keys. A row with no valid key (max = -inf) shifts by 0.
  row_max = jnp.max(jnp.where(valid, logits, -jnp.inf), axis=-1, keepdims=True)
  row_max = jax.lax.stop_gradient(jnp.where(jnp.isfinite(row_max), row_max, 0.0))

  # First where: masked logits never reach exp, so inf or NaN there cannot leak into
  # gradients. Second where: masked weights are exactly 0.
  shifted = jnp.where(valid, logits - row_max, 0.0)
  exps = jnp.where(valid, jnp.exp(shifted), 0.0)
  total = jnp.sum(exps, axis=-1, keepdims=True)
  return exps / jnp.where(total > 0, total, 1.0)


def _at_least_float32(dtype: jnp.dtype) -> jnp.dtype:
  """Return float32 for 16-bit floats and `dtype` itself for wider ones."""
  return dtype if jnp.finfo(dtype).bits >= 32 else jnp.dtype(jnp.float32)


def _check_mask(name: str, mask: jax.typing.ArrayLike | None,
                target: tuple[int, ...], layout: str) -> jax.Array | None:
  """Validate a bool mask that must broadcast to `target` with the same rank."""
  if mask is None:
    return None
  mask = jnp.asarray(mask)
  if mask.dtype != jnp.bool_:
    raise ValueError(
        f"{name}: mask must be bool (True = attend), got {mask.dtype}. "
        "Convert an additive mask of 0 and -inf with `additive_mask == 0`")
  broadcastable = mask.ndim == len(target) and all(
      m in (1, t) for m, t in zip(mask.shape, target))
  if not broadcastable:
    hint = ""
    if len(target) == 4:
      hint = ". Build one from a bool[B, S] key mask with padding_mask()"
    raise ValueError(
        f"{name}: mask of shape {mask.shape} does not broadcast to {layout} = {target}{hint}")
  return mask


def _check_same_dtype(name: str, **arrays: jax.Array) -> None:
  dtypes = {arg: array.dtype for arg, array in arrays.items()}
  first = next(iter(dtypes.values()))
  if not jnp.issubdtype(first, jnp.floating) or any(d != first for d in dtypes.values()):
    described = ", ".join(f"{arg}={d}" for arg, d in dtypes.items())
    raise ValueError(
        f"{name}: inputs must share one floating dtype, got {described}. Cast them first")


def dot_product_attention(
    query: jax.typing.ArrayLike,
    key: jax.typing.ArrayLike,
    value: jax.typing.ArrayLike,
    *,
    mask: jax.typing.ArrayLike | None = None,
    causal: bool = False,
    implementation: str | None = None,
    return_weights: bool = False,
    gradient: str = "manual",
) -> jax.Array | tuple[jax.Array, jax.Array]:
  """Compute scaled dot-product attention, `softmax(q k^T / sqrt(D)) v`, per head.

  Query i attends to keys j <= i when `causal` is set, the same alignment as
  `jax.nn.dot_product_attention`. Logits and softmax are float32, the weights are cast
  to the value dtype for the product with `value`, and that product accumulates in
  float32.

  Args:
    query: f[B, T, N, D].
    key: f[B, S, N, D], same dtype as `query`.
    value: f[B, S, N, Dv], same dtype as `query`.
    mask: bool broadcastable to [B, N, T, S] with rank 4, True = attend. Build one from
      a bool[B, S] key mask with `padding_mask`.
    causal: also mask keys after the query position.
    implementation: None for this module's masked softmax. "xla" or "cudnn" call
      `jax.nn.dot_product_attention` with that implementation (fused on GPU). The fused
      path needs Dv == D and returns no weights. NOTE: its "xla" path (read in JAX
      0.10.2) fills masked logits with a large negative number, so a fully masked query
      row gets the mean of the values instead of zeros. The "cudnn" path was not
      checked for this case.
    return_weights: also return the attention weights.
    gradient: with implementation=None, "manual" differentiates with a hand-written
      backward pass (the softmax derivative written from the weights) and, on CPU,
      computes forward and backward passes in batch chunks whose logits fit in cache.
      "autodiff" computes the whole batch at once and lets JAX differentiate it, which
      also supports forward mode (`jax.jvp`, `jax.jacfwd`). Both compute the same function,
      up to rounding.

  Returns:
    out f[B, T, N, Dv] in the query dtype, or (out, weights f32[B, N, T, S]) with
    `return_weights`. The weights are float64 for float64 inputs.

  Raises:
    ValueError: on wrong ranks, mismatched B, N, D or S, mixed dtypes, a mask that is
      not bool or does not broadcast, an unsupported `implementation` request, or an
      unknown `gradient`.
  """
  name = "dot_product_attention"
  query, key, value = jnp.asarray(query), jnp.asarray(key), jnp.asarray(value)
  for arg, array, layout in (("query", query, "[B, T, N, D]"), ("key", key, "[B, S, N, D]"),
                             ("value", value, "[B, S, N, Dv]")):
    if array.ndim != 4:
      raise ValueError(f"{name}: {arg} must have rank 4 {layout}, got shape {array.shape}")
  _check_same_dtype(name, query=query, key=key, value=value)

  batch, steps, heads, depth = query.shape
  if key.shape[0] != batch or value.shape[0] != batch:
    raise ValueError(
        f"{name}: query, key and value must share B, got {batch}, {key.shape[0]}, "
        f"{value.shape[0]}")
  if key.shape[2] != heads or value.shape[2] != heads:
    raise ValueError(
        f"{name}: query, key and value must share N, got {heads}, {key.shape[2]}, "
        f"{value.shape[2]}")
  if key.shape[3] != depth:
    raise ValueError(f"{name}: query has D={depth} but key has D={key.shape[3]}")
  if value.shape[1] != key.shape[1]:
    raise ValueError(f"{name}: key has S={key.shape[1]} but value has S={value.shape[1]}")
  key_steps = key.shape[1]
  mask = _check_mask(name, mask, (batch, heads, steps, key_steps), "[B, N, T, S]")

  if implementation not in _IMPLEMENTATIONS:
    raise ValueError(
        f"{name}: implementation must be one of {_IMPLEMENTATIONS}, got {implementation!r}")
  if gradient not in _GRADIENTS:
    raise ValueError(f"{name}: gradient must be one of {_GRADIENTS}, got {gradient!r}")
  if implementation is not None:
    if return_weights:
      raise ValueError(f"{name}: return_weights needs implementation=None")
    if value.shape[3] != depth:
      raise ValueError(
          f"{name}: implementation={implementation!r} needs value depth Dv == D={depth}, "
          f"got Dv={value.shape[3]}")
    return jax.nn.dot_product_attention(
        query, key, value, mask=mask, is_causal=causal, implementation=implementation)

  if causal:
    causal_mask = jnp.tril(jnp.ones((steps, key_steps), jnp.bool_))[None, None]
    mask = causal_mask if mask is None else jnp.logical_and(mask, causal_mask)

  if gradient == "autodiff":
    out, weights = _attend(query, key, value, mask)
  else:
    if mask is not None:
      # Each batch chunk takes its own rows of the mask.
      mask = jnp.broadcast_to(mask, (batch, *mask.shape[1:]))
    chunk = _batch_chunk(batch, heads * steps * key_steps)
    out, weights = _attend_manual(chunk, query, key, value, mask)
  return (out, weights) if return_weights else out


def _attend(query: jax.Array, key: jax.Array, value: jax.Array,
            mask: jax.Array | None) -> tuple[jax.Array, jax.Array]:
  """Return (out f[B, T, N, Dv], weights f32[B, N, T, S]) of checked inputs."""
  # Products of two bf16 or f16 numbers are exact in f32 unless they overflow, so only the
  # sum rounds. float64 inputs stay float64.
  softmax_dtype = _at_least_float32(query.dtype)
  logits = jnp.einsum("BTND,BSND->BNTS", query, key,
                      preferred_element_type=softmax_dtype)  # [B, N, T, S]
  logits = logits * (1.0 / math.sqrt(query.shape[-1]))
  weights = _masked_softmax(logits, mask)  # [B, N, T, S]

  out = jnp.einsum("BNTS,BSND->BTND", weights.astype(value.dtype), value,
                   preferred_element_type=softmax_dtype).astype(value.dtype)  # [B, T, N, Dv]
  return out, weights


def _attend_backward(query: jax.Array, key: jax.Array, value: jax.Array, weights: jax.Array,
                     d_out: jax.Array, d_weights: jax.Array
                     ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Return the gradients of query, key and value, computed in the dtype of `weights`.

  Masked entries have weight 0, so their logits get gradient 0 whatever d_weights contains
  there, and a query row with no valid key gets zero gradients.
  """
  dtype = weights.dtype
  query, key, value, d_out = (array.astype(dtype) for array in (query, key, value, d_out))

  d_value = jnp.einsum("BNTS,BTND->BSND", weights, d_out)  # [B, S, N, Dv]
  d_weights = d_weights + jnp.einsum("BTND,BSND->BNTS", d_out, value)  # [B, N, T, S]

  # The softmax derivative: d_logits = w * (d_w - sum_s(w * d_w)), then the 1 / sqrt(D) scale.
  d_logits = weights * (d_weights - jnp.sum(weights * d_weights, axis=-1, keepdims=True))
  d_logits = d_logits * (1.0 / math.sqrt(query.shape[-1]))

  d_query = jnp.einsum("BNTS,BSND->BTND", d_logits, key)  # [B, T, N, D]
  d_key = jnp.einsum("BNTS,BTND->BSND", d_logits, query)  # [B, S, N, D]
  return d_query, d_key, d_value


def _batch_chunk(batch: int, logits_per_example: int,
                 chunk_elements: int | None = None) -> int:
  """Return how many examples the CPU computes attention for at once, or all on other backends.

  A chunk's logits [chunk, N, T, S] of about `chunk_elements` floats (default
  `_CHUNK_ELEMENTS`) stay in the CPU's cache through the softmax and the products that read
  them.
  """
  if jax.default_backend() != "cpu":
    return batch
  if chunk_elements is None:
    chunk_elements = _CHUNK_ELEMENTS
  return max(1, min(batch, chunk_elements // logits_per_example))


def _map_chunks(fn: Any, chunk: int, arrays: tuple[Any, ...]) -> tuple[jax.Array, ...]:
  """Apply `fn` to consecutive batch chunks of `arrays` (None allowed) and concatenate.

  Full chunks run in one `lax.map`, and a last partial chunk runs on its own.
  """
  batch = arrays[0].shape[0]
  if chunk >= batch:
    return fn(*arrays)

  whole = batch // chunk * chunk
  stacked = jax.tree.map(
      lambda a: a[:whole].reshape(whole // chunk, chunk, *a.shape[1:]), arrays)
  results = jax.lax.map(lambda chunk_arrays: fn(*chunk_arrays), stacked)
  results = tuple(r.reshape(whole, *r.shape[2:]) for r in results)
  if whole < batch:
    rest = fn(*jax.tree.map(lambda a: a[whole:], arrays))
    results = tuple(jnp.concatenate([r, t]) for r, t in zip(results, rest))
  return results


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _attend_manual(chunk, query, key, value, mask):
  """Compute `_attend` in batch chunks, with a hand-written backward pass."""
  return _map_chunks(_attend, chunk, (query, key, value, mask))


def _attend_manual_fwd(chunk, query, key, value, mask):
  out, weights = _attend_manual(chunk, query, key, value, mask)
  return (out, weights), (query, key, value, weights)


def _attend_manual_bwd(chunk, residuals, cotangents):
  query, key, value, weights = residuals
  d_out, d_weights = cotangents
  d_query, d_key, d_value = _map_chunks(
      _attend_backward, chunk, (query, key, value, weights, d_out, d_weights))
  return (d_query.astype(query.dtype), d_key.astype(key.dtype), d_value.astype(value.dtype),
          None)


_attend_manual.defvjp(_attend_manual_fwd, _attend_manual_bwd)


def self_attention(
    x: jax.typing.ArrayLike,
    *,
    mask: jax.typing.ArrayLike | None = None,
    return_weights: bool = False,
    gradient: str = "manual",
) -> jax.Array | tuple[jax.Array, jax.Array]:
  """Attend over a sequence with itself as queries, keys and values: `softmax(x x^T / sqrt(C)) x`.

  This is the attention of `jaxmodels.models.lstm_attention`, which has no parameters. The
  result equals `dot_product_attention(h, h, h, mask=m)` with `h = x[:, :, None, :]` and
  `m = mask[:, None, :, None] & mask[:, None, None, :]`: a padded step neither attends nor
  is attended to, so its weights and its output are zero. Logits and softmax are float32
  or wider, as in `dot_product_attention`.

  Because the queries and keys are the same array, the logits are symmetric and the input
  gradient has one product fewer than in `dot_product_attention`:
  `d_x = w^T d_out + (d_l + d_l^T) x`, where `d_l` is the gradient of the logits.

  Args:
    x: f[B, T, C].
    mask: bool[B, T], True at real steps, or None when every step is real.
    return_weights: also return the attention weights.
    gradient: "manual" differentiates with a backward pass written from the formula for
      `d_x` above and, on CPU, computes both passes in batch chunks of about 160K logits (16
      examples at T = 100). "autodiff" computes the whole batch at once and lets JAX
      differentiate it, which also supports forward mode (`jax.jvp`).

  Returns:
    out f[B, T, C] in the dtype of `x`, or (out, weights f32[B, T, T]) with
    `return_weights`. The weights are float64 for float64 inputs.

  Raises:
    ValueError: on an `x` that is not a rank-3 float array, a mask that is not bool[B, T],
      or an unknown `gradient`.
  """
  name = "self_attention"
  x = jnp.asarray(x)
  if x.ndim != 3 or not jnp.issubdtype(x.dtype, jnp.floating):
    raise ValueError(
        f"{name}: x must be a float array [B, T, C], got {x.dtype}{list(x.shape)}. Pass "
        "the sequence features, such as the outputs of an embedding or an LSTM")
  if mask is not None:
    mask = jnp.asarray(mask)
    if mask.dtype != jnp.bool_ or mask.shape != x.shape[:2]:
      raise ValueError(
          f"{name}: mask must be bool[B, T] = bool{list(x.shape[:2])} with True at real "
          f"steps, got {mask.dtype}{list(mask.shape)}. Build one from padded token ids "
          "int[B, T] as `ids != 0`")
  if gradient not in _GRADIENTS:
    raise ValueError(f"{name}: gradient must be one of {_GRADIENTS}, got {gradient!r}")

  if gradient == "autodiff":
    out, weights = _self_attend(x, mask)
  else:
    batch, steps, _ = x.shape
    chunk = _batch_chunk(batch, steps * steps, _SELF_ATTENTION_CHUNK_ELEMENTS)
    out, weights = _self_attend_manual(chunk, x, mask)
  return (out, weights) if return_weights else out


def _self_attend(x: jax.Array, mask: jax.Array | None) -> tuple[jax.Array, jax.Array]:
  """Return (out f[B, T, C], weights f32[B, T, T]) of checked inputs."""
  softmax_dtype = _at_least_float32(x.dtype)
  logits = jnp.einsum("BTC,BSC->BTS", x, x, preferred_element_type=softmax_dtype)  # [B, T, T]
  logits = logits * (1.0 / math.sqrt(x.shape[-1]))
  valid = None if mask is None else mask[:, :, None] & mask[:, None, :]  # [B, T, T]
  weights = _masked_softmax(logits, valid)

  out = jnp.einsum("BTS,BSC->BTC", weights.astype(x.dtype), x,
                   preferred_element_type=softmax_dtype).astype(x.dtype)  # [B, T, C]
  return out, weights


def _self_attend_backward(x: jax.Array, weights: jax.Array, d_out: jax.Array,
                          d_weights: jax.Array) -> tuple[jax.Array]:
  """Return (d_x,) in the dtype of `weights`, from x and the saved weights (no new softmax)."""
  dtype = weights.dtype
  x, d_out = x.astype(dtype), d_out.astype(dtype)

  d_weights = d_weights + jnp.einsum("BTC,BSC->BTS", d_out, x)  # [B, T, S]
  d_logits = weights * (d_weights - jnp.sum(weights * d_weights, axis=-1, keepdims=True))
  d_logits = d_logits * (1.0 / math.sqrt(x.shape[-1]))

  # x enters as value (first product), query and key (second product, symmetric logits).
  d_x = (jnp.einsum("BTS,BTC->BSC", weights, d_out)
         + jnp.einsum("BTS,BSC->BTC", d_logits + jnp.swapaxes(d_logits, 1, 2), x))  # [B, T, C]
  return (d_x,)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _self_attend_manual(chunk, x, mask):
  """Compute `_self_attend` in batch chunks, with a hand-written backward pass."""
  return _map_chunks(_self_attend, chunk, (x, mask))


def _self_attend_manual_fwd(chunk, x, mask):
  out, weights = _self_attend_manual(chunk, x, mask)
  return (out, weights), (x, weights)


def _self_attend_manual_bwd(chunk, residuals, cotangents):
  x, weights = residuals
  d_out, d_weights = cotangents
  (d_x,) = _map_chunks(_self_attend_backward, chunk, (x, weights, d_out, d_weights))
  return d_x.astype(x.dtype), None


_self_attend_manual.defvjp(_self_attend_manual_fwd, _self_attend_manual_bwd)


def _check_dense(name: str, arg: str, params: Params, in_features: int,
                 out_features: int | None = None) -> tuple[int, int]:
  """Validate a {"kernel": [I, W], "bias": [W]} pair and return (I, W)."""
  kernel_shape = jnp.shape(params["kernel"])
  bias_shape = jnp.shape(params["bias"])
  if len(kernel_shape) != 2 or kernel_shape[0] != in_features:
    raise ValueError(
        f"{name}: {arg} kernel must have shape [{in_features}, W], got {kernel_shape}")
  if out_features is not None and kernel_shape[1] != out_features:
    raise ValueError(
        f"{name}: {arg} kernel must have width {out_features}, got {kernel_shape}")
  if bias_shape != kernel_shape[1:]:
    raise ValueError(
        f"{name}: {arg} bias must have shape {kernel_shape[1:]}, got {bias_shape}")
  return kernel_shape


def _accumulate_dtype(dtype: jnp.dtype) -> jnp.dtype | None:
  """Return float32 for 16-bit floats, so their matmuls accumulate in float32."""
  return jnp.float32 if jnp.finfo(dtype).bits < 32 else None


def _project_heads(params: Params, x: jax.Array, num_heads: int) -> jax.Array:
  """Project f[B, L, C] to heads f[B, L, N, W/N] with a [C, W] kernel, in the dtype of x."""
  kernel = jnp.asarray(params["kernel"]).astype(x.dtype)
  bias = jnp.asarray(params["bias"])
  in_features, width = kernel.shape
  kernel = kernel.reshape(in_features, num_heads, width // num_heads)  # [C, N, D]
  bias = bias.reshape(num_heads, width // num_heads)  # [N, D]

  # The bias is added before rounding back to a 16-bit dtype.
  y = jnp.einsum("BLC,CND->BLND", x, kernel,
                 preferred_element_type=_accumulate_dtype(x.dtype))  # [B, L, N, D]
  return (y + bias.astype(y.dtype)[None, None]).astype(x.dtype)


def multi_head_attention(
    params: Params,
    query_inputs: jax.typing.ArrayLike,
    kv_inputs: jax.typing.ArrayLike,
    *,
    num_heads: int,
    mask: jax.typing.ArrayLike | None = None,
    causal: bool = False,
    implementation: str | None = None,
    return_weights: bool = False,
    gradient: str = "manual",
) -> jax.Array | tuple[jax.Array, jax.Array]:
  """Project inputs to heads, attend with `dot_product_attention`, project back.

  Parameters are cast to the input dtype, and 16-bit inputs accumulate the projections
  in float32. Head h uses columns [h*D, (h+1)*D) of each projection kernel.

  Args:
    params: {"query": {"kernel": f[C, N*D], "bias": f[N*D]}, "key": {"kernel":
      f[Ckv, N*D], "bias": f[N*D]}, "value": {"kernel": f[Ckv, N*Dv], "bias":
      f[N*Dv]}, "output": {"kernel": f[N*Dv, O], "bias": f[O]}}.
    query_inputs: f[B, T, C].
    kv_inputs: f[B, S, Ckv], same dtype as `query_inputs`; pass `query_inputs` again
      for self-attention.
    num_heads: N, which must divide the projection widths.
    mask: bool broadcastable to [B, N, T, S] with rank 4, True = attend.
    causal: also mask keys after the query position.
    implementation: see `dot_product_attention`.
    return_weights: also return the attention weights.
    gradient: see `dot_product_attention`.

  Returns:
    out f[B, T, O] in the input dtype, or (out, weights f32[B, N, T, S]) with
    `return_weights`. The weights are float64 for float64 inputs.

  Raises:
    ValueError: on wrong ranks, mismatched B, parameter shapes that do not fit the
      inputs, a `num_heads` that does not divide the widths, mixed dtypes or a bad mask.
  """
  name = "multi_head_attention"
  query_inputs, kv_inputs = jnp.asarray(query_inputs), jnp.asarray(kv_inputs)
  for arg, array, layout in (("query_inputs", query_inputs, "[B, T, C]"),
                             ("kv_inputs", kv_inputs, "[B, S, C]")):
    if array.ndim != 3:
      raise ValueError(f"{name}: {arg} must have rank 3 {layout}, got shape {array.shape}")
  _check_same_dtype(name, query_inputs=query_inputs, kv_inputs=kv_inputs)
  if query_inputs.shape[0] != kv_inputs.shape[0]:
    raise ValueError(
        f"{name}: query_inputs has B={query_inputs.shape[0]} but kv_inputs has "
        f"B={kv_inputs.shape[0]}")

  _, query_width = _check_dense(name, "query", params["query"], query_inputs.shape[-1])
  _check_dense(name, "key", params["key"], kv_inputs.shape[-1], query_width)
  _, value_width = _check_dense(name, "value", params["value"], kv_inputs.shape[-1])
  _check_dense(name, "output", params["output"], value_width)
  if num_heads < 1 or query_width % num_heads or value_width % num_heads:
    raise ValueError(
        f"{name}: num_heads={num_heads} must divide the query width {query_width} and "
        f"the value width {value_width}")

  query = _project_heads(params["query"], query_inputs, num_heads)  # [B, T, N, D]
  key = _project_heads(params["key"], kv_inputs, num_heads)  # [B, S, N, D]
  value = _project_heads(params["value"], kv_inputs, num_heads)  # [B, S, N, Dv]

  attended = dot_product_attention(
      query, key, value, mask=mask, causal=causal, implementation=implementation,
      return_weights=return_weights, gradient=gradient)
  out, weights = attended if return_weights else (attended, None)

  # Merge heads in the same order the projections split them.
  dtype = out.dtype
  kernel = jnp.asarray(params["output"]["kernel"]).astype(dtype)
  kernel = kernel.reshape(num_heads, value_width // num_heads, -1)  # [N, Dv, O]
  out = jnp.einsum("BTND,NDO->BTO", out, kernel,
                   preferred_element_type=_accumulate_dtype(dtype))  # [B, T, O]
  bias = jnp.asarray(params["output"]["bias"]).astype(out.dtype)
  out = (out + bias[None, None]).astype(dtype)
  return (out, weights) if return_weights else out


def additive_attention(
    params: Params,
    query: jax.typing.ArrayLike,
    key: jax.typing.ArrayLike,
    value: jax.typing.ArrayLike,
    *,
    mask: jax.typing.ArrayLike | None = None,
    return_weights: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
  """Compute additive (Bahdanau) attention.

  score(q, k) = v^T tanh(q W_q + k W_k + b), with weights softmax over keys. See
  Bahdanau, Cho and Bengio, "Neural Machine Translation by Jointly Learning to Align
  and Translate", https://arxiv.org/abs/1409.0473. Scores and softmax are computed in
  float32, with the same masking contract as `dot_product_attention`. The hidden
  activations take memory f32[B, T, S, A] (float64 for float64 inputs).

  Args:
    params: {"query_kernel": f[Dq, A], "key_kernel": f[Dk, A], "bias": f[A],
      "score_vector": f[A]}.
    query: f[B, T, Dq].
    key: f[B, S, Dk], same dtype as `query`.
    value: f[B, S, Dv], same dtype as `query`.
    mask: bool[B, S] or bool[B, T, S], True = attend.
    return_weights: also return the attention weights.

  Returns:
    out f[B, T, Dv] in the query dtype, or (out, weights f32[B, T, S]) with
    `return_weights`. The weights are float64 for float64 inputs.

  Raises:
    ValueError: on wrong ranks, mismatched B or S, parameter shapes that do not fit the
      inputs, mixed dtypes, or a mask that is not bool or has the wrong shape.
  """
  name = "additive_attention"
  query, key, value = jnp.asarray(query), jnp.asarray(key), jnp.asarray(value)
  for arg, array, layout in (("query", query, "[B, T, Dq]"), ("key", key, "[B, S, Dk]"),
                             ("value", value, "[B, S, Dv]")):
    if array.ndim != 3:
      raise ValueError(f"{name}: {arg} must have rank 3 {layout}, got shape {array.shape}")
  _check_same_dtype(name, query=query, key=key, value=value)

  batch, steps, _ = query.shape
  if key.shape[0] != batch or value.shape[0] != batch:
    raise ValueError(
        f"{name}: query, key and value must share B, got {batch}, {key.shape[0]}, "
        f"{value.shape[0]}")
  if value.shape[1] != key.shape[1]:
    raise ValueError(f"{name}: key has S={key.shape[1]} but value has S={value.shape[1]}")
  key_steps = key.shape[1]

  query_kernel_shape = jnp.shape(params["query_kernel"])
  if len(query_kernel_shape) != 2 or query_kernel_shape[0] != query.shape[-1]:
    raise ValueError(
        f"{name}: query_kernel must have shape [Dq={query.shape[-1]}, A], "
        f"got {query_kernel_shape}")
  units = query_kernel_shape[1]
  for arg, expected in (("key_kernel", (key.shape[-1], units)), ("bias", (units,)),
                        ("score_vector", (units,))):
    if jnp.shape(params[arg]) != expected:
      raise ValueError(
          f"{name}: {arg} must have shape {expected}, got {jnp.shape(params[arg])}")

  if mask is not None and jnp.ndim(mask) == 2:
    mask = _check_mask(name, mask, (batch, key_steps), "[B, S]")[:, None, :]
  else:
    mask = _check_mask(name, mask, (batch, steps, key_steps), "[B, T, S]")

  # Scores in float32 for 16-bit inputs, and in float64 for float64 inputs.
  score_dtype = _at_least_float32(query.dtype)
  query_kernel, key_kernel, bias, score_vector = (
      jnp.asarray(params[arg]).astype(score_dtype)
      for arg in ("query_kernel", "key_kernel", "bias", "score_vector"))
  query_proj = query.astype(score_dtype) @ query_kernel  # [B, T, A]
  key_proj = key.astype(score_dtype) @ key_kernel  # [B, S, A]
  hidden = jnp.tanh(query_proj[:, :, None, :] + key_proj[:, None, :, :]
                    + bias[None, None, None, :])  # [B, T, S, A]
  scores = jnp.einsum("BTSA,A->BTS", hidden, score_vector)
  weights = _masked_softmax(scores, mask)  # [B, T, S]

  out = jnp.matmul(weights.astype(value.dtype), value,
                   preferred_element_type=score_dtype).astype(value.dtype)  # [B, T, Dv]
  return (out, weights) if return_weights else out


def init_multi_head_attention(key: jax.Array, in_features: int, num_heads: int,
                              head_dim: int, out_features: int) -> Params:
  """Initialize `multi_head_attention` parameters for inputs with C=`in_features`.

  Each kernel is Glorot-uniform over its 2-D shape ([C, N*D] or [N*D, O]), and each
  bias is zero, all float32. Query, key and value share `in_features`.
  """
  query_key, key_key, value_key, output_key = jax.random.split(key, 4)
  glorot = jax.nn.initializers.glorot_uniform()
  width = num_heads * head_dim

  def dense(dense_key, fan_in, fan_out):
    return {"kernel": glorot(dense_key, (fan_in, fan_out), jnp.float32),
            "bias": jnp.zeros((fan_out,), jnp.float32)}

  return {
      "query": dense(query_key, in_features, width),
      "key": dense(key_key, in_features, width),
      "value": dense(value_key, in_features, width),
      "output": dense(output_key, width, out_features),
  }


def init_additive_attention(key: jax.Array, query_dim: int, key_dim: int,
                            units: int) -> Params:
  """Initialize `additive_attention` parameters with A=`units`.

  The kernels are Glorot-uniform, the score vector Glorot-uniform as an [A, 1] kernel
  and the bias zero, all float32.
  """
  query_key, key_key, score_key = jax.random.split(key, 3)
  glorot = jax.nn.initializers.glorot_uniform()
  return {
      "query_kernel": glorot(query_key, (query_dim, units), jnp.float32),
      "key_kernel": glorot(key_key, (key_dim, units), jnp.float32),
      "bias": jnp.zeros((units,), jnp.float32),
      "score_vector": glorot(score_key, (units, 1), jnp.float32)[:, 0],
  }
