"""Tests of the log filters that `experiments/run.py` installs."""

import logging as python_logging

import pytest

from jaxmodels.train import logs


def _record(name: str, level: int, message: str, pathname: str = "module.py"):
  return python_logging.LogRecord(name, level, pathname, 1, message, None, None)


@pytest.mark.parametrize("level, kept", [(python_logging.INFO, False),
                                         (python_logging.WARNING, True)])
def test_missing_backend_record_filtered_by_level(level, kept):
  logs.quiet_library_logs()
  logger = python_logging.getLogger("jax._src.xla_bridge")
  message = "Unable to initialize backend 'tpu': INTERNAL: Failed to open libtpu.so"

  assert bool(logger.filter(_record(logger.name, level, message))) is kept


def test_other_backend_records_kept():
  logs.quiet_library_logs()
  logger = python_logging.getLogger("jax._src.xla_bridge")

  assert logger.filter(_record(logger.name, python_logging.INFO, "Platform 'cpu' is ready"))


def test_filters_installed_once():
  logs.quiet_library_logs()
  logs.quiet_library_logs()

  backend_filters = python_logging.getLogger("jax._src.xla_bridge").filters
  assert sum(isinstance(f, logs._MissingBackendFilter) for f in backend_filters) == 1
