"""Compare the training speed of jaxmodels with PyTorch and Keras 3 (JAX back end) on CPU.

  pip install -e .[bench] && python benchmarks/bench.py

Each benchmark row (model, batch size) starts one worker subprocess per framework, one after
another, so that compilations do not overlap. Each worker builds its model, times the first
step, warms up and estimates its step time. The workers then take turns (A B C D A B C D ...)
timing windows of about `--window-seconds` each, so a burst of load on the machine hits every
framework alike. Throughput is examples per second over a window; the table gives the median
and the range over the `--rounds` windows.
"""

import argparse
import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import time

import common

FRAMEWORKS = ("torch", "torch-compile", "keras-jax", "jaxmodels")
PEERS = ("torch", "torch-compile", "keras-jax")
PACKAGES = ("jax", "jaxlib", "flax", "optax", "torch", "keras", "numpy")
_WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")


class WorkerError(RuntimeError):
  """A worker exited, printed something unexpected or timed out."""


class Worker:
  """A running `worker.py` subprocess and the JSON lines it sends back.

  `extra_env` adds environment variables for this worker only (for example XLA_FLAGS), and
  `label` replaces the framework name in the log file name.
  """

  def __init__(self, framework: str, model: str, batch_size: int, args: argparse.Namespace,
               log_dir: str, *, extra_env: dict[str, str] | None = None, label: str = ""):
    self.framework = framework
    label = label or framework
    self.log_path = os.path.join(log_dir, f"{model}_{batch_size}_{label}.log")
    command = [
        args.python, _WORKER, f"--framework={framework}", f"--model={model}",
        f"--batch-size={batch_size}", f"--seed={args.seed}",
        f"--warmup-steps={args.warmup_steps}", f"--warmup-seconds={args.warmup_seconds}",
    ]
    env = dict(os.environ)
    if framework.startswith("torch") and args.torch_threads:
      env["OMP_NUM_THREADS"] = str(args.torch_threads)
    if framework == "torch-compile":
      # An empty Inductor cache, so the first step includes the whole compilation.
      env["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor_", dir=log_dir)
    env.update(extra_env or {})
    self.log = open(self.log_path, "w", encoding="utf-8")
    self.process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, env=env
    )
    self.buffer = b""

  def receive(self, timeout: float) -> dict:
    """Return the next JSON line from the worker, waiting at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while b"\n" not in self.buffer:
      remaining = deadline - time.monotonic()
      if remaining <= 0:
        raise WorkerError(f"{self.framework} sent nothing for {timeout:.0f} s")
      ready, _, _ = select.select([self.process.stdout], [], [], remaining)
      if ready:
        chunk = os.read(self.process.stdout.fileno(), 65536)
        if not chunk:
          raise WorkerError(
              f"{self.framework} exited with code {self.process.wait()}:\n{self.log_tail()}"
          )
        self.buffer += chunk
    line, self.buffer = self.buffer.split(b"\n", 1)
    return json.loads(line)

  def send(self, command: str) -> None:
    self.process.stdin.write(command.encode() + b"\n")
    self.process.stdin.flush()

  def pause(self) -> None:
    """Stop the worker process (SIGSTOP) so that it takes no CPU time."""
    if self.process.poll() is None:
      os.kill(self.process.pid, signal.SIGSTOP)

  def resume(self) -> None:
    """Continue a stopped worker process (SIGCONT)."""
    if self.process.poll() is None:
      os.kill(self.process.pid, signal.SIGCONT)

  def log_tail(self, num_lines: int = 15) -> str:
    self.log.flush()
    with open(self.log_path, encoding="utf-8", errors="replace") as file:
      return "".join(file.readlines()[-num_lines:])

  def close(self) -> None:
    if self.process.poll() is None:
      self.process.kill()
      self.process.wait()
    self.log.close()


@dataclasses.dataclass
class Result:
  """Measurements of one framework on one row."""

  model: str
  batch_size: int
  framework: str
  error: str | None = None
  first_step_seconds: float | None = None
  build_seconds: float | None = None
  steps_per_window: int | None = None
  window_seconds: list[float] = dataclasses.field(default_factory=list)
  peak_rss_mib: float | None = None
  versions: dict[str, str] = dataclasses.field(default_factory=dict)

  def examples_per_second(self) -> list[float]:
    return [self.steps_per_window * self.batch_size / seconds for seconds in self.window_seconds]


def _start_worker(framework: str, model: str, batch_size: int, args, log_dir: str,
                  result: Result) -> Worker | None:
  """Start a worker and wait until it is warm; record an error and return None on failure."""
  worker = Worker(framework, model, batch_size, args, log_dir)
  try:
    ready = worker.receive(args.timeout)
  except (WorkerError, json.JSONDecodeError) as error:
    result.error = str(error).strip().splitlines()[-1] if str(error).strip() else repr(error)
    print(f"  {framework}: failed; log {worker.log_path}\n{worker.log_tail()}", file=sys.stderr)
    worker.close()
    return None
  result.first_step_seconds = ready["first_step_seconds"]
  result.build_seconds = ready["build_seconds"]
  result.versions = ready["versions"]
  if args.steps:
    result.steps_per_window = args.steps
  else:
    result.steps_per_window = max(1, round(args.window_seconds / ready["step_seconds"]))
  # Windows of a trainer that runs several steps per compiled call cover whole calls.
  per_call = ready.get("steps_per_call", 1)
  result.steps_per_window = -(-result.steps_per_window // per_call) * per_call
  print(f"  {framework}: first step {ready['first_step_seconds']:.2f} s, "
        f"{ready['step_seconds'] * 1e3:.1f} ms/step after warm-up, "
        f"{result.steps_per_window} steps per window", file=sys.stderr)
  return worker


def run_row(model: str, batch_size: int, args, log_dir: str) -> list[Result]:
  """Measure every framework on one (model, batch size) row with interleaved windows."""
  print(f"{model}, batch {batch_size}:", file=sys.stderr)
  results = {name: Result(model, batch_size, name) for name in args.frameworks}
  workers = {}
  try:
    for name in args.frameworks:
      worker = _start_worker(name, model, batch_size, args, log_dir, results[name])
      if worker is not None:
        workers[name] = worker

    for _ in range(args.rounds):
      for name, worker in list(workers.items()):
        # The other workers are stopped while this one is timed, because idle ones slowed it:
        # the jaxmodels Transformer at batch 128 ran at 476 examples/s next to an idle
        # two-thread PyTorch worker and at 718 with that worker stopped.
        for other in workers.values():
          if other is worker:
            other.resume()
          else:
            other.pause()
        try:
          worker.send(f"run {results[name].steps_per_window}")
          results[name].window_seconds.append(worker.receive(args.timeout)["seconds"])
        except (WorkerError, BrokenPipeError) as error:
          results[name].error = f"failed while timing: {error}"
          worker.close()
          del workers[name]

    for worker in workers.values():
      worker.resume()
    for name, worker in workers.items():
      try:
        worker.send("exit")
        results[name].peak_rss_mib = worker.receive(args.timeout)["peak_rss_mib"]
        worker.process.wait(timeout=args.timeout)
      except (WorkerError, BrokenPipeError, subprocess.TimeoutExpired) as error:
        # The timed windows are kept, and only the worker's peak memory is missing.
        print(f"  {name}: peak memory missing, because the worker ended before reporting it "
              f"({error}). See {worker.log_path}", file=sys.stderr)
  finally:
    for worker in workers.values():
      worker.close()
  return list(results.values())


def _format_row(result: Result, best_peer: float | None, peak: common.CpuPeak) -> str:
  """Return one Markdown table line for a framework's result."""
  if result.error is not None:
    return (f"| {result.model} | {result.batch_size} | {result.framework} | failed: "
            f"{result.error[:60]} | | | | | |")
  median, low, high = common.median_and_range(result.examples_per_second())
  ratio = ""
  if result.framework == "jaxmodels" and best_peer:
    ratio = f"{median / best_peer:.2f}"
  gflops = ""
  if result.model == "cnn":
    achieved = median * common.cnn_train_flops_per_example() / 1e9
    gflops = f"{achieved:.1f} ({100 * achieved / peak.gflops:.0f}%)"
  rss = "" if result.peak_rss_mib is None else f"{result.peak_rss_mib:,.0f}"
  return (f"| {result.model} | {result.batch_size} | {result.framework} | {median:,.0f} | "
          f"{low:,.0f}-{high:,.0f} | {result.first_step_seconds:.2f} | {rss} | {gflops} | "
          f"{ratio} |")


def format_table(results: list[Result], peak: common.CpuPeak) -> str:
  """Format all results as a Markdown table, with jaxmodels / best peer on the jaxmodels line."""
  lines = [
      "| model | batch | framework | examples/s (median) | min-max | first step (s) | "
      "peak RSS (MiB) | GFLOP/s (% of peak) | jaxmodels / best peer |",
      "|---|---:|---|---:|---:|---:|---:|---:|---:|",
  ]
  rows = {}
  for result in results:
    rows.setdefault((result.model, result.batch_size), []).append(result)
  for row_results in rows.values():
    peer_medians = [
        common.median_and_range(result.examples_per_second())[0]
        for result in row_results
        if result.framework in PEERS and result.error is None
    ]
    best_peer = max(peer_medians) if peer_medians else None
    lines += [_format_row(result, best_peer, peak) for result in row_results]
  return "\n".join(lines)


def describe_machine(peak: common.CpuPeak) -> dict:
  """Collect the CPU, the Python and the package versions of this environment."""
  versions = {}
  for package in PACKAGES:
    try:
      versions[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      versions[package] = "not installed"
  return {
      "cpu": peak.model_name,
      "cores": peak.cores,
      "clock_ghz": peak.clock_ghz,
      "peak_gflops": peak.gflops,
      "peak_reason": peak.reason,
      "python": platform.python_version(),
      "platform": platform.platform(),
      "packages": versions,
  }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      description=__doc__.split("\n\n")[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter,
  )
  parser.add_argument("--models", default=",".join(common.MODELS),
                      help=f"comma-separated models out of {common.MODELS}")
  parser.add_argument("--batch-sizes", default="32,128", help="comma-separated batch sizes")
  parser.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                      help=f"comma-separated frameworks out of {FRAMEWORKS}")
  parser.add_argument("--rounds", type=int, default=5, help="timed windows per framework and row")
  parser.add_argument("--window-seconds", type=float, default=1.5,
                      help="target length of one timed window; sets the steps per window from "
                      "each framework's warm-up step time")
  parser.add_argument("--steps", type=int, default=0,
                      help="fixed steps per window for every framework; 0 uses --window-seconds")
  parser.add_argument("--warmup-steps", type=int, default=10,
                      help="steps per warm-up chunk after the first step")
  parser.add_argument("--warmup-seconds", type=float, default=1.0,
                      help="repeat warm-up chunks until this many seconds have passed")
  parser.add_argument("--quick", action="store_true",
                      help="a fast check of the set-up: 2 rounds of 3-step windows, 2 warm-up "
                      "steps")
  parser.add_argument("--torch-threads", type=int, default=0,
                      help="OMP_NUM_THREADS for the PyTorch workers; 0 keeps PyTorch's default "
                      "(one thread per core)")
  parser.add_argument("--peak-flops-per-cycle", type=int, default=None,
                      help="float32 FLOPs per cycle per core for the peak estimate; the default "
                      "guesses from /proc/cpuinfo")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--timeout", type=float, default=900.0,
                      help="seconds to wait for any one worker reply, compilation included")
  parser.add_argument("--python", default=sys.executable, help="interpreter for the workers")
  parser.add_argument("--output", default="", help="also write all results to this JSON file")
  args = parser.parse_args(argv)

  args.models = tuple(name for name in args.models.split(",") if name)
  args.frameworks = tuple(name for name in args.frameworks.split(",") if name)
  args.batch_sizes = common.parse_batch_sizes(args.batch_sizes)
  for name in args.models:
    if name not in common.MODELS:
      parser.error(f"--models: unknown model {name!r}; use names from {common.MODELS}")
  for name in args.frameworks:
    if name not in FRAMEWORKS:
      parser.error(f"--frameworks: unknown framework {name!r}; use names from {FRAMEWORKS}")
  if args.quick:
    args.rounds, args.steps, args.warmup_steps, args.warmup_seconds = 2, 3, 2, 0.0
  if args.rounds < 1 or args.steps < 0 or args.warmup_steps < 1:
    parser.error("--rounds and --warmup-steps must be at least 1, --steps at least 0")
  return args


def main(argv: list[str] | None = None) -> None:
  args = parse_args(argv)
  peak = common.estimate_cpu_peak(flops_per_cycle=args.peak_flops_per_cycle)
  machine = describe_machine(peak)
  load_before = os.getloadavg()
  start = time.monotonic()
  log_dir = tempfile.mkdtemp(prefix="jaxmodels_bench_")
  print(f"Worker logs in {log_dir}", file=sys.stderr)

  results = []
  for model in args.models:
    for batch_size in args.batch_sizes:
      results += run_row(model, batch_size, args, log_dir)

  load_after = os.getloadavg()
  minutes = (time.monotonic() - start) / 60
  table = format_table(results, peak)
  print(f"\nCommand: {shlex.join(['python', 'benchmarks/bench.py', *sys.argv[1:]])}")
  print(f"Date: {datetime.datetime.now().isoformat(timespec='seconds')}, {minutes:.1f} min")
  print(f"CPU: {peak.model_name}, {peak.cores} cores at {peak.clock_ghz:.3f} GHz; float32 peak "
        f"{peak.gflops:.0f} GFLOP/s = {peak.cores} x {peak.clock_ghz:.3f} GHz x "
        f"{peak.flops_per_cycle} FLOP/cycle ({peak.reason})")
  print("Load average (1, 5, 15 min): before "
        f"{', '.join(f'{x:.2f}' for x in load_before)}; after "
        f"{', '.join(f'{x:.2f}' for x in load_after)}")
  print(f"Python {machine['python']}; "
        + ", ".join(f"{name} {version}" for name, version in machine["packages"].items()))
  print(f"CNN training FLOPs per example: 3 x 2 x {common.cnn_forward_macs():,} MACs = "
        f"{common.cnn_train_flops_per_example():,}\n")
  print(table)

  if args.output:
    with open(args.output, "w", encoding="utf-8") as file:
      json.dump({
          "argv": sys.argv[1:],
          "machine": machine,
          "load_before": load_before,
          "load_after": load_after,
          "minutes": minutes,
          "results": [dataclasses.asdict(result) for result in results],
      }, file, indent=2)


if __name__ == "__main__":
  main()
