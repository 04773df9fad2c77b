"""Run every notebook in colab/ top to bottom on the CPU, with tiny data and small models.

Each notebook runs in a fresh IPython kernel of this interpreter. A cell holding the test's
values is inserted after the cell tagged "parameters", as papermill does, so the notebooks keep
their real defaults. The notebooks use the network only inside Colab.

The checks of the saved files read the JSON directly, so they also run without the `notebooks`
extra (nbclient, nbformat, ipykernel). Only the execution test needs it, and is skipped without it.
"""

import ast
import json
import pathlib

import numpy as np
import pytest

COLAB_DIR = pathlib.Path(__file__).resolve().parents[1] / "colab"
NOTEBOOKS = ("quickstart_mnist", "text_classification", "ops_as_a_library", "scaling_on_tpu")
BADGE_URL = "https://colab.research.google.com/github/YOUR_GITHUB_USER/jaxmodels/blob/main/colab/"

# The slowest cell, the three training runs of scaling_on_tpu, took about a minute on 2 CPU cores.
CELL_TIMEOUT_SECONDS = 300

# Figures each notebook draws. A figure that fails to render leaves text instead of a PNG.
EXPECTED_FIGURES = {
    "quickstart_mnist": 4,
    "text_classification": 4,
    "ops_as_a_library": 0,
    "scaling_on_tpu": 1,
}

# Question openings that give away the TREC coarse class; the rest of a question is filler.
TREC_OPENINGS = {
    "ABBR:exp": "what does the abbreviation",
    "DESC:def": "what is the meaning of",
    "ENTY:animal": "which animal",
    "HUM:ind": "who invented",
    "LOC:city": "where is",
    "NUM:count": "how many",
}
FILLERS = ("river", "king", "paper", "stone", "music", "glass", "winter", "ship", "law", "film")


def write_tiny_trec(directory: pathlib.Path) -> pathlib.Path:
  """Write TREC-format files with 60 training and 18 test questions."""
  rng = np.random.default_rng(0)
  directory.mkdir(parents=True, exist_ok=True)
  labels = list(TREC_OPENINGS)
  for name, count in (("train_5500.label", 60), ("TREC_10.label", 18)):
    lines = []
    for index in range(count):
      label = labels[index % len(labels)]
      filler = " ".join(rng.choice(FILLERS, size=rng.integers(1, 4)))
      lines.append(f"{label} {TREC_OPENINGS[label]} {filler} ?\n")
    (directory / name).write_text("".join(lines), encoding="ascii")
  return directory


def notebook_parameters(name: str, *, mnist_dir: pathlib.Path, trec_dir: pathlib.Path,
                        workdir: pathlib.Path) -> dict:
  """Return the parameter values that shrink notebook `name` to tiny data and models."""
  small_cnn = {
      "data.batch_size": 32,
      "data.eval_batch_size": 50,
      "model.conv_features": (4, 8, 8),
      "model.hidden_units": 8,
      "train.num_epochs": 1,
      "train.log_every_steps": 2,
  }
  small_lstm = {
      "data.vocab_size": 100,
      "data.max_len": 10,
      "data.batch_size": 16,
      "data.eval_batch_size": 16,
      "model.embedding_dim": 8,
      "model.lstm_units": (8, 8),
      "train.num_epochs": 1,
      "train.log_every_steps": 2,
  }
  if name == "quickstart_mnist":
    return {"DATA_DIR": str(mnist_dir), "WORKDIR": str(workdir), "FULL_RUN": False,
            "CONFIG_OVERRIDES": small_cnn}
  if name == "text_classification":
    return {"DATA_DIR": str(trec_dir), "WORKDIR": str(workdir), "FULL_RUN": False,
            "CONFIG_OVERRIDES": small_lstm}
  if name == "ops_as_a_library":
    return {"SEED": 1}
  if name == "scaling_on_tpu":
    # The batch of 32 divides by the 8 CPU devices that the notebook requests from XLA.
    return {"DATA_DIR": str(mnist_dir), "WORKDIR": str(workdir), "FULL_RUN": False,
            "NUM_STEPS": 4, "CONFIG_OVERRIDES": small_cnn}
  raise KeyError(f"no test parameters for notebook {name!r}")


def read_json(name: str) -> dict:
  return json.loads((COLAB_DIR / f"{name}.ipynb").read_text(encoding="utf-8"))


def cell_source(cell: dict) -> str:
  source = cell["source"]
  return source if isinstance(source, str) else "".join(source)


def parameters_index(cells: list) -> int:
  """Return the index of the one cell tagged "parameters"."""
  indices = [index for index, cell in enumerate(cells)
             if "parameters" in cell["metadata"].get("tags", [])]
  if len(indices) != 1:
    raise ValueError(f"expected one cell tagged 'parameters', found {len(indices)}")
  return indices[0]


def count_figures(cells: list) -> int:
  return sum("image/png" in output.get("data", {})
             for cell in cells if cell["cell_type"] == "code"
             for output in cell["outputs"])


def kernel_manager(spec_root: pathlib.Path):
  """Return a manager that starts ipykernel with this interpreter, on the CPU.

  The "python3" kernel that ipykernel installs runs the first `python` on PATH, and a
  user-level kernel of that name may belong to another environment. A kernel spec written
  into a private folder pins `sys.executable`.
  """
  kernelspec = pytest.importorskip("ipykernel.kernelspec")
  from jupyter_client.kernelspec import KernelSpecManager  # pylint: disable=g-import-not-at-top
  from jupyter_client.manager import AsyncKernelManager  # pylint: disable=g-import-not-at-top

  spec_dir = spec_root / "kernels" / "jaxmodels-test"
  kernelspec.write_kernel_spec(spec_dir, overrides={"env": {"JAX_PLATFORMS": "cpu"}})
  specs = KernelSpecManager(kernel_dirs=[str(spec_dir.parent)], ensure_native_kernel=False)
  return AsyncKernelManager(kernel_name="jaxmodels-test", kernel_spec_manager=specs)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_on_cpu(name, tiny_mnist_dir, tmp_path):
  nbformat = pytest.importorskip("nbformat")
  nbclient = pytest.importorskip("nbclient")
  notebook = nbformat.read(COLAB_DIR / f"{name}.ipynb", as_version=4)
  nbformat.validate(notebook)

  values = notebook_parameters(name, mnist_dir=tiny_mnist_dir,
                               trec_dir=write_tiny_trec(tmp_path / "trec"),
                               workdir=tmp_path / "workdir")
  source = "\n".join(f"{key} = {value!r}" for key, value in values.items())
  injected = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
  notebook.cells.insert(parameters_index(notebook.cells) + 1, injected)

  # The kernel starts in colab/, as it does when a notebook is opened from there.
  client = nbclient.NotebookClient(
      notebook, km=kernel_manager(tmp_path), timeout=CELL_TIMEOUT_SECONDS,
      resources={"metadata": {"path": str(COLAB_DIR)}})
  client.execute()  # Raises CellExecutionError at the first cell that fails.

  assert count_figures(notebook.cells) >= EXPECTED_FIGURES[name]


def test_notebooks_all_listed():
  assert sorted(path.stem for path in COLAB_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_saved_without_outputs(name):
  for index, cell in enumerate(read_json(name)["cells"]):
    if cell["cell_type"] != "code":
      continue
    assert cell["outputs"] == [], f"cell {index} has outputs"
    assert cell["execution_count"] is None, f"cell {index} has an execution count"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_opens_with_badge_and_install(name):
  cells = read_json(name)["cells"]
  title, install = cells[0], cells[1]

  assert title["cell_type"] == "markdown"
  assert cell_source(title).startswith("# ")
  assert f"{BADGE_URL}{name}.ipynb" in cell_source(title)
  assert install["cell_type"] == "code"
  assert 'if "google.colab" in sys.modules:' in cell_source(install)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_parameters_are_literals(name):
  cells = read_json(name)["cells"]
  tree = ast.parse(cell_source(cells[parameters_index(cells)]))

  for statement in tree.body:
    assert isinstance(statement, ast.Assign), ast.unparse(statement)
    ast.literal_eval(statement.value)
  assigned = {target.id for statement in tree.body for target in statement.targets}
  injected = notebook_parameters(name, mnist_dir=pathlib.Path("mnist"),
                                 trec_dir=pathlib.Path("trec"), workdir=pathlib.Path("work"))
  assert set(injected) <= assigned
