"""Benchmark 1: the refined neuron alone, forward + backward, against snntorch.Leaky.

For every shape of book/definitions.md#def-benchmark-shapes (batch 64), T in {1, 2, 4, 8} and Bs in {1, 2, 4}:

- ``ours``: ``adabit_lite.neuron.SpikingNeuron(bits=Bs, T=T)`` in training mode (learnable Vth1,
  Bs and T, as in training), r = neuron(x), then r.backward(g);
- ``snntorch``: ``snntorch.Leaky(beta=1.0, reset_mechanism="subtract")`` (an IF neuron with soft
  reset and the default arctan surrogate gradient), the same x fed at each of T steps, r = mean of
  the T spike tensors, then r.backward(g);

- ``eager`` (where the package runs its compiled C pass, adabit_lite.fused: on a CPU): the same
  neuron with ``ADABIT_FUSED=0``, which runs ``adabit_lite.neuron.squeeze`` as written (the same
  numbers);

x = relu(N(0, 1)) (a post-BN/ReLU activation) with requires_grad, g = N(0, 1).  snntorch's cost
does not depend on Bs (it fires binary spikes); it is re-timed in every case so that each ratio
comes from one interleaved run.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import snntorch as snn
import torch

from adabit_lite import fused
from adabit_lite.neuron import SpikingNeuron

from .common import BATCH, SMOKE_BATCH, shapes, compare, ratio

T_VALUES = (1, 2, 4, 8)
BS_VALUES = (1, 2, 4)


def leaky_mean(lif: snn.Leaky, x: torch.Tensor, T: int) -> torch.Tensor:
    """mean_t of the spikes of an snntorch IF neuron fed x at each of T steps (state per instance)."""
    mem = lif.reset_mem()
    acc = None
    for _ in range(T):
        spk, mem = lif(x, mem)
        acc = spk if acc is None else acc + spk
    return acc / T


@contextmanager
def fused_setting(value: str):
    """The package run with ADABIT_FUSED=value ('0': the eager loop; 'compile': torch.compile's;
    adabit_lite.neuron.execution reads it at each call)."""
    old = os.environ.get("ADABIT_FUSED")
    os.environ["ADABIT_FUSED"] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ["ADABIT_FUSED"]
        else:
            os.environ["ADABIT_FUSED"] = old


def make_neuron(Bs: int, T: int, x: torch.Tensor) -> SpikingNeuron:
    neuron = SpikingNeuron(bits=Bs, T=T).to(x.device)
    neuron.train()
    neuron(x)  # first call initialises Vth1 from x (as on the first training batch)
    return neuron


def outputs_and_grads(neuron: SpikingNeuron, fn, x: torch.Tensor, g: torch.Tensor) -> list:
    """[output, dL/dx, parameter gradients...] of ``fn(x)`` backpropagated with ``g``."""
    for p in neuron.parameters():
        p.grad = None
    xx = x.detach().clone().requires_grad_()
    y = fn(xx)
    y.backward(g)
    return [y.detach(), xx.grad] + [p.grad for p in neuron.parameters() if p.grad is not None]


def run(smoke: bool = False, rounds: int | None = None, min_time: float | None = None,
        device: torch.device = torch.device("cpu")) -> dict:
    torch.manual_seed(0)
    batch = SMOKE_BATCH if smoke else BATCH
    rounds = rounds or (1 if smoke else 5)
    min_time = (0.0 if smoke else 0.25) if min_time is None else min_time
    rows = []
    for shape_name, (shape, where) in shapes(smoke).items():
        size = (batch,) + shape
        for T in T_VALUES:
            for Bs in BS_VALUES:
                x = torch.relu(torch.randn(size, device=device)).requires_grad_()
                g = torch.randn(size, device=device)
                neuron = make_neuron(Bs, T, x)
                lif = snn.Leaky(beta=1.0, threshold=1.0, reset_mechanism="subtract").to(device)

                def ours():
                    x.grad = None
                    neuron(x).backward(g)

                def theirs():
                    x.grad = None
                    leaky_mean(lif, x, T).backward(g)

                def eager():
                    with fused_setting("0"):
                        ours()

                candidates = {"ours": ours, "snntorch": theirs}
                if fused.covers(x, True, False, neuron.firing, T):
                    candidates["eager"] = eager
                big = x.numel() * T > 2e7
                res = compare(candidates,
                              rounds=max(1, rounds - 2) if big else rounds, min_time=min_time)
                row = {"shape": shape_name, "where": where, "input": list(size),
                       "elements": x.numel(), "T": T, "Bs": Bs,
                       **{f"{k}_ms": 1e3 * v["median_s"] for k, v in res.items()},
                       "rounds": len(res["ours"]["runs_s"])}
                r = ratio(res, "ours", "snntorch")
                row["ours_vs_snntorch"] = r["ratio"]
                row["ours_vs_snntorch_min"], row["ours_vs_snntorch_max"] = r["ratio_min"], r["ratio_max"]
                if "eager" in res:
                    row["ours_vs_eager"] = ratio(res, "ours", "eager")["ratio"]
                rows.append(row)
                print(f"[neuron] {shape_name:16s} T={T} Bs={Bs}: ours {row['ours_ms']:8.2f} ms  "
                      f"snntorch {row['snntorch_ms']:8.2f} ms  "
                      f"ours/snntorch {row['ours_vs_snntorch']:.2f}"
                      + (f"  ours/eager {row['ours_vs_eager']:.2f}" if "eager" in res else ""),
                      flush=True)
    return {"device": str(device), "batch": batch, "T_values": list(T_VALUES),
            "Bs_values": list(BS_VALUES),
            "rounds": rounds, "min_time_s": min_time, "rows": rows}
