"""Cost meter (Shen et al.; book/method.md#method-meter,
book/definitions.md#def-meter): MACs, size, Bit Budget, S-ACE, NS-ACE, SOPs.

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
  size counts conv/fc weights only (book/method.md#method-meter-counts): 21.78 M for SEW-ResNet-34, and reports the float
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
stem defaults to 8/8 bits and the T of ``--wst`` (else 1).  Bw and Bs are whole numbers from 1 to
32, T from 1 to 64 (``4.0`` is read as 4; ``4.7``, ``true`` or ``"4"`` are refused).  A checkpoint
is a ``torch.save``'d state dict, or a dict with a ``"model"`` key holding one; it is loaded with
``weights_only=True`` and its bits are read from the LearnableInt latents, its firing rates from
the neurons' spike counters.  A training checkpoint (train.py's ``checkpoint.pt``) also gives its
input size and channels (``"model_spec"``) and its arch and width (``"parameters"``): it is metered
at the size it was trained on, and an ``--input`` or ``--arch`` that contradicts it is refused.

Every bad input (a missing or damaged file, a malformed assignment, a bad option) is answered with
one line on stderr and exit code 2; nothing is printed on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import numbers
import pickle
import re
import sys
import warnings
import zipfile
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from .bits import LearnableInt
from .layers import LayerReport, QLinear, QuantConfig, QuantLayer, shape_only
from .loss import weighted_means
from .neuron import SpikingNeuron
from .quant import StepQuantizer
from .wst import parse_wst as _parse_wst

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
ASSIGN_KEYS = {"Bw": WIDE_BITS, "Bs": WIDE_BITS, "T": WIDE_T}  # key of an assignment: its bound


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
        with shape_only(model):
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
        W, S, T = weighted_means(body["weights"], body["Bw"], body["in_features"], body["Bs"],
                                 body["T"])
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
    """'W/S/T' -> (W, S, T), three integers >= 1 (``wst.parse_wst``)."""
    return _parse_wst(text, integers=True)


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
                    per_step: bool = False, T_bound: int | None = None, width: int | None = None,
                    amplitude: bool = False) -> nn.Module:
    """The architecture with bounds wide enough for any bits it is given (eval mode).
    ``width`` and ``amplitude``: as the training run's options of those names."""
    from .models import build_model

    _check_arch(arch)
    c, _, _, k = ARCH_INPUTS[arch]
    tb = T_bound or WIDE_T
    cfg = QuantConfig(w_bits=4, s_bits=4, T=1, w_bound=WIDE_BITS, s_bound=WIDE_BITS, T_bound=tb,
                      per_step=per_step, amplitude=amplitude)
    stem_cfg = QuantConfig(w_bits=8, s_bits=8, T=1, w_bound=WIDE_BITS, s_bound=WIDE_BITS,
                           T_bound=WIDE_T, learn_w=False, learn_s=False, signed_spikes=True)
    extra = {} if width is None else {"width": width}
    return build_model(arch, num_classes=num_classes or k, in_channels=in_channels or c, cfg=cfg,
                       stem_cfg=stem_cfg, **extra).eval()


def _input_shape(arch: str, input_size, in_channels: int | None = None) -> tuple[int, int, int]:
    c, h, w, _ = ARCH_INPUTS[arch]
    if input_size is not None:
        h, w = parse_input(input_size) if isinstance(input_size, str) else tuple(input_size)
    return (in_channels or c, h, w)


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return (lines[0] if lines else type(e).__name__)[:200]


def _propagate(model: nn.Module, input_shape: tuple[int, int, int], arch: str) -> None:
    """``propagate_shapes``, with a ValueError when the input cannot pass (too small, mostly)."""
    try:
        propagate_shapes(model, input_shape)
    except RuntimeError as e:
        raise ValueError(f"{arch} cannot take a {input_shape[1]}x{input_shape[2]} input "
                         f"({_first_line(e)}); give a larger input size") from None


@lru_cache(maxsize=32)
def _arch_rows(arch: str, input_shape: tuple[int, int, int]) -> tuple[tuple, int]:
    """(reports of every row, float parameter count) of ``arch`` at ``input_shape``; cached, so
    metering many W/S/T settings of one architecture builds it once."""
    from .models import build_model

    model = build_model(arch, num_classes=ARCH_INPUTS[arch][3], in_channels=input_shape[0])
    _propagate(model, input_shape, arch)
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
            raise ValueError("takes one Bs for all time steps, not a per-step list")
        if len(Bs) != int(neuron.T):
            raise ValueError(f"{len(Bs)} per-step Bs given for T = {int(neuron.T)}")
        for b, v in zip(neuron.bits, Bs):
            b.set_(v)
    else:
        for b in neuron.bits:
            b.set_(Bs)


def _show(value) -> str:
    """``value`` as JSON writes it (for error messages)."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _kind(value, in_json: bool = False) -> str:
    """'a list', 'an int', ... ('a JSON array' ``in_json``): the type of ``value``."""
    names = {dict: "JSON object", list: "JSON array", str: "string"} if in_json else {}
    name = names.get(type(value), type(value).__name__)
    return f"{'an' if name[0] in 'aeiouAEIOU' else 'a'} {name}"


def _whole(value, key: str, label: str | None = None) -> int:
    """An assignment value: a whole number from 1 to the bound of ``key`` (4.0 is 4; 4.7, true
    and "4" are refused).  ``label`` names it in the error (default: ``key``)."""
    high = ASSIGN_KEYS[key]
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(value) and float(value).is_integer() and 1 <= value <= high)
    if not ok:
        raise ValueError(f"{label or key} must be a whole number from 1 to {high}, "
                         f"got {_show(value)}")
    return int(value)


def check_assignment(assignment) -> dict:
    """``assignment`` with its values checked and made ints: {layer name: {"Bw", "Bs", "T"}}, Bs a
    whole number or a list of them (one per time step).  Raises ValueError naming the layer and
    the key; layer names and the keys each layer takes are checked by ``apply_assignment``."""
    if not isinstance(assignment, dict):
        raise ValueError('an assignment must be a JSON object of layer name -> {"Bw", "Bs", "T"}, '
                         f"not {_kind(assignment, True)}")
    checked = {}
    for name, entry in assignment.items():
        if not isinstance(entry, dict):
            raise ValueError(f"layer {name!r} must map to an object such as "
                             f'{{"Bw": 4, "Bs": 4, "T": 2}}, got {_show(entry)}')
        out = dict(entry)
        try:
            for key in ASSIGN_KEYS:
                v = entry.get(key)
                if v is None and key not in entry:
                    continue
                if key == "Bs" and isinstance(v, (list, tuple)):
                    if not 1 <= len(v) <= WIDE_T:
                        raise ValueError(f"Bs lists {len(v)} per-step values; give 1 to {WIDE_T}")
                    out[key] = [_whole(b, key, f"Bs[{i}]") for i, b in enumerate(v)]
                else:
                    out[key] = _whole(v, key)
            if isinstance(out.get("Bs"), list) and "T" in out and len(out["Bs"]) != out["T"]:
                raise ValueError(f"Bs lists {len(out['Bs'])} per-step values but T is {out['T']}")
        except ValueError as e:
            raise ValueError(f"layer {name!r}: {e}") from None
        checked[name] = out
    return checked


def apply_assignment(model: nn.Module, assignment: dict, default=None) -> None:
    """Set the bits of ``model`` from {layer name: {"Bw", "Bs", "T"}}; unnamed layers get
    ``default`` (W, S, T).  Without a default every non-stem layer and attention neuron must be
    named.  Raises ValueError naming unknown layers, bad keys or values, or missing layers."""
    assignment = check_assignment(assignment)
    targets = _neurons_by_name(model)
    layer_neurons = {id(m.neuron) for m in targets.values() if isinstance(m, QuantLayer)}
    targets = {n: m for n, m in targets.items() if id(m) not in layer_neurons}
    unknown = sorted(map(str, set(assignment) - set(targets)))
    if unknown:
        raise ValueError(f"unknown layer names in the assignment: {', '.join(unknown)}; "
                         f"accepted: {', '.join(targets)}")
    if default is not None:
        W, S, T = default
        try:
            for m in targets.values():
                if isinstance(m, QuantLayer):
                    if m.stem:
                        m.neuron.T.set_(T)
                        continue
                    m.wq.bits[0].set_(W)
                    m = m.neuron
                _set_neuron(m, S, T)
        except ValueError as e:
            raise ValueError(f"default W/S/T {W}/{S}/{T}: {e}") from None
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
            raise ValueError(f"layer {name!r}: keys {sorted(map(str, bad))} not accepted; "
                             f"use {sorted(allowed)}")
        if default is None and not getattr(m, "stem", False) and set(entry) != allowed:
            raise ValueError(f"layer {name!r}: needs all of {sorted(allowed)} when no default "
                             "W/S/T is given")
        try:
            if isinstance(m, QuantLayer):
                if "Bw" in entry:
                    m.wq.bits[0].set_(entry["Bw"])
                m = m.neuron
            _set_neuron(m, entry.get("Bs"), entry.get("T"))
        except ValueError as e:
            raise ValueError(f"layer {name!r}: {e}") from None


def read_assignment(path) -> dict:
    """The assignment in a JSON file.  Raises ValueError naming the file and what is wrong."""
    path = Path(path)
    what = 'layer name -> {"Bw", "Bs", "T"}'
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not an assignment file; give a JSON file "
                         f"mapping {what}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file; give a JSON file mapping {what}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text (UTF-8) file; give a JSON file mapping "
                         f"{what}") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read it ({e.strerror or e})") from None
    if not text.strip():
        raise ValueError(f"{path} is empty; give a JSON file mapping {what}")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e.msg} at line {e.lineno} column "
                         f"{e.colno}); fix it or write it with json.dump") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds {_kind(obj, True)}; an assignment is a JSON object "
                         f"mapping {what}")
    return obj


def meter_assignment(arch: str, assignment, wst=None, input_size=None) -> MeterResult:
    """Learned convention for per-layer bits given as a dict or a JSON file path.  Raises
    ValueError (naming the file, the layer and the key) for a bad assignment."""
    _check_arch(arch)
    where = ""
    if not isinstance(assignment, dict):
        where = f"{assignment}: "
        assignment = read_assignment(assignment)
    default = None if wst is None else (parse_wst(wst) if isinstance(wst, str) else tuple(wst))
    if default is not None:  # the default W/S/T within the meter's bounds
        for letter, key, v in zip("WST", ASSIGN_KEYS, default):
            _whole(v, key, f"W/S/T {'/'.join(map(str, default))}: {letter}")
    try:
        assignment = check_assignment(assignment)
        lists = [len(e["Bs"]) for e in assignment.values() if isinstance(e.get("Bs"), list)]
        steps = lists + [e["T"] for e in assignment.values() if "T" in e] + (
            [default[2]] if default is not None else [])
        model = build_for_meter(arch, per_step=bool(lists),
                                T_bound=min(max(steps), WIDE_T) if lists else None)
        apply_assignment(model, assignment, default)
    except ValueError as e:
        raise ValueError(where + str(e)) from None
    _propagate(model, _input_shape(arch, input_size), arch)
    return meter_model(model, convention="learned", arch=arch)


def _torch_load(path: Path):
    """``torch.load(path, weights_only=True)`` on the CPU.  Raises ValueError naming the file,
    what is wrong with it and what to do."""
    redo = "write it again (torch.save) or copy it anew"
    if path.is_dir():
        inside = path / "checkpoint.pt"
        hint = f"give {inside}" if inside.is_file() else "give a file written by torch.save"
        raise ValueError(f"{path} is a folder, not a checkpoint file; {hint}")
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file; give a checkpoint written by torch.save (e.g. a "
                         "run folder's checkpoint.pt)") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read it ({e.strerror or e})") from None
    if not head:
        raise ValueError(f"{path} is empty (0 bytes), not a checkpoint; {redo}")
    zipped = head.startswith(b"PK\x03\x04")  # torch.save's format; older torch: a pickle (0x80)
    if not zipped and head[:1] != b"\x80":
        raise ValueError(f"{path} is not a torch checkpoint (torch.save did not write it); give a "
                         "state dict or a run's checkpoint.pt written by torch.save")
    if zipped and not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is a truncated or damaged checkpoint (its zip archive has no "
                         f"end); {redo}")
    try:
        with warnings.catch_warnings():  # torch warns (several lines) about odd pickle protocols
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if refused:
            raise ValueError(f"{path} holds objects that torch.load(weights_only=True) refuses "
                             f"({refused.group(1)}), or is damaged; save only tensors and plain "
                             "containers (model.state_dict())") from None
        raise ValueError(f"{path} is a damaged checkpoint or not one ({_first_line(e)}); "
                         f"{redo}") from None
    except Exception as e:  # noqa: BLE001 -- torch raises many types on a damaged file
        raise ValueError(f"{path} is a damaged checkpoint or not one ({_first_line(e)}); "
                         f"{redo}") from None


def load_checkpoint(path) -> tuple[dict, dict]:
    """(state dict, run info) of a checkpoint file: a bare state dict, or a dict with a "model"
    key holding one (train.py's checkpoints, whose "model_spec" and "parameters" make the run
    info; else it is empty).  Raises ValueError naming the file, what is wrong and what to do."""
    path = Path(path)
    obj = _torch_load(path)
    info = {}
    if isinstance(obj, dict) and "model" in obj:
        info = {k: obj[k] for k in ("model_spec", "parameters") if isinstance(obj.get(k), dict)}
        obj = obj["model"]
    todo = "save model.state_dict(), or a dict with a 'model' key holding it"
    if not isinstance(obj, dict) or not obj:
        empty = " with no entries" if isinstance(obj, dict) else ""
        raise ValueError(f"{path} holds {_kind(obj)}{empty}, not a state dict nor a dict with a "
                         f"'model' key; {todo}")
    odd = next((k for k, v in obj.items() if not isinstance(v, torch.Tensor)), None)
    if odd is not None:
        raise ValueError(f"{path} is not a state dict nor a dict with a 'model' key (its entry "
                         f"{str(odd)[:60]!r} is {_kind(obj[odd])}, not a tensor); {todo}")
    return obj, info


def load_state(path) -> dict:
    """A checkpoint's state dict (a bare state dict or a dict with a "model" key)."""
    return load_checkpoint(path)[0]


def model_from_state(arch: str, state: dict, width: int | None = None) -> nn.Module:
    """Build ``arch`` to match ``state`` (classes, input channels, per-step neurons, amplitude
    neurons) and load it; ``width``: the run's width option (None: the model's default)."""
    probe = build_for_meter(arch, width=width)
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
    amplitude = any(k.endswith("neuron.alpha") for k in state)
    model = build_for_meter(arch, num_classes=classes, in_channels=in_ch, per_step=per_step,
                            T_bound=max(slots) if per_step else None, width=width,
                            amplitude=amplitude)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise ValueError(f"the checkpoint does not fit arch {arch!r}: "
                         f"{' '.join(ln.strip() for ln in first[:2])[:300]}") from None
    return model


def _spec_shape(spec: dict, path, channels: int) -> tuple[int, int, int]:
    """(C, H, W) of a training checkpoint's model_spec, checked against its stem's channels."""
    try:
        c, (h, w) = spec["in_channels"], spec["image_size"]
        ok = all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (c, h, w))
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{path}: its model_spec {_show(spec)[:120]} has no valid in_channels and "
                         "image_size [H, W]; the file is damaged or not train.py's")
    if c != channels:
        raise ValueError(f"{path}: its model_spec says {c} input channels but its stem takes "
                         f"{channels}; the file is inconsistent")
    return (c, h, w)


def meter_checkpoint(arch: str, path, input_size=None) -> MeterResult:
    """Learned convention for a trained checkpoint (bits from its latents, firing rates from its
    spike counters).  A training checkpoint (train.py's) is metered at the input size and
    channels of its model_spec, built at its run's width; an ``input_size`` or ``arch`` that
    contradicts it raises ValueError, as does a file that is not a fitting checkpoint."""
    _check_arch(arch)
    state, info = load_checkpoint(path)
    params, spec = info.get("parameters", {}), info.get("model_spec")
    run_arch = params.get("arch")
    if isinstance(run_arch, str) and run_arch != arch:
        hint = f"give --arch {run_arch}" if run_arch in ARCH_INPUTS else "the meter cannot build it"
        raise ValueError(f"{path} is a checkpoint of a {run_arch} run, not {arch}; {hint}")
    width = params.get("width")
    try:
        model = model_from_state(arch, state, width if isinstance(width, int) else None)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    stem = next(m for m in model.modules() if isinstance(m, QuantLayer) and m.stem)
    channels = stem.weight.shape[1]
    if spec is None:
        shape = _input_shape(arch, input_size, channels)
    else:
        shape = _spec_shape(spec, path, channels)
        if input_size is not None:
            h, w = parse_input(input_size) if isinstance(input_size, str) else tuple(input_size)
            if (h, w) != shape[1:]:
                raise ValueError(f"input {h}x{w} contradicts {path}, a run on {shape[1]}x"
                                 f"{shape[2]} inputs (its model_spec); leave the input size out "
                                 f"or give {shape[1]}x{shape[2]}")
    _propagate(model, shape, arch)
    return meter_model(model, convention="learned", arch=arch)


# ----------------------------------------------------------------------------------------- CLI
PROG = "adabit_lite.meter"


def _fail(msg: str) -> int:
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    return 2


class _Parser(argparse.ArgumentParser):
    """argparse with the meter's one-line errors (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"{PROG}: error: {message} (see --help)\n")


def main(argv=None) -> int:
    """The command line; returns the exit code (2 and one line on stderr for any bad input)."""
    p = _Parser(prog="python -m adabit_lite.meter",
                description="Per-layer and total cost (MACs, size, Bit Budget, S-ACE, NS-ACE, "
                            "SOPs) of a spiking-quantized network.",
                epilog="A bad input is answered with one line on stderr and exit code 2.")
    p.add_argument("--arch", required=True, help=f"one of: {', '.join(ARCH_INPUTS)}")
    p.add_argument("--wst", help="uniform W/S/T, e.g. 16/1/4 (with --assign: the default for the "
                                 "layers it does not name; not with --checkpoint)")
    p.add_argument("--input", help="input size HxW (default: the architecture's dataset size; "
                                   "with a training checkpoint: the size it was trained on, from "
                                   "its model_spec, which --input may repeat but not change)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--assign", help="JSON file: layer name -> {Bw, Bs, T} (learned convention); "
                                    "whole numbers, Bw and Bs 1 to 32 (Bs may be a per-step "
                                    "list), T 1 to 64")
    p.add_argument("--checkpoint", help="state dict file of a trained model, or train.py's "
                                        "checkpoint.pt (learned convention; the latter also sets "
                                        "the input size and channels)")
    try:
        a = p.parse_args(argv)
    except SystemExit as e:  # --help (0), or a usage error already told in one line (2)
        return int(e.code or 0)
    if a.arch not in ARCH_INPUTS:
        return _fail(f"unknown arch {a.arch!r}; accepted: {', '.join(ARCH_INPUTS)}")
    try:
        wst = None if a.wst is None else parse_wst(a.wst)
        size = None if a.input is None else parse_input(a.input)
    except ValueError as e:
        return _fail(str(e))
    if a.assign is not None and a.checkpoint is not None:
        return _fail("give either --assign or --checkpoint, not both")
    for option, value in (("--assign", a.assign), ("--checkpoint", a.checkpoint)):
        if value is not None and not value.strip():
            return _fail(f"{option} needs a file name, got an empty one")
    if a.checkpoint is not None and wst is not None:
        return _fail("--wst has no meaning with --checkpoint (its bits are the checkpoint's); "
                     "leave it out")
    try:
        if a.checkpoint is not None:
            res = meter_checkpoint(a.arch, a.checkpoint, size)
        elif a.assign is not None:
            res = meter_assignment(a.arch, a.assign, wst, size)
        elif wst is None:
            return _fail("--wst W/S/T is required without --assign or --checkpoint "
                         "(e.g. --wst 16/1/4)")
        else:
            res = meter_arch(a.arch, wst, size)
    except (OSError, ValueError, RuntimeError) as e:
        return _fail(" ".join(str(e).split("\n")))
    print(json.dumps(res.to_dict()) if a.json else res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
