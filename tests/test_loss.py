import pytest
import torch
from torch import nn

from adabit_lite.layers import QConv2d, QLinear, QuantConfig
from adabit_lite.loss import BitStats, BitTarget, bit_loss, bit_stats


def small_net(per_step=False):
    torch.manual_seed(0)
    net = nn.Sequential(QConv2d(1, 4, 3, padding=1, cfg=QuantConfig.stem(T=1), stem=True),
                        nn.ReLU(), QConv2d(4, 8, 3, padding=1, cfg=QuantConfig(per_step=per_step)),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), QLinear(8, 10))
    net(torch.rand(2, 1, 6, 6))
    return net


def test_weighted_means_and_bit_budget():
    net = small_net()
    conv, fc = net[2], net[6]
    with torch.no_grad():
        conv.wq.bits[0].latent.fill_(2)
        fc.wq.bits[0].latent.fill_(5.4)  # rounds to 5
        conv.neuron.bits[0].latent.fill_(3)
        fc.neuron.bits[0].latent.fill_(1)
        fc.neuron.T.latent.fill_(1)
    st = bit_stats(net)
    n_w = (288, 80)
    n_x = (4 * 36, 8)
    assert st.W.item() == pytest.approx((288 * 2 + 80 * 5) / sum(n_w))
    assert st.S.item() == pytest.approx((144 * 3 + 8 * 1) / sum(n_x))
    assert st.T.item() == pytest.approx((144 * 2 + 8 * 1) / sum(n_x))
    assert st.bit_budget.item() == pytest.approx(st.W.item() * st.S.item() * st.T.item())


def test_per_step_spike_bits_average_over_active_steps():
    net = small_net(per_step=True)
    neuron = net[2].neuron  # T = 2, T_bound = 3: slots 0, 1 active, slot 2 not
    with torch.no_grad():
        for b, v in zip(neuron.bits, (1, 3, 6)):
            b.latent.fill_(v)
    assert neuron.mean_bits() == 2.0
    st = bit_stats(net)
    assert st.S.item() == pytest.approx((144 * 2 + 8 * 4) / 152)


@pytest.mark.parametrize("target,sign", [("1/1/1", 1.0), ("6/6/3", -1.0)])
def test_bit_loss_gradients_push_every_mean_toward_its_target(target, sign):
    net = small_net()
    tgt = BitTarget.parse(target)
    bit_loss(bit_stats(net), tgt).backward()
    conv, fc = net[2], net[6]
    # dL/dB_l = lam * sign(mean - target) * n_l / sum n  (STE): exact values and signs
    assert conv.wq.bits[0].latent.grad.item() == pytest.approx(sign * 0.04 * 288 / 368)
    assert fc.wq.bits[0].latent.grad.item() == pytest.approx(sign * 0.04 * 80 / 368)
    assert conv.neuron.bits[0].latent.grad.item() == pytest.approx(sign * 0.04 * 144 / 152)
    assert fc.neuron.T.latent.grad.item() == pytest.approx(sign * 0.01 * 8 / 152)
    stem = net[0]
    assert stem.neuron.T.latent.grad is None  # the stem is not in the bit loss
    # one gradient step moves each mean toward the target
    before = bit_stats(net)
    with torch.no_grad():
        for p in net.parameters():
            if p.grad is not None:
                p -= 60.0 * p.grad
    after = bit_stats(net)
    for k, t in (("W", tgt.W), ("S", tgt.S), ("T", tgt.T)):
        assert abs(getattr(after, k).item() - t) < abs(getattr(before, k).item() - t), k


def test_target_parsing():
    assert BitTarget.parse("1.5/1.5/1") == BitTarget(1.5, 1.5, 1.0)
    for bad in ("2/2", "a/b/c", "0.5/1/1"):
        with pytest.raises(ValueError, match="W/S/T"):
            BitTarget.parse(bad)


def test_the_tolerance_band_zeroes_the_bit_loss_near_the_target():
    t = BitTarget.parse("2/2/1", tol=0.25)
    near = BitStats(torch.tensor(2.2, requires_grad=True), torch.tensor(1.8), torch.tensor(1.0))
    assert bit_loss(near, t).item() == 0.0
    far = BitStats(torch.tensor(2.5, requires_grad=True), torch.tensor(1.0), torch.tensor(1.0))
    loss = bit_loss(far, t)
    assert loss.item() == pytest.approx(0.04 * 0.25 + 0.04 * 0.75)
    loss.backward()
    assert far.W.grad.item() == pytest.approx(0.04)
    plain = bit_loss(far, BitTarget.parse("2/2/1"))
    assert plain.item() == pytest.approx(0.04 * 0.5 + 0.04 * 1.0)
