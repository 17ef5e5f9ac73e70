"""The one W/S/T parser (adabit_lite/wst.py) and the places that read W/S/T through it."""

import pytest

from adabit_lite import meter
from adabit_lite.loss import BitTarget
from adabit_lite.studies import budgets
from adabit_lite.train import OptionError, TrainConfig
from adabit_lite.wst import format_wst, parse_wst


def test_numbers_and_integers():
    assert parse_wst("1.5/1.5/1") == (1.5, 1.5, 1.0)
    assert parse_wst("4/4/2", integers=True) == (4, 4, 2)
    assert all(isinstance(v, int) for v in parse_wst("4/4/2.0", integers=True))
    assert format_wst((1.5, 1.0, 1)) == "1.5/1/1" and format_wst(parse_wst("2/2/1")) == "2/2/1"


@pytest.mark.parametrize("bad", ["4/4", "a/b/c", "0.5/1/1", "4/4/2/1", "", "nan/1/1", "inf/1/1", None, 4])
def test_bad_input_is_one_line_naming_the_form(bad):
    with pytest.raises(ValueError, match="W/S/T must be three numbers >= 1") as err:
        parse_wst(bad)
    assert "\n" not in str(err.value)


def test_every_reader_uses_it():
    with pytest.raises(ValueError, match="three integers"):
        parse_wst("1.5/1/1", integers=True)
    for read in (meter.parse_wst, budgets.parse_split):
        assert read("16/1/4") == (16, 1, 4)
        with pytest.raises(ValueError, match="W/S/T must be three integers"):
            read("1.5/1/1")
    assert BitTarget.parse("1.5/1.5/1") == BitTarget(1.5, 1.5, 1.0)
    with pytest.raises(OptionError, match="option 'init' must be W/S/T, three integers"):
        TrainConfig(init="4/4/2.5").validated()
