"""Prototype: the jaxmodels train step under different XLA CPU flags.

  python benchmarks/prototypes/xla_flags.py [--model=cnn] [--batch-sizes=32,128] [--rounds=5]

Starts one `worker.py` per flag set (XLA reads XLA_FLAGS once per process) and times their
windows in turns, as `bench.py` does. `--xla_force_host_platform_device_count=2` splits the CPU
into two devices, so the mesh of `config.parallel.mesh_shape = (-1, 1)` splits each batch in two.
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import bench  # pylint: disable=g-import-not-at-top
import common  # pylint: disable=g-import-not-at-top

FLAG_SETS = (
    "",
    "--xla_cpu_multi_thread_eigen=false",
    "--xla_cpu_use_xnnpack=true",
    "--xla_cpu_use_xnnpack=false",
    "--xla_cpu_use_onednn=true",
    "--xla_cpu_enable_fast_math=true",
    "--xla_cpu_prefer_vector_width=512",
    "--xla_force_host_platform_device_count=2",
)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="cnn", choices=common.MODELS)
  parser.add_argument("--batch-sizes", default="32,128")
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--window-seconds", type=float, default=1.0)
  parser.add_argument("--flags", default="|".join(FLAG_SETS),
                      help="flag sets separated by '|'; an empty set is the baseline")
  cli = parser.parse_args()
  args = bench.parse_args([f"--rounds={cli.rounds}", f"--window-seconds={cli.window_seconds}"])
  flag_sets = cli.flags.split("|")
  log_dir = tempfile.mkdtemp(prefix="jaxmodels_xla_flags_")

  print("| model | batch | XLA_FLAGS | examples/s (median) | min-max | vs no flags |")
  print("|---|---:|---|---:|---:|---:|")
  for batch_size in common.parse_batch_sizes(cli.batch_sizes):
    results, workers = {}, {}
    try:
      for index, flags in enumerate(flag_sets):
        result = bench.Result(cli.model, batch_size, "jaxmodels")
        worker = bench.Worker("jaxmodels", cli.model, batch_size, args, log_dir,
                              extra_env={"XLA_FLAGS": flags}, label=f"flags{index}")
        try:
          ready = worker.receive(args.timeout)
        except bench.WorkerError as error:
          result.error = str(error).strip().splitlines()[-1]
          worker.close()
          results[flags] = result
          continue
        result.steps_per_window = max(1, round(args.window_seconds / ready["step_seconds"]))
        results[flags], workers[flags] = result, worker

      for _ in range(args.rounds):
        for flags, worker in workers.items():
          # As in bench.py, only the worker being timed may run.
          for other in workers.values():
            if other is worker:
              other.resume()
            else:
              other.pause()
          worker.send(f"run {results[flags].steps_per_window}")
          results[flags].window_seconds.append(worker.receive(args.timeout)["seconds"])
      for worker in workers.values():
        worker.resume()
    finally:
      for worker in workers.values():
        worker.close()

    baseline = None
    for flags, result in results.items():
      if result.error is not None:
        print(f"| {cli.model} | {batch_size} | `{flags}` | failed: {result.error[:80]} | | |")
        continue
      median, low, high = common.median_and_range(result.examples_per_second())
      baseline = baseline or median
      print(f"| {cli.model} | {batch_size} | `{flags or '(none)'}` | {median:,.0f} | "
            f"{low:,.0f}-{high:,.0f} | {median / baseline:.2f} |")


if __name__ == "__main__":
  main()
