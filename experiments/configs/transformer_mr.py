"""A small pre-layer-norm Transformer encoder on MR movie review polarity.

Run, for fold 0 of 10:
  python experiments/run.py --config=experiments/configs/transformer_mr.py \
      --config.data_dir=/path/to/mr --config.data.fold=0 --config.train.progress_bar=False
"""

from experiments.configs import lstm_mr
from experiments.configs import transformer_trec


def get_config(variant: str | None = None):
  config = lstm_mr.use_mr_data(transformer_trec.get_config(variant), variant)
  config.workdir = ("workdirs/transformer_mr_smoke" if variant == "smoke"
                    else "workdirs/transformer_mr")
  return config
