"""The error for an invalid config value, shared by the config checks and the data loaders.

`experiments/run.py` prints a `ConfigError` as one line, without a traceback, because its
message already names the key, the value and the fix.
"""


class ConfigError(ValueError):
  """A config value is invalid; the message names the full key, the value and a fix."""
