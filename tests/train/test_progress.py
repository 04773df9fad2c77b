"""Tests for jaxmodels.train.progress: when bars are displayed, what they write, log records."""

import importlib.util
import logging
import sys
import types
import warnings

from absl import logging as absl_logging
import pytest
import tqdm

from jaxmodels.train import progress


class ZMQInteractiveShell:
  """Stand-in for ipykernel's shell class; tqdm.auto reads its lowercased class name."""


class TerminalInteractiveShell:
  """Stand-in for the terminal IPython shell."""


def install_shell(monkeypatch, shell) -> None:
  """Make `shell` the running IPython shell, with a stand-in ipykernel.zmqshell module."""
  zmqshell = types.ModuleType("ipykernel.zmqshell")
  zmqshell.ZMQInteractiveShell = ZMQInteractiveShell
  ipython = types.ModuleType("IPython")
  ipython.get_ipython = lambda: shell
  monkeypatch.setitem(sys.modules, "ipykernel.zmqshell", zmqshell)
  monkeypatch.setitem(sys.modules, "IPython", ipython)
  monkeypatch.delitem(sys.modules, "google.colab", raising=False)


def set_terminal(monkeypatch, *, isatty: bool) -> None:
  """Make the current `sys.stderr` report `isatty`, outside any notebook.

  Call it inside the test body, because capsys swaps `sys.stderr` only when the test starts.
  """
  monkeypatch.setattr(sys.stderr, "isatty", lambda: isatty)
  monkeypatch.setattr(progress, "in_notebook", lambda: False)


def line_before(text: str, marker: str) -> str:
  """Return what precedes `marker` on its screen line, after the last carriage return."""
  before = text.split(marker, 1)[0]
  cut = max(before.rfind("\r"), before.rfind("\n"))
  return before[cut + 1:]


def test_in_notebook_kernel_shell(monkeypatch):
  install_shell(monkeypatch, ZMQInteractiveShell())
  assert progress.in_notebook()


def test_in_notebook_terminal_shell(monkeypatch):
  install_shell(monkeypatch, TerminalInteractiveShell())
  assert not progress.in_notebook()


def test_in_notebook_no_shell(monkeypatch):
  install_shell(monkeypatch, None)
  assert not progress.in_notebook()


def test_in_notebook_without_ipykernel(monkeypatch):
  monkeypatch.delitem(sys.modules, "ipykernel.zmqshell", raising=False)
  monkeypatch.delitem(sys.modules, "google.colab", raising=False)
  assert not progress.in_notebook()


def test_in_notebook_colab_package(monkeypatch):
  monkeypatch.delitem(sys.modules, "ipykernel.zmqshell", raising=False)
  monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
  assert progress.in_notebook()


@pytest.mark.parametrize(
    "enabled, isatty, notebook, expected",
    [
        (True, True, False, True),
        (True, False, True, True),
        (True, True, True, True),
        (True, False, False, False),
        (False, True, False, False),
        (False, False, True, False),
    ],
)
def test_should_display_cases(monkeypatch, enabled, isatty, notebook, expected):
  monkeypatch.setattr(sys, "stderr", types.SimpleNamespace(isatty=lambda: isatty))
  monkeypatch.setattr(progress, "in_notebook", lambda: notebook)
  assert progress.should_display(enabled=enabled) is expected


def test_progress_bar_counts_updates(monkeypatch, capsys):
  set_terminal(monkeypatch, isatty=True)
  with progress.progress_bar(10, initial=2, desc="train", unit="step") as bar:
    assert bar.displayed
    bar.update(3)
    bar.update()
    bar.set_postfix({"loss": 0.5})
  err = capsys.readouterr().err
  assert "train:" in err
  assert "6/10" in err
  assert "step/s" in err
  assert "loss=0.5" in err


def test_progress_bar_initial_shown(monkeypatch, capsys):
  set_terminal(monkeypatch, isatty=True)
  bar = progress.progress_bar(8, initial=5, unit="step")
  bar.close()
  err = capsys.readouterr().err
  assert "5/8" in err
  assert "0/8" not in err


def test_progress_bar_disabled_silent(monkeypatch, capsys):
  set_terminal(monkeypatch, isatty=True)
  with progress.progress_bar(10, enabled=False) as bar:
    assert not bar.displayed
    bar.update(4)
    bar.set_postfix({"loss": 0.5})
  assert capsys.readouterr().err == ""


def test_progress_bar_redirected_silent(monkeypatch, capsys):
  set_terminal(monkeypatch, isatty=False)
  with progress.progress_bar(10) as bar:
    assert not bar.displayed
    bar.update(4)
  captured = capsys.readouterr()
  assert captured.err == ""
  assert captured.out == ""


def test_progress_bar_close_twice(monkeypatch, capsys):
  set_terminal(monkeypatch, isatty=True)
  bar = progress.progress_bar(3)
  bar.update(3)
  bar.close()
  first = capsys.readouterr().err
  bar.close()
  bar.update(1)
  assert "3/3" in first
  assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "total, initial, message",
    [
        (-1, 0, "total must be >= 0, got -1"),
        (10, -2, "initial must be >= 0, got -2"),
        (4, 5, "initial=5 exceeds total=4"),
    ],
)
def test_progress_bar_invalid_counts(total, initial, message):
  with pytest.raises(ValueError, match=message):
    progress.progress_bar(total, initial=initial)


def test_progress_bar_log_on_own_line(monkeypatch, capsys):
  set_terminal(monkeypatch, isatty=True)
  handler = logging.StreamHandler(sys.stderr)
  absl_logger = absl_logging.get_absl_logger()
  absl_logger.addHandler(handler)
  try:
    with progress.progress_bar(10, desc="train") as bar:
      bar.update(3)
      absl_logging.warning("loss checkpoint")
      bar.update(1)
  finally:
    absl_logger.removeHandler(handler)
  err = capsys.readouterr().err

  # The bar is cleared before the record, so the record starts a clean line.
  assert "loss checkpoint" in err
  assert line_before(err, "loss checkpoint").strip() == ""

  # The bar is redrawn after the record.
  assert "3/10" in err.split("loss checkpoint", 1)[1]


def test_progress_bar_restores_handlers(monkeypatch):
  set_terminal(monkeypatch, isatty=True)
  handler = logging.StreamHandler(sys.stderr)
  absl_logger = absl_logging.get_absl_logger()
  absl_logger.addHandler(handler)
  first = progress.progress_bar(10)
  second = progress.progress_bar(5)
  try:
    assert "handle" in vars(handler)

    # Closing out of creation order keeps the redirect until the last bar closes.
    first.close()
    assert "handle" in vars(handler)
    second.close()
    assert "handle" not in vars(handler)
  finally:
    first.close()
    second.close()
    absl_logger.removeHandler(handler)


def test_progress_bar_disabled_leaves_handlers(monkeypatch):
  set_terminal(monkeypatch, isatty=False)
  handler = logging.StreamHandler(sys.stderr)
  absl_logger = absl_logging.get_absl_logger()
  absl_logger.addHandler(handler)
  try:
    with progress.progress_bar(10):
      assert "handle" not in vars(handler)
  finally:
    absl_logger.removeHandler(handler)


@pytest.mark.skipif(
    importlib.util.find_spec("ipywidgets") is not None,
    reason="checks the text fallback that tqdm.auto takes when ipywidgets is missing",
)
def test_progress_bar_notebook_without_ipywidgets(monkeypatch, capsys):
  install_shell(monkeypatch, ZMQInteractiveShell())
  monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
  for variable in ("QT_API", "SPYDER_ARGS"):
    monkeypatch.delenv(variable, raising=False)

  # Import tqdm.auto afresh, as a kernel would on first use, so that it picks its bar class now.
  for name in ("tqdm.auto", "tqdm.autonotebook", "tqdm.notebook"):
    monkeypatch.delitem(sys.modules, name, raising=False)
  monkeypatch.delattr(tqdm, "auto", raising=False)

  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with progress.progress_bar(10, desc="eval") as bar:
      assert bar.displayed
      bar.update(7)
  assert [str(warning.message) for warning in caught] == []

  # The text bar writes to stderr; a widget would not.
  assert "7/10" in capsys.readouterr().err
