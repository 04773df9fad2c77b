r"""Train and evaluate a model from a config file.

  python experiments/run.py --config=experiments/configs/cnn_mnist.py \
      --config.data_dir=/path/to/mnist --config.optim.learning_rate=3e-4

Running the same command again with the same `config.workdir` resumes from its latest checkpoint.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

# Config files import each other as `experiments.configs.NAME`.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments import command_line  # pylint: disable=g-import-not-at-top
from jaxmodels import errors  # pylint: disable=g-import-not-at-top
from jaxmodels.data import errors as data_errors  # pylint: disable=g-import-not-at-top
from jaxmodels.train import distributed  # pylint: disable=g-import-not-at-top
from jaxmodels.train import logs  # pylint: disable=g-import-not-at-top
from jaxmodels.train import loop  # pylint: disable=g-import-not-at-top
from jaxmodels.train import parallel  # pylint: disable=g-import-not-at-top

config_flags.DEFINE_config_file(
    "config", None, "Path to an experiment config file, optionally `path.py:variant`.",
    lock_config=True,
)
flags.mark_flags_as_required(["config"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  logs.quiet_library_logs()
  config = flags.FLAGS.config
  try:
    # JAX fixes its CPU device count and its process group when it starts, so both come first.
    parallel.set_cpu_devices(config.parallel)
  except errors.ConfigError as error:
    sys.exit(f"{type(error).__name__}: {error}")
  if distributed.initialize(config.parallel) and jax.process_index() != 0:
    # Process 0 writes the logs; the others report warnings and errors only.
    logging.set_verbosity(logging.WARNING)
  try:
    result = loop.train_and_evaluate(config)
  except (errors.ConfigError, data_errors.DataFileNotFoundError,
          data_errors.DataFormatError) as error:
    # The message names the value and the fix, and a traceback would only bury it.
    sys.exit(f"{type(error).__name__}: {error}")
  for split, metrics in (("validation", result.validation_metrics),
                         ("test", result.eval_metrics)):
    if metrics is not None:
      logging.info("Final %s accuracy %.4f, loss %.4f on %d examples.", split,
                   metrics["accuracy"], metrics["loss"], metrics["count"])


if __name__ == "__main__":
  app.run(main, flags_parser=command_line.parse_flags)
