"""A Keras-style summary table of a Flax model: each layer, its output shape and parameter count."""

import jax
import numpy as np


def summarize(model, example_inputs: jax.typing.ArrayLike) -> str:
  """Return a table of the model's top-level layers, in call order, and the parameter total.

  Shapes are traced with `jax.eval_shape`, so no arrays are allocated. The batch axis prints as
  `None`. Parameter-free ops that are not modules (pooling, flatten) have no row.

  Args:
    model: a Flax module called as `model(inputs, train=False)`.
    example_inputs: one batch of inputs, e.g. f32[1, 28, 28, 1].
  """

  call_order = []

  def trace(inputs):
    variables = model.init(jax.random.key(0), inputs, train=False)
    _, state = model.apply(
        variables, inputs, train=False, capture_intermediates=True, mutable=["intermediates"]
    )
    # Flax records submodules as they are called. The pytree that eval_shape returns has its
    # keys sorted, so the order is kept here.
    call_order.extend(state["intermediates"])
    return variables["params"], state["intermediates"]

  params, intermediates = jax.eval_shape(trace, example_inputs)

  rows = []
  for name in call_order:
    captured = intermediates[name]
    if name == "__call__" or "__call__" not in captured:
      continue
    output = jax.tree.leaves(captured["__call__"])[0]
    count = sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(params.get(name, {})))
    rows.append((name, str((None, *output.shape[1:])), f"{count:,}"))
  total = sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(params))

  headers = ("Layer", "Output shape", "Params")
  widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(3)]
  line = "  ".join("-" * width for width in widths)

  def format_row(row):
    return f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}"

  lines = [format_row(headers), line, *map(format_row, rows), line]
  lines.append(f"Total parameters: {total:,}")
  return "\n".join(lines)
