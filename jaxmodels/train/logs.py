"""Log filtering for runs: keep the run's own messages readable."""

import logging as python_logging

from absl import logging

# JAX's logger for backend start-up. It reports at INFO every optional back end (such as
# 'tpu') that fails to start on a machine without one.
_JAX_BACKEND_LOGGER = "jax._src.xla_bridge"


class _LibraryInfoFilter(python_logging.Filter):
  """Drop INFO and DEBUG records that Orbax emits on every save and restore."""

  def filter(self, record: python_logging.LogRecord) -> bool:
    return record.levelno >= python_logging.WARNING or "/orbax/" not in record.pathname


class _MissingBackendFilter(python_logging.Filter):
  """Drop JAX's INFO records about back ends that this machine does not have."""

  def filter(self, record: python_logging.LogRecord) -> bool:
    return (record.levelno >= python_logging.WARNING
            or not record.getMessage().startswith("Unable to initialize backend"))


def quiet_library_logs() -> None:
  """Hide routine INFO records of libraries from the log. Their warnings and errors stay.

  Hidden: Orbax's records on every save and restore, and JAX's report of each optional back
  end that could not start.
  """
  logger = logging.get_absl_logger()
  if not any(isinstance(f, _LibraryInfoFilter) for f in logger.filters):
    logger.addFilter(_LibraryInfoFilter())
  backend_logger = python_logging.getLogger(_JAX_BACKEND_LOGGER)
  if not any(isinstance(f, _MissingBackendFilter) for f in backend_logger.filters):
    backend_logger.addFilter(_MissingBackendFilter())
