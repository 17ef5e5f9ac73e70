"""adabit_lite.params: each kind accepts what it declares and refuses the rest with one line naming
the parameter; each chapter's declaration matches its notebook's parameters cell and book/profiles.yml."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
import yaml

from adabit_lite import chapter, params
from adabit_lite.params import Param

ROOT = Path(__file__).resolve().parent.parent


def refusal(param: Param, value, **others) -> str:
    """The one-line ValueError that ``check`` raises for ``value``."""
    with pytest.raises(ValueError) as err:
        params.check((param,) + tuple(Param(n, "any", v, "", allowed="x", test=lambda _: None)
                                      for n, v in others.items()), {param.name: value, **others})
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"parameter {param.name} must be ") and message.endswith(f", got {value!r}")
    return message


def accepts(param: Param, value, **others) -> None:
    values = {param.name: value, **others}
    declaration = (param,) + tuple(Param(n, "any", v, "", allowed="x", test=lambda _: None)
                                   for n, v in others.items())
    assert params.check(declaration, values) is None


# ---------------------------------------------------------------------- the kinds
def test_int():
    p = Param("n", "int", 3, "", low=1, high=10**6)
    for good in (1, 5, 10**6):
        accepts(p, good)
    for bad in (0, 10**6 + 1, 2.0, True, "3", None):
        assert "an integer from 1 to 10**6" in refusal(p, bad)
    assert "an integer >= 0" in refusal(Param("seed", "int", 0, "", low=0), -1)
    even = Param("m", "int", 4, "", low=2, high=100, even=True)
    accepts(even, 40)
    assert "an even integer from 2 to 100" in refusal(even, 41)


def test_float():
    p = Param("p", "float", 2.4, "", low=1, high=8)
    for good in (1, 2.4, 8.0):
        accepts(p, good)
    for bad in (0.5, 8.5, float("nan"), float("inf"), True, "2"):
        assert "a number from 1 to 8" in refusal(p, bad)
    positive = Param("sigma", "float", 1.0, "", low=0, open_low=True)
    accepts(positive, 1e-9)
    assert "a positive number" in refusal(positive, 0.0)
    unit = Param("lr", "float", 0.1, "", low=0, high=1, open_low=True)
    accepts(unit, 1.0)
    assert "a number in (0, 1]" in refusal(unit, 0)


def test_bool_str_and_path():
    flag = Param("flag", "bool", False, "")
    accepts(flag, True)
    assert "True or False" in refusal(flag, 1)
    text = Param("opts", "str", "", "", allowed="a string KEY=VALUE[,KEY=VALUE]")
    accepts(text, "")
    assert "a string KEY=VALUE[,KEY=VALUE]" in refusal(text, None)
    folder = Param("fig_dir", "path", "f", "")
    accepts(folder, "_build/figures")
    for bad in ("", "  ", 3):
        assert "a folder path" in refusal(folder, bad)
    record = Param("record_path", "path", "r.json", "", suffix=".json")
    accepts(record, "_build/records/x.json")
    assert "a path ending in .json" in refusal(record, "x.csv")


def test_existing_file(tmp_path):
    p = Param("results_path", "path", "x.json", "", suffix=".json", exists=True, note="run the benchmarks")
    there = tmp_path / "here.json"
    there.write_text("{}")
    accepts(p, str(there))
    accepts(p, "benchmarks/results/latest.json")  # relative paths are taken from the project root
    message = refusal(p, str(tmp_path / "missing.json"))
    assert "an existing file ending in .json (run the benchmarks)" in message


def test_choice_and_list_of_choices():
    p = Param("dataset", "choice", "a", "", choices=("digits", "mnist5k"))
    accepts(p, "digits")
    assert "one of digits, mnist5k" in refusal(p, "cifar10")
    bins = Param("bins", "choice", [8], "", choices=(8, 4, 2, 1), many=True, note="dividing 8")
    accepts(bins, [4, 1])
    for bad in ([3], [], [4, 4], [True], 4, [4.0]):
        assert "a non-empty list of distinct values from 8, 4, 2, 1 (dividing 8)" in refusal(bins, bad)
    names = Param("names", "choice", ["default"], "", choices=("default", "a, b", "c"), many=True,
                  among=("default",))
    accepts(names, ["c", "default"])
    message = refusal(names, ["c"])
    assert "from default; a, b; c ('default' among them)" in message  # '; ' where a choice has a comma


def test_list_of_ints():
    p = Param("seeds", "int", [0], "", low=0, many=True)
    accepts(p, [0, 3])
    accepts(p, (1, 2))
    for bad in ([], [0, 0], [-1], [1.0], "0", [[0]], None):
        assert "a non-empty list of distinct integers >= 0" in refusal(p, bad)


def test_wst_and_list_of_wst():
    p = Param("target", "wst", "1/1/1", "", low=1, high=(6, 6, 1), integers=True, note="whole bits")
    accepts(p, "2/3/1")
    for bad in ("1.5/1.5/1", "7/1/1", "1/1/2", "1/1", 1, "a/b/c", "0/1/1"):
        assert "a 'W/S/T' string with whole W and S from 1 to 6 and T = 1 (whole bits)" in refusal(p, bad)
    targets = Param("targets", "wst", ["1/1/1"], "", high=(6, 6, 3), many=True)
    accepts(targets, ["1.5/1.5/1", "6/6/3"])
    for bad in (["1/1/4"], ["1/1/1", "1/1/1"], [], "1/1/1"):
        assert ("a non-empty list of distinct 'W/S/T' strings with W and S from 1 to 6 and T from 1 to 3"
                in refusal(targets, bad))
    assert "with whole W, S and T from 1 to 8" in refusal(Param("w", "wst", "4/4/2", "", high=8,
                                                                 integers=True), "4/4")


def test_device(monkeypatch):
    written = Param("device", "device", "cuda", "", choices=("auto",))
    for good in ("cpu", "cuda", "cuda:3", "auto"):
        accepts(written, good)
    assert "cpu, cuda, cuda:N or auto" in refusal(written, "tpu")
    used = Param("device", "device", "cpu", "", available=True)
    accepts(used, "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "cpu or an available CUDA device (cuda, cuda:N)" in refusal(used, "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    accepts(used, "cuda:1")
    refusal(used, "cuda:2")


def test_optional_any_and_expression_bounds():
    width = Param("width", "int", None, "", low=1, optional=True)
    accepts(width, None)
    assert "None or an integer >= 1" in refusal(width, 0)
    odd = Param("x", "any", 1, "", allowed="an odd thing", test=lambda v: None if v % 2 else "it is even")
    accepts(odd, 3)
    assert "must be an odd thing (here: it is even)" in refusal(odd, 4)
    canvas = Param("canvas", "int", 16, "", low="digit_size + 8", high=512)
    accepts(canvas, 16, digit_size=8)
    assert "an integer from digit_size + 8 = 20 to 512" in refusal(canvas, 16, digit_size=12)


def test_check_order_missing_and_declare():
    canvas = Param("canvas", "int", 16, "", low="digit_size + 8", high=512)
    digit = Param("digit_size", "int", 8, "", low=8)
    with pytest.raises(ValueError, match="parameter digit_size must be"):  # not a TypeError in canvas
        params.check((canvas, digit), {"canvas": 16, "digit_size": "8"})
    with pytest.raises(ValueError, match="parameter digit_size is not set"):
        params.check((canvas, digit), {"canvas": 16})
    params.check((digit,), {"digit_size": 9, "other": 1})  # other names are not its business
    with pytest.raises(ValueError, match="declared twice: digit_size"):
        params.declare(digit, digit)
    with pytest.raises(ValueError, match="unknown kind"):
        Param("x", "integer", 1, "")


# ---------------------------------------------------------------------- the chapters' declarations
def cell_parameters(stem: str) -> dict:
    return chapter.notebook_parameters(chapter.read_notebook(ROOT / "nb" / f"{stem}.ipynb"))


def cell_value(text: str):
    """A default as the parameters cell writes it (literals, None/True/False, 10**6)."""
    tree = ast.parse(text, mode="eval")
    assert all(isinstance(n, (ast.Expression, ast.Constant, ast.List, ast.Tuple, ast.Dict, ast.BinOp,
                               ast.UnaryOp, ast.operator, ast.unaryop, ast.Load)) for n in ast.walk(tree)), text
    return eval(compile(tree, "<cell>", "eval"), {"__builtins__": {}})


@pytest.mark.parametrize("stem", sorted(params.CHAPTERS))
def test_declaration_is_the_parameters_cell(stem):
    declaration, cell = params.declaration(stem), cell_parameters(stem)
    assert [p.name for p in declaration] == list(cell)
    for p in declaration:
        value = cell_value(cell[p.name].default)
        assert value == p.default and type(value) is type(p.default), (p.name, value, p.default)
        assert cell[p.name].help == p.help, p.name
    params.check(declaration, params.defaults(declaration))


@pytest.mark.parametrize("stem", sorted(params.CHAPTERS))
def test_validation_cell_is_one_check(stem):
    source = chapter.validation_cell_source(chapter.read_notebook(ROOT / "nb" / f"{stem}.ipynb"))
    tree = ast.parse(source)
    calls = [n for n in tree.body if not isinstance(n, (ast.Import, ast.ImportFrom))]
    assert len(calls) == 1 and "params.check(" in ast.get_source_segment(source, calls[0]), source


PROFILES = yaml.safe_load((ROOT / "book" / "profiles.yml").read_text())


@pytest.mark.parametrize("profile, stem", [(profile, stem) for profile, chapters in PROFILES.items()
                                           for stem in chapters if stem in params.CHAPTERS])
def test_profiles_pass_the_check(profile, stem, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the gpu profile asks for cuda
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    declaration = params.declaration(stem)
    given = PROFILES[profile][stem]
    assert set(given) <= {p.name for p in declaration}
    params.check(declaration, {**params.defaults(declaration), **given})


MAX_CODE_LINES = 120  # a chapter is thin: its logic lives in adabit_lite (and is tested there)


@pytest.mark.parametrize("stem", sorted(params.CHAPTERS))
def test_every_chapter_stays_thin(stem):
    """No function or class defined in the notebook, at most ``MAX_CODE_LINES`` lines of code (not
    blank, not comment-only)."""
    cells = [c.source for c in chapter.read_notebook(ROOT / "nb" / f"{stem}.ipynb").cells
             if c.cell_type == "code"]
    defined = [node.name for source in cells for node in ast.walk(ast.parse(source))
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    assert defined == [], f"{stem} defines {defined}: move them into adabit_lite"
    lines = [line.strip() for source in cells for line in source.splitlines()]
    assert sum(1 for line in lines if line and not line.startswith("#")) <= MAX_CODE_LINES


def test_allocation_targets_stop_at_the_bounds_of_the_init():
    """Chapter 5a/5b targets: W and S at most 2 above TrainConfig's init (4/4/2), T at most 1 above."""
    from adabit_lite.studies import allocation as al
    from adabit_lite.train import TrainConfig
    from adabit_lite.wst import parse_wst

    w, s, t = parse_wst(TrainConfig().init, integers=True)
    for declaration in (al.PARAMETERS_05A, al.PARAMETERS_05B):
        values = params.defaults(declaration)
        params.check(declaration, {**values, "targets": [f"{w + 2}/{s + 2}/{t + 1}"]})
        for bad in (f"{w + 3}/1/1", f"1/{s + 3}/1", f"1/1/{t + 2}"):
            with pytest.raises(ValueError, match="parameter targets must be .*W/S/T"):
                params.check(declaration, {**values, "targets": [bad]})
