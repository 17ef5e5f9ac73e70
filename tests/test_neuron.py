import pytest
import torch

from adabit_lite.neuron import SpikingNeuron, _SqueezedNeuron, neuron_trace
from adabit_lite.quant import bit_grad_factor, grad_scale, int_codes, lsq_quantize, qrange


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


# ------------------------------------------------------------------ the fused function's branches
class _Code(torch.autograd.Function):
    """S = int_codes(u)[0] with the STE: dS/du = m (inside), dS/dB = c_B * clip."""

    @staticmethod
    def forward(ctx, u, bits, qmin, qmax, firing, factor):
        q, inside, clip = int_codes(u, qmin, qmax, firing)
        ctx.save_for_backward(inside.to(u.dtype), clip.to(u.dtype))
        ctx.factor = factor
        return q

    @staticmethod
    def backward(ctx, grad):
        inside, clip = ctx.saved_tensors
        return grad * inside, (grad * clip).sum() * ctx.factor, None, None, None, None


def _scaled(p, g):
    """p in value, g * dL/dp in gradient (LSQ's gradient scale)."""
    return p * g + (p - p * g).detach()


def ste_reference(x, n: SpikingNeuron, firing=None):
    """Independent unfused neuron: r = (1/T_ste) sum_t A_p * Code(v_t / Vth1_p), A = Vth1 or alpha,
    the gradient scale g on Vth1, alpha and Bs, the reset Vth1 S detached."""
    T, firing = int(n.T), firing or n.firing
    v = out = torch.zeros_like(x)
    total = 0
    for t in range(T):
        p = t if n.per_step else 0
        b = int(n.bits[p])
        qmin, qmax = qrange(b, n.signed)
        g = grad_scale(x.numel(), qmax)
        vth = _scaled(n.step[p], g)
        amp = _scaled(n.alpha[p], g) if n.amplitude else vth
        v = (v / n.tau - out).detach() + x
        s = _Code.apply(v / vth, _scaled(n.bits[p](), g), qmin, qmax, firing,
                        bit_grad_factor(b, qmax))
        out = n.step[p].detach() * s
        total = total + amp * s
    return total / n.T()


def _neuron(T, tau=1.0, firing="round", per_step=False, signed=False, amplitude=False, seed=0):
    n = SpikingNeuron(bits=2, T=T, tau=tau, firing=firing, per_step=per_step, signed=signed,
                      amplitude=amplitude, T_bound=T + 1).double().eval()
    with torch.no_grad():
        n.step.copy_(torch.linspace(0.4, 0.9, n.step.numel(), dtype=torch.float64))
        for i, b in enumerate(n.bits):
            b.latent.fill_(1 + (i + seed) % 3)
        if amplitude:
            n.alpha.copy_(torch.linspace(1.3, 0.5, n.alpha.numel(), dtype=torch.float64))
    return n


def _input(T, signed, shape=(4, 3, 5, 5)):
    g = torch.Generator().manual_seed(10 + T)
    x = torch.randn(shape, generator=g, dtype=torch.float64).abs() * 2
    return (x - 2 if signed else x), torch.randn(shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("T,tau,firing,per_step,signed,amplitude", [
    (1, 1.0, "round", False, False, False), (3, 1.0, "round", False, False, False),
    (4, 2.0, "floor", False, False, False), (3, 1.0, "round", True, False, False),
    (3, 2.0, "floor", True, True, False), (2, 1.0, "floor", False, True, False),
    (3, 1.0, "round", False, True, False),
    (1, 2.0, "floor", False, False, True), (4, 2.0, "floor", False, False, True),
    (3, 1.0, "round", False, False, True), (3, 2.0, "floor", True, False, True),
    (2, 1.0, "round", True, True, True)])
def test_fused_neuron_equals_the_ste_reference(T, tau, firing, per_step, signed, amplitude):
    x, up = _input(T, signed)
    n = _neuron(T, tau, firing, per_step, signed, amplitude)
    y1, gx1, gp1 = _grads(n, x, n, up)
    y2, gx2, gp2 = _grads(lambda z: ste_reference(z, n), x, n, up)
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(gx1, gx2)
    assert gp1.keys() == gp2.keys()
    assert {"T.latent", "step", "bits.0.latent"} <= gp1.keys()
    assert ("alpha" in gp1) == amplitude
    for k in gp1:
        torch.testing.assert_close(gp1[k], gp2[k], msg=k)
    slot = [t if per_step else 0 for t in range(T)]
    _, s = neuron_trace(x, [n.step[p].item() for p in slot], [int(n.bits[p]) for p in slot], T, tau,
                        firing, signed)
    amp = n.alpha if amplitude else n.step
    expect = sum(amp[t if per_step else 0].item() * s[t] for t in range(T)) / T
    torch.testing.assert_close(y1, expect)


@pytest.mark.parametrize("per_step,amplitude", [(False, False), (True, False), (False, True),
                                                (True, True)])
def test_partial_gradients_and_no_grad(per_step, amplitude):
    """Only some inputs need a gradient (frozen bits or T, an input without grad), or none."""
    x, up = _input(3, False)
    n = _neuron(3, 2.0, "floor", per_step, False, amplitude)
    full = _grads(n, x, n, up)
    for b in n.bits:
        b.latent.requires_grad_(False)
    n.T.latent.requires_grad_(False)
    part = _grads(n, x, n, up)
    torch.testing.assert_close(part[0], full[0], rtol=0, atol=0)
    torch.testing.assert_close(part[1], full[1])
    assert set(part[2]) == {"step"} | ({"alpha"} if amplitude else set())
    for k in part[2]:
        torch.testing.assert_close(part[2][k], full[2][k])
    n.zero_grad()
    (n(x) * up).sum().backward()  # x needs no gradient
    torch.testing.assert_close(n.step.grad, full[2]["step"])
    with torch.no_grad():
        torch.testing.assert_close(n(x), full[0], rtol=0, atol=0)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("firing", ["round", "floor", "binary"])
def test_step_loop_fires_exactly_like_int_codes(signed, firing):
    """_Steps.fire mirrors quant.int_codes (halves, zeros, both clip sides), in both dtypes."""
    from adabit_lite.neuron import _Steps

    for dtype in (torch.float32, torch.float64):
        special = torch.tensor([-0.0, 1e-9, -1e-9, 300.0, -300.0], dtype=dtype)
        noise = torch.randn(200, generator=torch.Generator().manual_seed(1), dtype=dtype) * 6
        u = torch.cat([torch.arange(-20, 21, dtype=dtype) / 4, special, noise])
        for bits in (1, 2, 3):
            qmin, qmax = qrange(bits, signed)
            st = _Steps(u, 1.0, firing)
            st.advance(0)
            st.fire(torch.tensor(1.0, dtype=dtype), qmin, qmax, need_clip=True)
            q, inside, clip = int_codes(u, qmin, qmax, firing)
            assert torch.equal(st.s, q) and torch.equal(st.inside, inside.to(dtype))
            assert torch.equal(st.a, clip.to(dtype))


@pytest.mark.parametrize("per_step", [False, True])
def test_other_int_codes_modes_reach_the_function(per_step):
    """A firing mode the module does not offer ('binary') still runs through int_codes."""
    T = 3
    x, up = _input(T, True)
    n = _neuron(T, 1.0, "round", per_step, True)
    with torch.no_grad():
        for b in n.bits:
            b.latent.fill_(1)
    slots = n.active_slots()
    ranges = [qrange(1, True)] * slots

    def fused(z):
        return _SqueezedNeuron.apply(
            z, n.step[:slots], None, torch.stack([b() for b in n.bits[:slots]]), n.T(), T, ranges,
            n.tau, "binary", [grad_scale(z.numel(), 1)] * slots, [bit_grad_factor(1, 1)] * slots,
            False)[0]

    y1, gx1, gp1 = _grads(fused, x, n, up)
    y2, gx2, gp2 = _grads(lambda z: ste_reference(z, n, firing="binary"), x, n, up)
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(gx1, gx2)
    for k in gp2:
        torch.testing.assert_close(gp1[k], gp2[k], msg=k)


@pytest.mark.parametrize("per_step,signed", [(False, False), (True, False), (False, True),
                                             (True, True)])
def test_firing_rate_counts_in_every_branch(per_step, signed):
    x, _ = _input(3, signed)
    n = _neuron(3, 1.0, "round", per_step, signed, amplitude=per_step)
    n.track_rate = True
    n(x)
    _, s = neuron_trace(x, [n.step[t if per_step else 0].item() for t in range(3)],
                        [int(n.bits[t if per_step else 0]) for t in range(3)], 3, signed=signed)
    assert n.spike_count.item() == torch.count_nonzero(s).item() > 0
    assert n.spike_slots.item() == x.numel() * 3


def test_per_step_slots_get_their_own_gradients():
    """Per step: a slot past T gets nothing, and each active slot only its own step's terms."""
    x, up = _input(2, False)
    n = SpikingNeuron(bits=2, T=2, T_bound=4, per_step=True).double().eval()
    with torch.no_grad():
        n.step.copy_(torch.tensor([0.5, 0.7, 0.9, 1.1], dtype=torch.float64))
    y, _, gp = _grads(n, x, n, up)
    assert gp["step"][2:].abs().sum() == 0 and (gp["step"][:2] != 0).all()
    assert "bits.2.latent" not in gp and "bits.3.latent" not in gp
    _, _, gp_ref = _grads(lambda z: ste_reference(z, n), x, n, up)
    torch.testing.assert_close(gp["step"], gp_ref["step"])


# ------------------------------------------------------------------ the old neuron's amplitude
@pytest.mark.parametrize("tau,firing,spikes", [
    (2.0, "floor", [0, 1, 0, 0]),  # v: 0.7, 1.05, 0.225, 0.8125 (the reset subtracts Vth1 = 1)
    (1.0, "round", [1, 0, 1, 1]),  # v: 0.7, 0.4, 1.1, 0.8
])
def test_amplitude_hand_computed_trace(tau, firing, spikes):
    """alpha = 0.5 != Vth1 = 1: the reset subtracts Vth1 S (with alpha S it would be 0.7, 1.05,
    0.725, 1.0625 -> spikes 0, 1, 0, 1 for tau = 2, floor), the output averages alpha S."""
    x = torch.tensor([0.7], dtype=torch.float64)
    n = SpikingNeuron(bits=2, T=4, tau=tau, firing=firing, amplitude=True).double().eval()
    with torch.no_grad():
        n.step.fill_(1.0)
        n.alpha.fill_(0.5)
    assert n(x).item() == pytest.approx(0.5 * sum(spikes) / 4)
    _, s = neuron_trace(x, 1.0, 2, 4, tau, firing)
    assert s[:, 0].tolist() == spikes


def test_amplitude_at_vth_splits_the_lsq_step_gradient():
    """With alpha = Vth1 the amplitude neuron computes the same r, and its dL/dVth1 + dL/dalpha is
    the refined neuron's dL/dVth1 (x, Bs and T gradients unchanged)."""
    x, up = _input(3, False)
    plain = _neuron(3, 2.0, "floor", per_step=True)
    amp = _neuron(3, 2.0, "floor", per_step=True, amplitude=True)
    with torch.no_grad():
        amp.alpha.copy_(amp.step)
    y1, gx1, gp1 = _grads(plain, x, plain, up)
    y2, gx2, gp2 = _grads(amp, x, amp, up)
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(gx1, gx2)
    torch.testing.assert_close(gp1["step"], gp2["step"] + gp2["alpha"])
    for k in gp1:
        if k != "step":
            torch.testing.assert_close(gp1[k], gp2[k], msg=k)


def test_amplitude_is_initialised_to_vth_once():
    n = SpikingNeuron(bits=2, T=2, amplitude=True, per_step=True).train()
    assert n.alpha.shape == n.step.shape
    x = torch.rand(64) * 3
    n(x)
    torch.testing.assert_close(n.alpha.detach(), n.step.detach())
    assert not torch.equal(n.step.detach(), torch.ones(3))
    with torch.no_grad():
        n.alpha.fill_(0.25)
    n(x * 2)  # later batches leave alpha alone
    assert (n.alpha == 0.25).all()


def test_without_amplitude_the_neuron_is_unchanged():
    n = SpikingNeuron(bits=2, T=2)
    assert n.alpha is None and not n.amplitude
    assert "alpha" not in dict(n.named_parameters()) and "alpha" not in n.state_dict()
    with_amp = SpikingNeuron(bits=2, T=2, amplitude=True)
    assert set(n.state_dict()) == set(with_amp.state_dict()) - {"alpha"}
