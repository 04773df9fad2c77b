"""The config sections that every experiment shares, with their defaults.

Experiment files in `experiments/configs/` start from `base_config()` and set the data set, the
model and the hyperparameters that differ. Code reads `config.x` directly, so every key a run
uses appears in its logged config.
"""

import ml_collections


def base_config() -> ml_collections.ConfigDict:
  """Return the shared sections: seed, paths, data, optim, train, checkpoint, parallel, logging."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  # Checkpoints, metrics.jsonl, TensorBoard events, plots and the run record go here.
  config.workdir = "workdirs/run"
  # Folder with the data set's files; each loader's error lists the files it expects.
  config.data_dir = "data"

  config.data = ml_collections.ConfigDict()
  config.data.name = ""
  config.data.batch_size = 128
  # Evaluation pads its last batch and masks the padding, so any size counts every example once.
  config.data.eval_batch_size = 500
  # Share of the training split held out, drawn from validation_seed, as a validation split.
  # With it, each epoch is evaluated on the validation split, early stopping and the best
  # checkpoint follow it, and the test split is evaluated once at the end on the best
  # checkpoint (or the last, with restore_best=False). 0 evaluates on the test split each epoch.
  config.data.validation_fraction = 0.0
  config.data.validation_seed = 0

  config.model = ml_collections.ConfigDict()
  config.model.name = ""

  config.optim = ml_collections.ConfigDict()
  config.optim.name = "adam"
  config.optim.learning_rate = 1e-3
  config.optim.schedule = "constant"  # or "warmup_cosine"
  config.optim.warmup_steps = 0
  config.optim.end_learning_rate = 0.0
  config.optim.clip_norm = 0.0  # 0 turns gradient clipping off.
  config.optim.weight_decay = 0.0
  config.optim.b1 = 0.9
  config.optim.b2 = 0.999
  config.optim.eps = 1e-7  # Keras's default epsilon for Adam and RMSprop.
  config.optim.rho = 0.9  # decay of the squared-gradient averages of RMSprop and Adadelta.
  config.optim.momentum = 0.0
  # Cap of the l2 norm of each class's weight vector in the layer named max_norm_layer,
  # applied after every update as Kim (2014) does. 0 turns it off.
  config.optim.max_norm = 0.0
  config.optim.max_norm_layer = "logits"
  # Scale the learning rate by `factor` when the epoch's training loss stops improving.
  config.optim.reduce_on_plateau = ml_collections.ConfigDict()
  config.optim.reduce_on_plateau.enabled = False
  config.optim.reduce_on_plateau.factor = 0.5
  config.optim.reduce_on_plateau.patience_epochs = 2
  config.optim.reduce_on_plateau.cooldown_epochs = 0
  config.optim.reduce_on_plateau.rtol = 1e-4
  config.optim.reduce_on_plateau.min_scale = 0.01

  config.train = ml_collections.ConfigDict()
  config.train.num_epochs = 10
  config.train.log_every_steps = 100
  # Train steps per compiled call: K > 1 runs K steps in one `lax.scan` (see
  # docs/benchmarks.md for the speed on CPU).
  config.train.steps_per_call = 1
  # Examples per microbatch on CPU devices: a train step takes its gradient in passes over
  # batch_size / cpu_microbatch_size parts of the batch and sums them. XLA's CPU convolution
  # gradients run faster on small batches (see docs/benchmarks.md). 0, and any accelerator,
  # take the gradient in one pass.
  config.train.cpu_microbatch_size = 0
  # A progress bar on a terminal or in a notebook; never when output goes to a file.
  config.train.progress_bar = True
  # Stop when the eval metric (on the validation split when there is one) has not improved by
  # `min_delta` for `patience_epochs` epochs (0 turns early stopping off), then continue from
  # the best checkpoint's parameters.
  config.train.early_stopping = ml_collections.ConfigDict()
  config.train.early_stopping.patience_epochs = 0
  config.train.early_stopping.metric = "accuracy"  # or "loss" (lower is better)
  config.train.early_stopping.min_delta = 0.0
  config.train.early_stopping.restore_best = True

  config.checkpoint = ml_collections.ConfigDict()
  config.checkpoint.every_steps = 0  # 0 saves at epoch ends (and at a stop) only.
  config.checkpoint.keep_latest = 2
  config.checkpoint.keep_best = 1  # By eval accuracy.

  config.parallel = ml_collections.ConfigDict()
  # (data, model) devices; -1 takes all remaining devices.
  config.parallel.mesh_shape = (-1, 1)
  config.parallel.backend = "jit"  # or "pmap": the same step per device under shard_map.
  # JAX devices to split the host CPU into when JAX starts (0 keeps JAX's setting). With
  # backend="pmap" this trains the sequence models faster on CPU (docs/benchmarks.md, lead 20).
  config.parallel.cpu_devices = 0
  # Multi-process runs; empty values fall back to the JAX_* environment variables.
  config.parallel.distributed = ml_collections.ConfigDict()
  config.parallel.distributed.enabled = False
  config.parallel.distributed.coordinator_address = ""  # host:port of process 0
  config.parallel.distributed.num_processes = 0
  config.parallel.distributed.process_id = -1
  config.parallel.distributed.cpu_collectives = "gloo"  # for CPU devices; "" leaves JAX's default
  config.parallel.distributed.timeout_seconds = 300

  config.logging = ml_collections.ConfigDict()
  config.logging.tensorboard = True
  config.logging.plots = True
  return config
