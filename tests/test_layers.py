import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adabit_lite.layers import (QConv2d, QLinear, QuantConfig, clamp_, layer_reports, quant_layers,
                                shape_only)
from adabit_lite.neuron import neuron_trace


def test_squeezing_is_exact_conv_of_mean_equals_mean_of_convs():
    torch.manual_seed(0)
    layer = QConv2d(8, 16, 3, padding=1, cfg=QuantConfig(w_bits=3, s_bits=2, T=4)).double().train()
    x = torch.rand(2, 8, 10, 10, dtype=torch.float64) * 2
    layer(x)  # initialise steps
    layer.eval()
    y = layer(x)
    vth = layer.neuron.step.item()
    _, spikes = neuron_trace(x, vth, 2, 4)
    wq = layer.wq(layer.weight)
    per_step = torch.stack([F.conv2d(vth * s, wq, padding=1) for s in spikes])
    torch.testing.assert_close(y, per_step.mean(0), rtol=0, atol=1e-12)
    assert not torch.allclose(per_step[0], per_step[1])  # the steps really differ


def test_report_counts_weights_features_and_macs():
    conv = QConv2d(3, 8, 3, stride=2, padding=1, cfg=QuantConfig(w_bits=2, s_bits=3, T=1))
    fc = QLinear(8, 10)
    net = nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc).eval()
    with pytest.raises(RuntimeError, match="forward"):
        layer_reports(net)
    net(torch.rand(5, 3, 16, 16))
    r_conv, r_fc = layer_reports(net)
    assert (r_conv.Bw, r_conv.Bs, r_conv.T) == (2, [3], 1)
    assert r_conv.weights == 8 * 3 * 9 and r_conv.in_features == 3 * 16 * 16
    assert r_conv.macs == 8 * 8 * 8 * (3 * 9)  # H_out * W_out * C_out * k^2 * C_in
    assert (r_fc.weights, r_fc.in_features, r_fc.macs, r_fc.T) == (80, 8, 80, 2)


def test_grouped_conv_macs():
    conv = QConv2d(8, 8, 3, padding=1, groups=4).eval()
    conv(torch.rand(1, 8, 6, 6))
    assert conv.report().macs == 6 * 6 * 9 * 8 * 8 // 4


def test_stem_is_fixed_8_bit_signed_and_excluded():
    stem = QConv2d(1, 4, 3, cfg=QuantConfig.stem(T=1), stem=True)
    body = QLinear(4, 2)
    net = nn.ModuleDict({"stem": stem, "body": body})
    assert [n for n, _ in quant_layers(net)] == ["body"]
    assert [n for n, _ in quant_layers(net, include_stem=True)] == ["stem", "body"]
    assert stem.neuron.signed and int(stem.wq.bits[0]) == 8 and int(stem.neuron.bits[0]) == 8
    assert not stem.wq.bits[0].learnable and not stem.neuron.bits[0].learnable
    assert stem.neuron.T.learnable


def test_layers_work_in_float64_with_gradients_everywhere(device):
    torch.manual_seed(1)
    layer = QConv2d(2, 3, 3, cfg=QuantConfig(T=2)).to(device=device, dtype=torch.float64).train()
    x = torch.rand(2, 2, 5, 5, dtype=torch.float64, device=device)
    y = layer(x)
    assert y.dtype == torch.float64
    y.square().mean().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.dtype == torch.float64, name
        assert torch.isfinite(p.grad).all(), name


def test_clamp_pulls_latents_and_steps_back():
    layer = QLinear(4, 4, cfg=QuantConfig(w_bits=4, s_bits=4, T=2))
    with torch.no_grad():
        layer.wq.bits[0].latent.fill_(-1.0)
        layer.neuron.bits[0].latent.fill_(40.0)
        layer.neuron.T.latent.fill_(0.2)
        layer.wq.step.fill_(-0.5)
    clamp_(layer)
    assert layer.wq.bits[0].latent.item() == 1.0
    assert layer.neuron.bits[0].latent.item() == 6.0  # bound s_bits + 2
    assert layer.neuron.T.latent.item() == 1.0
    assert layer.wq.step.item() > 0


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="w_bits"):
        QuantConfig(w_bits=0)
    with pytest.raises(ValueError, match="s_bits"):
        QuantConfig(s_bits=4.5)


def test_full_precision_layers_bypass_neuron_and_quantizer():
    torch.manual_seed(2)
    cfg = QuantConfig(w_bits=2, s_bits=2, T=3, full_precision=True)
    conv = QConv2d(3, 4, 3, stride=2, padding=1, bias=True, cfg=cfg).train()
    fc = QLinear(6, 5, cfg=cfg).train()
    x = torch.rand(2, 3, 9, 9, requires_grad=True)
    z = torch.rand(7, 6)
    y = conv(x)
    assert torch.equal(y, F.conv2d(x, conv.weight, conv.bias, stride=2, padding=1))
    assert torch.equal(fc(z), F.linear(z, fc.weight, fc.bias))
    (y.square().sum() + fc(z).sum()).backward()
    for layer in (conv, fc):
        assert layer.weight.grad is not None and layer.bias.grad is not None
        for name, p in layer.named_parameters():
            if name not in ("weight", "bias"):  # steps, bit latents, T
                assert p.grad is None, name
        assert not bool(layer.neuron.initialized) and not bool(layer.wq.initialized)
    torch.testing.assert_close(x.grad, torch.autograd.grad(
        F.conv2d(x, conv.weight, conv.bias, stride=2, padding=1).square().sum(), x)[0])
    r = conv.report("conv")
    assert r.full_precision and (r.Bw, r.Bs, r.T) == (2, [2], 3)
    assert not QuantConfig().full_precision


def test_report_says_whether_a_layer_is_full_precision():
    net = nn.Sequential(QConv2d(1, 2, 3, cfg=QuantConfig.stem(T=1, full_precision=True), stem=True),
                        QConv2d(2, 2, 3, cfg=QuantConfig(T=1))).eval()
    net(torch.rand(1, 1, 8, 8))
    stem, body = layer_reports(net)
    assert stem.full_precision and stem.stem and (stem.Bw, stem.Bs) == (8, [8])
    assert not body.full_precision
    assert QuantConfig.stem().full_precision is False


def test_amplitude_and_old_neuron_options_reach_the_neuron():
    cfg = QuantConfig(T=2, tau=2.0, firing="floor", amplitude=True, per_step=True)
    layer = QLinear(4, 3, cfg=cfg).train()
    n = layer.neuron
    assert n.amplitude and n.tau == 2.0 and n.firing == "floor" and n.alpha.shape == (3,)
    layer(torch.rand(5, 4)).sum().backward()
    torch.testing.assert_close(n.alpha.detach(), n.step.detach())  # initialised to Vth1
    assert n.alpha.grad is not None and n.alpha.grad[:2].abs().sum() > 0
    assert QLinear(4, 3).neuron.alpha is None


def test_shape_only_skips_the_arithmetic_of_its_own_model_only():
    torch.manual_seed(0)
    sized, other = QConv2d(1, 3, 3, padding=1), QConv2d(1, 3, 3, padding=1)
    x = torch.rand(2, 1, 5, 5)
    with shape_only(sized):
        y = sized(x)
        z = other(x)  # a second model in the same process computes as usual
    assert y.shape == (2, 3, 5, 5) and not y.any()
    assert sized.report("c").macs == 5 * 5 * 9 * 3
    assert z.abs().sum() > 0
    assert sized(x).abs().sum() > 0  # after the context the layer computes again
