import math

import pytest
import torch

from adabit_lite.bits import LearnableInt
from adabit_lite.quant import (WeightQuantizer, bit_grad_factor, fake_quant, grad_scale,
                               grid_search_step, int_codes, lsq_quantize, qrange)


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
@pytest.mark.parametrize("signed", [True, False])
def test_levels_and_thresholds(bits, signed):
    step = 0.25
    u = torch.linspace(-20, 20, 160001, dtype=torch.float64)
    xq = fake_quant(u * step, step, bits, signed)
    levels = sorted(set((xq / step).round().tolist()))
    if signed and bits == 1:
        expected = [-1.0, 1.0]  # binary
    elif signed:
        q = 2 ** (bits - 1) - 1
        expected = [float(k) for k in range(-q, q + 1)]
    else:
        expected = [float(k) for k in range(0, 2 ** bits)]
    assert levels == expected
    # thresholds: the code changes exactly half-way between levels (binary: at 0, sign(0) = -1)
    jumps = u[1:][(xq[1:] != xq[:-1])]
    if signed and bits == 1:
        assert jumps.tolist() == [pytest.approx(0.00025, abs=1e-9)]
        assert fake_quant(torch.zeros(1), step, 1, True).item() == -step
    else:
        mids = [k + 0.5 for k in expected[:-1]]
        assert jumps.tolist() == pytest.approx(mids, abs=3e-4)


def test_round_is_half_away_from_zero():
    q, _, _ = int_codes(torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]), -7, 7)
    assert q.tolist() == [-3, -2, -1, 1, 2, 3]


@pytest.mark.parametrize("signed,bits,u,mask", [
    (True, 3, [-3.6, -3.4, 0.0, 3.4, 3.6], [0, 1, 1, 1, 0]),    # round(u) inside [-3, 3]
    (False, 2, [-0.6, -0.4, 1.0, 3.4, 3.6], [0, 1, 1, 1, 0]),   # round(u) inside [0, 3]
    (True, 1, [-1.2, -0.9, 0.3, 1.0, 1.1], [0, 1, 1, 1, 0]),    # binary: |u| <= 1
])
def test_ste_masks(signed, bits, u, mask):
    step = torch.tensor([0.5])
    x = (torch.tensor(u) * 0.5).requires_grad_()
    lsq_quantize(x, step, torch.tensor(float(bits)), signed).sum().backward()
    assert x.grad.tolist() == [float(m) for m in mask]


# Binary weights (signed, B = 1) have no affine fake-quant oracle: the formula test covers them.
@pytest.mark.parametrize("signed,bits", [(True, 2), (True, 3), (True, 4),
                                         (False, 1), (False, 2), (False, 3), (False, 4)])
def test_step_gradient_matches_torch_learnable_fake_quant(signed, bits):
    g = torch.Generator().manual_seed(bits)
    x = torch.randn(3, 5, 7, generator=g) * 1.3
    upstream = torch.randn(x.shape, generator=g)
    qmin, qmax = qrange(bits, signed)
    s0 = 0.37

    x1, s1 = x.clone().requires_grad_(), torch.tensor([s0], requires_grad=True)
    y1 = lsq_quantize(x1, s1, torch.tensor(float(bits)), signed)
    (y1 * upstream).sum().backward()

    x2, s2 = x.clone().requires_grad_(), torch.tensor([s0], requires_grad=True)
    y2 = torch._fake_quantize_learnable_per_tensor_affine(
        x2, s2, torch.tensor([0.0]), qmin, qmax, 1.0 / math.sqrt(x.numel() * qmax))
    (y2 * upstream).sum().backward()

    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(x1.grad, x2.grad)
    torch.testing.assert_close(s1.grad, s2.grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("signed,bits", [(True, 1), (True, 3), (False, 1), (False, 2), (False, 4)])
def test_bit_gradient_matches_the_formula(signed, bits):
    g = torch.Generator().manual_seed(10 + bits)
    x = torch.randn(500, generator=g, dtype=torch.float64) * 2
    up = torch.rand(500, generator=g, dtype=torch.float64)
    step = torch.tensor([0.3], dtype=torch.float64)
    latent = LearnableInt(bits, 1, 8)
    latent.double()
    lsq = lsq_quantize(x, step, latent(), signed)
    (lsq * up).sum().backward()
    qmin, qmax = qrange(bits, signed)
    u = x / 0.3
    if signed and bits == 1:
        above, below = u > 1, u < -1
    else:
        r = torch.sign(u) * torch.floor(u.abs() + 0.5)
        above, below = r > qmax, r < qmin
    c_b = (qmax if bits == 1 else qmax + 1) * math.log(2)
    expected = (up[above].sum() - up[below].sum()) * 0.3 * c_b / math.sqrt(500 * qmax)
    assert above.any()
    assert latent.latent.grad.item() == pytest.approx(expected.item(), rel=1e-12)


def test_bit_gradient_factor_is_the_derivative_of_qmax():
    # c_B = d qmax / dB for qmax(B) = 2^(B-1) - 1 (signed) and 2^B - 1 (unsigned), B > 1
    for b in (2, 3, 4, 6):
        for signed, f in ((True, lambda B: 2 ** (B - 1) - 1), (False, lambda B: 2 ** B - 1)):
            numeric = (f(b + 1e-6) - f(b - 1e-6)) / 2e-6
            assert bit_grad_factor(b, qrange(b, signed)[1]) == pytest.approx(numeric, rel=1e-6)
    assert bit_grad_factor(1, 1) == pytest.approx(math.log(2))
    assert grad_scale(100, 4) == pytest.approx(0.05)


def test_weight_quantizer_initialises_from_the_first_training_batch():
    w = torch.randn(64, 32)
    q = WeightQuantizer(bits=3)
    q.eval()
    q(w)
    assert q.step.item() == 1.0 and not bool(q.initialized)  # eval never initialises
    q.train()
    q(w)
    assert q.step.item() == pytest.approx(2 * w.abs().mean().item() / math.sqrt(3), rel=1e-6)
    w2 = w * 10
    q(w2)
    assert q.step.item() == pytest.approx(2 * w.abs().mean().item() / math.sqrt(3), rel=1e-6)


def test_binary_weights_use_the_effective_qmax_of_one():
    w = torch.randn(1000)
    q = WeightQuantizer(bits=1, bound=3)
    q.train()
    wq = q(w)
    s = 2 * w.abs().mean().item()  # sqrt(qmax_eff) = 1
    assert q.step.item() == pytest.approx(s, rel=1e-6)
    assert sorted(set(wq.div(s).round().tolist())) == [-1.0, 1.0]


def test_grid_search_finds_the_best_candidate_and_scales_with_range():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20000, generator=g).abs()
    step, c = grid_search_step(x, 2, signed=False)
    assert step.item() == pytest.approx(c.item() / 3)
    R = (x.max() - x.min()).item()
    k = round(c.item() / R * 100)
    assert c.item() == pytest.approx(k * R / 100, rel=1e-5)

    def score(cc):
        return (fake_quant(x, cc / 3, 2, False) - x).abs().pow(2.4).mean().item()
    best = score(c.item())
    assert best <= score((k - 1) * R / 100) and best <= score((k + 1) * R / 100)
    # a wide clipping range is the wrong answer at 2 bits: strictly worse than the search
    assert best < score(R)
    step2, _ = grid_search_step(x * 3, 2, signed=False)
    assert step2.item() == pytest.approx(3 * step.item(), rel=1e-5)
