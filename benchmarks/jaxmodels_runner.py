"""The jaxmodels side of the benchmark, built with the pieces `experiments/run.py` trains with.

The model comes from `registry.create_model` with the experiment config of its name, the
optimizer from `optim.create_optimizer`, the state from `state.create_train_state` (initialized
into its shardings as the loop does), and the step from `loop.compile_steps`, fed through
`parallel.put_batch` on every step. Only the data set is a stand-in: random batches of the
benchmark's shapes.
"""

import dataclasses
import importlib
import os
import sys
import time
from typing import Any

import jax
import ml_collections
import numpy as np

import common

# Experiment configs import each other as `experiments.configs.NAME`.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO_ROOT not in sys.path:
  sys.path.insert(0, _REPO_ROOT)

from jaxmodels.models import registry  # pylint: disable=g-import-not-at-top
from jaxmodels.train import loop  # pylint: disable=g-import-not-at-top
from jaxmodels.train import optim  # pylint: disable=g-import-not-at-top
from jaxmodels.train import parallel  # pylint: disable=g-import-not-at-top
from jaxmodels.train import state as state_lib  # pylint: disable=g-import-not-at-top
from jaxmodels.train import steps  # pylint: disable=g-import-not-at-top

# The experiment config each benchmark model starts from.
CONFIG_MODULES = {
    "cnn": "experiments.configs.cnn_mnist",
    "lstm": "experiments.configs.lstm_trec",
    "lstm_attention": "experiments.configs.lstm_attention_trec",
    "transformer": "experiments.configs.transformer_trec",
}

# Models trained with the host CPU split into one JAX device per core, under the `pmap` back end.
# On 2 cores this ran them 1.17x to 1.49x faster, and the CNN slower (docs/benchmarks.md, lead 20).
SPLIT_CPU_MODELS = ("lstm", "lstm_attention", "transformer")


def cpu_devices(model: str, batch_size: int) -> int:
  """Return 0 (JAX's one device) for the CNN, else the largest core count dividing the batch."""
  if model not in SPLIT_CPU_MODELS:
    return 0
  cores = len(os.sched_getaffinity(0))
  return max(count for count in range(1, cores + 1) if batch_size % count == 0)


@dataclasses.dataclass(frozen=True)
class FakeDataset:
  """The fields of `jaxmodels.data.datasets.Dataset` that the model factories read."""

  num_classes: int
  vocab_size: int | None = None


def create_config(model: str, batch_size: int) -> ml_collections.ConfigDict:
  """Load the experiment config of `model` and set the benchmark's shapes in it."""
  if model not in CONFIG_MODULES:
    raise ValueError(f"model must be one of {tuple(CONFIG_MODULES)}, got {model!r}")
  config = importlib.import_module(CONFIG_MODULES[model]).get_config()
  config.data.batch_size = batch_size
  config.optim.name = "adam"
  config.optim.learning_rate = common.LEARNING_RATE
  config.optim.schedule = "constant"
  config.optim.clip_norm = 0.0
  config.optim.weight_decay = 0.0
  config.parallel.mesh_shape = (-1, 1)
  config.parallel.cpu_devices = cpu_devices(model, batch_size)
  config.parallel.backend = "pmap" if config.parallel.cpu_devices > 1 else "jit"
  if model != "cnn":
    config.data.vocab_size = common.VOCAB_SIZE
    config.data.max_len = common.SEQUENCE_LENGTH
  if model == "transformer":
    # The TREC config tunes its dropout for accuracy, and every framework here uses this rate.
    config.model.dropout_rate = common.TRANSFORMER_DROPOUT
  _check_sizes(model, config.model)
  return config


def _check_sizes(model: str, model_config: ml_collections.ConfigDict) -> None:
  """Raise ValueError if the experiment config's model sizes differ from the benchmark's."""
  if model == "cnn":
    expected = {"conv_features": common.CONV_FEATURES, "hidden_units": common.HIDDEN_UNITS}
  elif model in ("lstm", "lstm_attention"):
    expected = {"embedding_dim": common.EMBEDDING_DIM,
                "lstm_units": (common.LSTM_UNITS, common.LSTM_UNITS), "dropout_rate": 0.0}
  else:
    expected = {"width": common.TRANSFORMER_WIDTH, "num_layers": common.TRANSFORMER_BLOCKS,
                "num_heads": common.TRANSFORMER_HEADS, "mlp_dim": common.TRANSFORMER_MLP,
                "dropout_rate": common.TRANSFORMER_DROPOUT, "position_embedding": "learned",
                "pooling": "mean"}
  for key, value in expected.items():
    actual = model_config[key]
    if (tuple(actual) if isinstance(actual, (list, tuple)) else actual) != value:
      raise ValueError(
          f"config.model.{key}={actual!r} in {CONFIG_MODULES[model]} differs from the "
          f"benchmark's {value!r}; update benchmarks/common.py and the peers to match.")


class Trainer:
  """Runs compiled train steps of one jaxmodels model on a fixed set of random batches."""

  def __init__(self, model: str, batch_size: int, *, seed: int):
    self.config = create_config(model, batch_size)
    dataset = FakeDataset(
        num_classes=common.NUM_CLASSES,
        vocab_size=None if model == "cnn" else common.VOCAB_SIZE,
    )
    # Before the first JAX operation, which fixes the CPU device count.
    parallel.set_cpu_devices(self.config.parallel)
    self.model = registry.create_model(self.config, dataset)
    self.tx, _ = optim.create_optimizer(self.config.optim, total_steps=1_000_000)
    self.mesh = parallel.create_mesh(self.config.parallel)
    self.batches = [
        {"inputs": batch.inputs, "labels": batch.labels}
        for batch in common.make_batches(model, batch_size, seed=seed)
    ]

    with jax.set_mesh(self.mesh):
      example = self.batches[0]["inputs"][:1]

      def init(key):
        return state_lib.create_train_state(self.model, self.tx, key=key, example_inputs=example)

      abstract_state = jax.eval_shape(init, jax.random.key(seed))
      state_shardings = parallel.state_shardings(self.mesh, abstract_state)
      self.state = jax.jit(init, out_shardings=state_shardings)(jax.random.key(seed))
      # The model's experiment config sets how many steps one compiled call runs and the
      # microbatches of a step, as in the training loop.
      self.train_fn, _, self.multi_fn = loop.compile_steps(
          self.model, self.tx, self.config, mesh=self.mesh, state_shardings=state_shardings)
      self.steps_per_call = self.config.train.steps_per_call
      self.sums = jax.device_put(steps.zero_metrics(), parallel.replicated(self.mesh))
      jax.block_until_ready(self.state)
    self.index = 0

  def _next_batch(self) -> dict[str, np.ndarray]:
    batch = self.batches[self.index % len(self.batches)]
    self.index += 1
    return batch

  def run(self, num_steps: int) -> None:
    """Run `num_steps` training steps and wait for the last one.

    Whole groups of `steps_per_call` steps run as one compiled call each, and the rest one
    step per call, as the training loop runs them between two logging steps.
    """
    calls, singles = divmod(num_steps, self.steps_per_call)
    if self.multi_fn is None:
      calls, singles = 0, num_steps
    with jax.set_mesh(self.mesh):
      for _ in range(calls):
        stacked = parallel.put_batches(
            [self._next_batch() for _ in range(self.steps_per_call)], self.mesh)
        self.state, self.sums = self.multi_fn(self.state, self.sums, stacked)
      for _ in range(singles):
        self.state, self.sums = self.train_fn(
            self.state, self.sums, parallel.put_batch(self._next_batch(), self.mesh)
        )
      jax.block_until_ready((self.state, self.sums))


def create_trainer(model: str, batch_size: int, *, seed: int) -> Trainer:
  """Build a jaxmodels trainer."""
  return Trainer(model, batch_size, seed=seed)


def compare_variants(model: str, batch_size: int, module: Any, attribute: str,
                     variants: dict[str, Any], *, rounds: int,
                     examples_per_window: int = 1024) -> dict[str, float]:
  """Time the train step of `model` with `module.attribute` replaced by each variant.

  Each trainer compiles while its variant is in place (models look ops up at trace time),
  and the original is restored afterwards. Timed windows of at least `examples_per_window`
  examples (and 3 steps, rounded up to whole compiled calls) alternate between the variants.
  Returns the median examples/s of each.
  """
  original = getattr(module, attribute)
  trainers = {}
  try:
    for name, variant in variants.items():
      setattr(module, attribute, variant)
      trainers[name] = create_trainer(model, batch_size, seed=0)
      trainers[name].run(max(3, trainers[name].steps_per_call))
  finally:
    setattr(module, attribute, original)

  steps = max(3, examples_per_window // batch_size)
  # Whole compiled calls for models whose config runs several steps per call.
  per_call = max(trainer.steps_per_call for trainer in trainers.values())
  steps = -(-steps // per_call) * per_call
  rates = {name: [] for name in trainers}
  for _ in range(rounds):
    for name, trainer in trainers.items():
      start = time.perf_counter()
      trainer.run(steps)
      rates[name].append(steps * batch_size / (time.perf_counter() - start))
  return {name: float(np.median(values)) for name, values in rates.items()}


def versions() -> dict[str, str]:
  """Return the version strings this runner uses."""
  import flax  # pylint: disable=g-import-not-at-top
  import jaxlib  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top

  return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "flax": flax.__version__,
          "optax": optax.__version__}
