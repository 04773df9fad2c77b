"""Early stopping on an evaluation metric, with state that survives a resume."""

import dataclasses
import math


@dataclasses.dataclass
class EarlyStopping:
  """Track the best value of an eval metric and say when to stop.

  Attributes:
    patience: evaluations without improvement before stopping; 0 never stops.
    mode: "max" when higher is better (accuracy), "min" when lower is better (loss).
    min_delta: the least change that counts as an improvement.
    best: best value seen so far.
    wait: evaluations since the best one.
    stopped: True once `update` has returned True.
  """

  patience: int
  mode: str = "max"
  min_delta: float = 0.0
  best: float = dataclasses.field(default=-math.inf)
  wait: int = 0
  stopped: bool = False

  def __post_init__(self):
    if self.mode not in ("max", "min"):
      raise ValueError(f"EarlyStopping mode={self.mode!r} must be 'max' or 'min'.")
    if self.best == -math.inf and self.mode == "min":
      self.best = math.inf

  def update(self, value: float) -> bool:
    """Record one evaluation; return True when training should stop."""
    improved = (
        value > self.best + self.min_delta
        if self.mode == "max"
        else value < self.best - self.min_delta
    )
    if improved:
      self.best, self.wait = value, 0
    else:
      self.wait += 1
    self.stopped = self.patience > 0 and self.wait >= self.patience
    return self.stopped

  def state_dict(self) -> dict:
    """Return the JSON-serializable state to store in a checkpoint."""
    return {"best": self.best, "wait": self.wait, "stopped": self.stopped}

  def load_state_dict(self, state: dict) -> None:
    """Continue from a state returned by `state_dict`."""
    self.best, self.wait, self.stopped = state["best"], state["wait"], state["stopped"]
