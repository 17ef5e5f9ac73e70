import pytest
import torch

from adabit_lite.bits import LearnableInt


@pytest.mark.parametrize("latent,expected", [(1.0, 1), (1.49, 1), (1.5, 2), (2.51, 3), (0.2, 1),
                                             (7.9, 6), (5.5, 6)])
def test_rounds_the_clipped_latent(latent, expected):
    b = LearnableInt(4, low=1, high=6)
    with torch.no_grad():
        b.latent.fill_(latent)
    assert int(b) == expected
    assert b().item() == expected


def test_straight_through_gradient_reaches_the_latent():
    b = LearnableInt(3, 1, 5)
    with torch.no_grad():
        b.latent.fill_(2.7)
    (b() * 7.0).backward()
    assert b.latent.grad.item() == 7.0


def test_clamp_keeps_latent_in_bounds():
    b = LearnableInt(4, 1, 6)
    with torch.no_grad():
        b.latent.fill_(-3.0)
    b.clamp_()
    assert b.latent.item() == 1.0
    with torch.no_grad():
        b.latent.fill_(9.0)
    b.clamp_()
    assert b.latent.item() == 6.0


def test_fixed_integer_has_no_gradient_and_bad_init_is_rejected():
    b = LearnableInt(8, 1, 8, learnable=False)
    assert not b.learnable and not b().requires_grad and int(b) == 8
    with pytest.raises(ValueError, match="outside the bounds"):
        LearnableInt(5, 1, 4)
    with pytest.raises(ValueError, match="outside the bounds"):
        b.set_(9)


# ---------------------------------------------------------------- remedies against flip-flopping
def _walk(b: LearnableInt, latents) -> list[int]:
    """Set the latent to each value in turn (as optimiser steps would), clamp, read B."""
    seen = []
    for value in latents:
        with torch.no_grad():
            b.latent.fill_(value)
        b.clamp_()
        seen.append(int(b))
    return seen


def _changes(seen: list[int]) -> int:
    return sum(a != c for a, c in zip(seen, seen[1:]))


def test_hysteresis_lets_a_dithering_latent_change_the_integer_at_most_once():
    g = torch.Generator().manual_seed(0)
    dither = (1.5 + 0.2 * (2 * torch.rand(400, generator=g) - 1)).tolist()  # 1.3 .. 1.7
    plain = _walk(LearnableInt(2, 1, 4), [2.0] + dither)
    assert _changes(plain) > 50  # the paper's rounding flips all the time
    held = _walk(LearnableInt(2, 1, 4, hysteresis=0.25), [2.0] + dither)
    assert _changes(held) == 0 and held[-1] == 2  # never 0.75 past 2: stays
    # a latent that does cross the band changes B once, then dithering cannot undo it
    held = _walk(LearnableInt(2, 1, 4, hysteresis=0.25), [2.0, 1.2] + dither)
    assert held[1] == 1 and _changes(held) == 1


def test_hysteresis_band_edges_and_big_jumps():
    b = LearnableInt(4, 1, 6, hysteresis=0.2)
    assert _walk(b, [3.35, 3.25, 3.65, 3.75]) == [4, 3, 3, 4]  # the band is 0.5 + 0.2 wide
    assert _walk(b, [1.0]) == [1]  # a jump goes straight to the nearest integer
    with pytest.raises(ValueError, match="hysteresis"):
        LearnableInt(4, 1, 6, hysteresis=0.5)


def test_set_and_zero_hysteresis_behave_like_plain_rounding():
    b = LearnableInt(4, 1, 6, hysteresis=0.3)
    b.set_(2)
    assert int(b) == 2 and b().item() == 2.0
    b.set_hysteresis(0.0)
    assert _walk(b, [2.6, 2.4]) == [3, 2]


def test_freeze_keeps_the_integer_and_stops_the_gradient():
    b = LearnableInt(4, 1, 6, hysteresis=0.25)
    with torch.no_grad():
        b.latent.fill_(2.6)  # 1.4 below the held 4: past the band, so B becomes round(2.6)
    b.clamp_()
    assert int(b) == 3
    b.freeze_()
    assert not b.learnable and int(b) == 3 and b.latent.item() == 3.0
    assert not b().requires_grad
