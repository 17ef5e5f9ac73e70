"""Memory of the neuron's forward + backward as a function of T (targets: O(elements), no
tensor of size elements x levels).

Two measurements, both in units of one input-sized float tensor (elements x 4 bytes):

- ``saved``: what autograd keeps between forward and backward, counted exactly with
  ``torch.autograd.graph.saved_tensors_hooks`` (every saved tensor's storage once, leaving out the
  input x itself and the module's parameters, which exist anyway); ``saved_max_tensor`` is the
  largest single saved storage.  This is the part that would grow with T if the T steps were kept.
- ``peak``: the peak of live CPU memory during one forward + backward above what was live before
  it, and ``alloc_max`` the largest single allocation, both from torch.profiler's memory timeline
  (``profile_memory=True``; the timeline is a private torch API, so these two are None if it
  fails).  On CUDA ``torch.cuda.max_memory_allocated`` would give the peak directly.

Variants: ``ours`` (SpikingNeuron, parameters shared over steps: the default; it keeps four
per-element sums over the steps), ``ours_per_step`` (per_step=True: one Vth1 and Bs per step
t < T_bound; for T >= 2 it keeps only x, which is left out, and recomputes the steps in backward;
at T = 1 it is the shared path) and
``snntorch`` (snntorch.Leaky over T steps, which keeps every step for backward).  Bs = 4 (16 levels): a tensor
of size elements x levels would show up as 16 units.
"""

from __future__ import annotations

import weakref

import snntorch as snn
import torch
from torch.autograd.graph import saved_tensors_hooks

from adabit_lite.neuron import SpikingNeuron

from .bench_neuron import leaky_mean
from .common import BATCH, SMOKE_BATCH, shapes

T_VALUES = (1, 2, 4, 8)
BS = 4
VARIANTS = ("ours", "ours_per_step", "snntorch")


def saved_bytes(forward, x: torch.Tensor, exclude=()) -> dict:
    """Bytes autograd keeps for backward after ``forward(x)`` (each storage once).

    A tensor packed during the forward pass but already released when it returns (a graph that
    the forward itself dropped, e.g. through ``.detach()``) is not counted.
    """
    skip = {x.untyped_storage().data_ptr()} | {t.untyped_storage().data_ptr() for t in exclude}
    packed: list[weakref.ref] = []

    def pack(t):
        packed.append(weakref.ref(t))
        return t

    with saved_tensors_hooks(pack, lambda t: t):
        y = forward(x)
    storages: dict[int, int] = {}
    for ref in packed:
        t = ref()
        if t is None:
            continue
        st = t.untyped_storage()
        if st.data_ptr() not in skip:
            storages[st.data_ptr()] = st.nbytes()
    del y
    return {"bytes": sum(storages.values()), "max_tensor_bytes": max(storages.values(), default=0),
            "tensors": len(storages)}


def profiled_peak(step) -> dict | None:
    """Peak live bytes above the starting level, and the largest allocation, during ``step()``."""
    try:
        from torch.profiler import ProfilerActivity, profile
        from torch.profiler._memory_profiler import Action

        with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True,
                     with_stack=True) as prof:
            step()
        timeline = prof._memory_profile().timeline
    except Exception as err:  # noqa: BLE001 - private API: report, do not fail
        return {"error": f"{type(err).__name__}: {err}"}
    live = peak = 0
    biggest = 0
    events = sorted((e for e in timeline if e[2][0].device.type == "cpu"
                     and e[1] != Action.PREEXISTING), key=lambda e: e[0])
    for _, action, _, nbytes in events:
        if action == Action.CREATE:
            live += nbytes
            biggest = max(biggest, nbytes)
        elif action == Action.DESTROY:
            live -= nbytes
        peak = max(peak, live)
    return {"peak_bytes": peak, "alloc_max_bytes": biggest}


def _variant(name: str, T: int, x: torch.Tensor):
    """(forward, parameters) of one variant, initialised on x."""
    if name == "snntorch":
        lif = snn.Leaky(beta=1.0, threshold=1.0, reset_mechanism="subtract")
        return (lambda xx: leaky_mean(lif, xx, T)), list(lif.parameters()) + list(lif.buffers())
    neuron = SpikingNeuron(bits=BS, T=T, per_step=(name == "ours_per_step")).train()
    neuron(x.detach())
    return neuron, list(neuron.parameters())


def run(smoke: bool = False, peak_shapes: tuple[str, ...] | None = None) -> dict:
    torch.manual_seed(0)
    batch = SMOKE_BATCH if smoke else BATCH
    if peak_shapes is None:  # the profiler is slow per op: one shape in smoke mode
        peak_shapes = ("small-cnn.conv3",) if smoke else tuple(shapes())
    rows = []
    for shape_name, (shape, _) in shapes(smoke).items():
        size = (batch,) + shape
        unit = torch.Size(size).numel() * 4
        for T in T_VALUES:
            for name in VARIANTS:
                x = torch.relu(torch.randn(size)).requires_grad_()
                g = torch.randn(size)
                fwd, params = _variant(name, T, x)
                s = saved_bytes(fwd, x, params)
                row = {"shape": shape_name, "input": list(size), "elements": unit // 4, "T": T,
                       "Bs": BS, "levels": 2 ** BS, "variant": name, "saved_tensors": s["tensors"],
                       "saved": s["bytes"] / unit, "saved_max_tensor": s["max_tensor_bytes"] / unit,
                       "peak": None, "alloc_max": None}
                if shape_name in peak_shapes and (not smoke or name in ("ours", "snntorch")):
                    def step():
                        x.grad = None
                        fwd(x).backward(g)

                    step()  # warm
                    p = profiled_peak(step)
                    if p and "error" not in p:
                        row["peak"], row["alloc_max"] = p["peak_bytes"] / unit, p["alloc_max_bytes"] / unit
                    elif p:
                        row["peak_error"] = p["error"]
                rows.append(row)
        print(f"[memory] {shape_name}: " + "  ".join(
            f"{r['variant']} T={r['T']}: saved {r['saved']:.2f}"
            + (f" peak {r['peak']:.2f}" if r["peak"] is not None else "")
            for r in rows if r["shape"] == shape_name), flush=True)
    return {"batch": batch, "Bs": BS, "T_values": list(T_VALUES), "unit": "elements x 4 bytes",
            "peak_shapes": list(peak_shapes), "rows": rows}
