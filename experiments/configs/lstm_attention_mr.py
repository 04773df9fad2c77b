"""The two-LSTM classifier with dot-product self-attention, on MR movie review polarity.

Run, for fold 0 of 10:
  python experiments/run.py --config=experiments/configs/lstm_attention_mr.py \
      --config.data_dir=/path/to/mr --config.data.fold=0 --config.train.progress_bar=False
"""

from experiments.configs import lstm_attention_trec
from experiments.configs import lstm_mr


def get_config(variant: str | None = None):
  config = lstm_mr.use_mr_data(lstm_attention_trec.get_config(variant), variant)
  config.workdir = ("workdirs/lstm_attention_mr_smoke" if variant == "smoke"
                    else "workdirs/lstm_attention_mr")
  return config
