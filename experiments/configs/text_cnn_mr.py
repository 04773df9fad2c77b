"""The CNN-rand sentence classifier of Kim (2014) on MR movie review polarity.

Run, for fold 0 of 10:
  python experiments/run.py --config=experiments/configs/text_cnn_mr.py \
      --config.data_dir=/path/to/mr --config.data.fold=0 --config.train.progress_bar=False
"""

from experiments.configs import lstm_mr
from experiments.configs import text_cnn_trec


def get_config(variant: str | None = None):
  config = lstm_mr.use_mr_data(text_cnn_trec.get_config(variant), variant)
  config.workdir = "workdirs/text_cnn_mr_smoke" if variant == "smoke" else "workdirs/text_cnn_mr"
  return config
