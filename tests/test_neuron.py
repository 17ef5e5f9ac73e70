import pytest
import torch

from adabit_lite import neuron as neuron_mod
from adabit_lite.neuron import SpikingNeuron, State, neuron_step, neuron_trace, squeeze
from adabit_lite.quant import int_codes, qrange
from oracles import lsq_neuron, neuron_codes, ste_neuron


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
    y2, gx2, gp2 = _grads(lambda z: lsq_neuron(z, n), x, n, up)
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
def test_fused_neuron_equals_the_ste_neuron(T, tau, firing, per_step, signed, amplitude):
    x, up = _input(T, signed)
    n = _neuron(T, tau, firing, per_step, signed, amplitude)
    y1, gx1, gp1 = _grads(n, x, n, up)
    y2, gx2, gp2 = _grads(lambda z: ste_neuron(z, n), x, n, up)
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
@pytest.mark.parametrize("firing", ["round", "floor"])
def test_the_step_fires_exactly_like_int_codes(signed, firing):
    """neuron_step's S_t, m_t and c_t are quant.int_codes' (halves, zeros, both clip sides), in
    both dtypes."""
    for dtype in (torch.float32, torch.float64):
        special = torch.tensor([-0.0, 1e-9, -1e-9, 300.0, -300.0], dtype=dtype)
        noise = torch.randn(200, generator=torch.Generator().manual_seed(1), dtype=dtype) * 6
        u = torch.cat([torch.arange(-20, 21, dtype=dtype) / 4, special, noise])
        for bits in (1, 2, 3):
            qmin, qmax = qrange(bits, signed)
            spikes, state = neuron_step(u, None, torch.tensor(1.0, dtype=dtype), qmin, qmax,
                                        firing=firing)
            q, inside, clip = int_codes(u, qmin, qmax, firing)
            assert torch.equal(spikes.S, q) and torch.equal(spikes.inside, inside.to(dtype))
            assert torch.equal(spikes.clip, clip.to(dtype)) and torch.equal(spikes.u, u)
            assert state.v is u and torch.equal(state.reset, q)


def test_the_step_is_pure_state_in_state_out():
    """The step reads x and the state and writes neither; fed its own state back it continues
    the recurrence v_t = v_{t-1} / tau - Vth1 S_{t-1} + x."""
    x = torch.tensor([0.7, 2.6, -0.3, 5.0], dtype=torch.float64)
    state = State(torch.tensor([0.4, 1.1, 0.2, 9.0], dtype=torch.float64),
                  torch.tensor([0.5, 1.0, 0.0, 1.5], dtype=torch.float64))
    before = [x.clone(), state.v.clone(), state.reset.clone()]
    spikes, new = neuron_step(x, state, 0.5, 0, 3, tau=2.0)
    assert all(torch.equal(a, b) for a, b in zip(before, [x, state.v, state.reset]))
    torch.testing.assert_close(new.v, state.v / 2 - state.reset + x, rtol=0, atol=0)
    assert spikes.S.tolist() == [1, 3, 0, 3] and torch.equal(new.reset, 0.5 * spikes.S)
    with pytest.raises(ValueError, match="firing"):
        neuron_step(x, None, 0.5, 0, 3, firing="binary")


def test_the_trace_is_the_book_neuron():
    """neuron_trace (T steps of neuron_step) against the numpy oracle of the book's equations."""
    x = torch.rand(5000, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 3
    for b, T in ((1, 3), (2, 5), (4, 6)):
        _, S = neuron_trace(x, 0.37, b, T)
        assert (S.numpy() == neuron_codes(x.numpy(), 0.37, b, T)).all()


@pytest.mark.parametrize("per_step,amplitude", [(False, False), (True, False), (False, True),
                                                (True, True)])
def test_training_runs_the_step_function(per_step, amplitude, monkeypatch):
    """The module's forward pass (and, per step, its backward pass) call neuron_step itself: T
    calls each, and squeeze gives the module's output bit for bit."""
    monkeypatch.setenv("ADABIT_FUSED", "0")
    calls = []

    def counted(*args, **kw):
        calls.append(1)
        return neuron_step(*args, **kw)

    monkeypatch.setattr(neuron_mod, "neuron_step", counted)
    x, up = _input(3, False)
    n = _neuron(3, 2.0, "floor", per_step, False, amplitude)
    r = n(x)
    assert len(calls) == 3
    (r * up).sum().backward()
    assert len(calls) == (6 if per_step else 3)
    slots = n.active_slots()
    alpha = n.alpha[:slots].detach() if amplitude else None
    ranges = [qrange(int(b), False) for b in n.bits[:slots]]
    direct = squeeze(x, n.step[:slots].detach(), alpha, ranges, 3, 2.0, "floor").r
    assert torch.equal(direct, r.detach())


def test_deterministic_mode_keeps_its_fill_setting():
    """Inside the neuron the NaN fill of torch.empty in deterministic mode is off (every element
    is written before it is read); after it, it is as before, and the numbers are the same."""
    import torch.utils.deterministic as det

    x, up = _input(3, False)
    n = _neuron(3, 1.0, "round", False, False, False)
    plain = _grads(n, x, n, up)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        det_run = _grads(n, x, n, up)
        assert det.fill_uninitialized_memory is True
    finally:
        torch.use_deterministic_algorithms(False)
    assert torch.equal(plain[0], det_run[0]) and torch.equal(plain[1], det_run[1])
    assert all(torch.equal(plain[2][k], det_run[2][k]) for k in plain[2])


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
    _, _, gp_ref = _grads(lambda z: ste_neuron(z, n), x, n, up)
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
