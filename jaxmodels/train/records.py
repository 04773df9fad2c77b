"""The reproducibility record of a run: config, versions, devices and git commit.

Every workdir gets `config.json` and `environment.json`; every checkpoint's `meta` item holds the
config, the step with its data position, and the package versions.
"""

import importlib.metadata
import json
import os
import subprocess
from typing import Any

from absl import logging
import jax
import ml_collections

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "ml-collections", "numpy")


def package_versions() -> dict[str, str]:
  """Return the installed versions of the packages a run depends on."""
  versions = {}
  for name in PACKAGES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = "not installed"
  return versions


def git_commit() -> str | None:
  """Return the commit of the jaxmodels checkout, with `+dirty` for local changes, or None."""
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  try:
    commit = subprocess.run(
        ["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
        timeout=10,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
        capture_output=True, text=True, check=True, timeout=10,
    ).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return None
  return commit + ("+dirty" if dirty else "")


def environment() -> dict[str, Any]:
  """Return versions, git commit, process and device information of this run."""
  return {
      "versions": package_versions(),
      "git_commit": git_commit(),
      "process_index": jax.process_index(),
      "process_count": jax.process_count(),
      "backend": jax.default_backend(),
      "devices": [str(device) for device in jax.devices()],
  }


def config_to_json(config: ml_collections.ConfigDict) -> str:
  """Serialize a config to JSON text (tuples become lists)."""
  return config.to_json_best_effort(indent=2, sort_keys=True)


def log_setup(config: ml_collections.ConfigDict) -> None:
  """Log config and environment, and write both into the workdir (process 0 only)."""
  env = environment()
  logging.info("Config:\n%s", config)
  logging.info(
      "JAX %s on %s: %d process(es), %d device(s): %s", env["versions"]["jax"], env["backend"],
      env["process_count"], len(env["devices"]), ", ".join(env["devices"]),
  )
  logging.info("Versions: %s; git commit %s.", env["versions"], env["git_commit"])
  if jax.process_index() != 0:
    return
  os.makedirs(config.workdir, exist_ok=True)
  with open(os.path.join(config.workdir, "config.json"), "w", encoding="utf-8") as file:
    file.write(config_to_json(config) + "\n")
  with open(os.path.join(config.workdir, "environment.json"), "w", encoding="utf-8") as file:
    json.dump(env, file, indent=2)
    file.write("\n")


def checkpoint_meta(
    config: ml_collections.ConfigDict, *, step: int, steps_per_epoch: int
) -> dict[str, Any]:
  """Return the JSON `meta` item saved with a checkpoint at `step`."""
  epoch, position = divmod(step, steps_per_epoch)
  return {
      "step": step,
      "data_position": {"epoch": epoch, "batch_in_epoch": position, "seed": config.seed},
      "config": json.loads(config_to_json(config)),
      "versions": package_versions(),
  }


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
  if isinstance(tree, dict):
    flat = {}
    for key, value in tree.items():
      flat.update(_flatten(value, f"{prefix}{key}."))
    return flat
  return {prefix[:-1]: tree}


def check_resume_config(meta: dict[str, Any], config: ml_collections.ConfigDict) -> None:
  """Warn about config values that differ from those the checkpoint was saved with.

  Data order and dropout masks follow `config.seed` and the batch size, so changing them on
  resume breaks exact continuation; other changes (say a longer run) may be intended.
  """
  saved = _flatten(meta.get("config", {}))
  current = _flatten(json.loads(config_to_json(config)))
  changed = sorted(key for key in saved.keys() | current.keys()
                   if saved.get(key) != current.get(key) and key != "workdir")
  for key in changed:
    logging.warning(
        "Resuming with config.%s=%r; the checkpoint was saved with %r.",
        key, current.get(key), saved.get(key),
    )
