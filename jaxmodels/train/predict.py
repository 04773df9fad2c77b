"""Classify raw sentences with a text classifier trained by `train_and_evaluate`.

  predictor = load_predictor("workdirs/text_cnn_trec")
  labels, probabilities = predictor.predict(["How far is the moon ?"])
  print(predictor.class_names[labels[0]], probabilities[0])

A workdir contains all that prediction needs: `config.json` rebuilds the model and the encoding
settings, `vocab.json` maps words to the ids the model was trained with, and `checkpoints/`
contains the parameters.
"""

from collections.abc import Sequence
import functools
import json
import os
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxmodels.data import datasets
from jaxmodels.data import text
from jaxmodels.data import text_datasets
from jaxmodels.models import registry
from jaxmodels.train import checkpoints
from jaxmodels.train import config as config_lib
from jaxmodels.train import optim as optim_lib
from jaxmodels.train import state as state_lib

CHECKPOINT_CHOICES = ("final", "best", "latest")


def read_config(workdir: str | os.PathLike[str]) -> ml_collections.ConfigDict:
  """Read the `config.json` that a run wrote into its workdir, on top of `base_config()`.

  Starting from the current defaults fills in keys that were added to `base_config` after
  the run, so a newer jaxmodels can still rebuild an older run's optimizer. Keys of the
  defaults that are tuples come back as tuples; other tuples of the run come back as lists.

  Raises:
    FileNotFoundError: the workdir has no `config.json`.
  """
  path = pathlib.Path(workdir) / "config.json"
  if not path.is_file():
    raise FileNotFoundError(
        f"{path} not found. Pass the workdir of a training run (its config.workdir), or the "
        "config of that run.")
  config = config_lib.base_config()
  config.update(json.loads(path.read_text(encoding="utf-8")))
  return config


class Predictor:
  """A trained text classifier together with its vocabulary and encoding settings.

  Attributes:
    model: the Flax module.
    params: its parameters.
    config: the run config; `config.data` gives the encoding settings.
    vocab: the vocabulary the model was trained with.
    class_names: K class names, indexed by the predicted labels.
    step: the training step of the restored checkpoint.
    batch_size: sentences per compiled call. Every call has this shape, so the model
      compiles once.
  """

  def __init__(self, *, model, params: Any, config: ml_collections.ConfigDict,
               vocab: text.Vocabulary, class_names: Sequence[str], step: int,
               batch_size: int = 64):
    self.model = model
    self.params = params
    self.config = config
    self.vocab = vocab
    self.class_names = tuple(class_names)
    self.step = step
    self.batch_size = batch_size

  @functools.cached_property
  def _probabilities(self):
    def probabilities(params, ids):
      logits = self.model.apply({"params": params}, ids, train=False)  # [B, K]
      return jax.nn.softmax(logits.astype(jnp.float32), axis=-1)

    return jax.jit(probabilities)

  def predict(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Classify raw texts.

    Args:
      texts: N sentences, tokenized and encoded as in training.

    Returns:
      (labels, probabilities): i32[N] class ids, indices into `class_names`, and the
      f32[N, K] class probabilities.

    Raises:
      ValueError: `texts` is a single str, or an item is not a str.
    """
    ids = text_datasets.encode(self.config, self.vocab, texts)  # [N, T]
    batches = []
    for start in range(0, len(ids), self.batch_size):
      chunk = ids[start:start + self.batch_size]
      # Rows of padding fill the last batch; they are dropped from the output.
      padded = np.zeros((self.batch_size, ids.shape[1]), np.int32)
      padded[:len(chunk)] = chunk
      batches.append(np.asarray(self._probabilities(self.params, padded))[:len(chunk)])
    if not batches:
      return np.zeros((0,), np.int32), np.zeros((0, len(self.class_names)), np.float32)
    probabilities = np.concatenate(batches)  # [N, K]
    return probabilities.argmax(axis=-1).astype(np.int32), probabilities


def _select_step(checkpointer: checkpoints.Checkpointer, checkpoint: str | int,
                 config: ml_collections.ConfigDict) -> int:
  """Return the step named by `checkpoint`: "final", "best", "latest" or a step number."""
  steps = checkpointer.all_steps()
  if not steps:
    raise FileNotFoundError(f"No complete checkpoint found in {checkpointer.directory}. Train "
                            "first, or pass the workdir of a run that saved one.")
  if checkpoint == "final":
    # The training loop tests the best checkpoint when a validation split chose it or early
    # stopping ended the run, and the last one otherwise.
    stopped = checkpointer.restore_meta(steps[-1]).get("early_stopping", {}).get("stopped")
    chosen = config.data.get("validation_fraction", 0.0) or stopped
    checkpoint = "best" if config.train.early_stopping.restore_best and chosen else "latest"
  if checkpoint == "latest":
    return steps[-1]
  if checkpoint == "best":
    best = checkpointer.best_step()
    return steps[-1] if best is None else best
  if isinstance(checkpoint, int) and not isinstance(checkpoint, bool):
    if checkpoint not in steps:
      raise ValueError(f"checkpoint step {checkpoint} is not kept in {checkpointer.directory}; "
                       f"kept steps: {steps}")
    return checkpoint
  raise ValueError(f"checkpoint must be one of {CHECKPOINT_CHOICES} or a step number, got "
                   f"{checkpoint!r}")


def load_predictor(
    workdir: str | os.PathLike[str],
    *,
    config: ml_collections.ConfigDict | None = None,
    checkpoint: str | int = "final",
    batch_size: int = 64,
) -> Predictor:
  """Restore a text classifier from the workdir of a training run.

  NOTE: opening the checkpoint folder deletes unfinished temporary step folders, so do not
  load from a workdir while a run is still saving into it.

  Args:
    workdir: the run's `config.workdir`.
    config: the run config; None reads `workdir/config.json`.
    checkpoint: "final" (the state whose test accuracy the run reported: the best
      checkpoint when a validation split or early stopping chose it, else the latest),
      "best" (the step ranked first by the run's early-stopping metric, measured on the
      validation split when the run had one, else on the test split; the latest when no
      step has it), "latest", or a kept step number.
    batch_size: sentences per compiled call.

  Returns:
    A `Predictor`.

  Raises:
    FileNotFoundError: the workdir lacks `config.json` (with `config` None), `vocab.json` or
      a complete checkpoint.
    ValueError: the config is not that of a text data set, or `checkpoint` names no kept step.
    CheckpointMismatchError: the checkpoint does not fit the model that the config describes.
  """
  workdir = pathlib.Path(workdir)
  if not workdir.is_dir():
    raise FileNotFoundError(f"workdir {workdir} not found. Pass the config.workdir of a "
                            "training run.")
  config = read_config(workdir) if config is None else config
  if config.data.name not in text_datasets.CLASS_NAMES:
    raise ValueError(
        f"config.data.name={config.data.name!r} is not a text data set; prediction from text "
        f"supports {tuple(text_datasets.CLASS_NAMES)}.")
  vocab_path = text_datasets.vocabulary_path(workdir)
  if not vocab_path.is_file():
    raise FileNotFoundError(f"{vocab_path} not found. The training run writes it when it loads "
                            "the data; pass the workdir of a text run.")
  checkpoint_dir = workdir / "checkpoints"
  if not checkpoint_dir.is_dir():
    raise FileNotFoundError(f"{checkpoint_dir} not found. Train first with "
                            f"--config.workdir={workdir}.")

  # The model factory needs only the class count and the vocabulary of the data set.
  vocab = text.Vocabulary.load(vocab_path)
  class_names = text_datasets.CLASS_NAMES[config.data.name]
  dataset = datasets.Dataset(
      train={}, test={}, num_classes=len(class_names), class_names=class_names, vocab=vocab,
      vocab_size=config.data.vocab_size)
  model = registry.create_model(config, dataset)

  # The checkpoint contains a whole train state, so restore into the state of the same optimizer.
  tx, _ = optim_lib.create_optimizer(config.optim, total_steps=1)
  example = jnp.zeros((1, config.data.max_len), jnp.int32)
  abstract_state = jax.eval_shape(
      lambda key: state_lib.create_train_state(model, tx, key=key, example_inputs=example),
      jax.random.key(0))

  metric, mode = checkpoints.ranking_metric(config)
  checkpointer = checkpoints.Checkpointer(checkpoint_dir, metric=metric, mode=mode)
  try:
    step = _select_step(checkpointer, checkpoint, config)
    state, _ = checkpointer.restore(step, abstract_state)
  finally:
    checkpointer.close()
  return Predictor(model=model, params=state.params, config=config, vocab=vocab,
                   class_names=class_names, step=step, batch_size=batch_size)
