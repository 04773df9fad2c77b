r"""Classify sentences with a text classifier trained by experiments/run.py.

  python experiments/predict.py --workdir=workdirs/text_cnn_trec \
      "How far is it from Denver to Aspen ?" "What is a caldera ?"
  python experiments/predict.py --workdir=workdirs/text_cnn_mr --input_file=reviews.txt

Prints one line per sentence: the predicted class, its probability, the probability of every
class, and the sentence. The model, the encoding settings and the vocabulary come from the
workdir (`config.json`, `vocab.json`, `checkpoints/`); `--config` replaces `config.json`.
"""

import os
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

# Config files import each other as `experiments.configs.NAME`.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments import command_line  # pylint: disable=g-import-not-at-top
from jaxmodels.train import logs  # pylint: disable=g-import-not-at-top
from jaxmodels.train import predict  # pylint: disable=g-import-not-at-top

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of the training run.", required=True)
_INPUT_FILE = flags.DEFINE_string(
    "input_file", None, "UTF-8 text file with one sentence per line; blank lines are skipped.")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", "final",
    "Checkpoint to load: 'final' (the one the run tested), 'best' (best early-stopping "
    "metric), 'latest', or a step number.")
config_flags.DEFINE_config_file(
    "config", None, "Config file of the run; by default the workdir's config.json is read.")


def _read_sentences(argv: list[str]) -> list[str]:
  sentences = list(argv[1:])
  if _INPUT_FILE.value is not None:
    with open(_INPUT_FILE.value, encoding="utf-8") as file:
      sentences.extend(line.strip() for line in file if line.strip())
  if not sentences:
    raise app.UsageError("Pass sentences as arguments or --input_file with one per line.")
  return sentences


def main(argv):
  logs.quiet_library_logs()
  sentences = _read_sentences(argv)
  checkpoint = _CHECKPOINT.value
  if checkpoint.isdigit():
    checkpoint = int(checkpoint)

  try:
    predictor = predict.load_predictor(_WORKDIR.value, config=flags.FLAGS.config,
                                       checkpoint=checkpoint)
  except (FileNotFoundError, ValueError) as error:
    # Each error of load_predictor names the missing file or the invalid value and the fix.
    sys.exit(f"{type(error).__name__}: {error}")
  labels, probabilities = predictor.predict(sentences)
  print(f"# {_WORKDIR.value}, checkpoint step {predictor.step}; classes: "
        f"{' '.join(predictor.class_names)}")
  for sentence, label, row in zip(sentences, labels, probabilities):
    name = predictor.class_names[label]
    spread = " ".join(f"{p:.3f}" for p in row)
    print(f"{name}\t{row[label]:.3f}\t[{spread}]\t{sentence}")


if __name__ == "__main__":
  app.run(main, flags_parser=command_line.parse_flags)
