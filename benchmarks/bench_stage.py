"""Benchmark: one epoch of chapter 5's Fashion-MNIST stage against its float floor, and where the
epoch's time goes.

- ``epochs``: ``train()`` for one epoch of the stage's paper rule at 1/1/1 (ResNet-8, width 16,
  12,000 training images, batch 64, bits learned, activation renewal) and of the same network with
  every neuron and quantizer bypassed (``TrainConfig.full_precision_baseline()``, the float floor:
  a ReLU network of the same convolutions), interleaved ``repeats`` times.  The epoch time is what
  train() writes to timing.json (training batches, end-of-epoch work, test evaluation).
- ``profile``: torch.profiler over ``profile_batches`` training batches of the stage's run, the
  self time of every operator put in one of the parts below (by the operator's name), as a share
  of the profiled total: convolution, neuron (the squeezed neuron's forward and backward), weight
  quantizers (LSQ), batch norm, bit statistics and bit loss, optimiser, other.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from adabit_lite import sweeps
from adabit_lite.train import train

#: operator name fragments -> part of the epoch (first match wins, checked in this order)
PARTS = (
    ("neuron", ("SqueezedNeuron", "neuron_steps", "squeeze")),
    ("weight quantizers", ("LSQ", "lsq")),
    ("convolution", ("conv", "Convolution", "mkldnn", "addmm", "linear", "Addmm")),
    ("batch norm", ("batch_norm", "BatchNorm")),
    ("bit statistics and loss", ("bit_stats", "bit_loss", "LearnableInt", "round", "_STE")),
    ("optimiser", ("sgd", "_foreach", "Optimizer")),
)


def stage_config(smoke: bool, device: torch.device):
    """The stage's paper rule at 1/1/1 for one epoch (smoke: ResNet-8 at width 8 on 8x8 digits)."""
    base = None
    if smoke:
        base = {"dataset": "digits", "data_options": "size=8", "arch": "resnet8", "width": 8,
                "epochs": 1}
    cfg = sweeps.fashion_method("LBW + renewal", "1/1/1", 0, base)[0]
    return dataclasses.replace(cfg, epochs=1, device=str(device))


def _epoch_seconds(cfg) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        train(cfg, out_dir=tmp, progress=False)
        wall = time.perf_counter() - t0
        return json.loads((Path(tmp) / "timing.json").read_text())["epoch_seconds"][0], wall


def part_of(name: str) -> str:
    """The part of the epoch that an operator named ``name`` belongs to (``PARTS``)."""
    for part, fragments in PARTS:
        if any(f in name for f in fragments):
            return part
    return "other"


def profile(cfg, batches: int) -> dict:
    """Self-time shares of the parts over ``batches`` training batches (after two warm-up ones)."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    class Done(Exception):
        pass

    prof = torch_profile(activities=[ProfilerActivity.CPU])

    def hook(epoch, batch, model):
        if batch == 2:
            prof.__enter__()
        elif batch == 2 + batches:
            prof.__exit__(None, None, None)
            raise Done

    try:
        train(cfg, None, progress=False, on_batch=hook)
    except Done:
        pass
    totals: dict[str, float] = {}
    for event in prof.events():  # an operator counts for the nearest enclosing call with a part
        part, up = "other", event
        while up is not None and part == "other":
            part, up = part_of(up.name), up.cpu_parent
        totals[part] = totals.get(part, 0.0) + event.self_cpu_time_total
    whole = sum(totals.values()) or 1.0
    return {part: totals.get(part, 0.0) / whole for part, _ in PARTS + (("other", ()),)}


def run(smoke: bool = False, repeats: int | None = None,
        device: torch.device = torch.device("cpu")) -> dict:
    repeats = repeats or (1 if smoke else 2)
    cfg = stage_config(smoke, device)
    floor = cfg.full_precision_baseline()
    times = {"quantized": [], "float floor": []}
    walls = {"quantized": [], "float floor": []}
    for _ in range(repeats):  # interleaved, so that a change of load hits both alike
        for name, c in (("quantized", cfg), ("float floor", floor)):
            epoch, wall = _epoch_seconds(c)
            times[name].append(epoch)
            walls[name].append(wall)
    q, f = statistics.median(times["quantized"]), statistics.median(times["float floor"])
    shares = profile(cfg, 3 if smoke else 20)
    out = {"config": {k: v for k, v in cfg.validated().parameters().items()
                      if k in ("arch", "width", "dataset", "train_limit", "batch_size", "init",
                               "target", "renewal", "step_clamp", "seed")},
           "repeats": repeats, "epoch_s": q, "floor_epoch_s": f, "ratio": q / f,
           "epoch_runs_s": times["quantized"], "floor_runs_s": times["float floor"],
           "wall_runs_s": walls["quantized"], "floor_wall_runs_s": walls["float floor"],
           "profile_shares": shares, "threads": torch.get_num_threads(), "device": str(device)}
    print(f"[stage] {cfg.arch} on {cfg.dataset}: one epoch {q:.1f} s, float floor {f:.1f} s "
          f"(x{q / f:.2f}); profile: " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()),
          flush=True)
    return out
