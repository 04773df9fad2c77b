"""Progress bars with rate and ETA for training and evaluation, built on tqdm.

A bar is displayed when `enabled` is true and either `sys.stderr` is a terminal or the process
is a Jupyter kernel (Colab included). Otherwise `progress_bar` returns a bar whose methods do
nothing, so output redirected to a file or a CI log gets no carriage-return lines.

In a notebook the bar is tqdm's widget when ipywidgets is installed and tqdm's text bar when it
is not. tqdm.auto makes that choice and warns when it falls back. The warning is suppressed
because the text bar works in notebooks.

While a bar is displayed, log records of the root and absl loggers are emitted inside
`tqdm.external_write_mode`: the bar is cleared, the record is written on its own line and the
bar is redrawn below it. Text written straight to `sys.stderr` (`print`, `warnings`) still
lands after the bar's partial line.
"""

from collections.abc import Mapping
import importlib
import logging
import sys
import threading
from typing import Any
import warnings

from absl import logging as absl_logging
import tqdm
import tqdm.std


def in_notebook() -> bool:
  """Return whether this process is a Jupyter kernel, such as a notebook or Colab runtime.

  Jupyter kernels run an `ipykernel` ZMQInteractiveShell and Colab runtimes load the
  `google.colab` package. The terminal IPython shell is neither, and is covered by the terminal
  check instead. Nothing is imported, so the check costs nothing outside IPython.
  """
  # NOTE: untested on a Colab runtime, which is expected to import `google.colab` before any
  # user code runs.
  if "google.colab" in sys.modules:
    return True
  zmqshell = sys.modules.get("ipykernel.zmqshell")
  ipython = sys.modules.get("IPython")
  if zmqshell is None or ipython is None:
    return False
  return isinstance(ipython.get_ipython(), zmqshell.ZMQInteractiveShell)


def should_display(*, enabled: bool = True) -> bool:
  """Return whether a progress bar would be displayed.

  Args:
    enabled: the caller's switch, such as `config.train.progress_bar`. False always hides it.

  Returns:
    True when `enabled` and `sys.stderr` is a terminal or the process is a Jupyter kernel,
    whose `sys.stderr` is not a terminal but displays bars.
  """
  if not enabled:
    return False
  return sys.stderr.isatty() or in_notebook()


def _tqdm_class() -> type[tqdm.std.tqdm]:
  """Return tqdm.auto's bar class: a widget in a notebook with ipywidgets, else text."""
  with warnings.catch_warnings():
    # tqdm.auto warns "IProgress not found" when it falls back to the text bar in a notebook
    # that lacks ipywidgets. The decision is made once, on first import.
    warnings.simplefilter("ignore", category=tqdm.TqdmWarning)
    return importlib.import_module("tqdm.auto").tqdm


class _LogRedirect:
  """Route the root and absl loggers' records around displayed bars while any bar is open.

  Each handler's `handle` is shadowed by an instance attribute for as long as at least one bar
  is displayed, so bars may be closed in any order. `handle` is wrapped rather than `emit`
  because absl's handler forwards `handle` to an inner handler, bypassing its own `emit`.
  """

  def __init__(self):
    self._lock = threading.Lock()
    self._open_bars = 0
    self._saved: list[tuple[logging.Handler, Any]] = []

  def acquire(self) -> None:
    with self._lock:
      self._open_bars += 1
      if self._open_bars == 1:
        self._install()

  def release(self) -> None:
    with self._lock:
      self._open_bars -= 1
      if self._open_bars == 0:
        self._uninstall()

  def _install(self) -> None:
    handlers = logging.getLogger().handlers + absl_logging.get_absl_logger().handlers
    for handler in dict.fromkeys(handlers):
      # Keep a `handle` that was already set on the instance, so uninstalling restores it.
      self._saved.append((handler, handler.__dict__.get("handle")))
      handler.handle = _handle_around_bars(handler.handle)

  def _uninstall(self) -> None:
    for handler, own_handle in self._saved:
      if own_handle is None:
        del handler.handle
      else:
        handler.handle = own_handle
    self._saved.clear()


def _handle_around_bars(handle):
  def handle_around_bars(record: logging.LogRecord):
    # Bars writing to stderr are cleared before the record and redrawn after it.
    with tqdm.std.tqdm.external_write_mode(file=sys.stderr):
      return handle(record)

  return handle_around_bars


_log_redirect = _LogRedirect()


class ProgressBar:
  """A displayed tqdm bar, or a stand-in whose methods do nothing.

  Use it as a context manager, or call `close` when done.
  """

  def __init__(self, bar: tqdm.std.tqdm | None):
    self._bar = bar
    if bar is not None:
      _log_redirect.acquire()

  @property
  def displayed(self) -> bool:
    """Whether this bar writes anything."""
    return self._bar is not None

  def update(self, n: int = 1) -> None:
    """Advance the count by `n` steps or examples. tqdm redraws at most every 0.1 s."""
    if self._bar is not None:
      self._bar.update(n)

  def set_postfix(self, values: Mapping[str, Any]) -> None:
    """Show `values` after the bar, such as `{"loss": 0.31}`, floats to 3 significant digits."""
    if self._bar is not None:
      self._bar.set_postfix(dict(values))

  def close(self) -> None:
    """Draw the final state and release the terminal line. Calling it again does nothing."""
    if self._bar is not None:
      self._bar.close()
      self._bar = None
      _log_redirect.release()

  def __enter__(self) -> "ProgressBar":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()


def progress_bar(
    total: int | None,
    *,
    initial: int = 0,
    desc: str | None = None,
    unit: str = "step",
    enabled: bool = True,
    leave: bool = True,
) -> ProgressBar:
  """Create a progress bar on `sys.stderr` that shows the count, rate and ETA.

  Args:
    total: the count at completion, such as the last step. None shows count and rate only.
    initial: the count already done, such as the step a resumed run starts from. The rate and
      ETA count only what is done after it.
    desc: a label in front of the bar, such as "train".
    unit: the name of one counted item, such as "step" or "example".
    enabled: False returns a bar that does nothing. See `should_display` for what True does.
    leave: keep the finished bar on screen. False erases it on `close`, which suits a
      per-epoch evaluation bar.

  Returns:
    A `ProgressBar`, whose `displayed` is False when nothing will be written.

  Raises:
    ValueError: if `total` or `initial` is negative, or `initial` exceeds `total`.
  """
  if total is not None and total < 0:
    raise ValueError(f"progress_bar: total must be >= 0, got {total}")
  if initial < 0:
    raise ValueError(f"progress_bar: initial must be >= 0, got {initial}")
  if total is not None and initial > total:
    raise ValueError(f"progress_bar: initial={initial} exceeds total={total}")

  if not should_display(enabled=enabled):
    return ProgressBar(None)
  bar = _tqdm_class()(
      total=total,
      initial=initial,
      desc=desc,
      unit=unit,
      leave=leave,
      file=sys.stderr,
      dynamic_ncols=True,
      # tqdm's default (None) hides the bar on non-terminals, which would undo the notebook case.
      disable=False,
  )
  return ProgressBar(bar)
