"""The CNN-rand sentence classifier of Kim (2014) on TREC question types.

Run:
  python experiments/run.py --config=experiments/configs/text_cnn_trec.py \
      --config.data_dir=/path/to/trec --config.train.progress_bar=False

Kim's settings: 300-dimensional embeddings trained from a random start, filter widths 3, 4
and 5 with 100 maps each, dropout 0.5, batch 50, and TREC questions tokenized without
lower-casing. Kim trains with Adadelta and caps the l2 norm of the last layer's weight vectors
at 3. This config uses Adam with the warmup and cosine decay of `lstm_trec.py` for 8 epochs,
and no norm cap (`--config.optim.max_norm=3` turns it on).
"""

import ml_collections

from experiments.configs import lstm_trec


def get_config(variant: str | None = None):
  config = lstm_trec.get_config(variant)
  config.workdir = ("workdirs/text_cnn_trec_smoke" if variant == "smoke"
                    else "workdirs/text_cnn_trec")
  config.data.batch_size = 50
  # Kim's released preprocessing keeps the case of TREC questions (and lower-cases other data
  # sets), so "US" and "us" are different words.
  config.data.lowercase = False

  config.model = ml_collections.ConfigDict()
  config.model.name = "text_cnn"
  config.model.embedding_dim = 300
  config.model.filter_widths = (3, 4, 5)
  config.model.num_filters = 100
  config.model.dropout_rate = 0.5
  # "narrow": windows inside each sentence; "wide": also windows over the sentence ends.
  config.model.convolution = "narrow"
  # Half-width of the uniform initialization of the embeddings (Kim: 0.25).
  config.model.embedding_init_scale = 0.05

  config.train.num_epochs = 8
  # One step per call: XLA's CPU back end runs convolution gradients far more slowly inside
  # the loop that several steps per call would compile to.
  config.train.steps_per_call = 1

  if variant == "smoke":
    config.model.embedding_dim = 16
    config.model.num_filters = 8
    config.train.num_epochs = 1
  return config
