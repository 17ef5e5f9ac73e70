import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from adabit_lite.layers import QConv2d, QLinear, QuantConfig
from adabit_lite.loss import BitStats
from adabit_lite.neuron import SpikingNeuron
from adabit_lite.quant import (RenewalPolicy, WeightQuantizer, fake_quant, grid_search_step,
                               init_step)
from adabit_lite.renew import Renewal, default_min_epoch, renewal_counts


def _set_bits(q, value):
    with torch.no_grad():
        q.bits[0].latent.fill_(value)


def test_renewal_fires_only_when_the_rounded_bit_width_changes():
    w = torch.randn(256, 16)
    q = WeightQuantizer(bits=4).train()
    q.renew_enabled.fill_(True)
    q(w)  # first batch: initialisation, not a renewal
    s_init = q.step.item()
    for latent in (4.0, 3.6, 4.49):  # all round to 4
        _set_bits(q, latent)
        q(w)
    assert q.renewals.item() == 0 and q.flips.item() == 0 and q.step.item() == s_init
    _set_bits(q, 2.2)
    q(w)
    assert q.renewals.item() == 1 and q.flips.item() == 1
    assert q.step.item() == pytest.approx(grid_search_step(w, 2, True)[0].item())
    q(w)
    q(w)
    assert q.renewals.item() == 1  # no change, no renewal
    q.eval()
    _set_bits(q, 3.0)
    q(w)
    assert q.renewals.item() == 1  # eval never renews


def test_disabled_renewal_counts_flips_but_keeps_the_step():
    w = torch.randn(64)
    q = WeightQuantizer(bits=4).train()
    q(w)
    s = q.step.item()
    _set_bits(q, 2)
    q(w)
    assert (q.flips.item(), q.renewals.item(), q.step.item()) == (1, 0, s)


def test_renewed_step_beats_the_stale_step_after_a_4_to_2_bit_drop():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200_000, generator=g).abs()  # half-normal activations
    n = SpikingNeuron(bits=4, T=1).train()
    n.renew_enabled.fill_(True)
    n(x)
    with torch.no_grad():
        n.step.copy_(grid_search_step(x, 4, False)[0])  # a good 4-bit step
    stale = n.step.item()
    _set_bits(n, 2)
    r = n(x)  # the drop is seen, the step renewed, then x quantised with it
    renewed = n.step.item()
    assert n.renewals.item() == 1 and renewed > 2 * stale
    err_stale = (fake_quant(x, stale, 2, False) - x).square().mean().item()
    err_renewed = (r.detach() - x).square().mean().item()
    assert err_renewed < 0.5 * err_stale


def test_running_extrema_never_lets_the_clipping_range_shrink():
    x = torch.rand(10_000)
    q = WeightQuantizer(bits=4, policy=RenewalPolicy(running_extrema=True)).train()
    q.renew_enabled.fill_(True)
    q(x * 10)
    _set_bits(q, 3)
    q(x * 10)
    wide = q.clip_max.item()
    _set_bits(q, 2)
    q(x)  # a tenfold narrower tensor
    assert q.clip_max.item() == wide
    assert q.step.item() == pytest.approx(wide / 1)  # signed 2-bit: qmax = 1


def test_range_ratio_weight_renewal_shrinks_the_step_when_bits_drop():
    """The reference code's rule s' = s qmax(B') / qmax(B): 4 -> 3 bits (qmax 7 -> 3) scales the
    step by 3/7, the opposite of what the grid search does on the same tensor."""
    w = torch.randn(10_000)
    q = WeightQuantizer(bits=4, policy=RenewalPolicy(range_ratio=True)).train()
    q.renew_enabled.fill_(True)
    q(w)
    before = q.step.item()
    _set_bits(q, 3)
    q(w)
    assert q.renewals.item() == 1
    assert q.step.item() == pytest.approx(before * 3 / 7)
    assert grid_search_step(w, 3, True)[0].item() > before  # the search widens the step instead


def _net():
    torch.manual_seed(0)
    net = nn.Sequential(QConv2d(1, 4, 3, cfg=QuantConfig.stem(), stem=True), nn.ReLU(),
                        QConv2d(4, 4, 3), nn.Flatten(), QLinear(4 * 4 * 4, 3))
    net(torch.rand(1, 1, 8, 8))
    return net


@pytest.mark.parametrize("variant,weight,spike", [("none", False, False), ("activation", False, True),
                                                  ("weight", True, False), ("both", True, True)])
def test_variants_enable_the_right_quantizers_and_never_the_stem(variant, weight, spike):
    net = _net()
    Renewal(net, variant)
    assert not net[0].wq.renew_enabled and not net[0].neuron.renew_enabled
    for layer in (net[2], net[4]):
        assert bool(layer.wq.renew_enabled) == weight
        assert bool(layer.neuron.renew_enabled) == spike
    with pytest.raises(ValueError, match="variant"):
        Renewal(net, "sometimes")


def _stats(w, s):
    return BitStats(torch.tensor(w), torch.tensor(s), torch.tensor(1.0))


def test_switch_off_rule():
    net = _net()
    ren = Renewal(net, "both", init=(4, 4), target=(1, 1), min_epoch=2)  # thr = 0.24 * 3 = 0.72
    assert ren.end_epoch(0, _stats(1.5, 1.5)) == []  # reached, but before min_epoch
    assert ren.end_epoch(2, _stats(1.8, 1.5)) == ["spike"]  # W: 0.8 > 0.72 still renews
    assert not net[2].neuron.renew_enabled and net[2].wq.renew_enabled
    assert ren.end_epoch(3, _stats(1.7, 4.0)) == ["weight"]  # off for good: S going up is ignored
    assert ren.switched_off_at == {"spike": 2, "weight": 3} and ren.frozen_at == {}
    assert not net[4].wq.renew_enabled
    # a kind whose target equals its init stops after epoch 0
    ren2 = Renewal(net, "both", init=(4, 4), target=(4, 2), min_epoch=5)
    assert ren2.end_epoch(0, _stats(4.0, 4.0)) == ["weight"]
    # bits that must grow: switch-off mirrors the rule
    ren3 = Renewal(net, "activation", init=(2, 2), target=(4, 4), min_epoch=0)
    assert ren3.end_epoch(0, _stats(2, 3.4)) == [] and ren3.end_epoch(1, _stats(2, 3.6)) == ["spike"]
    assert default_min_epoch(200) == 14 and default_min_epoch(10) == 1


def test_renewal_state_round_trips_and_counts_are_reported():
    net = _net()
    ren = Renewal(net, "both", min_epoch=0)
    ren.end_epoch(0, _stats(1.0, 4.0))
    fresh = Renewal(net, "both")
    fresh.load_state_dict(ren.state_dict())
    assert fresh.active == {"weight": False, "spike": True}
    assert not net[2].wq.renew_enabled and net[2].neuron.renew_enabled
    counts = renewal_counts(net)
    assert list(counts) == ["2", "4"] and counts["2"]["w_flips"] == 0


def _flip_flop(q, x, epochs: int, flips_per_epoch: int) -> list[int]:
    """Dither the bit width 4 <-> 3 ``flips_per_epoch`` times per epoch; renewals per epoch."""
    per_epoch = []
    for _ in range(epochs):
        q.start_epoch()
        before = q.renewals.item()
        for i in range(flips_per_epoch):
            _set_bits(q, 3 if i % 2 == 0 else 4)
            q(x)
        per_epoch.append(q.renewals.item() - before)
    return per_epoch


@pytest.mark.parametrize("limit", [0, 1, 3])
def test_renewals_per_epoch_are_bounded_as_configured(limit):
    x = torch.randn(512)
    q = WeightQuantizer(bits=4, policy=RenewalPolicy(renewal_limit=limit)).train()
    q.renew_enabled.fill_(True)
    q(x)  # initialisation
    per_epoch = _flip_flop(q, x, epochs=3, flips_per_epoch=10)
    assert q.flips.item() == 30  # every flip is counted
    assert per_epoch == [10 if limit == 0 else limit] * 3


def test_the_policy_is_fixed_at_construction_and_the_counts_reset_each_epoch():
    policy = RenewalPolicy(renewal_limit=1, running_extrema=True, range_ratio=True)
    torch.manual_seed(0)
    net = nn.Sequential(QConv2d(1, 4, 3, cfg=QuantConfig.stem(renewal=policy), stem=True),
                        nn.ReLU(), QConv2d(4, 4, 3, cfg=QuantConfig(renewal=policy)))
    assert net[0].wq.policy is policy and net[2].wq.policy is policy
    # range_ratio is a weight rule: the neurons keep the rest of the policy without it
    for neuron in (net[0].neuron, net[2].neuron):
        assert neuron.policy == RenewalPolicy(renewal_limit=1, running_extrema=True)
    ren = Renewal(net, "activation")
    net[2].neuron.epoch_renewals.fill_(1)
    ren.start_epoch()
    assert net[2].neuron.epoch_renewals.item() == 0
    for bad in (dict(renewal_limit=-1), dict(K=0), dict(p=0.0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            RenewalPolicy(**bad)
    with pytest.raises(ValueError, match="range_ratio"):
        SpikingNeuron(policy=RenewalPolicy(range_ratio=True))


def test_freezing_fixes_the_bits_of_a_kind_once_the_rule_fires():
    net = _net()
    ren = Renewal(net, "activation", init=(4, 4), target=(2, 2), min_epoch=1, freeze=True)
    assert ren.end_epoch(0, _stats(2.1, 2.1)) == []  # before min_epoch: nothing frozen
    assert net[2].wq.bits[0].learnable and net[2].neuron.bits[0].learnable
    assert ren.end_epoch(1, _stats(2.1, 3.0)) == ["weight"]  # W within 0.48 of 2, S not yet
    assert not net[2].wq.bits[0].learnable and not net[4].wq.bits[0].learnable
    assert net[2].neuron.bits[0].learnable and net[2].neuron.renew_enabled
    assert ren.switched_off_at == {} and ren.frozen_at == {"weight": 1}  # weights never renewed
    # frozen bits never change, whatever the latent's optimiser would want
    w_bits = [int(layer.wq.bits[0]) for layer in (net[2], net[4])]
    opt = torch.optim.SGD(net.parameters(), lr=10.0, momentum=0.9)  # built before the freeze
    for _ in range(3):
        opt.zero_grad()
        net(torch.rand(2, 1, 8, 8)).sum().backward()
        opt.step()
    assert [int(layer.wq.bits[0]) for layer in (net[2], net[4])] == w_bits
    # the state round-trips: a resumed run freezes the same kinds
    fresh_net = _net()
    fresh = Renewal(fresh_net, "activation", init=(4, 4), target=(2, 2), freeze=True)
    fresh.load_state_dict(ren.state_dict())
    assert not fresh_net[2].wq.bits[0].learnable and fresh_net[2].neuron.bits[0].learnable


# ---------------------------------------------------------------- two processes, gloo
def _worker(rank, path, out):
    dist.init_process_group("gloo", init_method=f"file://{path}", rank=rank, world_size=2)
    g = torch.Generator().manual_seed(100 + rank)
    x = torch.randn(5000, generator=g).abs() * (1 + 2 * rank)  # different data on each rank
    res = {"x": x}
    for sync in (True, False):
        res[f"init_{sync}"] = init_step(x, 3, sync=sync)
        res[f"grid_{sync}"] = grid_search_step(x, 2, False, sync=sync)[0]
    n = SpikingNeuron(bits=4, T=1).train()
    n.renew_enabled.fill_(True)
    n(x)
    with torch.no_grad():
        n.bits[0].latent.fill_(2)
    n(x)
    res["module_step"] = n.step.detach().clone()
    res["module_renewals"] = n.renewals.clone()
    torch.save(res, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def test_statistics_are_all_reduced_over_two_processes(tmp_path):
    mp.start_processes(_worker, args=(str(tmp_path / "rdv"), str(tmp_path)), nprocs=2,
                       start_method="spawn")
    r0, r1 = (torch.load(tmp_path / f"rank{k}.pt") for k in (0, 1))
    both = torch.cat([r0["x"], r1["x"]])
    # synced: identical on both ranks, and equal to the statistic of the pooled data
    assert r0["init_True"].item() == r1["init_True"].item()
    assert r0["init_True"].item() == pytest.approx(2 * both.mean().item() / math.sqrt(3), rel=1e-5)
    assert r0["grid_True"].item() == r1["grid_True"].item()
    assert r0["grid_True"].item() == pytest.approx(grid_search_step(both, 2, False)[0].item(), rel=1e-5)
    assert torch.equal(r0["module_step"], r1["module_step"])
    assert r0["module_renewals"].item() == 1
    # control: without the all-reduce the replicas disagree
    assert r0["init_False"].item() != pytest.approx(r1["init_False"].item(), rel=0.1)
    assert r0["grid_False"].item() != pytest.approx(r1["grid_False"].item(), rel=0.1)
