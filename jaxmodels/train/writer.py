"""Metric output of a run: JSON lines and TensorBoard event files in the workdir."""

import json
import os
from typing import Any

from tensorboardX import SummaryWriter


class MetricWriter:
  """Append scalar metrics to `workdir/metrics.jsonl` and to TensorBoard events in `workdir`.

  Each JSON line is `{"step": int, "split": "train" | "eval", name: value, ...}`. TensorBoard gets
  each value under `split/name`. Only the writing process (process 0) should create one.
  """

  def __init__(self, workdir: str, *, tensorboard: bool = True):
    os.makedirs(workdir, exist_ok=True)
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._file = open(self.path, "a", encoding="utf-8")
    self._tensorboard = SummaryWriter(logdir=workdir) if tensorboard else None

  def write(self, step: int, split: str, metrics: dict[str, Any]) -> None:
    """Record `metrics` of `split` at `step`."""
    values = {name: float(value) for name, value in metrics.items()}
    self._file.write(json.dumps({"step": int(step), "split": split, **values}) + "\n")
    self._file.flush()
    if self._tensorboard is not None:
      for name, value in values.items():
        self._tensorboard.add_scalar(f"{split}/{name}", value, global_step=int(step))

  def close(self) -> None:
    """Flush and close both outputs."""
    self._file.close()
    if self._tensorboard is not None:
      self._tensorboard.close()


def read_metrics(workdir: str) -> list[dict[str, Any]]:
  """Return the records of `workdir/metrics.jsonl` in file order."""
  path = os.path.join(workdir, "metrics.jsonl")
  with open(path, encoding="utf-8") as file:
    return [json.loads(line) for line in file if line.strip()]
