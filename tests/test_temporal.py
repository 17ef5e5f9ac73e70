"""The time-preserving layer mode (adabit_lite.temporal) and the event CNN (models/temporal.py):
a hand-computed trace, gradients against an unfused LSQ reference, the exact relation to the
squeezed layers on a constant input, order dependence (and the time-average control), the meter,
and training on moving-digits."""

import dataclasses
import math

import pytest
import torch

from adabit_lite.data import make_dataset
from adabit_lite.layers import QConv2d, QuantConfig, layer_reports, quant_layers
from adabit_lite.loss import bit_stats
from adabit_lite.meter import layer_costs, measure_firing, meter_model
from adabit_lite.models import build_model
from adabit_lite.neuron import neuron_trace
from adabit_lite.temporal import TemporalNeuron, TQConv2d, TQLinear, time_neuron_trace
from adabit_lite.train import OptionError, TrainConfig, load_trained, train
from oracles import lsq_time_neuron


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def fixed_neuron(bits=2, frames=3, step=0.5, **kw) -> TemporalNeuron:
    n = TemporalNeuron(bits=bits, frames=frames, **kw)
    with torch.no_grad():
        n.step.fill_(step)
        n.initialized.fill_(True)  # keep this step (no initialisation on the first batch)
    return n


# ------------------------------------------------------------------ the neuron
def test_a_hand_computed_three_step_trace():
    # Vth1 = 0.5, Bs = 2 (S in 0..3), tau = 1, round = floor(u + 1/2); two elements, x_t differs
    x = torch.tensor([[0.375, 2.0], [0.75, 0.125], [-0.25, 0.0]])  # [T=3, 2]
    # element 0: v = 0.375 -> S 1 | v = 0.375 - 0.5 + 0.75 = 0.625 -> S 1 | v = 0.625 - 0.5 - 0.25
    #            = -0.125 -> S 0
    # element 1: v = 2 -> u 4, clipped to S 3 | v = 2 - 1.5 + 0.125 = 0.625 -> S 1 |
    #            v = 0.625 - 0.5 + 0 = 0.125 -> S 0
    v, S = time_neuron_trace(x, 0.5, 2)
    assert torch.equal(v, torch.tensor([[0.375, 2.0], [0.625, 0.625], [-0.125, 0.125]]))
    assert torch.equal(S, torch.tensor([[1.0, 3.0], [1.0, 1.0], [0.0, 0.0]]))
    n = fixed_neuron().eval()
    assert torch.equal(n(x), 0.5 * S)  # y_t = Vth1 S_t, time axis kept
    # the old neuron's rules: tau = 2 (v_{t-1} halved), floor
    # v = 0.375 -> S 0 | v = 0.1875 - 0 + 0.75 = 0.9375 -> S 1 | v = 0.46875 - 0.5 - 0.25 -> S 0
    v, S = time_neuron_trace(x[:, :1], 0.5, 2, tau=2.0, firing="floor")
    assert torch.equal(v[:, 0], torch.tensor([0.375, 0.9375, -0.28125]))
    assert torch.equal(S[:, 0], torch.tensor([0.0, 1.0, 0.0]))
    n = fixed_neuron(tau=2.0, firing="floor").eval()
    assert torch.equal(n(x[:, :1]), 0.5 * S)


def test_the_neuron_refuses_an_input_without_its_frames():
    with pytest.raises(ValueError, match=r"\[T=3, B"):
        fixed_neuron()(torch.zeros(4, 2))


@pytest.mark.parametrize("kw", [{}, {"tau": 2.0, "firing": "floor"}, {"per_step": True},
                                {"signed": True}])
def test_gradients_match_an_unfused_lsq_reference(kw):
    g = torch.Generator().manual_seed(0)
    T = 4
    x = (torch.randn(T, 3, 5, generator=g) * 0.8).requires_grad_()
    G = torch.randn(T, 3, 5, generator=g)
    n = fixed_neuron(bits=2, frames=T, step=0.3, **kw).train()
    if n.per_step:
        with torch.no_grad():
            n.step.copy_(torch.tensor([0.3, 0.25, 0.35, 0.2]))
        n.bits[1].set_(3)

    def grads(fn):
        for p in [x, n.step] + [b.latent for b in n.bits]:
            p.grad = None
        y = fn(x)
        (y * G).sum().backward()
        return y.detach(), x.grad.clone(), n.step.grad.clone(), torch.stack(
            [b.latent.grad for b in n.bits])

    y, gx, gs, gb = grads(n)
    y_ref, gx_ref, gs_ref, gb_ref = grads(lambda x: lsq_time_neuron(n, x))
    assert torch.equal(y, y_ref)
    assert torch.equal(gx, gx_ref)
    torch.testing.assert_close(gs, gs_ref, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(gb, gb_ref, rtol=1e-5, atol=1e-7)
    assert gb.abs().sum() > 0 and gs.abs().sum() > 0  # some spikes clip, so Bs gets a gradient
    assert not n.T.learnable and int(n.T) == T
    with pytest.raises(ValueError, match="outside the bounds"):
        n.T.set_(T - 1)  # T is fixed at the frames


# ------------------------------------------------------------------ constant input = squeezed
def twin_layers(T=4):
    """A squeezed QConv2d and a TQConv2d with the same weights, steps and bits."""
    torch.manual_seed(1)
    cfg = QuantConfig(w_bits=3, s_bits=2, T=T, learn_T=False)
    sq = QConv2d(3, 4, 3, padding=1, cfg=cfg)
    tp = TQConv2d(3, 4, 3, padding=1, cfg=cfg, frames=T)
    tp.load_state_dict(sq.state_dict(), strict=False)  # the squeezed T latent has other bounds
    with torch.no_grad():
        for layer in (sq, tp):
            layer.neuron.step.fill_(0.3)
            layer.wq.step.fill_(0.2)
            layer.neuron.initialized.fill_(True)
            layer.wq.initialized.fill_(True)
    return sq.train(), tp.train()


def test_a_constant_input_gives_the_squeezed_layers_spikes_and_output():
    T = 4
    sq, tp = twin_layers(T)
    x = torch.rand(2, 3, 6, 6) * 1.5
    xt = x.expand(T, *x.shape)
    # exact: the same spikes at every step, and the same r = (1/T) sum_t Vth1 S_t
    _, S_sq = neuron_trace(x, 0.3, 2, T)
    _, S_tp = time_neuron_trace(xt, 0.3, 2)
    assert torch.equal(S_sq, S_tp)
    y_steps = tp.neuron(xt)
    total = y_steps[0].clone()
    for t in range(1, T):
        total += y_steps[t]
    assert torch.equal(total / T, sq.neuron(x))
    # the layers: mean_t conv(Vth1 S_t) = conv(r) up to float round-off (linearity), and the
    # gradients agree when the loss sees the mean over t
    G = torch.randn(2, 4, 6, 6)
    xs, xts = x.clone().requires_grad_(), xt.clone().requires_grad_()
    out_sq, out_tp = sq(xs), tp(xts).mean(0)
    torch.testing.assert_close(out_tp, out_sq, rtol=1e-5, atol=1e-6)
    (out_sq * G).sum().backward()
    (out_tp * G).sum().backward()
    torch.testing.assert_close(xts.grad.sum(0), xs.grad, rtol=1e-5, atol=1e-6)
    for a, b in [(tp.weight, sq.weight), (tp.neuron.step, sq.neuron.step),
                 (tp.wq.step, sq.wq.step), (tp.neuron.bits[0].latent, sq.neuron.bits[0].latent),
                 (tp.wq.bits[0].latent, sq.wq.bits[0].latent)]:
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)
    # the same report and so the same cost: per-step MACs, T = frames
    r_sq, r_tp = sq.report("l"), tp.report("l")
    assert (r_tp.macs, r_tp.in_features, r_tp.T, r_tp.Bw, r_tp.Bs) == (
        r_sq.macs, r_sq.in_features, r_sq.T, r_sq.Bw, r_sq.Bs)
    assert layer_costs(r_tp)["s_ace"] == r_tp.macs * 3 * 2 * T


def test_a_time_preserving_linear_layer_works_step_by_step():
    torch.manual_seed(0)
    fc = TQLinear(5, 3, cfg=QuantConfig(w_bits=4, s_bits=4), frames=3).eval()
    x = torch.rand(3, 2, 5)
    y = fc(x)
    assert y.shape == (3, 2, 3)
    r = fc.report("fc")
    assert (r.in_features, r.macs, r.T) == (5, 15, 3)
    # step t of the output is the linear op on step t of the neuron's output
    spikes = fc.neuron(x)
    torch.testing.assert_close(y[1], torch.nn.functional.linear(spikes[1], fc.wq(fc.weight),
                                                                fc.bias))


# ------------------------------------------------------------------ the event model
@pytest.fixture(scope="module")
def events():
    ds = make_dataset("moving-digits", num_samples=20)
    return ds.test.tensors[0], ds  # [4, T, 2, 24, 24]: two whole pairs


def event_model(frames=8, **kw):
    torch.manual_seed(0)
    return build_model("event-cnn", num_classes=2, in_channels=2,
                       cfg=QuantConfig(w_bits=4, s_bits=4, T=frames), frames=frames, width=8,
                       **kw)


def warmed(model, x):
    """One training-mode pass (steps initialised on it), then eval mode."""
    model.train()
    with torch.no_grad():
        model(x)
    return model.eval()


def test_the_event_model_sees_the_order_of_frames_unless_fed_the_time_average(events):
    x, _ = events
    assert x.shape[1:] == (8, 2, 24, 24)
    with torch.no_grad():
        model = warmed(event_model(), x)
        a, b = model(x), model(x.flip(1))  # time reversed
        assert a.shape == (4, 2)
        assert (a - b).abs().max() > 1e-3
        ctrl = warmed(event_model(time_average_input=True), x)
        assert torch.equal(ctrl(x), ctrl(x.flip(1)))
        # a pair (2i clockwise, 2i+1 the same frames backwards) gets identical logits: at chance
        out = ctrl(x)
        assert torch.equal(out[0], out[1]) and torch.equal(out[2], out[3])
        # the time-major entry point gives per-step logits
        steps = model.forward_steps(x.transpose(0, 1))
        assert steps.shape == (8, 4, 2)
        torch.testing.assert_close(steps.mean(0), a)
    with pytest.raises(ValueError, match="T=8"):
        model(x[:, :4])


def test_meter_and_bit_stats_read_the_event_model(events):
    x, _ = events
    model = warmed(event_model(), x)
    reports = layer_reports(model)
    assert [r.stem for r in reports] == [True, False, False, False]
    assert all(r.T == 8 for r in reports)
    assert reports[0].in_shape == (2, 24, 24) and reports[0].macs == 24 * 24 * 8 * 9 * 2
    stats = bit_stats(model)
    assert stats.wst() == "4.00/4.00/8.00" and stats.bit_budget.item() == 128.0
    rates = measure_firing(model, [x])
    assert all(0 < r < 1 for r in rates.values())
    res = meter_model(model)
    body = res.layers[~res.layers["stem"]]
    assert (body["s_ace"] == body["macs"] * body["Bw"] * body["Bs"] * 8).all()
    assert res.totals["s_ace_g"] == pytest.approx(body["s_ace"].sum() / 1e9)
    assert res.totals["ns_ace_g"] is not None and res.totals["T"] == 8
    # shape-only propagation of an input (T, C, H, W) gives the same rows
    shaped = meter_model(event_model(), (8, 2, 24, 24))
    assert shaped.layers["macs"].tolist() == res.layers["macs"].tolist()
    # renewal sees the time-preserving layers (their neurons are StepQuantizers)
    assert len(quant_layers(model)) == 3


# ------------------------------------------------------------------ training
EVENT = dict(dataset="moving-digits", arch="event-cnn", data_options="num_samples=200", epochs=1,
             device="cpu")


def test_one_epoch_on_moving_digits_records_w_s_t_with_t_equal_to_the_frames(tmp_path):
    cfg = TrainConfig(init="4/4/8", target="2/2/8", **EVENT)
    result = train(cfg, None, progress=False)
    m = result["metrics"]
    assert m["T"] == 8.0 and m["wst"].endswith("/8.00") and m["epochs"] == 1
    assert all(layer["T"] == 8 for layer in m["layers"])
    assert result["parameters"]["time_average_input"] is False
    assert 0.0 <= m["accuracy"] <= 100.0 and math.isfinite(result["history"][0]["train_loss"])
    # another binning: T = 6 frames, init and target follow it; the checkpoint reloads
    cfg6 = TrainConfig(init="4/4/6", target="2/2/6", width=8, time_average_input=True,
                       **{**EVENT, "data_options": "T=6,num_samples=200"})
    result6 = train(cfg6, tmp_path, progress=False)
    assert result6["metrics"]["T"] == 6.0 and result6["parameters"]["time_average_input"] is True
    model, loaded = load_trained(tmp_path)
    assert loaded.time_average_input and model.time_average_input and model.frames == 6
    assert bit_stats(model).wst() == result6["metrics"]["wst"]


@pytest.mark.parametrize("kw, option", [
    (dict(dataset="digits", data_options="size=8"), "'arch'"),          # event arch, static data
    (dict(arch="small-cnn"), "'dataset'"),                              # static arch, event data
    (dict(init="4/4/2", target="1/1/1"), "'init'"),                     # T is not the frames
    (dict(init="4/4/8", target="2/2/7"), "'target'"),
    (dict(amplitude=True, tau=2.0, firing="floor"), "'amplitude'"),
    (dict(time_average_input="yes"), "'time_average_input'"),
])
def test_bad_event_combinations_raise_one_line_option_errors(kw, option):
    cfg = TrainConfig(**{**EVENT, "init": "4/4/8", "target": "2/2/8", **kw})
    with pytest.raises(OptionError) as err:
        train(cfg, None, progress=False, on_batch=lambda *a: pytest.fail("trained"))
    assert option in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(OptionError, match="time_average_input"):
        TrainConfig(dataset="digits", time_average_input=True).validated()


def test_static_runs_do_not_record_the_event_only_field():
    static = TrainConfig(dataset="digits").parameters()
    assert "time_average_input" not in static
    event = TrainConfig(init="4/4/8", target="2/2/8", **EVENT).parameters()
    assert event["time_average_input"] is False
    assert dataclasses.replace(TrainConfig(), epochs=3).parameters().keys() == static.keys()
