"""The benchmark models in Keras 3, trained with `Model.fit` on the JAX back end.

The worker sets KERAS_BACKEND=jax before this module is imported. Each timed window is one
`fit` call over exactly `num_steps * batch_size` examples, so no partial batch triggers a second
compilation. Embeddings use `mask_zero=True`, so the LSTMs, the attention layer and the pooling
carry the padding mask as a Keras text model would.
"""

import os

if os.environ.get("KERAS_BACKEND") != "jax":
  raise RuntimeError("Set KERAS_BACKEND=jax before importing peers_keras (the worker does).")

import jax  # pylint: disable=g-import-not-at-top
import keras  # pylint: disable=g-import-not-at-top
from keras import layers  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

import common  # pylint: disable=g-import-not-at-top


def _cnn() -> keras.Model:
  inputs = keras.Input(common.IMAGE_SHAPE)
  x = inputs
  for index, features in enumerate(common.CONV_FEATURES):
    x = layers.Conv2D(features, common.CONV_KERNEL, activation="relu")(x)
    if index < len(common.CONV_FEATURES) - 1:
      x = layers.MaxPooling2D(2)(x)
  x = layers.Flatten()(x)
  x = layers.Dense(common.HIDDEN_UNITS, activation="relu")(x)
  return keras.Model(inputs, layers.Dense(common.NUM_CLASSES)(x))


def _lstm(*, attention: bool) -> keras.Model:
  inputs = keras.Input((common.SEQUENCE_LENGTH,), dtype="int32")
  x = layers.Embedding(common.VOCAB_SIZE, common.EMBEDDING_DIM, mask_zero=True)(inputs)
  x = layers.LSTM(common.LSTM_UNITS, return_sequences=True)(x)
  if attention:
    # Dot-product scores, unscaled as in the Keras layer (jaxmodels scales by 1 / sqrt(U)); the
    # propagated mask hides padded keys and zeroes padded queries.
    x = layers.Attention(score_mode="dot")([x, x])
  x = layers.LSTM(common.LSTM_UNITS)(x)
  return keras.Model(inputs, layers.Dense(common.NUM_CLASSES)(x))


class TokenAndPositionEmbedding(layers.Layer):
  """Token embedding plus a learned embedding of each token's position among the real tokens."""

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.tokens = layers.Embedding(common.VOCAB_SIZE, common.TRANSFORMER_WIDTH, mask_zero=True)
    self.positions = layers.Embedding(common.SEQUENCE_LENGTH, common.TRANSFORMER_WIDTH)

  def call(self, ids):
    keep = keras.ops.cast(keras.ops.not_equal(ids, 0), "int32")
    positions = keras.ops.maximum(keras.ops.cumsum(keep, axis=1) - 1, 0) * keep
    return self.tokens(ids) + self.positions(positions)

  def compute_mask(self, ids, mask=None):
    return self.tokens.compute_mask(ids)


class EncoderBlock(layers.Layer):
  """Pre-norm encoder block as in jaxmodels: x + Drop(MHA(LN(x))), then y + Drop(MLP(LN(y)))."""

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    width = common.TRANSFORMER_WIDTH
    self.attention_norm = layers.LayerNormalization(epsilon=common.LAYER_NORM_EPSILON)
    self.attention = layers.MultiHeadAttention(
        common.TRANSFORMER_HEADS, width // common.TRANSFORMER_HEADS
    )
    self.mlp_norm = layers.LayerNormalization(epsilon=common.LAYER_NORM_EPSILON)
    self.mlp_hidden = layers.Dense(common.TRANSFORMER_MLP)
    self.mlp_output = layers.Dense(width)
    self.attention_dropout = layers.Dropout(common.TRANSFORMER_DROPOUT)
    self.mlp_dropout = layers.Dropout(common.TRANSFORMER_DROPOUT)
    self.supports_masking = True

  def call(self, x, training=None, mask=None):
    attention_mask = None if mask is None else mask[:, None, :]  # [B, 1, S]
    y = self.attention_norm(x)
    y = self.attention(y, y, attention_mask=attention_mask, training=training)
    x = x + self.attention_dropout(y, training=training)
    y = keras.activations.gelu(self.mlp_hidden(self.mlp_norm(x)), approximate=True)
    return x + self.mlp_dropout(self.mlp_output(y), training=training)


def _transformer() -> keras.Model:
  inputs = keras.Input((common.SEQUENCE_LENGTH,), dtype="int32")
  x = TokenAndPositionEmbedding()(inputs)
  x = layers.Dropout(common.TRANSFORMER_DROPOUT)(x)
  for _ in range(common.TRANSFORMER_BLOCKS):
    x = EncoderBlock()(x)
  x = layers.LayerNormalization(epsilon=common.LAYER_NORM_EPSILON)(x)
  x = layers.GlobalAveragePooling1D()(x)  # Masked mean over the real steps.
  x = layers.Dropout(common.TRANSFORMER_DROPOUT)(x)
  return keras.Model(inputs, layers.Dense(common.NUM_CLASSES)(x))


def create_model(model: str) -> keras.Model:
  """Build the Keras model for a benchmark row's model name."""
  if model == "cnn":
    return _cnn()
  if model == "lstm":
    return _lstm(attention=False)
  if model == "lstm_attention":
    return _lstm(attention=True)
  if model == "transformer":
    return _transformer()
  raise ValueError(f"model must be one of {common.MODELS}, got {model!r}")


class Trainer:
  """Runs Adam steps of one Keras model through `fit` on a fixed set of random batches."""

  def __init__(self, model: str, batch_size: int, *, seed: int):
    keras.utils.set_random_seed(seed)
    self.model = create_model(model)
    self.model.compile(
        optimizer=keras.optimizers.Adam(common.LEARNING_RATE, epsilon=common.ADAM_EPSILON),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    self.batch_size = batch_size
    self.batches = common.make_batches(model, batch_size, seed=seed)
    self.windows = {}

  def _window(self, num_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Return inputs and labels for `num_steps` batches, cycling through the random batches."""
    if num_steps not in self.windows:
      picks = [self.batches[step % len(self.batches)] for step in range(num_steps)]
      self.windows[num_steps] = (
          np.concatenate([batch.inputs for batch in picks]),
          np.concatenate([batch.labels for batch in picks]),
      )
    return self.windows[num_steps]

  def run(self, num_steps: int) -> None:
    """Run `num_steps` training steps in one `fit` call and wait for the last one."""
    inputs, labels = self._window(num_steps)
    self.model.fit(
        inputs, labels, batch_size=self.batch_size, epochs=1, shuffle=False, verbose=0
    )
    # `fit` may return before XLA finishes the last step.
    jax.block_until_ready([variable.value for variable in self.model.trainable_variables])


def create_trainer(model: str, batch_size: int, *, seed: int) -> Trainer:
  """Build a Keras trainer."""
  return Trainer(model, batch_size, seed=seed)


def versions() -> dict[str, str]:
  """Return the version strings this peer runs with."""
  return {"keras": keras.__version__, "keras_backend": keras.backend.backend(),
          "jax": jax.__version__}
