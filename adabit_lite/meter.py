"""Cost meter (Shen et al.; method.md sections 6 and 9).  Per layer l, per sample, rounded bits:

    S-ACE_l = MACs_l * Bw_l * sum_{t < T_l} Bs_l,t        (= MACs_l * BB_l when Bs is shared)
    SOPs_l  = MACs_l * min(T_l * mean_t Bs_l,t, Bw_l)
    size_l  = weights_l * Bw_l bits
    NS-ACE  = sum_l S-ACE_l * fr_l,   fr_l = non-zero spike entries / (elements * T_l)

Convention "learned": the per-layer bits of a model; the stem is left out of the sums and reported
on a line of its own (as the reference code does).
"""

from __future__ import annotations

from torch import nn

from .layers import LayerReport, layer_reports


def layer_costs(r: LayerReport) -> dict:
    """Cost of one layer from its report (counts per sample)."""
    bs_sum = sum(r.Bs) if len(r.Bs) == r.T else r.Bs[0] * r.T  # per-step or shared Bs
    return {"name": r.name, "kind": r.kind, "stem": r.stem, "Bw": r.Bw, "Bs": r.Bs_mean, "T": r.T,
            "weights": r.weights, "in_features": r.in_features, "macs": r.macs,
            "bit_budget": r.Bw * bs_sum, "s_ace": r.macs * r.Bw * bs_sum,
            "sops": r.macs * min(r.T * r.Bs_mean, r.Bw), "size_bits": r.weights * r.Bw}


def learned_costs(model: nn.Module) -> dict:
    """Totals over the learned (non-stem) layers of a model that has run one forward pass."""
    rows = [layer_costs(r) for r in layer_reports(model)]
    body = [c for c in rows if not c["stem"]]
    return {"macs_g": sum(c["macs"] for c in body) / 1e9,
            "s_ace_g": sum(c["s_ace"] for c in body) / 1e9,
            "sops_g": sum(c["sops"] for c in body) / 1e9,
            "size_mbit": sum(c["size_bits"] for c in body) / 1e6,
            "layers": rows}
