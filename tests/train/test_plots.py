"""Tests for jaxmodels.train.plots: counts against a NumPy loop, drawn data, written PNG files."""

import os
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

from jaxmodels.train import plots
from jaxmodels.train import writer as writer_lib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def loop_confusion(labels, predictions, num_classes):
  """Count (true, predicted) pairs one example at a time."""
  counts = np.zeros((num_classes, num_classes), dtype=np.int64)
  for label, prediction in zip(labels, predictions):
    counts[label, prediction] += 1
  return counts


def synthetic_records():
  """Train records every 5 steps and eval records every 20, over 40 steps."""
  records = []
  for step in range(5, 41, 5):
    records.append({"step": step, "split": "train", "loss": 2.0 / step,
                    "accuracy": 1.0 - 1.0 / step, "learning_rate": 1e-3})
    if step % 20 == 0:
      records.append({"step": step, "split": "eval", "loss": 3.0 / step,
                      "accuracy": 1.0 - 2.0 / step, "count": 100.0})
  return records


def read_png(path):
  """Return the RGBA pixels of the PNG at `path`, after checking its signature."""
  with open(path, "rb") as file:
    assert file.read(8) == PNG_SIGNATURE
  return matplotlib.image.imread(path)


def lines_by_label(axes):
  return {line.get_label(): line for line in axes.get_lines()}


def tick_texts(labels):
  return [label.get_text() for label in labels]


def test_confusion_matrix_matches_loop():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 7, size=300)
  predictions = rng.integers(0, 7, size=300)
  counts = plots.confusion_matrix(labels, predictions, 7)
  np.testing.assert_array_equal(counts, loop_confusion(labels, predictions, 7))
  assert counts.dtype == np.int64


def test_confusion_matrix_unseen_classes():
  # Classes 0 and 4 never occur, so their rows and columns stay zero.
  labels = np.array([1, 2, 3, 3], dtype=np.int32)
  predictions = np.array([1, 3, 3, 1], dtype=np.int32)
  counts = plots.confusion_matrix(labels, predictions, 5)
  np.testing.assert_array_equal(counts, loop_confusion(labels, predictions, 5))
  assert counts.shape == (5, 5)


def test_confusion_matrix_empty():
  counts = plots.confusion_matrix(np.zeros(0, np.int32), np.zeros(0, np.int32), 3)
  np.testing.assert_array_equal(counts, np.zeros((3, 3), np.int64))


def test_confusion_matrix_length_mismatch():
  with pytest.raises(ValueError, match="labels has 5 entries but predictions has 4"):
    plots.confusion_matrix(np.zeros(5, np.int32), np.zeros(4, np.int32), 3)


@pytest.mark.parametrize(
    "labels, predictions, message",
    [
        ([0, 1, 10], [0, 1, 2], r"labels\[2\]=10 is outside \[0, 10\)"),
        ([0, 1, 2], [0, -1, 2], r"predictions\[1\]=-1 is outside \[0, 10\)"),
    ],
)
def test_confusion_matrix_class_out_of_range(labels, predictions, message):
  with pytest.raises(ValueError, match=message):
    plots.confusion_matrix(np.array(labels), np.array(predictions), 10)


def test_confusion_matrix_float_labels():
  with pytest.raises(ValueError, match="labels must hold integers, got dtype float32"):
    plots.confusion_matrix(np.array([0.0, 1.0], np.float32), np.array([0, 1]), 2)


def test_confusion_matrix_two_dimensional():
  with pytest.raises(ValueError, match=r"predictions must be 1-D, got shape \(2, 2\)"):
    plots.confusion_matrix(np.array([0, 1, 1, 0]), np.zeros((2, 2), np.int32), 2)


def test_plot_curves_lines():
  records = synthetic_records()
  figure = plots.plot_curves(records)
  loss_axes, accuracy_axes = figure.axes

  for axes, metric in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
    lines = lines_by_label(axes)
    assert sorted(lines) == ["eval", "train"]
    for split, line in lines.items():
      expected = [(r["step"], r[metric]) for r in records if r["split"] == split]
      np.testing.assert_array_equal(line.get_xdata(), [step for step, _ in expected])
      np.testing.assert_allclose(line.get_ydata(), [value for _, value in expected],
                                 rtol=1e-12, atol=0)


def test_plot_curves_labels():
  figure = plots.plot_curves(synthetic_records(), title="cnn_mnist")
  loss_axes, accuracy_axes = figure.axes
  assert figure.get_suptitle() == "cnn_mnist"
  assert loss_axes.get_xlabel() == "step"
  assert loss_axes.get_ylabel() == "loss"
  assert accuracy_axes.get_xlabel() == "step"
  assert accuracy_axes.get_ylabel() == "accuracy"
  assert tick_texts(loss_axes.get_legend().get_texts()) == ["train", "eval"]
  assert tick_texts(accuracy_axes.get_legend().get_texts()) == ["train", "eval"]


def test_plot_curves_repeated_step_last_wins():
  # A resumed run logs steps 10 and 20 again, and the later records replace the first ones.
  records = [
      {"step": 10, "split": "train", "loss": 1.0},
      {"step": 20, "split": "train", "loss": 0.9},
      {"step": 30, "split": "train", "loss": 0.8},
      {"step": 10, "split": "train", "loss": 0.5},
      {"step": 20, "split": "train", "loss": 0.4},
  ]
  line = lines_by_label(plots.plot_curves(records).axes[0])["train"]
  np.testing.assert_array_equal(line.get_xdata(), [10, 20, 30])
  np.testing.assert_array_equal(line.get_ydata(), [0.5, 0.4, 0.8])


def test_plot_curves_missing_metric():
  records = [{"step": step, "split": "train", "loss": 1.0 / step} for step in (1, 2, 3)]
  figure = plots.plot_curves(records)
  assert not figure.axes[1].get_lines()
  assert tick_texts(figure.axes[1].texts) == ["no accuracy records"]


def test_plot_curves_writes_png(tmp_path):
  path = tmp_path / "nested" / "curves.png"
  plots.plot_curves(synthetic_records(), path)
  pixels = read_png(path)

  # 11 x 4.2 inches at 120 dots per inch, RGBA, and not a blank canvas.
  assert pixels.shape == (504, 1320, 4)
  assert pixels[..., :3].std() > 0.05


def test_plot_curves_empty():
  with pytest.raises(ValueError, match="records is empty"):
    plots.plot_curves([])


def test_plot_curves_record_without_step():
  with pytest.raises(ValueError, match=r"records\[1\] is missing step"):
    plots.plot_curves([{"step": 1, "split": "train", "loss": 1.0},
                       {"split": "train", "loss": 1.0}])


def test_plot_confusion_matrix_cells():
  rng = np.random.default_rng(1)
  labels = rng.integers(0, 4, size=120)
  predictions = rng.integers(0, 4, size=120)
  names = ["zero", "one", "two", "three"]
  figure = plots.plot_confusion_matrix(labels, predictions, names)
  axes = figure.axes[0]

  expected = loop_confusion(labels, predictions, 4)
  np.testing.assert_array_equal(axes.images[0].get_array(), expected)
  assert tick_texts(axes.texts) == [str(count) for count in expected.ravel()]
  assert tick_texts(axes.get_xticklabels()) == names
  assert tick_texts(axes.get_yticklabels()) == names
  assert axes.get_xlabel() == "Predicted"
  assert axes.get_ylabel() == "True"

  # The second axes is the colorbar.
  assert len(figure.axes) == 2
  assert figure.axes[1].get_ylabel() == "examples"


def test_plot_confusion_matrix_normalized():
  # Class 2 has no examples, so its row is zeros rather than 0 / 0.
  labels = np.array([0, 0, 0, 1, 1])
  predictions = np.array([0, 0, 1, 1, 2])
  figure = plots.plot_confusion_matrix(labels, predictions, ["a", "b", "c"], normalize=True)
  axes = figure.axes[0]

  expected = loop_confusion(labels, predictions, 3).astype(np.float64)
  for row in expected:
    if row.sum():
      row /= row.sum()
  np.testing.assert_allclose(axes.images[0].get_array(), expected, rtol=1e-12, atol=0)
  assert tick_texts(axes.texts) == [f"{value:.2f}" for value in expected.ravel()]
  assert figure.axes[1].get_ylabel() == "fraction of true class"


def test_plot_confusion_matrix_writes_png(tmp_path):
  path = tmp_path / "confusion.png"
  plots.plot_confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], ["a", "b", "c"], path)
  pixels = read_png(path)
  assert pixels.ndim == 3
  assert pixels.shape[2] == 4
  assert min(pixels.shape[:2]) >= 500


def test_plot_confusion_matrix_class_beyond_names():
  with pytest.raises(ValueError, match=r"predictions\[2\]=3 is outside \[0, 3\)"):
    plots.plot_confusion_matrix([0, 1, 2], [0, 1, 3], ["a", "b", "c"])


def test_save_run_plots_files(tmp_path):
  workdir = tmp_path / "run"
  metric_writer = writer_lib.MetricWriter(str(workdir), tensorboard=False)
  for record in synthetic_records():
    values = {k: v for k, v in record.items() if k not in ("step", "split")}
    metric_writer.write(record["step"], record["split"], values)
  metric_writer.close()

  paths = plots.save_run_plots(workdir, labels=[0, 1, 2, 2], predictions=[0, 2, 2, 1])
  assert paths == [os.path.join(workdir, "curves.png"),
                   os.path.join(workdir, "confusion_matrix.png")]
  for path in paths:
    assert read_png(path).shape[2] == 4


def test_save_run_plots_curves_only(tmp_path):
  workdir = tmp_path / "run"
  metric_writer = writer_lib.MetricWriter(str(workdir), tensorboard=False)
  metric_writer.write(1, "train", {"loss": 1.0, "accuracy": 0.5})
  metric_writer.close()
  assert plots.save_run_plots(workdir) == [os.path.join(workdir, "curves.png")]
  assert not (workdir / "confusion_matrix.png").exists()


def test_save_run_plots_labels_without_predictions(tmp_path):
  with pytest.raises(ValueError, match="predictions is None but the other is given"):
    plots.save_run_plots(tmp_path, labels=[0, 1])


def test_plot_misclassified_titles(tmp_path):
  rng = np.random.default_rng(2)
  images = rng.integers(0, 256, size=(12, 8, 8, 1), dtype=np.uint8)
  labels = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1])
  predictions = labels.copy()
  wrong = [1, 4, 5, 9, 11]
  predictions[wrong] = (labels[wrong] + 1) % 10

  path = tmp_path / "misclassified.png"
  figure = plots.plot_misclassified(images, labels, predictions, path, max_images=4)
  titled = [axes for axes in figure.axes if axes.get_title()]
  assert [axes.get_title() for axes in titled] == [
      f"true {labels[i]} / pred {predictions[i]}" for i in wrong[:4]
  ]
  for axes, index in zip(titled, wrong):
    np.testing.assert_array_equal(axes.images[0].get_array(), images[index, :, :, 0])
  assert read_png(path).shape[2] == 4


def test_plot_misclassified_class_names():
  images = np.zeros((2, 4, 4), np.float32)
  figure = plots.plot_misclassified(images, [0, 1], [1, 1], class_names=["cat", "dog"])
  assert [axes.get_title() for axes in figure.axes if axes.get_title()] == ["true cat / pred dog"]


def test_plot_misclassified_none_wrong():
  images = np.zeros((3, 4, 4), np.float32)
  figure = plots.plot_misclassified(images, [0, 1, 2], [0, 1, 2])
  assert tick_texts(figure.texts) == ["No misclassified examples among 3"]


def test_plot_misclassified_length_mismatch():
  with pytest.raises(ValueError, match=r"one entry per image \(3\), got shape \(2,\)"):
    plots.plot_misclassified(np.zeros((3, 4, 4)), [0, 1], [0, 1])


def test_plot_filters_tiles(tmp_path):
  rng = np.random.default_rng(3)
  kernel = rng.standard_normal((3, 3, 1, 32)).astype(np.float32)
  path = tmp_path / "filters.png"
  figure = plots.plot_filters(kernel, path)

  tiles = [axes for axes in figure.axes if axes.images]
  assert len(tiles) == 32
  limit = np.abs(kernel).max()
  for index, axes in enumerate(tiles):
    np.testing.assert_array_equal(axes.images[0].get_array(), kernel[:, :, 0, index])
    assert axes.images[0].get_clim() == (-limit, limit)
  assert read_png(path).shape[2] == 4


def test_plot_filters_input_channel():
  kernel = np.arange(2 * 2 * 3 * 2, dtype=np.float32).reshape(2, 2, 3, 2)
  figure = plots.plot_filters(kernel, input_channel=2)
  tiles = [axes for axes in figure.axes if axes.images]
  np.testing.assert_array_equal(tiles[1].images[0].get_array(), kernel[:, :, 2, 1])


@pytest.mark.parametrize(
    "shape, input_channel, message",
    [
        ((3, 3, 32), 0, r"kernel must be a nonempty HWIO \[H, W, C, O\] array"),
        ((3, 3, 1, 8), 1, r"input_channel=1 is outside \[0, 1\)"),
    ],
)
def test_plot_filters_invalid(shape, input_channel, message):
  with pytest.raises(ValueError, match=message):
    plots.plot_filters(np.zeros(shape, np.float32), input_channel=input_channel)


def test_plot_attention_one_query(tmp_path):
  tokens = ["a", "fine", "film"]
  weights = np.array([0.2, 0.5, 0.3], np.float32)
  path = tmp_path / "attention.png"
  figure = plots.plot_attention(tokens, weights, path)
  axes = figure.axes[0]
  np.testing.assert_array_equal(axes.images[0].get_array(), weights[None, :])
  assert tick_texts(axes.get_xticklabels()) == tokens
  assert tick_texts(axes.texts) == ["0.20", "0.50", "0.30"]
  assert read_png(path).shape[2] == 4


def test_plot_attention_self_attention():
  tokens = ["not", "a", "bad", "movie"]
  weights = np.full((4, 4), 0.25, np.float32)
  axes = plots.plot_attention(tokens, weights).axes[0]
  assert tick_texts(axes.get_xticklabels()) == tokens
  assert tick_texts(axes.get_yticklabels()) == tokens
  assert axes.get_ylabel() == "query token"


def test_plot_attention_token_mismatch():
  with pytest.raises(ValueError, match="weights has S=4 key positions but tokens has 3 entries"):
    plots.plot_attention(["a", "b", "c"], np.zeros((2, 4), np.float32))


def test_figure_repr_png():
  figure = plots.plot_attention(["a", "b"], [0.5, 0.5])
  assert figure._repr_png_().startswith(PNG_SIGNATURE)


def test_plots_leave_pyplot_unimported(tmp_path):
  # A notebook's backend stays as it was only if plotting never goes through pyplot.
  script = (
      "import sys\n"
      "from jaxmodels.train import plots\n"
      f"plots.plot_curves([{{'step': 1, 'split': 'train', 'loss': 1.0}}], {str(tmp_path)!r} + "
      "'/c.png')\n"
      "plots.plot_confusion_matrix([0, 1], [1, 1], ['a', 'b'])\n"
      "print('matplotlib.pyplot' in sys.modules)\n"
  )
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, timeout=120)
  assert result.stdout.strip() == "False"
