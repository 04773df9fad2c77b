"""The two-LSTM classifier of the Keras text tutorial on MR movie review polarity (2 classes).

Run, for fold 0 of 10:
  python experiments/run.py --config=experiments/configs/lstm_mr.py \
      --config.data_dir=/path/to/mr --config.data.fold=0 --config.train.progress_bar=False

MR has no test split: `config.data.fold` picks the tenth of the data that is held out.
`use_mr_data` switches any TREC text config to MR; the other `*_mr.py` configs call it.
"""

from experiments.configs import lstm_trec


def use_mr_data(config, variant: str | None = None):
  """Switch a text config from TREC to MR and return it.

  MR has twice as many training sentences as TREC, and the models overfit it after 2 or 3
  epochs, so runs are 4 epochs long.
  """
  config.data_dir = "data/mr"
  config.data.name = "mr"
  # The MR files are lower-case already, but a TREC config may turn lower-casing off.
  config.data.lowercase = True
  # The training folds have about 19,000 distinct tokens: keep them all.
  config.data.vocab_size = 20000
  # The longest MR snippet has 63 tokens, so 64 steps truncate nothing.
  config.data.max_len = 64
  # Fold `fold` of `num_folds` is the test split, from a permutation drawn from split_seed.
  # The split seed stays fixed while config.seed varies, so seeds share one split.
  config.data.num_folds = 10
  config.data.fold = 0
  config.data.split_seed = 0
  config.train.num_epochs = 4
  if variant == "smoke":
    config.data.vocab_size = 1000
    config.data.num_folds = 5
    config.train.num_epochs = 1
  return config


def get_config(variant: str | None = None):
  config = use_mr_data(lstm_trec.get_config(variant), variant)
  config.workdir = "workdirs/lstm_mr_smoke" if variant == "smoke" else "workdirs/lstm_mr"
  return config
