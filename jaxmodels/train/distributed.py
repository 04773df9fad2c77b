"""Multi-process start-up through JAX's own runtime, `jax.distributed`.

One process runs per host (or per GPU). Each needs the coordinator's address, the number of
processes and its own index, from `config.parallel.distributed` or from the standard
environment variables `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES` and `JAX_PROCESS_ID`. On
Cloud TPU pod slices and SLURM clusters JAX detects all three itself.
"""

import os

from absl import logging
import jax
import ml_collections

_ENV_VARS = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def initialize(parallel: ml_collections.ConfigDict) -> bool:
  """Call `jax.distributed.initialize` when the config or the environment asks for it.

  Must run before anything touches a JAX device. Returns True when the process joined a
  multi-process run.
  """
  settings = parallel.distributed
  from_env = any(name in os.environ for name in _ENV_VARS)
  if not settings.enabled and not from_env:
    return False
  if jax.distributed.is_initialized():
    return True

  if settings.cpu_collectives:
    # CPU devices of different processes exchange data through this library (gloo or mpi).
    jax.config.update("jax_cpu_collectives_implementation", settings.cpu_collectives)

  def setting(value, unset, name, cast):
    """Return the config value, else the environment variable, else None (JAX decides)."""
    if value != unset:
      return value
    return cast(os.environ[name]) if name in os.environ else None

  jax.distributed.initialize(
      coordinator_address=setting(
          settings.coordinator_address, "", "JAX_COORDINATOR_ADDRESS", str
      ),
      num_processes=setting(settings.num_processes, 0, "JAX_NUM_PROCESSES", int),
      process_id=setting(settings.process_id, -1, "JAX_PROCESS_ID", int),
      initialization_timeout=settings.timeout_seconds,
  )
  logging.info(
      "Process %d of %d joined; %d local and %d global devices.",
      jax.process_index(), jax.process_count(), jax.local_device_count(), jax.device_count(),
  )
  return True
