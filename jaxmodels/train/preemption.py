"""Graceful stop on SIGTERM and SIGINT: the loop saves a checkpoint, then returns."""

import signal
import threading
import types


class StopOnSignal:
  """Context manager that records SIGTERM/SIGINT instead of dying at once.

  Inside the block, the first signal sets `received` to its name and the loop stops after its
  current step; a second SIGINT raises KeyboardInterrupt as usual. Outside the main thread,
  where Python cannot install handlers, the manager does nothing.
  """

  def __init__(self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)):
    self._signals = signals
    self._previous = {}
    self.received: str | None = None

  def _handle(self, signum: int, frame: types.FrameType | None) -> None:
    del frame
    if self.received is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.received = signal.Signals(signum).name

  def __enter__(self) -> "StopOnSignal":
    if threading.current_thread() is threading.main_thread():
      for signum in self._signals:
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc_info) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous.clear()
