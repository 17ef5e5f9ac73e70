"""Cost meter (Shen et al.; method.md sections 6, 9): MACs, size, Bit Budget, S-ACE, NS-ACE, SOPs.

Counting convention.  Counts are per sample (one image), MACs of a conv = H_out * W_out * k^2 *
C_in * C_out / groups, of a linear layer = (output elements) * in_features; every quantized conv
and linear layer is a row (the 1x1 downsample convs and every fc included).  BN, pooling, residual
adds and activations cost nothing.  Spikformer adds two rows per attention block for its spike
matmuls (kind "attn": Q K^T and A V, N * N * D MACs each; see models/spikformer.py for their
operand bits).  Per row l, with rounded bits:

    S-ACE_l = MACs_l * Bw_l * sum_{t < T_l} Bs_l,t        (= MACs_l * Bw_l * Bs_l * T_l when shared)
    SOPs_l  = MACs_l * min(T_l * mean_t Bs_l,t, Bw_l)
    size_l  = weights_l * Bw_l bits;   Shen's "Params (M)" column = size / 16 (16-bit units)
    fr_l    = non-zero spike entries over all steps / (elements * T_l), measured on real inputs
    NS-ACE  = sum_l S-ACE_l * fr_l
    Bit Budget of a row = Bw_l * sum_t Bs_l,t

Two conventions, named in every result:

- ``"uniform"``: every conv and fc, the stem (first layer) included, at one W/S/T; the network's
  Bit Budget is W * S * T and, for the conv/fc rows, S-ACE = MACs * W * S * T.  This reproduces the
  published cost columns: the wide ResNet-20 has 2.5872 G MACs at 32x32, so 165.58 G at 16/1/4.
- ``"learned"``: the per-layer bits of a model (its learnable integers, an assignment file, or a
  checkpoint).  The stem keeps fixed 8-bit weights and spikes and, as in the reference code, is left
  out of the totals and of the bit statistics; its own cost is reported on a separate line.  The
  network's W, S, T are the weighted means of loss.py (Bw weighted by weight counts, Bs and T by
  input feature counts, over the non-stem conv/fc rows; attention rows do not enter them), and its
  Bit Budget is W * S * T.  Learned S-ACE is the per-row sum, not MACs * Bit Budget.

Published figures and this meter (details and numbers in tests/test_meter.py and test_models.py):

- wide ResNet-20, 32x32: 2,587,235,328 MACs; Yao et al.'s S-ACE column is reproduced (16/1/4
  165.58 G, 4/4/1 41.40 G exactly; their 16/1/2, 16/4/4, 16/4/6 use 2.58 G, 0.28 % lower).
- ResNet-19 (tdBN/TET layout), 32x32: 2.2854 G MACs.  Yao et al. use 2.29 G (73.28 G at 16/1/2);
  Shen et al.'s 139 G at 16/1/4 implies 2.17 G, a count we could not reconstruct (+5.2 % here).
- SEW-ResNet-34, 224x224: 3.6638 G MACs counting every conv and the fc (the usual 3.66 G of
  ResNet-34).  Shen et al. (and Yao et al. after them) use 3.40 G (217.72 G = 3.40 G * 64).  Not
  reproduced by dropping the stem (3.546 G), by counting only kernel taps on real pixels (3.375 G)
  or by another input size; reported as a gap of +7.7 %, not forced.
- Published sizes ("Params") are all float parameters (weights, biases, BN) in millions,
  truncated to two decimals: SEW-ResNet-34 21,797,672 -> 21.79 (and * W / 16 -> 10.89 at 8 bits,
  1.36 at 1 bit), ResNet-18 11.17, Spikformer-4-256 4.15, 2-384 5.76, 4-384 9.32.  The meter's own
  size counts conv/fc weights only (method.md): 21.78 M for SEW-ResNet-34, and reports the float
  count beside it (``float_params_m``).
- Spikformer: float rows of Shen et al. (16/1/4) agree within 0.3 % with the meter (attention
  rows included); their quantized rows bound the attention bits separately and do not scale as
  MACs * W * S * T, so they differ from the meter's convention (for 4-384: 0.97 G vs 0.77 G at
  1/1/1, 15.17 G vs 12.32 G at 4/4/1).

Shapes are propagated cheaply (``layers.shape_only``): the quantized layers skip their neurons and
convolutions and return zeros of the right shape, and the batch is empty, so metering SEW-ResNet-34
at 224x224 takes well under a second (building the model is most of it).

CLI::

    python -m adabit_lite.meter --arch resnet20 --wst 16/1/4 [--input 32x32] [--json]
    python -m adabit_lite.meter --arch resnet20 --assign bits.json [--wst 4/4/2]
    python -m adabit_lite.meter --arch resnet20 --checkpoint run.pt

An assignment file is JSON mapping layer names to ``{"Bw": .., "Bs": .., "T": ..}`` (``Bs`` may be a
list, one entry per time step; attention neurons such as ``blocks.0.attn.q_neuron`` take Bs and T).
Layers it does not name take ``--wst``; without ``--wst`` every non-stem layer must be named.  The
stem defaults to 8/8 bits and the T of ``--wst`` (else 1).  A checkpoint is a ``torch.save``'d state
dict, or a dict with a ``"model"`` key holding one; it is loaded with ``weights_only=True`` and its
bits are read from the LearnableInt latents, its firing rates from the neurons' spike counters.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from .bits import LearnableInt
from .layers import LayerReport, QLinear, QuantConfig, QuantLayer, shape_only
from .neuron import SpikingNeuron
from .quant import StepQuantizer

CONVENTIONS = ("uniform", "learned")

# (channels, height, width, classes) of the input each architecture is metered at by default.
ARCH_INPUTS = {
    "small-cnn": (1, 28, 28, 10),
    "resnet20": (3, 32, 32, 10),
    "resnet19": (3, 32, 32, 10),
    "resnet18": (3, 32, 32, 10),
    "sew-resnet34": (3, 224, 224, 1000),
    "spikformer-4-384": (3, 32, 32, 10),
    "spikformer-4-256": (3, 32, 32, 10),
    "spikformer-2-384": (3, 32, 32, 10),
}

WIDE_BITS = 32  # bounds of the meter's own models: wide enough for any bits it is asked to meter
WIDE_T = 64


# ----------------------------------------------------------------------------- per-layer costs
def layer_costs(r: LayerReport) -> dict:
    """Cost of one layer from its report (counts per sample)."""
    bs_sum = sum(r.Bs) if len(r.Bs) == r.T else r.Bs[0] * r.T  # per-step or shared Bs
    return {"name": r.name, "kind": r.kind, "stem": r.stem, "Bw": r.Bw, "Bs": r.Bs_mean, "T": r.T,
            "weights": r.weights, "in_features": r.in_features, "macs": r.macs,
            "bit_budget": r.Bw * bs_sum, "s_ace": r.macs * r.Bw * bs_sum,
            "sops": r.macs * min(r.T * r.Bs_mean, r.Bw), "size_bits": r.weights * r.Bw}


def cost_rows(model: nn.Module) -> list[tuple[LayerReport, SpikingNeuron]]:
    """(report, neuron at its spike input) of every metered row of ``model``, in module order.

    Rows are the quantized layers (stem included) and whatever a module lists through a
    ``cost_reports(name)`` method (the attention matmuls of Spikformer).
    """
    rows, pending = [], []  # pending: (prefix, rows) of modules whose children come first

    def flush(before: str | None) -> None:
        while pending and (before is None or not before.startswith(pending[-1][0])):
            rows.extend(pending.pop()[1])

    for name, m in model.named_modules():
        flush(name)
        if isinstance(m, QuantLayer):
            rows.append((m.report(name), m.neuron))
        elif hasattr(m, "cost_reports"):
            pending.append((f"{name}." if name else "", m.cost_reports(name)))
    flush(None)
    return rows


def learned_costs(model: nn.Module) -> dict:
    """Totals over the learned (non-stem) rows of a model that has run one forward pass."""
    rows = [layer_costs(r) for r, _ in cost_rows(model)]
    body = [c for c in rows if not c["stem"]]
    return {"macs_g": sum(c["macs"] for c in body) / 1e9,
            "s_ace_g": sum(c["s_ace"] for c in body) / 1e9,
            "sops_g": sum(c["sops"] for c in body) / 1e9,
            "size_mbit": sum(c["size_bits"] for c in body) / 1e6,
            "layers": rows}


def uniform_report(r: LayerReport, W: int, S: int, T: int) -> LayerReport:
    """A row at uniform W/S/T (attention rows know their own operand bits)."""
    if hasattr(r, "uniform"):
        return r.uniform(S, T)
    return replace(r, Bw=W, Bs=[S], T=T)


def firing_rate(neuron: SpikingNeuron) -> float | None:
    """Measured firing rate of a neuron (None if it has counted nothing)."""
    slots = float(neuron.spike_slots)
    return float(neuron.spike_count) / slots if slots > 0 else None


@torch.no_grad()
def measure_firing(model: nn.Module, batches) -> dict[str, float]:
    """Run ``batches`` (tensors) through ``model`` in eval mode, counting spikes in every neuron.

    The counters are reset first and left filled, so the meter reads the rates afterwards.
    Returns {neuron name: firing rate}.
    """
    neurons = [(n, m) for n, m in model.named_modules() if isinstance(m, SpikingNeuron)]
    was_training = model.training
    model.eval()
    try:
        for _, m in neurons:
            m.spike_count.zero_()
            m.spike_slots.zero_()
            m.track_rate = True
        for x in batches:
            model(x)
    finally:
        for _, m in neurons:
            m.track_rate = False
        model.train(was_training)
    return {n: firing_rate(m) for n, m in neurons}


def float_param_count(model: nn.Module) -> int:
    """Parameters of the float network: conv/linear weights and biases, BN affine; no quantizer
    steps or bit latents (the count that torchvision-style tables print)."""
    return sum(p.numel() for m in model.modules()
               if not isinstance(m, (StepQuantizer, LearnableInt))
               for p in m.parameters(recurse=False))


@torch.no_grad()
def propagate_shapes(model: nn.Module, input_shape: tuple[int, int, int]) -> None:
    """One shape-only forward pass of an input of shape (C, H, W), in eval mode.

    The batch is empty (0 samples), so BN, pooling and adds between the layers cost nothing
    either; a model that cannot take an empty batch gets one zero sample instead.
    """
    was_training = model.training
    model.eval()
    try:
        with shape_only():
            try:
                model(torch.zeros((0,) + tuple(input_shape)))
            except RuntimeError:
                model(torch.zeros((1,) + tuple(input_shape)))
    finally:
        model.train(was_training)


# ------------------------------------------------------------------------------ the result
@dataclass
class MeterResult:
    """A metered network: per-row DataFrame, totals, and the stem's own line."""

    arch: str
    convention: str
    wst: str
    input_size: tuple[int, int]
    layers: pd.DataFrame
    totals: dict
    stem: dict | None

    def frame(self) -> pd.DataFrame:
        """Per-row table followed by a "total" row (and the stem line when it is not in it)."""
        cols = ["macs", "weights", "size_bits", "s_ace", "sops", "ns_ace"]
        t = self.totals
        total = {"name": "total", "kind": self.convention, "macs": t["macs_g"] * 1e9,
                 "weights": t["params_m"] * 1e6, "size_bits": t["size_mbit"] * 1e6,
                 "s_ace": t["s_ace_g"] * 1e9, "sops": t["sops_g"] * 1e9,
                 "ns_ace": None if t["ns_ace_g"] is None else t["ns_ace_g"] * 1e9,
                 "Bw": t["W"], "Bs": t["S"], "T": t["T"], "bit_budget": t["bit_budget"]}
        extra = [total]
        if self.stem is not None and not self.stem["in_totals"]:
            s = self.layers[self.layers["stem"].astype(bool)].iloc[0]
            extra.append({"name": f"{s['name']} (stem, not in total)",
                          **{c: s[c] for c in cols + ["kind", "Bw", "Bs", "T", "bit_budget"]}})
        return pd.concat([self.layers, pd.DataFrame(extra)], ignore_index=True)

    def to_dict(self) -> dict:
        """JSON-ready: totals, the stem line and one dict per row."""
        rows = json.loads(self.layers.to_json(orient="records"))
        return {"arch": self.arch, "wst": self.wst, "convention": self.convention,
                "input": f"{self.input_size[0]}x{self.input_size[1]}", **self.totals,
                "stem": self.stem, "layers": rows}

    def __str__(self) -> str:
        t = self.totals
        pd_opts = ("display.width", 200, "display.max_rows", 500, "display.max_columns", 20)
        cols = ["name", "kind", "Bw", "Bs", "T", "weights", "macs", "s_ace", "sops", "firing_rate"]
        with pd.option_context(*pd_opts):
            body = self.layers[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}")
        lines = [f"arch {self.arch}  input {self.input_size[0]}x{self.input_size[1]}  convention "
                 f"{self.convention}  W/S/T {self.wst}  Bit Budget {t['bit_budget']:.4g}", body,
                 f"total ({'stem included' if self.convention == 'uniform' else 'stem excluded'}): "
                 f"MACs {t['macs_g']:.4f} G  params {t['params_m']:.4f} M  size "
                 f"{t['size_mbit']:.3f} Mbit (Params(M)@16b {t['params16_m']:.3f})  S-ACE "
                 f"{t['s_ace_g']:.4f} G  SOPs {t['sops_g']:.4f} G  NS-ACE "
                 + ("n/a (no firing rates measured)" if t["ns_ace_g"] is None
                    else f"{t['ns_ace_g']:.4f} G")]
        if t.get("attn"):
            a = t["attn"]
            lines.append(f"  of which attention matmuls: MACs {a['macs_g']:.4f} G  S-ACE "
                         f"{a['s_ace_g']:.4f} G  SOPs {a['sops_g']:.4f} G")
        if self.stem is not None and not self.stem["in_totals"]:
            s = self.stem
            lines.append(f"stem {s['name']} (not in the total): {s['Bw']:g}/{s['Bs']:g}/{s['T']}  "
                         f"MACs {s['macs_g']:.4f} G  S-ACE {s['s_ace_g']:.4f} G  "
                         f"SOPs {s['sops_g']:.4f} G")
        lines.append(f"float parameters (weights, biases, BN): {t['float_params_m']:.4f} M")
        return "\n".join(lines)


def _fmt(v: float) -> str:
    return f"{v:g}" if float(v).is_integer() else f"{v:.2f}"


def summarize(rows: list[tuple[LayerReport, SpikingNeuron | None]], convention: str,
              wst: tuple[int, int, int] | None = None) -> tuple[pd.DataFrame, dict, dict | None]:
    """Per-row DataFrame, totals and stem line of metered rows under ``convention``."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    records = []
    for r, neuron in rows:
        c = layer_costs(r)
        fr = firing_rate(neuron) if neuron is not None else None
        c["firing_rate"] = fr
        c["ns_ace"] = None if fr is None else c["s_ace"] * fr
        records.append(c)
    df = pd.DataFrame(records)
    df["firing_rate"] = df["firing_rate"].astype(float)
    df["ns_ace"] = df["ns_ace"].astype(float)
    stem_mask = df["stem"].astype(bool)
    in_total = ~stem_mask if convention == "learned" else pd.Series(True, index=df.index)
    tot = df[in_total]
    layer_mask = tot["kind"] != "attn"
    if convention == "uniform":
        W, S, T = wst
    else:
        body = df[in_total & (df["kind"] != "attn")]
        W = (body["weights"] * body["Bw"]).sum() / body["weights"].sum()
        S = (body["in_features"] * body["Bs"]).sum() / body["in_features"].sum()
        T = (body["in_features"] * body["T"]).sum() / body["in_features"].sum()
    ns = None if tot["ns_ace"].isna().any() else tot["ns_ace"].sum() / 1e9
    totals = {
        "W": float(W), "S": float(S), "T": float(T), "bit_budget": float(W * S * T),
        "macs_g": tot["macs"].sum() / 1e9,
        "params_m": tot.loc[layer_mask, "weights"].sum() / 1e6,
        "size_mbit": tot["size_bits"].sum() / 1e6,
        "params16_m": tot["size_bits"].sum() / 16 / 1e6,
        "s_ace_g": tot["s_ace"].sum() / 1e9,
        "sops_g": tot["sops"].sum() / 1e9,
        "ns_ace_g": ns,
        "attn": None,
    }
    attn = tot[tot["kind"] == "attn"]
    if len(attn):
        totals["attn"] = {k: attn[c].sum() / 1e9 for k, c in
                          (("macs_g", "macs"), ("s_ace_g", "s_ace"), ("sops_g", "sops"))}
    stem = None
    if stem_mask.any():
        s = df[stem_mask].iloc[0]
        stem = {"name": s["name"], "in_totals": convention == "uniform", "Bw": float(s["Bw"]),
                "Bs": float(s["Bs"]), "T": int(s["T"]), "macs_g": s["macs"] / 1e9,
                "params_m": s["weights"] / 1e6, "size_mbit": s["size_bits"] / 1e6,
                "s_ace_g": s["s_ace"] / 1e9, "sops_g": s["sops"] / 1e9,
                "ns_ace_g": None if pd.isna(s["ns_ace"]) else s["ns_ace"] / 1e9}
    return df, totals, stem


def meter_model(model: nn.Module, input_shape: tuple[int, int, int] | None = None, *,
                convention: str = "learned", wst: tuple[int, int, int] | None = None,
                arch: str = "model") -> MeterResult:
    """Meter a model.  ``input_shape`` (C, H, W): propagate shapes first (otherwise the shapes of
    the last forward pass are used).  ``convention="uniform"`` needs ``wst``; "learned" reads the
    model's own bits.  Firing rates come from the neurons' counters (``measure_firing``)."""
    if input_shape is not None:
        propagate_shapes(model, input_shape)
    rows = cost_rows(model)
    if convention == "uniform":
        if wst is None:
            raise ValueError("the uniform convention needs wst=(W, S, T)")
        rows = [(uniform_report(r, *wst), n) for r, n in rows]
    df, totals, stem = summarize(rows, convention, wst)
    totals["float_params_m"] = float_param_count(model) / 1e6
    text = "/".join(map(str, wst)) if convention == "uniform" else "/".join(
        _fmt(round(totals[k], 2)) for k in "WST")
    size = tuple(rows[0][0].in_shape[-2:]) if rows and len(rows[0][0].in_shape) == 3 else (0, 0)
    return MeterResult(arch, convention, text, size, df, totals, stem)


# ---------------------------------------------------------------------- architectures, files
def parse_wst(text: str) -> tuple[int, int, int]:
    """'W/S/T' -> (W, S, T), three integers >= 1."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or min(int(g) for g in m.groups()) < 1:
        raise ValueError("W/S/T must be three integers >= 1 written W/S/T (e.g. 4/4/2), "
                         f"got {text!r}")
    return tuple(int(g) for g in m.groups())


def parse_input(text: str) -> tuple[int, int]:
    """'HxW' or 'N' -> (H, W)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", str(text))
    if not m or int(m.group(1)) < 1 or (m.group(2) and int(m.group(2)) < 1):
        raise ValueError("input size must be HxW or N with positive integers (e.g. 32x32), "
                         f"got {text!r}")
    h = int(m.group(1))
    return h, int(m.group(2) or h)


def _check_arch(arch: str) -> None:
    if arch not in ARCH_INPUTS:
        raise ValueError(f"unknown arch {arch!r}; accepted: {', '.join(ARCH_INPUTS)}")


def build_for_meter(arch: str, *, num_classes: int | None = None, in_channels: int | None = None,
                    per_step: bool = False, T_bound: int | None = None) -> nn.Module:
    """The architecture with bounds wide enough for any bits it is given (eval mode)."""
    from .models import build_model

    _check_arch(arch)
    c, _, _, k = ARCH_INPUTS[arch]
    tb = T_bound or WIDE_T
    cfg = QuantConfig(w_bits=4, s_bits=4, T=1, w_bound=WIDE_BITS, s_bound=WIDE_BITS, T_bound=tb,
                      per_step=per_step)
    stem_cfg = QuantConfig(w_bits=8, s_bits=8, T=1, w_bound=WIDE_BITS, s_bound=WIDE_BITS,
                           T_bound=WIDE_T, learn_w=False, learn_s=False, signed_spikes=True)
    return build_model(arch, num_classes=num_classes or k, in_channels=in_channels or c, cfg=cfg,
                       stem_cfg=stem_cfg).eval()


def _input_shape(arch: str, input_size, in_channels: int | None = None) -> tuple[int, int, int]:
    c, h, w, _ = ARCH_INPUTS[arch]
    if input_size is not None:
        h, w = parse_input(input_size) if isinstance(input_size, str) else tuple(input_size)
    return (in_channels or c, h, w)


@lru_cache(maxsize=32)
def _arch_rows(arch: str, input_shape: tuple[int, int, int]) -> tuple[tuple, int]:
    """(reports of every row, float parameter count) of ``arch`` at ``input_shape``; cached, so
    metering many W/S/T settings of one architecture builds it once."""
    from .models import build_model

    model = build_model(arch, num_classes=ARCH_INPUTS[arch][3], in_channels=input_shape[0])
    propagate_shapes(model, input_shape)
    return tuple(r for r, _ in cost_rows(model)), float_param_count(model)


def meter_arch(arch: str, wst, input_size=None) -> MeterResult:
    """Uniform convention: ``arch`` with every conv and fc (stem included) at W/S/T."""
    _check_arch(arch)
    wst = parse_wst(wst) if isinstance(wst, str) else tuple(int(v) for v in wst)
    shape = _input_shape(arch, input_size)
    reports, floats = _arch_rows(arch, shape)
    df, totals, stem = summarize([(uniform_report(r, *wst), None) for r in reports], "uniform", wst)
    totals["float_params_m"] = floats / 1e6
    return MeterResult(arch, "uniform", "/".join(map(str, wst)), shape[1:], df, totals, stem)


def _neurons_by_name(model: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in model.named_modules() if isinstance(m, (QuantLayer, SpikingNeuron))}


def _set_neuron(neuron: SpikingNeuron, Bs, T: int | None) -> None:
    if T is not None:
        neuron.T.set_(T)
    if Bs is None:
        return
    if isinstance(Bs, (list, tuple)):
        if not neuron.per_step:
            raise ValueError("a list of per-step Bs needs a per-step model")
        if len(Bs) != int(neuron.T):
            raise ValueError(f"{len(Bs)} per-step Bs given for T = {int(neuron.T)}")
        for b, v in zip(neuron.bits, Bs):
            b.set_(v)
    else:
        for b in neuron.bits:
            b.set_(Bs)


def apply_assignment(model: nn.Module, assignment: dict, default=None) -> None:
    """Set the bits of ``model`` from {layer name: {"Bw", "Bs", "T"}}; unnamed layers get
    ``default`` (W, S, T).  Without a default every non-stem layer and attention neuron must be
    named.  Raises ValueError naming unknown layers, bad keys or missing layers."""
    targets = _neurons_by_name(model)
    layer_neurons = {id(m.neuron) for m in targets.values() if isinstance(m, QuantLayer)}
    targets = {n: m for n, m in targets.items() if id(m) not in layer_neurons}
    unknown = sorted(set(assignment) - set(targets))
    if unknown:
        raise ValueError(f"unknown layer names in the assignment: {', '.join(unknown)}; "
                         f"accepted: {', '.join(targets)}")
    if default is not None:
        W, S, T = default
        for m in targets.values():
            if isinstance(m, QuantLayer):
                if m.stem:
                    m.neuron.T.set_(T)
                    continue
                m.wq.bits[0].set_(W)
                m = m.neuron
            _set_neuron(m, S, T)
    else:
        missing = [n for n, m in targets.items()
                   if n not in assignment and not getattr(m, "stem", False)]
        if missing:
            raise ValueError(f"the assignment does not name {', '.join(missing)} and no default "
                             "W/S/T was given")
    for name, entry in assignment.items():
        m = targets[name]
        allowed = {"Bw", "Bs", "T"} if isinstance(m, QuantLayer) else {"Bs", "T"}
        bad = set(entry) - allowed
        if bad:
            raise ValueError(f"{name}: keys {sorted(bad)} not accepted; use {sorted(allowed)}")
        if default is None and not getattr(m, "stem", False) and set(entry) != allowed:
            raise ValueError(f"{name}: needs all of {sorted(allowed)} when no default W/S/T "
                             "is given")
        if isinstance(m, QuantLayer):
            if "Bw" in entry:
                m.wq.bits[0].set_(entry["Bw"])
            m = m.neuron
        _set_neuron(m, entry.get("Bs"), entry.get("T"))


def meter_assignment(arch: str, assignment, wst=None, input_size=None) -> MeterResult:
    """Learned convention for per-layer bits given as a dict or a JSON file path."""
    if not isinstance(assignment, dict):
        assignment = json.loads(Path(assignment).read_text())
    default = None if wst is None else (parse_wst(wst) if isinstance(wst, str) else tuple(wst))
    lists = [len(e["Bs"]) for e in assignment.values() if isinstance(e.get("Bs"), (list, tuple))]
    model = build_for_meter(arch, per_step=bool(lists), T_bound=max(lists) if lists else None)
    apply_assignment(model, assignment, default)
    return meter_model(model, _input_shape(arch, input_size), convention="learned", arch=arch)


def load_state(path) -> dict:
    """A checkpoint's state dict (a bare state dict or a dict with a "model" key)."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: not a state dict nor a dict with a 'model' key")
    return obj


def model_from_state(arch: str, state: dict) -> nn.Module:
    """Build ``arch`` to match ``state`` (classes, input channels, per-step neurons) and load it."""
    probe = build_for_meter(arch)
    layers = [(n, m) for n, m in probe.named_modules() if isinstance(m, QuantLayer)]
    stem = next(n for n, m in layers if m.stem)
    head = [n for n, m in layers if isinstance(m, QLinear)][-1]
    try:
        in_ch, classes = state[f"{stem}.weight"].shape[1], state[f"{head}.weight"].shape[0]
    except KeyError as e:
        raise ValueError(f"the checkpoint does not fit arch {arch!r}: no key {e}") from None
    slots = {v.numel() for k, v in state.items()
             if k.endswith("neuron.step") and not k.startswith(f"{stem}.")}
    per_step = max(slots, default=1) > 1
    model = build_for_meter(arch, num_classes=classes, in_channels=in_ch, per_step=per_step,
                            T_bound=max(slots) if per_step else None)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise ValueError(f"the checkpoint does not fit arch {arch!r}: "
                         f"{' '.join(first[:2])[:300]}") from None
    return model


def meter_checkpoint(arch: str, path, input_size=None) -> MeterResult:
    """Learned convention for a trained checkpoint (bits from its latents, firing rates from its
    spike counters)."""
    model = model_from_state(arch, load_state(path))
    stem = next(m for m in model.modules() if isinstance(m, QuantLayer) and m.stem)
    return meter_model(model, _input_shape(arch, input_size, stem.weight.shape[1]),
                       convention="learned", arch=arch)


# ----------------------------------------------------------------------------------------- CLI
def _fail(msg: str) -> int:
    print(f"adabit_lite.meter: error: {msg}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m adabit_lite.meter",
                                description="Per-layer and total cost (MACs, size, Bit Budget, "
                                            "S-ACE, NS-ACE, SOPs) of a spiking-quantized network.")
    p.add_argument("--arch", required=True, help=f"one of: {', '.join(ARCH_INPUTS)}")
    p.add_argument("--wst", help="uniform W/S/T, e.g. 16/1/4 (with --assign: the default)")
    p.add_argument("--input", help="input size HxW (default: the architecture's dataset size)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--assign", help="JSON file: layer name -> {Bw, Bs, T} (learned convention)")
    p.add_argument("--checkpoint", help="state dict file of a trained model (learned convention)")
    a = p.parse_args(argv)
    if a.arch not in ARCH_INPUTS:
        return _fail(f"unknown arch {a.arch!r}; accepted: {', '.join(ARCH_INPUTS)}")
    try:
        wst = None if a.wst is None else parse_wst(a.wst)
        size = None if a.input is None else parse_input(a.input)
    except ValueError as e:
        return _fail(str(e))
    if a.assign and a.checkpoint:
        return _fail("give either --assign or --checkpoint, not both")
    try:
        if a.checkpoint:
            res = meter_checkpoint(a.arch, a.checkpoint, size)
        elif a.assign:
            res = meter_assignment(a.arch, a.assign, wst, size)
        elif wst is None:
            return _fail("--wst W/S/T is required without --assign or --checkpoint "
                         "(e.g. --wst 16/1/4)")
        else:
            res = meter_arch(a.arch, wst, size)
    except (OSError, ValueError, json.JSONDecodeError, RuntimeError) as e:
        return _fail(str(e).replace("\n", " "))
    print(json.dumps(res.to_dict()) if a.json else res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
