"""The key schema: every config field declared once, and the stored keys unchanged by it."""

import dataclasses

import pytest

from adabit_lite import keys
from adabit_lite.results import result_key
from adabit_lite.train import TrainConfig


def test_every_config_field_is_declared_exactly_once():
    keys.check_schema(f.name for f in dataclasses.fields(TrainConfig))


@pytest.mark.parametrize("fields, words", [
    ({"arch", "new_option"}, "undeclared ['new_option']"),
    ({"arch"}, "not config fields"),
])
def test_an_undeclared_or_vanished_field_fails(fields, words):
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        keys.check_schema(fields)


def test_roles_decide_what_the_key_holds():
    cfg = TrainConfig(dataset="digits")
    params = cfg.parameters()
    assert "time_average_input" not in params  # event data only
    assert not set(keys.WHEN_SET) & set(params)  # all at their defaults
    assert "device" in params and "device" not in cfg.key_parameters()
    assert result_key(cfg) == result_key(dataclasses.replace(cfg, device="cpu"))
    for name, default in keys.WHEN_SET.items():
        other = {"bn_recalibrate": True, "weight_renewal": "range-ratio", "dtype": "float64",
                 "project_at": 3, "step_clamp": "reflect"}[name]
        assert other != default
        assert result_key(dataclasses.replace(cfg, **{name: other})) != result_key(cfg)
    event = TrainConfig(dataset="moving-digits", arch="event-cnn", init="4/4/8", target="1/1/8")
    assert event.parameters()["time_average_input"] is False
    assert cfg.key_parameters(world_size=2)[keys.WORLD_SIZE] == 2
