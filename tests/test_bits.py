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
