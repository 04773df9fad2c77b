"""Train a tiny config on a forced number of CPU devices and print the results as JSON.

Run by tests/train/test_parallel.py in a fresh process, because the number of CPU devices is
fixed when JAX starts:

  XLA_FLAGS=--xla_force_host_platform_device_count=8 python parallel_worker.py SPEC_JSON

SPEC_JSON holds `config` (a dict of dotted keys and values applied to the named experiment
config), `runs` (a list of overrides, trained one after another in the same process), and
optionally `distributed` settings for a multi-process run.
"""

import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

import jax  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from jaxmodels.train import distributed  # pylint: disable=g-import-not-at-top
from jaxmodels.train import loop  # pylint: disable=g-import-not-at-top


def load_config(name: str, overrides: dict):
  module = __import__(f"experiments.configs.{name}", fromlist=["get_config"])
  config = module.get_config()
  for dotted, value in overrides.items():
    *sections, key = dotted.split(".")
    node = config
    for section in sections:
      node = node[section]
    node[key] = tuple(value) if isinstance(value, list) else value
  return config


def main():
  spec = json.loads(sys.argv[1])
  results = []
  for run in spec["runs"]:
    run = dict(run)
    max_steps = run.pop("max_steps", None)
    config = load_config(spec["config_name"], {**spec["config"], **run})
    distributed.initialize(config.parallel)
    result = loop.train_and_evaluate(config, max_steps=max_steps)
    params = [np.asarray(jax.device_get(leaf)).tolist()
              for leaf in jax.tree.leaves(result.state.params)]
    results.append({
        "losses": [r["loss"] for r in result.history if r["split"] == "train"],
        "step": int(result.state.step),
        "devices": jax.device_count(),
        "params": params if spec.get("return_params") else None,
        "trace_counts": result.trace_counts,
    })
  print("RESULTS " + json.dumps(results))


if __name__ == "__main__":
  main()
