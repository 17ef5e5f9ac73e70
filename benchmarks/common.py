"""Shared pieces: the machine record, load averages, interleaved timing, result files."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch
from torch.utils import benchmark as tbench

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
LATEST = RESULTS / "latest.json"
LATEST_CUDA = RESULTS / "latest_cuda.json"  # the default result file of a run on a GPU
SCHEMA = 1

# batch 64 through the shapes of book/definitions.md#def-benchmark-shapes
BATCH = 64
SHAPES = {  # name: (per-sample input shape, where it comes from)
    "wide-resnet20": ((128, 32, 32), "wide ResNet-20 layer, 128 channels, 32x32"),
    "small-cnn.conv2": ((32, 14, 14), "small-cnn (MNIST 28x28), input of the second conv"),
    "small-cnn.conv3": ((64, 7, 7), "small-cnn (MNIST 28x28), input of the third conv"),
    "small-cnn.fc": ((256,), "small-cnn (MNIST 28x28), input of the fc"),
}
SMOKE_BATCH = 1
SMOKE_MAX_SIDE = 8  # smoke mode: spatial sides above this are cut to it (same channels)


def shapes(smoke: bool = False) -> dict[str, tuple[tuple[int, ...], str]]:
    """SHAPES, or in smoke mode the same shapes with small spatial sides."""
    if not smoke:
        return dict(SHAPES)
    return {k: (tuple(v[:1]) + tuple(min(d, SMOKE_MAX_SIDE) for d in v[1:]), w)
            for k, (v, w) in SHAPES.items()}


def pick_device(name: str = "auto") -> torch.device:
    """The device the timings run on: "auto" (CUDA when torch sees a GPU, else the CPU), "cpu",
    "cuda" or "cuda:N"."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise SystemExit(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: torch sees no GPU")
    return device


def synchronize() -> None:
    """Wait for queued GPU work (a no-op without CUDA), so that wall-clock timing is honest."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def load_average() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux
        return []


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """Where the numbers were measured."""
    info = {
        "cpu": cpu_model(), "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(), "platform": platform.platform(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import snntorch
        info["snntorch"] = snntorch.__version__
    except ImportError:  # pragma: no cover
        info["snntorch"] = None
    try:
        mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))
        info["memory_gib"] = round(mem_kb / 2**20, 1)
    except (OSError, StopIteration):  # pragma: no cover
        info["memory_gib"] = None
    return info


def _quantiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    return min(values), max(values)


def compare(candidates: dict[str, Callable[[], object]], *, rounds: int, min_time: float,
            warmup: int = 1) -> dict:
    """Time each candidate with torch.utils.benchmark.Timer, interleaved round by round.

    Every candidate first runs ``warmup`` times (the Timer waits for CUDA work itself).  Each round then times every candidate once
    (``Timer.timeit(number)``, with ``number`` chosen from the warm-up so that one measurement
    lasts about ``min_time``; at least one call); the order of the candidates alternates between
    rounds, so slow drifts of the machine's load hit all of them alike.  Returns, per candidate,
    the median seconds per call over the rounds and the per-round values.
    """
    names = list(candidates)
    per_call = {}
    for name in names:
        fn = candidates[name]
        start = time.perf_counter()
        for _ in range(max(warmup, 1)):
            fn()
        synchronize()
        per_call[name] = (time.perf_counter() - start) / max(warmup, 1)
    times: dict[str, list[float]] = {n: [] for n in names}
    threads = torch.get_num_threads()
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            number = max(1, int(min_time / max(per_call[name], 1e-9)))
            timer = tbench.Timer("fn()", globals={"fn": candidates[name]}, num_threads=threads,
                                 label=name)
            times[name].append(_measure(timer, number))
    return {n: {"median_s": statistics.median(v), "runs_s": v} for n, v in times.items()}


def _measure(timer: tbench.Timer, number: int) -> float:
    """Seconds per call of ``number`` calls.  ``Timer.timeit`` first runs max(number // 100, 2)
    warm-up calls of its own, which triples the cost of a slow call already warmed up by
    ``compare``; for few calls the Timer's inner timing loop is used directly."""
    if number >= 200 or not hasattr(timer, "_timeit"):
        return timer.timeit(number).median
    with tbench.utils.common.set_torch_threads(timer._task_spec.num_threads):  # noqa: SLF001
        return timer._timeit(number) / number  # noqa: SLF001


def ratio(result: dict, a: str, b: str) -> dict:
    """a / b: the median of the per-round ratios (paired), with their min and max."""
    per_round = [x / y for x, y in zip(result[a]["runs_s"], result[b]["runs_s"])]
    lo, hi = _quantiles(per_round)
    return {"ratio": statistics.median(per_round), "ratio_min": lo, "ratio_max": hi}


def fmt_ratio(x: float) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def section(name: str, body: Callable[[], dict]) -> dict:
    """Run one benchmark and wrap its result with the machine, time and load around it."""
    started, load_start = now(), load_average()
    t0 = time.perf_counter()
    result = body()
    result.update(benchmark=name, started=started, finished=now(),
                  seconds=round(time.perf_counter() - t0, 2), load_start=load_start,
                  load_end=load_average(), machine=machine())
    return result


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def backward_call(module, x, grad):
    """A closure that runs ``module(x).backward(grad)`` (clearing x's gradient first): one timed
    forward + backward pass."""
    def call():
        x.grad = None
        module(x).backward(grad)
    return call
