"""Plots of a run: training curves, confusion matrix, misclassified images, filters, attention.

Figures are `matplotlib.figure.Figure` objects drawn on an Agg canvas, never through pyplot, so
they open no window and leave the backend of a notebook that imports this module unchanged.
Each plotting function returns its Figure, for a notebook to display, and writes it to `path`
when one is given, in the format its extension names (PNG for `.png` or no extension).

Letters: N examples, K classes, H W image height and width, C channels in, O channels out,
T query positions, S key positions (tokens).
"""

from collections.abc import Mapping, Sequence
import io
import math
import os
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np
from numpy.typing import ArrayLike

from jaxmodels.train import writer as writer_lib

# Resolution of written images, in dots per inch.
_DPI = 120

# Cells are annotated up to this many classes or tokens; beyond it the numbers overlap.
_MAX_ANNOTATED = 30


class _Figure(Figure):
  """A Figure that IPython displays as a PNG even where no inline backend is configured.

  Jupyter shows a plain Figure as text until `%matplotlib inline` has run. Where the inline
  backend has registered its own PNG printer for Figure, IPython uses that printer instead.
  """

  def _repr_png_(self) -> bytes:
    buffer = io.BytesIO()
    self.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def _new_figure(width: float, height: float) -> Figure:
  """Create a figure of `width` x `height` inches on its own Agg canvas."""
  figure = _Figure(figsize=(width, height), layout="constrained")
  FigureCanvasAgg(figure)
  return figure


def _save(figure: Figure, path: str | os.PathLike | None) -> None:
  if path is None:
    return
  directory = os.path.dirname(os.fspath(path))
  if directory:
    os.makedirs(directory, exist_ok=True)
  figure.savefig(path, dpi=_DPI)


def _class_indices(caller: str, name: str, values: ArrayLike, num_classes: int) -> np.ndarray:
  """Check that `values` is a 1-D integer array with entries in [0, num_classes)."""
  array = np.asarray(values)
  if array.ndim != 1:
    raise ValueError(f"{caller}: {name} must be 1-D, got shape {array.shape}")
  if array.size and not np.issubdtype(array.dtype, np.integer):
    raise ValueError(f"{caller}: {name} must hold integers, got dtype {array.dtype}")
  outside = np.flatnonzero((array < 0) | (array >= num_classes))
  if outside.size:
    index = int(outside[0])
    raise ValueError(
        f"{caller}: {name}[{index}]={array[index]} is outside [0, {num_classes}), the range "
        f"given by num_classes={num_classes}"
    )
  return array.astype(np.int64)


def _check_same_length(caller: str, labels: np.ndarray, predictions: np.ndarray) -> None:
  if len(labels) != len(predictions):
    raise ValueError(
        f"{caller}: labels has {len(labels)} entries but predictions has {len(predictions)}"
    )


def confusion_matrix(labels: ArrayLike, predictions: ArrayLike, num_classes: int) -> np.ndarray:
  """Count examples by true class (rows) and predicted class (columns).

  Args:
    labels: i32[N] true classes in [0, num_classes).
    predictions: i32[N] predicted classes in [0, num_classes).
    num_classes: K, the number of classes.

  Returns:
    i64[K, K] counts, where entry [i, j] is the number of examples of class i predicted as j.

  Raises:
    ValueError: if the arrays are not 1-D integer arrays of one length, or a class is outside
      [0, num_classes).
  """
  if num_classes < 1:
    raise ValueError(f"confusion_matrix: num_classes must be >= 1, got {num_classes}")
  labels = _class_indices("confusion_matrix", "labels", labels, num_classes)
  predictions = _class_indices("confusion_matrix", "predictions", predictions, num_classes)
  _check_same_length("confusion_matrix", labels, predictions)

  # Each (true, predicted) pair maps to one flat cell index.
  cells = labels * num_classes + predictions
  return np.bincount(cells, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _series(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[int, Mapping[str, Any]]]:
  """Group `records` by split, then by step, the later record of a repeated step winning.

  A run resumed from a checkpoint older than its last logged step writes those steps again,
  and the second pass is the one whose state the run continued from.
  """
  by_split: dict[str, dict[int, Mapping[str, Any]]] = {}
  for index, record in enumerate(records):
    missing = [key for key in ("step", "split") if key not in record]
    if missing:
      raise ValueError(
          f"plot_curves: records[{index}] is missing {', '.join(missing)}, got keys "
          f"{sorted(record)}"
      )
    by_split.setdefault(str(record["split"]), {})[int(record["step"])] = record
  return by_split


def plot_curves(
    records: Sequence[Mapping[str, Any]],
    path: str | os.PathLike | None = None,
    *,
    title: str = "Training curves",
) -> Figure:
  """Plot loss and accuracy against step, one line per split, in two side-by-side panels.

  Args:
    records: metric records as in `metrics.jsonl`: `{"step", "split", "loss", "accuracy", ...}`.
      A record without one metric is skipped in that metric's panel.
    path: where to write the figure; None writes nothing.
    title: the figure title.

  Returns:
    The figure.

  Raises:
    ValueError: if `records` is empty or a record lacks "step" or "split".
  """
  if not records:
    raise ValueError("plot_curves: records is empty, expected at least one metrics record")
  by_split = _series(records)

  # Train first, then eval, then any other split, so that colors match across runs.
  order = {"train": 0, "eval": 1}
  splits = sorted(by_split, key=lambda split: (order.get(split, 2), split))

  figure = _new_figure(11, 4.2)
  figure.suptitle(title)
  for axes, metric in zip(figure.subplots(1, 2), ("loss", "accuracy")):
    plotted = False
    for split in splits:
      points = [(step, record[metric]) for step, record in sorted(by_split[split].items())
                if metric in record]
      if not points:
        continue
      steps, values = zip(*points)
      # Eval has one point per epoch, so its markers show where the points are.
      marker = "o" if split == "eval" else None
      axes.plot(steps, values, marker=marker, markersize=4, label=split)
      plotted = True
    axes.set_xlabel("step")
    axes.set_ylabel(metric)
    axes.set_title(metric.capitalize())
    axes.grid(alpha=0.3)
    if plotted:
      axes.legend()
    else:
      axes.text(0.5, 0.5, f"no {metric} records", ha="center", va="center",
                transform=axes.transAxes)
  _save(figure, path)
  return figure


def _annotate_cells(axes, image, values: np.ndarray, text_format: str) -> None:
  """Write each value in its cell, white on dark cells and black on light ones."""
  font_size = 9 if max(values.shape) <= 12 else 7
  for (row, column), value in np.ndenumerate(values):
    red, green, blue, _ = image.cmap(image.norm(value))
    # Relative luminance with the ITU-R BT.601 weights.
    dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
    axes.text(column, row, format(value, text_format), ha="center", va="center",
              fontsize=font_size, color="white" if dark else "black")


def _set_tick_labels(axes, names: Sequence[str], *, axis: str) -> None:
  positions = np.arange(len(names))
  if axis == "x":
    # Names longer than 4 characters are slanted, because a cell about 0.55 inches wide fits
    # about 4 characters at the default font size.
    slanted = max(len(name) for name in names) > 4
    axes.set_xticks(positions, labels=names, rotation=45 if slanted else 0,
                    ha="right" if slanted else "center", rotation_mode="anchor")
  else:
    axes.set_yticks(positions, labels=names)


def plot_confusion_matrix(
    labels: ArrayLike,
    predictions: ArrayLike,
    class_names: Sequence[str],
    path: str | os.PathLike | None = None,
    *,
    normalize: bool = False,
) -> Figure:
  """Plot the confusion matrix as a heatmap with the value written in each cell.

  Args:
    labels: i32[N] true classes in [0, K).
    predictions: i32[N] predicted classes in [0, K).
    class_names: K names in class order, used as tick labels.
    path: where to write the figure; None writes nothing.
    normalize: show each row as fractions of its true class's examples, so the diagonal is the
      per-class recall; False shows counts.

  Returns:
    The figure. Cells are annotated for up to 30 classes.

  Raises:
    ValueError: as `confusion_matrix`, or if `class_names` is empty.
  """
  num_classes = len(class_names)
  if num_classes == 0:
    raise ValueError("plot_confusion_matrix: class_names is empty")
  counts = confusion_matrix(labels, predictions, num_classes)  # [K, K]
  total = int(counts.sum())
  if normalize:
    row_sums = counts.sum(axis=1, keepdims=True)
    # A class without examples gets a row of zeros rather than 0 / 0.
    values = counts / np.maximum(row_sums, 1)
    text_format, color_label = ".2f", "fraction of true class"
  else:
    values, text_format, color_label = counts, "d", "examples"

  # About 0.55 inches per class, within 5 to 16 inches.
  size = min(max(5.0, 0.55 * num_classes + 2.5), 16.0)
  figure = _new_figure(size + 1.2, size)
  axes = figure.subplots()
  image = axes.imshow(values, cmap="Blues", vmin=0, interpolation="nearest")
  figure.colorbar(image, ax=axes, label=color_label, shrink=0.8)
  if num_classes <= _MAX_ANNOTATED:
    _annotate_cells(axes, image, values, text_format)

  names = [str(name) for name in class_names]
  _set_tick_labels(axes, names, axis="x")
  _set_tick_labels(axes, names, axis="y")
  axes.set_xlabel("Predicted")
  axes.set_ylabel("True")
  accuracy = np.trace(counts) / total if total else 0.0
  axes.set_title(f"Confusion matrix: {total} examples, accuracy {accuracy:.2%}")
  _save(figure, path)
  return figure


def save_run_plots(
    workdir: str | os.PathLike,
    *,
    labels: ArrayLike | None = None,
    predictions: ArrayLike | None = None,
    class_names: Sequence[str] | None = None,
) -> list[str]:
  """Write `curves.png`, and `confusion_matrix.png` if given predictions, into `workdir`.

  Args:
    workdir: a run's directory, containing `metrics.jsonl`.
    labels: i32[N] true test classes, given together with `predictions`.
    predictions: i32[N] predicted test classes, such as `TrainResult.eval_predictions`.
    class_names: K class names; None names the classes "0" up to the largest class seen.

  Returns:
    The paths written, curves first.

  Raises:
    FileNotFoundError: if `workdir/metrics.jsonl` does not exist.
    ValueError: if only one of `labels` and `predictions` is given, or as `plot_curves` and
      `plot_confusion_matrix`.
  """
  if (labels is None) != (predictions is None):
    missing = "predictions" if predictions is None else "labels"
    raise ValueError(
        f"save_run_plots: {missing} is None but the other is given; pass labels and predictions "
        "together or neither"
    )

  workdir = os.fspath(workdir)
  curves_path = os.path.join(workdir, "curves.png")
  plot_curves(writer_lib.read_metrics(workdir), curves_path,
              title=f"Training curves: {os.path.basename(os.path.normpath(workdir))}")
  paths = [curves_path]

  if labels is not None:
    if class_names is None:
      # Classes may be negative here; plot_confusion_matrix reports them by value.
      largest = max(np.max(labels, initial=0), np.max(predictions, initial=0))
      class_names = [str(k) for k in range(int(largest) + 1)]
    matrix_path = os.path.join(workdir, "confusion_matrix.png")
    plot_confusion_matrix(labels, predictions, class_names, matrix_path)
    paths.append(matrix_path)
  return paths


def _grid(count: int, max_columns: int) -> tuple[int, int]:
  columns = min(count, max_columns)
  return math.ceil(count / columns), columns


def _show_image(axes, image: np.ndarray) -> None:
  """Show an [H, W], [H, W, 1] or [H, W, 3] image without ticks."""
  if image.ndim == 3 and image.shape[-1] == 1:
    image = image[..., 0]
  axes.imshow(image, cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
  axes.set_xticks([])
  axes.set_yticks([])


def plot_misclassified(
    images: ArrayLike,
    labels: ArrayLike,
    predictions: ArrayLike,
    path: str | os.PathLike | None = None,
    *,
    max_images: int = 16,
    class_names: Sequence[str] | None = None,
) -> Figure:
  """Show the first misclassified images in a grid, each titled with its true and predicted class.

  Args:
    images: u8 or f32[N, H, W], [N, H, W, 1] or [N, H, W, 3]; gray images are scaled to their
      own minimum and maximum, color images must already be in [0, 1] (float) or [0, 255]
      (u8).
    labels: i32[N] true classes.
    predictions: i32[N] predicted classes.
    path: where to write the figure; None writes nothing.
    max_images: the largest number of images shown, in example order.
    class_names: names for the titles; None uses the class numbers.

  Returns:
    The figure. Without misclassified examples it contains only a note saying so.

  Raises:
    ValueError: if the shapes disagree or `max_images` < 1.
  """
  images = np.asarray(images)
  labels = np.asarray(labels)
  predictions = np.asarray(predictions)
  if max_images < 1:
    raise ValueError(f"plot_misclassified: max_images must be >= 1, got {max_images}")
  if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
    raise ValueError(
        f"plot_misclassified: images must be [N, H, W], [N, H, W, 1] or [N, H, W, 3], got shape "
        f"{images.shape}"
    )
  if labels.ndim != 1 or len(labels) != len(images):
    raise ValueError(
        f"plot_misclassified: labels must be 1-D with one entry per image ({len(images)}), got "
        f"shape {labels.shape}"
    )
  _check_same_length("plot_misclassified", labels, predictions)

  wrong = np.flatnonzero(labels != predictions)  # [number misclassified]
  selected = wrong[:max_images]
  if not selected.size:
    figure = _new_figure(4, 2)
    figure.text(0.5, 0.5, f"No misclassified examples among {len(labels)}", ha="center",
                va="center")
    _save(figure, path)
    return figure

  def name(k) -> str:
    return str(k) if class_names is None else str(class_names[k])

  rows, columns = _grid(len(selected), max_columns=math.ceil(math.sqrt(max_images)))
  figure = _new_figure(1.9 * columns, 2.1 * rows + 0.5)
  figure.suptitle(f"Misclassified: first {len(selected)} of {len(wrong)}, among {len(labels)} "
                  "examples")
  grid = figure.subplots(rows, columns, squeeze=False).ravel()
  for axes, index in zip(grid, selected):
    _show_image(axes, images[index])
    axes.set_title(f"true {name(labels[index])} / pred {name(predictions[index])}",
                   fontsize=9)
  for axes in grid[len(selected):]:
    axes.set_axis_off()
  _save(figure, path)
  return figure


def plot_filters(
    kernel: ArrayLike,
    path: str | os.PathLike | None = None,
    *,
    input_channel: int = 0,
) -> Figure:
  """Show each output channel of a convolution kernel as a small image, on one color scale.

  One scale, symmetric about zero, makes filters comparable: red weights are positive, blue
  negative, and a faint filter has small weights.

  Args:
    kernel: f32[H, W, C, O] kernel in HWIO layout, such as a first layer's [3, 3, 1, 32].
    path: where to write the figure; None writes nothing.
    input_channel: which of the C input channels to show.

  Returns:
    The figure, 8 filters to a row.

  Raises:
    ValueError: if `kernel` is not 4-D or `input_channel` is not in [0, C).
  """
  kernel = np.asarray(kernel, dtype=np.float32)
  if kernel.ndim != 4 or kernel.size == 0:
    raise ValueError(
        f"plot_filters: kernel must be a nonempty HWIO [H, W, C, O] array, got shape "
        f"{kernel.shape}"
    )
  height, width, in_channels, out_channels = kernel.shape
  if not 0 <= input_channel < in_channels:
    raise ValueError(
        f"plot_filters: input_channel={input_channel} is outside [0, {in_channels}) for kernel "
        f"shape {kernel.shape}"
    )
  filters = kernel[:, :, input_channel, :]  # [H, W, O]
  limit = float(np.max(np.abs(filters))) or 1.0

  rows, columns = _grid(out_channels, max_columns=8)
  figure = _new_figure(1.3 * columns + 1.2, 1.4 * rows + 0.6)
  figure.suptitle(f"Filters {height}x{width}, input channel {input_channel} of {in_channels}, "
                  f"{out_channels} outputs")
  grid = figure.subplots(rows, columns, squeeze=False)
  for index, axes in enumerate(grid.ravel()):
    if index >= out_channels:
      axes.set_axis_off()
      continue
    image = axes.imshow(filters[:, :, index], cmap="RdBu_r", vmin=-limit, vmax=limit,
                        interpolation="nearest")
    axes.set_title(str(index), fontsize=8)
    axes.set_xticks([])
    axes.set_yticks([])
  figure.colorbar(image, ax=grid, label="weight", shrink=0.8)
  _save(figure, path)
  return figure


def plot_attention(
    tokens: Sequence[str],
    weights: ArrayLike,
    path: str | os.PathLike | None = None,
    *,
    title: str = "Attention weights",
) -> Figure:
  """Show attention weights over a sentence as a heatmap labelled with its tokens.

  Args:
    tokens: the S tokens of the sentence, in order.
    weights: f32[S] weights of one query, such as attention pooling, or f32[T, S] with one row
      per query; rows are labelled with `tokens` when T == S (self-attention) and numbered
      otherwise.
    path: where to write the figure; None writes nothing.
    title: the figure title.

  Returns:
    The figure. Cells are annotated for up to 30 tokens.

  Raises:
    ValueError: if `weights` is not 1-D or 2-D, or its last axis does not match `tokens`.
  """
  weights = np.asarray(weights, dtype=np.float32)
  tokens = [str(token) for token in tokens]
  if weights.ndim not in (1, 2):
    raise ValueError(f"plot_attention: weights must be [S] or [T, S], got shape {weights.shape}")
  if weights.shape[-1] != len(tokens) or not tokens:
    raise ValueError(
        f"plot_attention: weights has S={weights.shape[-1]} key positions but tokens has "
        f"{len(tokens)} entries"
    )
  one_query = weights.ndim == 1
  grid = weights[None, :] if one_query else weights  # [T, S]
  num_queries, num_tokens = grid.shape

  width = min(max(4.0, 0.55 * num_tokens + 2.0), 20.0)
  height = 2.4 if one_query else min(max(3.5, 0.45 * num_queries + 1.8), 20.0)
  figure = _new_figure(width, height)
  axes = figure.subplots()
  image = axes.imshow(grid, cmap="viridis", vmin=0, vmax=float(grid.max()) or 1.0,
                      aspect="auto", interpolation="nearest")
  figure.colorbar(image, ax=axes, label="weight", shrink=0.9)
  if num_tokens <= _MAX_ANNOTATED and num_queries <= _MAX_ANNOTATED:
    _annotate_cells(axes, image, grid, ".2f")

  _set_tick_labels(axes, tokens, axis="x")
  if one_query:
    axes.set_yticks([])
  elif num_queries == num_tokens:
    _set_tick_labels(axes, tokens, axis="y")
    axes.set_ylabel("query token")
  else:
    axes.set_ylabel("query position")
  axes.set_xlabel("token" if one_query else "key token")
  axes.set_title(title)
  _save(figure, path)
  return figure
