"""Device mesh, shardings, and the two ways to compile a step over the mesh.

The mesh has two named axes: `data` splits each batch, and `model` splits large parameters.

Sharding rule for the `model` axis: every train-state leaf with two dimensions whose last
dimension divides by the `model` size is split along that last dimension. This covers embedding
tables f32[V, D], dense and attention projection kernels f32[C, O] and LSTM kernels f32[C, 4U]
together with their optimizer moments; every other leaf (biases, convolution kernels, counters)
is replicated. With a `model` size of 1 everything is replicated.

Back ends:
- `jit`: `jax.jit` with `NamedSharding`s; XLA partitions the global computation.
- `pmap`: the same step runs once per device under `jax.shard_map` over the `data` axis, with
  gradients averaged by `lax.pmean`, for code that thinks per device. It supports data
  parallelism only (`model` size 1).

On a CPU, `set_cpu_devices` splits the host into several JAX devices. One device's program
leaves a core mostly idle in the sequence models' loops, while under `pmap` each device runs
its share of the batch on its own thread.
"""

from collections.abc import Callable
import functools
import math
from typing import Any

from absl import logging
import jax
import ml_collections
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxmodels import errors

DATA_AXIS = "data"
MODEL_AXIS = "model"
BACKENDS = ("jit", "pmap")


def mesh_shape(parallel: ml_collections.ConfigDict, device_count: int) -> tuple[int, int]:
  """Resolve `parallel.mesh_shape` (data, model), where -1 takes the remaining devices.

  A mesh smaller than `device_count` is allowed and uses the first data * model devices.
  """
  data, model = parallel.mesh_shape
  if model == -1 and data == -1:
    raise ValueError(
        f"config.parallel.mesh_shape={tuple(parallel.mesh_shape)} may use -1 on one axis only."
    )
  if data == -1:
    data = device_count // model if model > 0 and device_count % model == 0 else 0
  if model == -1:
    model = device_count // data if data > 0 and device_count % data == 0 else 0
  if data < 1 or model < 1 or data * model > device_count:
    raise ValueError(
        f"config.parallel.mesh_shape={tuple(parallel.mesh_shape)} does not fit {device_count} "
        f"devices: data * model must be at most the device count, and -1 needs a count that "
        "divides evenly. Use (-1, 1) for data parallelism over all devices."
    )
  return data, model


def set_cpu_devices(parallel: ml_collections.ConfigDict) -> None:
  """Split the host CPU into `parallel.cpu_devices` JAX devices, or keep JAX's setting for 0.

  JAX fixes its CPU device count when it starts its back ends, at the first JAX operation of
  the process, so this must run before that. Once JAX has started, a count equal to the
  current one passes and any other raises. Calling it again with the same count does nothing.
  JAX's own setting is one CPU device, or the count that XLA_FLAGS sets.

  Raises:
    jaxmodels.errors.ConfigError: on a count that is not a non-negative int, or one that
      differs from the CPU devices of an already started JAX.
  """
  count = parallel.cpu_devices
  if isinstance(count, bool) or not isinstance(count, int) or count < 0:
    raise errors.ConfigError(
        f"config.parallel.cpu_devices={count!r} must be 0 (JAX's own setting) or a positive "
        "int, such as the number of CPU cores."
    )
  if count == 0 or jax.config.jax_num_cpu_devices == count:
    return
  if count > 1 and parallel.backend == "jit":
    logging.warning(
        "config.parallel.cpu_devices=%d with backend='jit': XLA partitions one program over "
        "the CPU devices, which trained slower than one device. backend='pmap' runs each "
        "device's share of the batch on its own thread.", count)
  try:
    # A count set here takes precedence over --xla_force_host_platform_device_count.
    jax.config.update("jax_num_cpu_devices", count)
  except RuntimeError as error:
    # JAX has started, so the setting holds only if it already has this many CPU devices.
    current = len(jax.devices("cpu"))
    if current != count:
      devices = "device" if current == 1 else "devices"
      raise errors.ConfigError(
          f"config.parallel.cpu_devices={count} cannot take effect: JAX in this process "
          f"already started with {current} CPU {devices}. Train before any other JAX "
          f"operation (in a notebook, restart the runtime), or call "
          f"jax.config.update('jax_num_cpu_devices', {count}) right after importing jax. "
          f"Otherwise use {current}, or 0."
      ) from error


def create_mesh(parallel: ml_collections.ConfigDict) -> jax.sharding.Mesh:
  """Build the (data, model) mesh over the devices of all processes.

  The axes are `Auto`: XLA propagates shardings through the model, so ops need no sharding
  annotations of their own.
  """
  data, model = mesh_shape(parallel, jax.device_count())
  if data * model < jax.device_count() and jax.process_count() > 1:
    raise ValueError(
        f"config.parallel.mesh_shape={tuple(parallel.mesh_shape)} uses {data * model} of "
        f"{jax.device_count()} devices, but a multi-process run must use all of them."
    )
  return jax.make_mesh(
      (data, model),
      (DATA_AXIS, MODEL_AXIS),
      axis_types=(jax.sharding.AxisType.Auto,) * 2,
      devices=jax.devices()[:data * model],
  )


def data_size(mesh: jax.sharding.Mesh) -> int:
  """Return the number of devices on the `data` axis."""
  return mesh.shape[DATA_AXIS]


def batch_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Sharding of a batch: leading axis split over `data`."""
  return NamedSharding(mesh, P(DATA_AXIS))


def stacked_batch_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Sharding of K stacked batches [K, B, ...]: the batch axis split over `data`."""
  return NamedSharding(mesh, P(None, DATA_AXIS))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Sharding of a value held whole on every device."""
  return NamedSharding(mesh, P())


def leaf_spec(leaf: Any, model_size: int) -> P:
  """Return the partition spec of one train-state leaf under the `model` rule (module doc)."""
  shape = getattr(leaf, "shape", ())
  if model_size > 1 and len(shape) == 2 and shape[-1] % model_size == 0:
    return P(None, MODEL_AXIS)
  return P()


def state_shardings(mesh: jax.sharding.Mesh, state: Any) -> Any:
  """Return a tree of `NamedSharding`s for a train state (or its abstract shape tree)."""
  model_size = mesh.shape[MODEL_AXIS]
  return jax.tree.map(lambda leaf: NamedSharding(mesh, leaf_spec(leaf, model_size)), state)


def put_batch(batch: dict[str, Any], mesh: jax.sharding.Mesh) -> dict[str, jax.Array]:
  """Assemble global arrays from this process's rows of a batch, split over `data`."""
  sharding = batch_sharding(mesh)
  return {
      name: jax.make_array_from_process_local_data(sharding, value)
      for name, value in batch.items()
  }


def put_batches(batches: list[dict[str, Any]], mesh: jax.sharding.Mesh) -> dict[str, jax.Array]:
  """Stack this process's rows of K batches into global [K, B, ...] arrays, split over `data`."""
  sharding = stacked_batch_sharding(mesh)
  return {
      name: jax.make_array_from_process_local_data(
          sharding, np.stack([batch[name] for batch in batches]))
      for name in batches[0]
  }


def compile_step(
    step_fn: Callable[..., Any],
    *,
    mesh: jax.sharding.Mesh,
    backend: str,
    in_shardings: tuple[Any, ...],
    out_shardings: Any,
    batch_argnum: int,
    donate_argnums: tuple[int, ...] = (),
) -> Callable[..., Any]:
  """Compile `step_fn(*args, axis_name=...)` for the mesh with the chosen back end.

  Args:
    step_fn: a step such as `train_step`, with `model` and `tx` already bound.
    mesh: the device mesh.
    backend: `jit` or `pmap` (module doc).
    in_shardings: shardings of the positional arguments.
    out_shardings: shardings of the outputs.
    batch_argnum: position of the batch argument; the `pmap` back end splits it over `data`
      as its sharding in `in_shardings` does, and passes every other argument whole.
    donate_argnums: arguments whose buffers the step may reuse for its outputs.

  Returns:
    A jit-compiled function taking the same positional arguments.
  """
  if backend == "jit":
    return jax.jit(
        functools.partial(step_fn, axis_name=None),
        in_shardings=in_shardings,
        out_shardings=out_shardings,
        donate_argnums=donate_argnums,
    )
  if backend == "pmap":
    if mesh.shape[MODEL_AXIS] != 1:
      raise ValueError(
          f"config.parallel.backend='pmap' runs data parallelism only, but the mesh has "
          f"model={mesh.shape[MODEL_AXIS]}; set config.parallel.mesh_shape=(-1, 1) or use "
          "backend='jit'."
      )
    # The batch keeps its own split over `data` (the leading axis, or the second one for
    # stacked batches), and every other argument reaches each device whole.
    in_specs = tuple(
        in_shardings[index].spec if index == batch_argnum else P()
        for index in range(len(in_shardings))
    )
    out_specs = jax.tree.map(lambda sharding: sharding.spec, out_shardings)
    per_device = jax.shard_map(
        functools.partial(step_fn, axis_name=DATA_AXIS),
        mesh=mesh,
        in_specs=in_specs,
        out_specs=out_specs,
    )
    return jax.jit(
        per_device,
        in_shardings=in_shardings,
        out_shardings=out_shardings,
        donate_argnums=donate_argnums,
    )
  raise ValueError(f"config.parallel.backend={backend!r} is not one of {BACKENDS}.")


def nearest_valid_batch_sizes(batch_size: int, multiple: int) -> tuple[int, int]:
  """Return the multiples of `multiple` just below (at least `multiple`) and above `batch_size`."""
  lower = max(multiple, batch_size // multiple * multiple)
  upper = math.ceil(batch_size / multiple) * multiple
  return lower, upper
