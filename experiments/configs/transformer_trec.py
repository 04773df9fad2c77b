"""A small pre-layer-norm Transformer encoder on TREC question types.

Run:
  python experiments/run.py --config=experiments/configs/transformer_trec.py \
      --config.data_dir=/path/to/trec --config.train.progress_bar=False

Two blocks of width 64 with 4 heads and an MLP of 128, learned positions, mean pooling over
the real tokens, dropout 0.3. Optimizer and schedule are those of `lstm_trec.py`.
"""

import ml_collections

from experiments.configs import lstm_trec


def get_config(variant: str | None = None):
  config = lstm_trec.get_config(variant)
  config.workdir = ("workdirs/transformer_trec_smoke" if variant == "smoke"
                    else "workdirs/transformer_trec")

  config.model = ml_collections.ConfigDict()
  config.model.name = "transformer"
  config.model.width = 64
  config.model.num_layers = 2
  config.model.num_heads = 4
  config.model.mlp_dim = 128
  # TREC has 5,452 training sentences, and more dropout than the usual 0.1 helps on so few.
  config.model.dropout_rate = 0.3
  config.model.position_embedding = "learned"  # or "sinusoidal"
  # Rows of the learned position table; must be at least config.data.max_len (+ 1 for "cls").
  config.model.max_positions = 128
  config.model.pooling = "mean"  # or "cls", a learned class token


  if variant == "smoke":
    config.model.width = 16
    config.model.num_heads = 2
    config.model.mlp_dim = 32
    config.train.num_epochs = 1
  return config
