"""Log filtering for runs: keep the run's own messages readable."""

import logging as python_logging

from absl import logging


class _LibraryInfoFilter(python_logging.Filter):
  """Drop INFO and DEBUG records that Orbax emits on every save and restore."""

  def filter(self, record: python_logging.LogRecord) -> bool:
    return record.levelno >= python_logging.WARNING or "/orbax/" not in record.pathname


def quiet_library_logs() -> None:
  """Hide Orbax's per-save INFO records from the absl log; its warnings and errors stay."""
  logger = logging.get_absl_logger()
  if not any(isinstance(f, _LibraryInfoFilter) for f in logger.filters):
    logger.addFilter(_LibraryInfoFilter())
