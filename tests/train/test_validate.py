"""Tests of config validation: each bad value fails before any compile, naming key and fix."""

import importlib

import pytest

from experiments.configs import cnn_mnist
from jaxmodels import errors
from jaxmodels.models import registry
from jaxmodels.train import validate


def validate_cnn(config, device_count=1, process_count=1, platform="cpu"):
  validate.validate_config(
      config,
      device_count=device_count,
      process_count=process_count,
      platform=platform,
      known_models=("cnn",),
      known_datasets=("mnist",),
  )


def test_validate_accepts_shipped_configs():
  validate_cnn(cnn_mnist.get_config())
  validate_cnn(cnn_mnist.get_config("smoke"))


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("optim.name", "adagrad", r"config.optim.name='adagrad' is not a known optimizer"),
        ("optim.schedule", "step", r"config.optim.schedule='step' is not a known schedule"),
        ("optim.learning_rate", -1.0, r"config.optim.learning_rate=-1.0 must be positive"),
        ("optim.clip_norm", -0.5, r"config.optim.clip_norm=-0.5 must be zero \(off\)"),
        ("data.batch_size", 0, r"config.data.batch_size=0 must be at least 1"),
        ("data.eval_batch_size", -3, r"config.data.eval_batch_size=-3 must be at least 1"),
        ("train.num_epochs", 0, r"config.train.num_epochs=0 must be at least 1"),
        ("model.name", "resnet", r"config.model.name='resnet' is not a known model"),
        ("data.name", "cifar", r"config.data.name='cifar' is not a known data set"),
        ("parallel.backend", "pjit", r"config.parallel.backend='pjit' is not one of"),
        ("checkpoint.keep_latest", 0, r"config.checkpoint.keep_latest=0 must be at least 1"),
        ("data.validation_fraction", 1.0,
         r"config.data.validation_fraction=1.0 must be in \[0, 1\)"),
        ("data.validation_fraction", -0.1,
         r"config.data.validation_fraction=-0.1 must be in \[0, 1\)"),
        ("data.validation_seed", -1, r"config.data.validation_seed=-1 must be a non-negative"),
        ("train.steps_per_call", 0, r"config.train.steps_per_call=0 must be at least 1"),
        ("train.cpu_microbatch_size", -8,
         r"config.train.cpu_microbatch_size=-8 must be 0 \(whole batches\) or positive"),
    ],
)
def test_validate_rejects_bad_value(key, value, message):
  config = cnn_mnist.get_config()
  section, name = key.split(".")
  config[section][name] = value

  with pytest.raises(ValueError, match=message):
    validate_cnn(config)


def test_validate_rejects_batch_not_dividing_devices():
  config = cnn_mnist.get_config()
  config.data.batch_size = 100

  with pytest.raises(ValueError) as error:
    validate_cnn(config, device_count=8)

  message = str(error.value)
  assert "config.data.batch_size=100" in message
  assert "8 devices" in message
  assert "96 or 104" in message


@pytest.mark.parametrize("size, device_count, valid", [
    (48, 1, "[1, 2, 4, 8, 16, 32, 64, 128]"),  # does not divide the batch of 128
    (4, 8, "[8, 16, 32, 64, 128]"),  # a microbatch would not spread over 8 devices
])
def test_validate_rejects_bad_microbatch_size(size, device_count, valid):
  config = cnn_mnist.get_config()
  config.train.cpu_microbatch_size = size

  with pytest.raises(ValueError) as error:
    validate_cnn(config, device_count=device_count)

  message = str(error.value)
  assert (f"config.train.cpu_microbatch_size={size} must divide config.data.batch_size=128"
          in message)
  assert (f"be a multiple of {device_count}, the least common multiple of the device count of "
          f"the data axis ({device_count}) and the process count (1)" in message)
  assert f"Use one of {valid}, or 0 for whole batches." in message


def test_validate_ignores_microbatch_size_off_cpu():
  config = cnn_mnist.get_config()
  config.train.cpu_microbatch_size = 48

  validate_cnn(config, platform="tpu")

  with pytest.raises(ValueError, match="cpu_microbatch_size=48"):
    validate_cnn(config, platform="cpu")


def test_validate_rejects_mesh_not_fitting_devices():
  config = cnn_mnist.get_config()
  config.parallel.mesh_shape = (3, 4)

  with pytest.raises(ValueError, match=r"mesh_shape=\(3, 4\) does not fit 8 devices"):
    validate_cnn(config, device_count=8)


def test_locked_config_rejects_unknown_key_and_wrong_type():
  config = cnn_mnist.get_config()
  config.lock()

  with pytest.raises(AttributeError, match="learning_rat"):
    config.optim.learning_rat = 1e-3
  with pytest.raises(TypeError, match="learning_rate"):
    config.optim.learning_rate = "fast"


@pytest.mark.parametrize("config_name, key, value", [
    ("text_cnn_trec", "convolution", "Wide"),
    ("transformer_trec", "position_embedding", "rotary"),
    ("transformer_trec", "pooling", "max"),
])
def test_model_choice_rejected_before_data(config_name, key, value):
  config = importlib.import_module(f"experiments.configs.{config_name}").get_config()
  registry.check_model_config(config.model)
  config.model[key] = value

  message = rf"config.model.{key}='{value}' is not one of"
  with pytest.raises(errors.ConfigError, match=message):
    registry.check_model_config(config.model)
