"""The model zoo: sizes against the published ones, wiring, forward/backward on small inputs.

Size convention found for the published "params" figures: all float parameters of the network
(conv/linear weights and biases, BN affine; our quantizer steps and bit latents excluded), in
millions, *truncated* to two decimals.  It gives SEW-ResNet-34 21.79 (21,797,672; rounding would
give 21.80), ResNet-18 11.17, Spikformer-4-256 4.15 and Spikformer-2-384 5.76 (rounding: 5.77).
"""

import math

import pytest
import torch

from adabit_lite.layers import QuantLayer, layer_reports, quant_layers
from adabit_lite.meter import ARCH_INPUTS, float_param_count, propagate_shapes
from adabit_lite.models import MODEL_NAMES, build_model
from adabit_lite.neuron import SpikingNeuron
from adabit_lite.paper import paper_table

ZOO = ["resnet20", "resnet19", "resnet18", "sew-resnet34", "spikformer-4-384"]


def truncated(x: float, digits: int = 2) -> float:
    return math.floor(x * 10 ** digits + 1e-9) / 10 ** digits


def metered(name):
    c, h, w, k = ARCH_INPUTS[name]
    model = build_model(name, num_classes=k, in_channels=c)
    propagate_shapes(model, (c, h, w))
    return model


def shen(table, arch, wst, column="params_m"):
    df = paper_table(table)
    return float(df[(df["arch"] == arch) & (df["wst"] == wst)][column].iloc[0])


def test_zoo_is_registered():
    for name in ZOO + ["spikformer-4-256", "spikformer-2-384", "small-cnn"]:
        assert name in MODEL_NAMES
    with pytest.raises(ValueError, match="accepted"):
        build_model("resnet-1000")


def test_wide_resnet20_macs_and_wiring():
    model = metered("resnet20")
    reports = layer_reports(model)
    # stem + 3 stages x 3 blocks x 2 convs + 2 downsample convs + fc
    assert len(reports) == 1 + 18 + 2 + 1
    assert sum(r.macs for r in reports) == 2_587_235_328  # 2.5872 G, stem and fc included
    assert [r.stem for r in reports].count(True) == 1 and reports[0].stem
    assert sum(r.kind == "conv" and r.weights in (128 * 256, 256 * 512) for r in reports) == 2
    # every layer but the stem learns its bits; each has its own neuron
    neurons = {id(m.neuron) for _, m in quant_layers(model, include_stem=True)}
    assert len(neurons) == len(reports)
    for _, m in quant_layers(model):
        assert m.wq.bits[0].learnable and m.neuron.bits[0].learnable and not m.neuron.signed


def test_resnet19_size_against_the_published_12_63M():
    model = metered("resnet19")
    weights = sum(r.weights for r in layer_reports(model))
    assert weights == 12_687_232  # tdBN/TET layout: convs + fc 512->256 + fc 256->10
    floats = float_param_count(model)
    assert floats == 12_697_994
    published = shen("shen_table2", "ResNet-19", "16/1/4")
    assert published == 12.63
    # Not matched: 12.63 M lies between our two-fc head (12.70 M) and a single fc (12.57 M).
    # Kept as a documented gap of 0.5 %, not forced.
    assert abs(floats / 1e6 / published - 1) < 0.006
    assert sum(r.macs for r in layer_reports(model)) == 2_285_373_952


def test_resnet18_size():
    model = metered("resnet18")
    assert sum(r.weights for r in layer_reports(model)) == 11_164_352
    assert truncated(float_param_count(model) / 1e6) == 11.17


def test_sew_resnet34_size_is_shen_21_79_by_truncation():
    model = metered("sew-resnet34")
    reports = layer_reports(model)
    assert sum(r.weights for r in reports) == 21_779_648  # conv + fc weights: 21.78 M
    floats = float_param_count(model)
    assert floats == 21_797_672  # torchvision's ResNet-34 count
    assert truncated(floats / 1e6) == shen("shen_table1", "SEW-ResNet-34", "16/1/4") == 21.79
    assert round(floats / 1e6, 2) == 21.80  # rounding would not give the published figure
    assert reports[0].in_shape == (3, 224, 224) and reports[0].out_shape == (64, 112, 112)
    assert reports[-1].in_shape == (512,) and reports[-1].out_shape == (1000,)
    assert sum(r.macs for r in reports) == 3_663_761_408


def test_spikformer_sizes():
    model = metered("spikformer-4-384")
    assert sum(r.weights for r in layer_reports(model)) == 9_281_040
    floats = float_param_count(model)
    # Spikformer paper (Zhou et al., ICLR 2023), CIFAR table: 9.32 M for Spikformer-4-384.
    assert truncated(floats / 1e6) == 9.32
    # Shen et al. print 4.15 M for Spikformer-4-384: the size of Spikformer-4-256 (a copy, sic).
    assert shen("shen_table2", "Spikformer-4-384", "16/1/4") == 4.15
    assert truncated(float_param_count(metered("spikformer-4-256")) / 1e6) == 4.15
    assert truncated(float_param_count(metered("spikformer-2-384")) / 1e6) == 5.76
    # 64 tokens, 12 heads of 32: two attention matmuls of 64 * 64 * 384 MACs per block
    attn = [m for m in model.modules() if hasattr(m, "cost_reports")]
    assert len(attn) == 4
    rows = attn[0].cost_reports("a")
    assert [r.macs for r, _ in rows] == [64 * 64 * 384] * 2
    assert [r.kind for r, _ in rows] == ["attn", "attn"]


SMALL_INPUTS = {  # reduced inputs where the architecture allows, to keep the full-size pass fast
    "resnet20": 8, "resnet19": 8, "resnet18": 8, "sew-resnet34": 32, "spikformer-4-384": 16,
}
NARROW = {"resnet20": 8, "resnet19": 8, "resnet18": 8, "sew-resnet34": 8, "spikformer-4-384": 48}


@pytest.mark.parametrize("name", ZOO)
def test_full_size_forward_matches_shape_propagation(name):
    """Batch 2 through the full-size model (eval, small input); every layer sees the shapes that
    the meter's shape-only pass computes."""
    torch.manual_seed(0)
    c, _, _, k = ARCH_INPUTS[name]
    s = SMALL_INPUTS[name]
    model = build_model(name, num_classes=k, in_channels=c).eval()
    with torch.no_grad():
        y = model(torch.rand(2, c, s, s))
    assert y.shape == (2, k) and torch.isfinite(y).all()
    real = [(r.name, r.in_shape, r.out_shape, r.macs) for r in layer_reports(model)]
    propagate_shapes(model, (c, s, s))
    assert [(r.name, r.in_shape, r.out_shape, r.macs) for r in layer_reports(model)] == real


@pytest.mark.parametrize("name", ZOO)
def test_training_forward_and_gradients_reach_bit_latents(name):
    """A narrow version (same wiring, fewer channels) at 32x32, batch 2, in training mode."""
    torch.manual_seed(0)
    c, _, _, k = ARCH_INPUTS[name]
    model = build_model(name, num_classes=k, in_channels=c, width=NARROW[name]).train()
    x = torch.rand(2, c, 32, 32)
    model(x)  # the first training batch initialises the steps
    with torch.no_grad():  # push some weights beyond the clipping range: Bw gradients need clipping
        for _, m in quant_layers(model):
            m.weight.mul_(4)
    y = model(x)
    assert y.shape == (2, k) and torch.isfinite(y).all()
    y.square().mean().backward()
    latents = []
    for _, m in quant_layers(model):
        latents += [("Bw", m.wq.bits[0].latent), ("Bs", m.neuron.bits[0].latent),
                    ("T", m.neuron.T.latent)]
    layer_neurons = [q.neuron for q in model.modules() if isinstance(q, QuantLayer)]
    extra = [m for m in model.modules()
             if isinstance(m, SpikingNeuron) and not any(m is n for n in layer_neurons)]
    if name.startswith("spikformer"):
        assert len(extra) == 3 * 4  # Q, K, V of 4 blocks, with learnable spike bits
        latents += [("Bs", n.bits[0].latent) for n in extra] + [("T", n.T.latent) for n in extra]
    else:
        assert not extra
    for kind, p in latents:
        assert p.requires_grad and p.grad is not None and torch.isfinite(p.grad).all(), kind
    nonzero = {kind for kind, p in latents if p.grad.abs().sum() > 0}
    assert nonzero == {"Bw", "Bs", "T"}
    stem = next(m for _, m in quant_layers(model, include_stem=True) if m.stem)
    assert stem.wq.bits[0].latent.grad is None and stem.neuron.signed
