"""One framework training one benchmark row, driven by `bench.py` through stdin and stdout.

  python benchmarks/worker.py --framework=jaxmodels --model=cnn --batch-size=32

The worker builds its trainer, times the first step (which includes compilation), warms up,
and prints one JSON line `{"event": "ready", ...}`. It then reads commands from stdin:
`run N` times N steps and prints `{"event": "window", "seconds": ...}`; `exit` prints the
peak resident memory and exits. Anything a framework prints goes to stderr, so stdout carries
only these lines.
"""

import argparse
import json
import os
import resource
import sys
import time

FRAMEWORKS = ("torch", "torch-compile", "keras-jax", "jaxmodels")


def _create_trainer(framework: str, model: str, batch_size: int, seed: int):
  """Import the framework's module (after setting its environment) and build a trainer."""
  if framework in ("torch", "torch-compile"):
    import peers_torch  # pylint: disable=g-import-not-at-top

    return peers_torch, peers_torch.create_trainer(
        model, batch_size, seed=seed, compiled=framework == "torch-compile"
    )
  if framework == "keras-jax":
    # Keras picks its back end once, at import.
    os.environ["KERAS_BACKEND"] = "jax"
    import peers_keras  # pylint: disable=g-import-not-at-top

    return peers_keras, peers_keras.create_trainer(model, batch_size, seed=seed)
  if framework == "jaxmodels":
    import jaxmodels_runner  # pylint: disable=g-import-not-at-top

    return jaxmodels_runner, jaxmodels_runner.create_trainer(model, batch_size, seed=seed)
  raise ValueError(f"--framework must be one of {FRAMEWORKS}, got {framework!r}")


def _peak_rss_mib() -> float:
  # Linux reports ru_maxrss in KiB.
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--framework", required=True, choices=FRAMEWORKS)
  parser.add_argument("--model", required=True)
  parser.add_argument("--batch-size", type=int, required=True)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--warmup-steps", type=int, default=10,
                      help="steps after the first one before timing starts")
  parser.add_argument("--warmup-seconds", type=float, default=1.0,
                      help="repeat the warm-up steps until at least this many seconds passed")
  args = parser.parse_args()

  # Keep a private copy of stdout for the protocol and send all other output to stderr.
  protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
  os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

  def send(message: dict) -> None:
    protocol.write(json.dumps(message) + "\n")

  start = time.perf_counter()
  module, trainer = _create_trainer(args.framework, args.model, args.batch_size, args.seed)
  build_seconds = time.perf_counter() - start

  # A jaxmodels trainer may run several steps per compiled call. Its first call, and every
  # warm-up chunk, then covers whole calls.
  steps_per_call = getattr(trainer, "steps_per_call", 1)
  start = time.perf_counter()
  trainer.run(steps_per_call)
  first_step_seconds = time.perf_counter() - start

  # Warm up in chunks of `warmup_steps` and estimate the step time from the last chunk.
  warmup_steps = -(-args.warmup_steps // steps_per_call) * steps_per_call
  warmup_start = time.perf_counter()
  while True:
    start = time.perf_counter()
    trainer.run(warmup_steps)
    step_seconds = (time.perf_counter() - start) / warmup_steps
    if time.perf_counter() - warmup_start >= args.warmup_seconds:
      break

  send({
      "event": "ready",
      "build_seconds": build_seconds,
      "first_step_seconds": first_step_seconds,
      "step_seconds": step_seconds,
      "steps_per_call": steps_per_call,
      "versions": module.versions(),
  })

  for line in sys.stdin:
    command = line.split()
    if command[:1] == ["run"] and len(command) == 2:
      num_steps = int(command[1])
      start = time.perf_counter()
      trainer.run(num_steps)
      send({"event": "window", "steps": num_steps, "seconds": time.perf_counter() - start})
    elif command == ["exit"]:
      break
    else:
      raise ValueError(f"unknown command {line.strip()!r}; expected 'run N' or 'exit'")
  send({"event": "exit", "peak_rss_mib": _peak_rss_mib()})


if __name__ == "__main__":
  main()
