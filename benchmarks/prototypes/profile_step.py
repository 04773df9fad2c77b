"""Prototype: where a jaxmodels train step spends its time, per layer, forward and backward.

  python benchmarks/prototypes/profile_step.py [--model=lstm_attention] [--batch-size=128] \
      [--calls=2] [--top=0]

Builds the benchmark's trainer for one model and batch size and traces `--calls` compiled
calls with `jax.profiler`. It sums the time of each XLA operation that the trace records, less
the time of the operations it encloses, so a loop's body counts once, in its own operations.
Each operation is attributed to the layer named in its HLO metadata
(`jvp(Model)/lstm0/...` is the forward pass of `lstm0`, `transpose(jvp(Model))/lstm0/...` its
backward pass). An operation without a layer in its metadata is listed by the last part of its
op_name (`add`, `closed_call`), or as "(unnamed)" when XLA kept no op_name. Rows under 0.5% of
the total are left out. The profiler adds a few microseconds per operation, so the total
exceeds the step time of the benchmark. `--top=N` also lists the N slowest operations.
"""

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _metadata(hlo_text: str) -> dict[str, str]:
  """Map each instruction name of optimized HLO text to its `op_name` metadata."""
  names = {}
  for line in hlo_text.splitlines():
    match = re.match(r"^\s+(?:ROOT )?%?([\w.\-]+) = ", line)
    if match:
      op_name = re.search(r'op_name="([^"]*)"', line)
      names[match.group(1)] = op_name.group(1) if op_name else ""
  return names


def _self_times(trace_file: str) -> dict[str, float]:
  """Return microseconds per event name, each event less the events nested inside it."""
  with gzip.open(trace_file) as f:
    events = [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X"]
  by_thread = collections.defaultdict(list)
  for event in events:
    by_thread[(event["pid"], event["tid"])].append(event)

  totals = collections.defaultdict(float)
  for thread_events in by_thread.values():
    thread_events.sort(key=lambda e: (e["ts"], -e["dur"]))
    stack = []
    for event in thread_events:
      while stack and stack[-1]["ts"] + stack[-1]["dur"] <= event["ts"]:
        stack.pop()
      event["self"] = event["dur"]
      if stack:
        stack[-1]["self"] -= event["dur"]
      stack.append(event)
    for event in thread_events:
      totals[event["name"]] += event["self"]
  return totals


def _layer(op_name: str) -> str:
  """Return "LAYER, forward" or "LAYER, backward" for an HLO op_name, or the op_name's end."""
  match = re.search(r"(transpose\()?jvp\(\w+\)\)?/([\w]+)", op_name)
  if match:
    return f"{match.group(2)}, {'backward' if match.group(1) else 'forward'}"
  return op_name.rsplit("/", 1)[-1] or "(unnamed)"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="lstm_attention",
                      choices=("cnn", "lstm", "lstm_attention", "transformer"),
                      help="the benchmark model to profile")
  parser.add_argument("--batch-size", type=int, default=128, help="examples per step")
  parser.add_argument("--calls", type=int, default=2,
                      help="compiled calls to trace, each of the config's steps per call")
  parser.add_argument("--top", type=int, default=0,
                      help="also list this many of the slowest operations")
  args = parser.parse_args()

  import jax  # pylint: disable=g-import-not-at-top
  import jaxmodels_runner  # pylint: disable=g-import-not-at-top
  from jaxmodels.train import parallel  # pylint: disable=g-import-not-at-top

  trainer = jaxmodels_runner.create_trainer(args.model, args.batch_size, seed=0)
  per_call = trainer.steps_per_call if trainer.multi_fn is not None else 1
  trainer.run(3 * per_call)  # compile and warm up

  with jax.set_mesh(trainer.mesh):
    if trainer.multi_fn is not None:
      batches = parallel.put_batches(trainer.batches[:per_call], trainer.mesh)
      lowered = trainer.multi_fn.lower(trainer.state, trainer.sums, batches)
    else:
      batch = parallel.put_batch(trainer.batches[0], trainer.mesh)
      lowered = trainer.train_fn.lower(trainer.state, trainer.sums, batch)
  metadata = _metadata(lowered.compile().as_text())

  steps = args.calls * per_call
  with tempfile.TemporaryDirectory() as trace_dir:
    with jax.profiler.trace(trace_dir):
      trainer.run(steps)
    (trace_file,) = glob.glob(f"{trace_dir}/**/*.trace.json.gz", recursive=True)
    times = _self_times(trace_file)

  # XLA operations have HLO names such as `ynn_fusion.3`. Python frames (`$file:line`) and
  # runtime events (`ThunkExecutor::Execute`) are left out.
  ops = {name: time for name, time in times.items()
         if name in metadata or re.match(r"^[\w\-]+(\.\d+)?$", name)}
  by_layer = collections.defaultdict(float)
  for name, time in ops.items():
    by_layer[_layer(metadata.get(name, ""))] += time

  total = sum(by_layer.values())
  print(f"{args.model}, batch {args.batch_size}: {total / steps / 1e3:.1f} ms of operations "
        f"per step over {steps} steps\n")
  print("| layer, pass | ms per step | share |")
  print("|---|---:|---:|")
  for layer, time in sorted(by_layer.items(), key=lambda item: -item[1]):
    if time / total >= 0.005:
      print(f"| {layer} | {time / steps / 1e3:.2f} | {time / total:.0%} |")
  if args.top:
    print("\n| operation | ms per step | op_name |")
    print("|---|---:|---|")
    for name, time in sorted(ops.items(), key=lambda item: -item[1])[:args.top]:
      print(f"| {name} | {time / steps / 1e3:.2f} | {metadata.get(name, '')[-80:]} |")


if __name__ == "__main__":
  main()
