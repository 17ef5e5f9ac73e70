import pytest
import torch

from adabit_lite.neuron import SpikingNeuron, neuron_trace
from adabit_lite.quant import lsq_quantize


@pytest.mark.parametrize("tau,firing,spikes", [
    (1.0, "round", [1, 0, 1, 1]),  # v: 0.7, 0.4, 1.1, 0.8
    (2.0, "round", [1, 0, 1, 0]),  # v: 0.7, 0.05, 0.725, 0.0625
    (1.0, "floor", [0, 1, 1, 0]),  # v: 0.7, 1.4, 1.1, 0.8
    (2.0, "floor", [0, 1, 0, 0]),  # v: 0.7, 1.05, 0.225, 0.8125
])
def test_hand_computed_trace(tau, firing, spikes):
    hand_v = {(1.0, "round"): [0.7, 0.4, 1.1, 0.8], (2.0, "round"): [0.7, 0.05, 0.725, 0.0625],
              (1.0, "floor"): [0.7, 1.4, 1.1, 0.8], (2.0, "floor"): [0.7, 1.05, 0.225, 0.8125]}
    x = torch.tensor([0.7], dtype=torch.float64)
    v, s = neuron_trace(x, vth=1.0, bits=2, T=4, tau=tau, firing=firing)
    assert s[:, 0].tolist() == spikes
    assert v[:, 0].tolist() == pytest.approx(hand_v[(tau, firing)])
    n = SpikingNeuron(bits=2, T=4, tau=tau, firing=firing).double().eval()
    with torch.no_grad():
        n.step.fill_(1.0)
    assert n(x).item() == pytest.approx(sum(spikes) / 4)


def test_multibit_spikes_saturate_and_the_residual_grows():
    x = torch.tensor([5.2])
    v, s = neuron_trace(x, vth=1.0, bits=2, T=3)
    assert s[:, 0].tolist() == [3, 3, 3]  # 2-bit spikes: at most 3
    assert v[:, 0].tolist() == pytest.approx([5.2, 7.4, 9.6])


def test_signed_stem_spikes():
    x = torch.tensor([-3.3, -0.4, 0.5, 200.0])
    _, s = neuron_trace(x, vth=1.0, bits=8, T=1, signed=True)
    assert s[0].tolist() == [-3, 0, 1, 127]


def reference_neuron(x, n: SpikingNeuron):
    """Unfused per-step version: LSQ at every step, residual detached, r = total / T_ste."""
    T = int(n.T)
    v = out = torch.zeros_like(x)
    total = 0
    for t in range(T):
        p = t if n.per_step else 0
        v = (v / n.tau - out).detach() + x
        out = lsq_quantize(v, n.step[p:p + 1], n.bits[p](), n.signed, mode=n.firing)
        total = total + out
    return total / n.T()


def _grads(fn, x, n, up):
    n.zero_grad()
    x = x.clone().requires_grad_()
    y = fn(x)
    (y * up).sum().backward()
    named = {k: p.grad.clone() for k, p in n.named_parameters() if p.grad is not None}
    return y.detach(), x.grad, named


@pytest.mark.parametrize("T,tau,firing,per_step,signed", [
    (1, 1.0, "round", False, False), (3, 1.0, "round", False, False), (4, 2.0, "floor", False, False),
    (3, 1.0, "round", True, False), (2, 2.0, "round", True, False), (3, 1.0, "round", False, True)])
def test_fused_backward_equals_the_unfused_reference(T, tau, firing, per_step, signed):
    g = torch.Generator().manual_seed(T)
    x = torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64).abs() * 2
    if signed:
        x = x - 2
    up = torch.randn(x.shape, generator=g, dtype=torch.float64)
    n = SpikingNeuron(bits=2, T=T, tau=tau, firing=firing, per_step=per_step, signed=signed,
                      T_bound=T + 1).double().eval()
    with torch.no_grad():  # different steps and bits per slot, so a mixed-up slot would show
        n.step.copy_(torch.linspace(0.4, 0.9, n.step.numel(), dtype=torch.float64))
        for i, b in enumerate(n.bits):
            b.latent.fill_(1 + i % 3)
    y1, gx1, gp1 = _grads(n, x, n, up)
    y2, gx2, gp2 = _grads(lambda z: reference_neuron(z, n), x, n, up)
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(gx1, gx2)
    assert gp1.keys() == gp2.keys()
    assert "T.latent" in gp1 and "step" in gp1 and "bits.0.latent" in gp1
    for k in gp1:
        torch.testing.assert_close(gp1[k], gp2[k], msg=k)


def test_T_gradient_is_minus_inner_product_over_T():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(8, 16, generator=g, dtype=torch.float64) * 3
    up = torch.randn(8, 16, generator=g, dtype=torch.float64)
    n = SpikingNeuron(bits=3, T=3).double().train()
    r = n(x)
    (r * up).sum().backward()
    assert n.T.latent.grad.item() == pytest.approx(-(up * r.detach()).sum().item() / 3, rel=1e-12)


def test_squeezing_is_the_time_average_and_dtype_is_kept(device):
    for dtype in (torch.float32, torch.float64):
        x = torch.rand(2, 6, device=device, dtype=dtype) * 4
        n = SpikingNeuron(bits=2, T=3).to(device=device, dtype=dtype).eval()
        r = n(x)
        assert r.dtype == dtype and r.device.type == device.type
        _, s = neuron_trace(x, n.step.item(), 2, 3)
        torch.testing.assert_close(r, (s * n.step).mean(0))


def test_firing_rate_counts_non_zero_spikes():
    n = SpikingNeuron(bits=1, T=2).eval()
    n.track_rate = True
    with torch.no_grad():
        n.step.fill_(1.0)
    n(torch.tensor([0.2, 0.7, 3.0]))  # spikes per step: [0,1,1], [0,0,1] -> 3 of 6
    assert n.spike_count.item() == 3 and n.spike_slots.item() == 6


def test_bad_neuron_options_are_rejected():
    with pytest.raises(ValueError, match="firing"):
        SpikingNeuron(firing="ceil")
    with pytest.raises(ValueError, match="tau"):
        SpikingNeuron(tau=0.5)
