"""The tutorial CNN on MNIST with RMSprop, as the Keras tutorial compiles it.

Run:
  python experiments/run.py --config=experiments/configs/cnn_mnist_rmsprop.py \
      --config.data_dir=/path/to/mnist
"""

from experiments.configs import cnn_mnist


def get_config(variant: str | None = None):
  config = cnn_mnist.get_config(variant)
  config.workdir = "workdirs/cnn_mnist_rmsprop"
  config.optim.name = "rmsprop"
  config.optim.learning_rate = 1e-3
  return config
