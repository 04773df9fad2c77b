"""Tests of the tutorial CNN: parameter count, shapes, and the summary table."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxmodels.models import cnn
from jaxmodels.models import summary
from jaxmodels.train import state


def test_cnn_parameter_count_matches_keras():
  model = cnn.CNN(num_classes=10)
  variables = jax.eval_shape(
      lambda: model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1), jnp.float32))
  )

  assert state.count_params(variables["params"]) == 93_322


def test_cnn_layer_shapes():
  model = cnn.CNN(num_classes=10)
  variables = jax.eval_shape(
      lambda: model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1), jnp.float32))
  )
  params = variables["params"]

  assert params["conv0"]["kernel"].shape == (3, 3, 1, 32)
  assert params["conv1"]["kernel"].shape == (3, 3, 32, 64)
  assert params["conv2"]["kernel"].shape == (3, 3, 64, 64)
  # 3 x 3 x 64 features after the last convolution.
  assert params["dense0"]["kernel"].shape == (576, 64)
  assert params["logits"]["kernel"].shape == (64, 10)


def test_cnn_logits_shape_and_dtype(key):
  model = cnn.CNN(num_classes=10)
  images = jax.random.uniform(key, (4, 28, 28, 1), jnp.float32)
  variables = model.init(key, images)

  logits = model.apply(variables, images)

  assert logits.shape == (4, 10)
  assert logits.dtype == jnp.float32
  np.testing.assert_allclose(
      jax.jit(model.apply)(variables, images), logits, rtol=1e-5, atol=1e-6
  )


def test_summary_lists_layers_and_total():
  model = cnn.CNN(num_classes=10)

  table = summary.summarize(model, jnp.zeros((1, 28, 28, 1), jnp.float32))

  lines = table.splitlines()
  assert lines[0].split() == ["Layer", "Output", "shape", "Params"]
  rows = {line.split()[0]: line for line in lines[2:7]}
  assert rows["conv0"].endswith("320")
  assert "(None, 26, 26, 32)" in rows["conv0"]
  assert "(None, 3, 3, 64)" in rows["conv2"]
  assert rows["dense0"].endswith("36,928")
  assert lines[-1] == "Total parameters: 93,322"
