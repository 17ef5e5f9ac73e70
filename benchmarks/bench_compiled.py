"""Opt-in benchmark: the package's neuron with torch.compile's execution (ADABIT_FUSED=compile:
``adabit_lite.neuron.squeeze`` compiled by torch.compile) at T = 4.

Not part of ``all``: every (shape, T) compiles once, seconds to tens of seconds on a CPU.  For each
shape of book/definitions.md#def-benchmark-shapes at batch 64, Bs = Bw = 4, T = 4 (the T of the
layer target):

- neuron alone: the package's neuron ("ours": the C pass on a CPU), the same neuron compiled
  ("compiled") and snntorch.Leaky (as bench_neuron);
- layer: the squeezed layer with the package's default execution and compiled, multi-step
  snntorch, ANN floor (as bench_layer).

The compiled neuron is checked against the default one (same output, gradients within 1e-3).  The
compile times are cold: the run starts from an empty inductor cache in a temporary folder (a warm
on-disk cache from an earlier run would make them look like seconds or less).
"""

from __future__ import annotations

import tempfile
import time

import snntorch as snn
import torch
from torch import nn

from adabit_lite.layers import QConv2d, QuantConfig

from .bench_layer import CONV_SHAPES, MultiStep
from .bench_neuron import fused_setting, leaky_mean, make_neuron, outputs_and_grads
from .common import BATCH, backward_call, compare, ratio, shapes


def compiled(fn):
    """``fn`` run with the package's torch.compile execution."""
    def call(*args):
        with fused_setting("compile"):
            return fn(*args)
    return call


def _agree(neuron, x, g) -> float:
    def run(fn):
        return outputs_and_grads(neuron, fn, x, g)

    a, b = run(neuron), run(compiled(neuron))
    if not torch.equal(a[0], b[0]):
        return float("inf")
    return max(float((u - v).abs().max() / v.abs().max().clamp_min(1e-12)) for u, v in zip(a, b))


def run(T: int = 4, Bs: int = 4, rounds: int = 3, min_time: float = 0.25,
        device: torch.device = torch.device("cpu")) -> dict:
    from torch._inductor.runtime.cache_dir_utils import temporary_cache_dir

    torch._dynamo.reset()
    with tempfile.TemporaryDirectory(prefix="adabit-inductor-") as cache, temporary_cache_dir(cache):
        return {**_run(T, Bs, rounds, min_time, device), "compile_cache": "cold (empty inductor cache)"}


def _run(T: int, Bs: int, rounds: int, min_time: float, device: torch.device) -> dict:
    torch.manual_seed(0)
    neuron_rows, layer_rows = [], []
    for shape_name, (shape, where) in shapes().items():
        size = (BATCH,) + shape
        x = torch.relu(torch.randn(size, device=device)).requires_grad_()
        g = torch.randn(size, device=device)
        neuron = make_neuron(Bs, T, x)
        t0 = time.perf_counter()
        compiled(neuron)(x).backward(g)  # compiles
        compile_s = time.perf_counter() - t0
        rel = _agree(neuron, x, g)
        lif = snn.Leaky(beta=1.0, threshold=1.0, reset_mechanism="subtract").to(device)

        def bench(fn):
            def call():
                x.grad = None
                fn(x).backward(g)
            return call

        res = compare({"ours": bench(neuron),
                       "compiled": bench(compiled(neuron)),
                       "snntorch": bench(lambda xx: leaky_mean(lif, xx, T))},
                      rounds=rounds, min_time=min_time)
        row = {"shape": shape_name, "input": list(size), "T": T, "Bs": Bs,
               "compile_s": compile_s, "compiled_max_rel_diff": rel,
               **{f"{k}_ms": 1e3 * v["median_s"] for k, v in res.items()}}
        for a in ("ours", "compiled"):
            row[f"{a}_vs_snntorch"] = ratio(res, a, "snntorch")["ratio"]
        neuron_rows.append(row)
        print(f"[compiled] neuron {shape_name:16s} T={T}: ours {row['ours_ms']:.1f} ms, "
              f"compiled {row['compiled_ms']:.1f} ms, snntorch "
              f"{row['snntorch_ms']:.1f} ms (compile {compile_s:.0f} s, max rel diff {rel:.1e})",
              flush=True)
        if shape_name not in CONV_SHAPES:
            continue
        C = shape[0]
        squeezed = nn.Sequential(QConv2d(C, C, 3, padding=1, cfg=QuantConfig(T=T, s_bits=Bs)),
                                 nn.BatchNorm2d(C), nn.ReLU()).to(device).train()
        multi = MultiStep(C, T).to(device).train()
        ann = nn.Sequential(nn.Conv2d(C, C, 3, padding=1, bias=False), nn.BatchNorm2d(C),
                            nn.ReLU()).to(device).train()
        squeezed(x)
        multi(x)
        g_multi = torch.randn((T,) + size, device=device)
        compiled(backward_call(squeezed, x, g))()  # compile for this module's shapes

        res = compare({"squeezed": backward_call(squeezed, x, g),
                       "compiled": compiled(backward_call(squeezed, x, g)),
                       "multistep": backward_call(multi, x, g_multi),
                       "ann": backward_call(ann, x, g)}, rounds=rounds, min_time=min_time)
        row = {"shape": shape_name, "input": list(size), "T": T,
               **{f"{k}_ms": 1e3 * v["median_s"] for k, v in res.items()}}
        for a in ("squeezed", "compiled"):
            row[f"{a}_vs_multistep"] = ratio(res, a, "multistep")["ratio"]
            row[f"{a}_vs_ann"] = ratio(res, a, "ann")["ratio"]
        layer_rows.append(row)
        print(f"[compiled] layer  {shape_name:16s} T={T}: squeezed/ANN {row['squeezed_vs_ann']:.2f}, "
              f"compiled/ANN {row['compiled_vs_ann']:.2f}; "
              f"compiled/multi-step {row['compiled_vs_multistep']:.2f}", flush=True)
    return {"device": str(device), "T": T, "Bs": Bs, "rounds": rounds, "min_time_s": min_time,
            "neuron_rows": neuron_rows, "layer_rows": layer_rows}
