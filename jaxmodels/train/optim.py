"""Optax optimizers and learning-rate schedules built from `config.optim`."""

import ml_collections
import optax
import optax.contrib

from jaxmodels.models import text_cnn

OPTIMIZERS = ("adadelta", "adam", "adamw", "rmsprop", "sgd")
SCHEDULES = ("constant", "warmup_cosine")


def create_schedule(optim: ml_collections.ConfigDict, *, total_steps: int) -> optax.Schedule:
  """Build the learning-rate schedule named by `optim.schedule`.

  `warmup_cosine` rises linearly from 0 over `optim.warmup_steps` steps, then follows a cosine
  decay to `optim.end_learning_rate` at `total_steps`.
  """
  if optim.schedule == "constant":
    return optax.constant_schedule(optim.learning_rate)
  if optim.schedule == "warmup_cosine":
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=optim.learning_rate,
        warmup_steps=optim.warmup_steps,
        decay_steps=max(total_steps, optim.warmup_steps + 1),
        end_value=optim.end_learning_rate,
    )
  raise ValueError(
      f"config.optim.schedule={optim.schedule!r} is not a known schedule; use one of {SCHEDULES}."
  )


def create_optimizer(
    optim: ml_collections.ConfigDict, *, total_steps: int, steps_per_epoch: int = 1
) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """Build the Optax optimizer of `config.optim` and return it with its schedule.

  Gradient clipping by global norm runs first when `optim.clip_norm > 0`. Weight decay is
  decoupled (AdamW style) for `adamw`, and added to the gradient (L2) for the other optimizers.

  With `optim.reduce_on_plateau.enabled`, `optax.contrib.reduce_on_plateau` scales the updates
  by `factor` whenever the epoch's mean training loss has not improved for `patience` epochs,
  as Keras's `ReduceLROnPlateau(monitor="loss")` does. Its state lives in the optimizer state,
  so a resumed run continues it exactly. The train step passes the loss as `value`.

  With `optim.max_norm > 0`, every column of `params[optim.max_norm_layer]["kernel"]` (the
  weight vector of one class in a Dense output layer) is rescaled after each update so that
  its l2 norm is at most `max_norm` (`jaxmodels.models.text_cnn.max_norm_transform`).
  """
  schedule = create_schedule(optim, total_steps=total_steps)
  transforms = []
  if optim.clip_norm > 0:
    transforms.append(optax.clip_by_global_norm(optim.clip_norm))

  if optim.name == "adam":
    if optim.weight_decay > 0:
      transforms.append(optax.add_decayed_weights(optim.weight_decay))
    transforms.append(optax.adam(schedule, b1=optim.b1, b2=optim.b2, eps=optim.eps))
  elif optim.name == "adamw":
    transforms.append(
        optax.adamw(
            schedule, b1=optim.b1, b2=optim.b2, eps=optim.eps, weight_decay=optim.weight_decay
        )
    )
  elif optim.name == "rmsprop":
    if optim.weight_decay > 0:
      transforms.append(optax.add_decayed_weights(optim.weight_decay))
    # Keras's RMSprop defaults: rho=0.9, epsilon=1e-7, no momentum.
    transforms.append(
        optax.rmsprop(schedule, decay=optim.rho, eps=optim.eps, momentum=optim.momentum or None)
    )
  elif optim.name == "adadelta":
    if optim.weight_decay > 0:
      transforms.append(optax.add_decayed_weights(optim.weight_decay))
    # Zeiler's Adadelta, where `rho` decays both running averages. Kim (2014) uses rho=0.95,
    # eps=1e-6 and a learning rate of 1.
    transforms.append(optax.adadelta(schedule, rho=optim.rho, eps=optim.eps))
  elif optim.name == "sgd":
    if optim.weight_decay > 0:
      transforms.append(optax.add_decayed_weights(optim.weight_decay))
    transforms.append(optax.sgd(schedule, momentum=optim.momentum or None))
  else:
    raise ValueError(
        f"config.optim.name={optim.name!r} is not a known optimizer; use one of {OPTIMIZERS}."
    )

  plateau = optim.reduce_on_plateau
  if plateau.enabled:
    transforms.append(
        optax.contrib.reduce_on_plateau(
            factor=plateau.factor,
            patience=plateau.patience_epochs,
            rtol=plateau.rtol,
            cooldown=plateau.cooldown_epochs,
            accumulation_size=steps_per_epoch,
            min_scale=plateau.min_scale,
        )
    )

  # Last, so that it projects the final update.
  if optim.max_norm > 0:
    transforms.append(text_cnn.max_norm_transform(optim.max_norm, layer=optim.max_norm_layer))
  return optax.chain(*transforms), schedule
