"""Command-line parsing shared by `experiments/run.py` and `experiments/predict.py`."""

import sys

from absl import app


def parse_flags(argv: list[str]) -> list[str]:
  """Parse the command line, and report an override of a missing config key in one line.

  ml_collections raises KeyError or AttributeError for `--config.data.validaton_fraction`,
  and absl would print its traceback. Other errors propagate unchanged.
  """
  try:
    return app.parse_flags_with_usage(argv)
  except (AttributeError, KeyError) as error:
    cause = error
    while cause.args and isinstance(cause.args[0], BaseException):
      cause = cause.args[0]
    key, _, hint = str(cause.args[0] if cause.args else cause).partition("\n")
    key = key.strip("'\"")
    if not key.isidentifier():
      raise  # Not a missing key: for example a config file that fails while it loads.
    overrides = [arg for arg in argv[1:] if arg.startswith("--config.")]
    culprit = next((arg for arg in overrides
                    if key in arg.split("=", 1)[0].split(".")), " ".join(overrides))
    sys.exit(f"FATAL Flags parsing error: {culprit}: config key {key!r} not found. "
             f"{hint or 'Check its spelling against the config file.'}")
