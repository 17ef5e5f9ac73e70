"""Projection of learned bits onto the target: the search, and the training option project_at."""

import itertools

import pytest

from adabit_lite.projection import project, weighted_mean
from adabit_lite.train import OptionError, TrainConfig, train

SHARES = [2304, 2304, 4608, 9216, 512, 18432, 36864, 2048, 640]  # resnet8's weight counts


def _brute(latents, shares, bounds, target, tol):
    """The same problem by enumeration (small cases)."""
    best = None
    for bits in itertools.product(*[range(lo, hi + 1) for lo, hi in bounds]):
        gap = abs(weighted_mean(bits, shares) - target)
        cost = sum((b - min(max(x, lo), hi)) ** 2 for b, x, (lo, hi) in zip(bits, latents, bounds))
        key = (0, cost, gap) if gap <= tol + 1e-12 else (1, gap, cost)
        if best is None or key < best[0]:
            best = (key, list(bits))
    return best[1]


@pytest.mark.parametrize("target", [1.0, 1.3, 1.5, 2.0, 2.7, 4.0])
def test_projection_equals_enumeration(target):
    shares, latents = [5, 3, 11, 2, 7], [3.2, 1.4, 2.6, 3.9, 1.1]
    bounds = [(1, 4)] * 5
    got = project(latents, shares, bounds, target, tol=0.05, resolution=1e-6)
    assert got == _brute(latents, shares, bounds, target, 0.05)


@pytest.mark.parametrize("target", [1.0, 1.5, 2.0, 3.0])
def test_projection_lands_on_the_target_and_keeps_the_learned_order(target):
    latents = [3.2, 2.8, 2.1, 1.6, 3.9, 1.4, 1.2, 3.0, 3.8]
    bits = project(latents, SHARES, [(1, 6)] * 9, target)
    assert abs(weighted_mean(bits, SHARES) - target) <= 0.05
    # a layer that learned more bits never ends with fewer than one that learned fewer
    for i, j in itertools.permutations(range(9), 2):
        if latents[i] > latents[j] + 1:
            assert bits[i] >= bits[j]


def test_an_unreachable_target_gives_the_closest_mean():
    assert project([3.0, 3.0], [1, 1], [(2, 4), (2, 4)], 1.0) == [2, 2]
    with pytest.raises(ValueError):
        project([1.0], [0], [(1, 4)], 1.0)


SMALL = dict(dataset="digits", data_options="size=8", width=8, epochs=3, target="1.5/1.5/1",
             device="cpu")


@pytest.mark.usefixtures("one_thread")
def test_a_projected_run_ends_on_the_target_with_frozen_bits_and_resumes(tmp_path):
    cfg = TrainConfig(**SMALL, project_at=2)
    result = train(cfg, tmp_path / "a", progress=False)
    h = result["history"]
    assert abs(h[-1]["W"] - 1.5) <= 0.05 and abs(h[-1]["S"] - 1.5) <= 0.05 and h[-1]["T"] == 1
    assert abs(h[1]["W"] - 1.5) > 0.1  # it had not landed before the projection
    assert result["metrics"]["bits_projected_at"] == 2
    changed = sum(c["s_renewals"] for c in result["metrics"]["renewals"].values())
    assert changed >= 1  # the steps of the projected layers were renewed

    def stop(epoch, batch, model):
        if (epoch, batch) == (2, 5):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "b", progress=False, on_batch=stop)
    assert train(cfg, tmp_path / "b", progress=False)["history"] == h
    plain = train(TrainConfig(**SMALL), None, progress=False)
    assert "bits_projected_at" not in plain["metrics"]
    assert "project_at" not in TrainConfig(**SMALL).parameters()  # stored keys stay valid


@pytest.mark.parametrize("value", [0, 3, 7])
def test_project_at_must_fall_inside_training(value):
    with pytest.raises(OptionError, match="project_at"):
        TrainConfig(**SMALL, project_at=value).validated()
