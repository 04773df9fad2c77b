"""The two-LSTM classifier with dot-product self-attention between the LSTMs, on TREC.

Run:
  python experiments/run.py --config=experiments/configs/lstm_attention_trec.py \
      --config.data_dir=/path/to/trec --config.train.progress_bar=False

Data, optimizer and sizes are those of `lstm_trec.py`; only the model differs.
"""

from experiments.configs import lstm_trec


def get_config(variant: str | None = None):
  config = lstm_trec.get_config(variant)
  config.workdir = ("workdirs/lstm_attention_trec_smoke" if variant == "smoke"
                    else "workdirs/lstm_attention_trec")
  config.model.name = "lstm_attention"
  return config
