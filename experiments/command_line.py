"""Command-line parsing shared by `experiments/run.py` and `experiments/predict.py`."""

import re
import sys

from absl import flags

# The message absl gives for a value that is not a boolean, passed to a boolean flag.
_NON_BOOLEAN = re.compile(r"flag (--[^=\s]+)=(.*): \('Non-boolean argument to boolean flag'")


def _fail(message: str) -> None:
  sys.exit(f"FATAL Flags parsing error: {message}")


def _config_argument(argv: list[str]) -> str:
  return next((arg for arg in argv[1:] if arg.startswith("--config=")), "--config")


def _last_line(error: BaseException) -> str:
  return str(error).strip().splitlines()[-1].strip()


def parse_flags(argv: list[str]) -> list[str]:
  """Parse the command line, and report each config mistake in one line, without a traceback.

  Handled: an override of a missing key (ml_collections raises KeyError or AttributeError
  for `--config.data.validaton_fraction`), a config file that does not load, an unknown
  variant, and a boolean key given another value. Other flag errors print as absl prints them,
  and other exceptions propagate.
  """
  try:
    remaining = flags.FLAGS(argv)
  except flags.Error as error:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if "Error whilst parsing config file" in str(error):
      # The message embeds the traceback of the config file; its last line is the cause.
      _fail(f"{_config_argument(argv)}: {lines[-1]}")
    non_boolean = _NON_BOOLEAN.search(str(error))
    if non_boolean:
      flag, value = non_boolean.groups()
      _fail(f"{flag}={value}: {value!r} is not a boolean. Use {flag}=true or {flag}=false.")
    _fail(f"{error}\nPass --helpshort or --helpfull to see help on flags.")
  except OSError as error:
    # An override such as --config.seed=1 reads a config file that failed to load.
    _fail(f"{_config_argument(argv)}: the config file failed to load: {_last_line(error)}")
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
    _fail(f"{culprit}: config key {key!r} not found. "
          f"{hint or 'Check its spelling against the config file.'}")

  # ml_collections defers a config file that failed to load until its first use.
  config = flags.FLAGS["config"].value if "config" in flags.FLAGS else None
  if config is not None:
    try:
      config.keys()
    except OSError as error:
      _fail(f"{_config_argument(argv)}: the config file failed to load: {_last_line(error)}")
  return remaining
