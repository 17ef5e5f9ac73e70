"""A chapter's parameters, declared once, and the one check of their values.

Each chapter declares its parameters as a tuple of ``Param``: name, kind, default, help (the comment
of its notebook's ``parameters`` cell) and what is allowed.  The declaration lives beside the
chapter's study code (``studies/<topic>.py``: ``PARAMETERS``), or below for the chapters without
one; ``CHAPTERS`` says where each is.  The notebook's validation cell is one call,

    params.check(PARAMETERS, globals())

and a value the declaration does not allow stops the notebook with one line,

    ValueError: parameter NAME must be ALLOWED, got VALUE

which the chapter runner (``python -m adabit_lite.chapter``) turns into exit status 2.
tests/test_params.py checks that each declaration names exactly the assignments of its notebook's
``parameters`` cell, with the same defaults and comments, and that book/profiles.yml passes.

Kinds (a ``Param`` with ``many=True`` takes a non-empty list of distinct such values; with
``optional=True`` it also takes None):

    int     an integer (not a bool) in [low, high]; ``even``: an even one
    float   a finite number (int or float, not a bool) in [low, high]; ``open_low``: low excluded
    bool    True or False
    str     any string (``allowed`` says what it means)
    path    a non-empty string; ``suffix``: ending in it; ``exists``: an existing file, relative
            paths taken from the project root (``results.project_path``)
    choice  one of ``choices``
    wst     a "W/S/T" string (``wst.parse_wst``; ``integers``: whole numbers), each of W, S, T in
            [low, high] (a number for all three, or one per component)
    device  cpu, cuda or cuda:N (``available``: a CUDA device torch sees), or one of ``choices``
    any     whatever ``test`` accepts

``low`` or ``high`` may be an expression over the other parameters (``"digit_size + 8"``);
``test(value)`` may add a check of its own, returning what is wrong in a few words, or None.
"""

from __future__ import annotations

import importlib
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

KINDS = ("int", "float", "bool", "str", "path", "choice", "wst", "device", "any")


@dataclass(frozen=True)
class Param:
    """One parameter of a chapter: its name, kind, default, help and the values it allows."""

    name: str
    kind: str
    default: Any
    help: str
    low: Any = None  # number, (W, S, T) bounds for kind wst, or an expression over other parameters
    high: Any = None
    open_low: bool = False  # low itself not allowed
    choices: tuple = ()
    optional: bool = False  # None allowed too
    many: bool = False  # a non-empty list of distinct values of this kind
    among: tuple = ()  # values the list must hold (many)
    even: bool = False  # int: even only
    suffix: str = ""  # path: must end in it
    exists: bool = False  # path: an existing file
    integers: bool = False  # wst: whole numbers only
    available: bool = False  # device: one that torch can use here
    note: str = ""  # said in parentheses after what is allowed
    allowed: str = ""  # says what is allowed instead of the generated words
    test: Callable[[Any], str | None] | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"parameter {self.name}: unknown kind {self.kind!r} (kinds: {', '.join(KINDS)})")
        if self.kind == "any" and not (self.allowed and self.test):
            raise ValueError(f"parameter {self.name}: kind 'any' needs allowed and test")

    # ------------------------------------------------------------------ what is allowed, in words
    def describe(self, values: dict | None = None) -> str:
        """What the parameter allows, in words (``values``: the others, for expression bounds)."""
        text = self.allowed or (self._plural(values) if self.many else self._singular(values))
        if self.many and not self.allowed:
            text = f"a non-empty list of distinct {text}"
            if self.among:
                text += f" ({', '.join(map(repr, self.among))} among them)"
        if self.note:
            text += f" ({self.note})"
        return f"None or {text}" if self.optional else text

    def _singular(self, values) -> str:
        kind = self.kind
        if kind == "int":
            return _with_article(f"{'even ' if self.even else ''}integer{self._span(values)}")
        if kind == "float":
            if self.open_low and self.high is None and self.low == 0:
                return "a positive number"
            return f"a number{self._span(values)}"
        if kind == "bool":
            return "True or False"
        if kind == "str":
            return "a string"
        if kind == "path":
            if self.exists:
                return f"an existing file{f' ending in {self.suffix}' if self.suffix else ''}"
            return f"a path ending in {self.suffix}" if self.suffix else "a folder path"
        if kind == "choice":
            return f"one of {_listed(self.choices)}"
        if kind == "wst":
            return f"a 'W/S/T' string{self._wst_ranges()}"
        return _or(self._devices())  # device

    def _plural(self, values) -> str:
        kind = self.kind
        if kind == "int":
            return f"{'even ' if self.even else ''}integers{self._span(values)}"
        if kind == "float":
            return f"numbers{self._span(values)}"
        if kind == "choice":
            return f"values from {_listed(self.choices)}"
        if kind == "wst":
            return f"'W/S/T' strings{self._wst_ranges()}"
        return f"values: {self._singular(values)}"

    def _span(self, values) -> str:
        low, high = self._bound(self.low, values), self._bound(self.high, values)
        if low is not None and high is not None:
            return f" in ({low}, {high}]" if self.open_low else f" from {low} to {high}"
        if low is not None:
            return f" > {low}" if self.open_low else f" >= {low}"
        return f" <= {high}" if high is not None else ""

    def _bound(self, bound, values) -> str | None:
        if isinstance(bound, str):
            return f"{bound} = {_number(_evaluate(bound, values))}" if values is not None else bound
        return None if bound is None else _number(bound)

    def _wst_ranges(self) -> str:
        lows, highs = _three(self.low, 1), _three(self.high, None)
        groups: list[list] = []
        for name, low, high in zip("WST", lows, highs):
            if groups and groups[-1][1:] == [low, high]:
                groups[-1][0].append(name)
            else:
                groups.append([[name], low, high])
        parts = []
        for names, low, high in groups:
            if low == high:
                span = f"= {_number(low)}"
            elif high is None:
                span = f">= {_number(low)}"
            else:
                span = f"from {_number(low)} to {_number(high)}"
            parts.append(f"{_and(names)} {span}")
        return f" with {'whole ' if self.integers else ''}{_and(parts)}"

    def _devices(self) -> list[str]:
        found = ["cpu", "an available CUDA device (cuda, cuda:N)"] if self.available else ["cpu", "cuda", "cuda:N"]
        return found + [str(c) for c in self.choices]

    # ------------------------------------------------------------------ the check
    def error(self, value, values: dict | None = None) -> str | None:
        """The one-line refusal of ``value``, or None when it is allowed."""
        values = {} if values is None else values
        if value is None and self.optional:
            return None
        if self.many:
            if not isinstance(value, (list, tuple)) or not value:
                good = False
            else:
                try:
                    distinct = len(set(value)) == len(value)
                except TypeError:  # unhashable items
                    distinct = False
                good = distinct and all(v in value for v in self.among) and all(
                    self._allows(v, values) for v in value)
            problem = self.test(value) if good and self.test else None
        else:
            problem = self.test(value) if self.test else None
            good = problem is None and (self.kind == "any" or self._allows(value, values))
        if good and problem is None:
            return None
        here = f" (here: {problem})" if problem else ""
        return f"parameter {self.name} must be {self.describe(values)}{here}, got {value!r}"

    def _allows(self, value, values) -> bool:
        kind = self.kind
        if kind == "int":
            return _is_int(value) and self._within(value, values) and not (self.even and value % 2)
        if kind == "float":
            return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                    and self._within(value, values))
        if kind == "bool":
            return isinstance(value, bool)
        if kind == "str":
            return isinstance(value, str)
        if kind == "path":
            if not isinstance(value, str) or not value.strip() or not value.endswith(self.suffix):
                return False
            if self.exists:
                from .results import project_path

                return project_path(value).is_file()
            return True
        if kind == "choice":
            return any(value == c and type(value) is type(c) for c in self.choices)
        if kind == "wst":
            return self._wst_ok(value)
        if kind == "device":
            return self._device_ok(value)
        return True  # any: the test decides

    def _within(self, value, values) -> bool:
        low, high = self.low, self.high
        low = _evaluate(low, values) if isinstance(low, str) else low
        high = _evaluate(high, values) if isinstance(high, str) else high
        if low is not None and (value <= low if self.open_low else value < low):
            return False
        return high is None or value <= high

    def _wst_ok(self, value) -> bool:
        from .wst import parse_wst

        try:
            parts = parse_wst(value, integers=self.integers)
        except ValueError:
            return False
        return all(part >= low and (high is None or part <= high)
                   for part, low, high in zip(parts, _three(self.low, 1), _three(self.high, None)))

    def _device_ok(self, value) -> bool:
        if value == "cpu" or (isinstance(value, str) and value in self.choices):
            return True
        if not isinstance(value, str) or not re.fullmatch(r"cuda(:\d+)?", value):
            return False
        if not self.available:
            return True
        import torch

        return torch.cuda.is_available() and int(value.partition(":")[2] or 0) < torch.cuda.device_count()


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _three(bound, missing) -> tuple:
    """W, S, T bounds of a wst parameter: one bound for all three, or one each."""
    if bound is None:
        return (missing,) * 3
    return tuple(bound) if isinstance(bound, (tuple, list)) else (bound,) * 3


def _evaluate(expression: str, values: dict):
    """An expression bound (``"digit_size + 8"``) over the other parameters."""
    return eval(expression, {"__builtins__": {}}, dict(values))  # noqa: S307 (the package's own text)


def _number(x) -> str:
    """1000000 -> '10**6' (powers of ten from 10**5), 0.5 -> '0.5', 8 -> '8'."""
    if _is_int(x) and x >= 10**5 and 10 ** round(math.log10(x)) == x:
        return f"10**{round(math.log10(x))}"
    return f"{x:g}" if isinstance(x, float) else str(x)


def _with_article(text: str) -> str:
    return f"{'an' if text[0] in 'aeiou' else 'a'} {text}"


def _and(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _or(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def _listed(choices) -> str:
    """Choices in their order, split by '; ' where one of them holds a comma."""
    words = [str(c) for c in choices]
    return ("; " if any("," in w for w in words) else ", ").join(words)


# ---------------------------------------------------------------------- declarations and the check
def declare(*params: Param) -> tuple[Param, ...]:
    """A chapter's declaration: its parameters in the order of its ``parameters`` cell."""
    names = [p.name for p in params]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"parameters declared twice: {', '.join(twice)}")
    return tuple(params)


def defaults(declaration) -> dict:
    """{name: default} of a declaration."""
    return {p.name: p.default for p in declaration}


def check(declaration, values: dict) -> None:
    """Check ``values`` (a notebook's ``globals()``, or any mapping holding every declared name)
    against the declaration; the first value it does not allow raises a one-line ValueError
    "parameter NAME must be ALLOWED, got VALUE".  Returns None (a notebook cell shows nothing).
    Parameters whose bounds name other parameters are checked after those."""
    missing = [p.name for p in declaration if p.name not in values]
    if missing:
        raise ValueError(f"parameter {missing[0]} is not set")
    depends = [p for p in declaration if isinstance(p.low, str) or isinstance(p.high, str)]
    for p in [p for p in declaration if p not in depends] + depends:
        message = p.error(values[p.name], values)
        if message is not None:
            raise ValueError(message)


# ---------------------------------------------------------------------- parameters many chapters share
FIG_DIR_HELP = "figures (PNG) and tables (CSV) go here"


def fig_dir() -> Param:
    return Param("fig_dir", "path", "_build/figures", FIG_DIR_HELP)


def record_path(stem: str) -> Param:
    """The record of chapter ``stem`` (nb/STEM.ipynb), read by tests/test_nb_TOPIC.py."""
    return Param("record_path", "path", f"_build/records/{stem}.json",
                 f"key numbers, read by tests/test_nb_{stem.split('_', 1)[1]}.py", suffix=".json")


def results_dir(help: str, default: str = "results") -> Param:
    return Param("results_dir", "path", default, help)


def seed(help: str) -> Param:
    return Param("seed", "int", 0, help, low=0)


def seeds(help: str, default=None) -> Param:
    """The seeds of a chapter's stored runs (default: the sweeps' ``DEFAULT_SEEDS``)."""
    from .sweeps import DEFAULT_SEEDS

    return Param("seeds", "int", list(DEFAULT_SEEDS if default is None else default), help, low=0,
                 many=True)


def dataset(help: str, choices: tuple, default: str) -> Param:
    return Param("dataset", "choice", default, help, choices=tuple(choices))


DATASET_HELP = "data of every run (the default, chosen in the data chapter)"
DATA_OPTIONS_HELP = 'data set options: comma-separated KEY=VALUE pairs as in TrainConfig.data_options ("" for the defaults)'
WIDTH_HELP = "base channel width of the model (None: the model's default)"


def training(epochs: int | None = None, dataset_help: str = DATASET_HELP,
             data_options_help: str = DATA_OPTIONS_HELP) -> tuple[Param, ...]:
    """dataset, data_options, width and epochs of the chapters that train the book's small models
    (defaults: TrainConfig's, which the sweeps use)."""
    from .train import STATIC_DATASETS, TrainConfig

    return (dataset(dataset_help, STATIC_DATASETS, TrainConfig().dataset),
            Param("data_options", "str", "", data_options_help, allowed="a string KEY=VALUE[,KEY=VALUE]"),
            Param("width", "int", None, WIDTH_HELP, low=1, optional=True),
            Param("epochs", "int", TrainConfig().epochs if epochs is None else epochs,
                  "epochs of every run", low=1, high=1000))


def train_missing() -> Param:
    return Param("train_missing", "bool", False,
                 "train (and store) the runs that are not stored; False: stored runs only")


# ---------------------------------------------------------------------- chapters without a study module
DATA = declare(  # nb/00_data.ipynb
    results_dir("stored sweep results (results/dataset-choice/...)"),
    Param("n_show", "int", 8, "images shown per data set", low=1, high=16),
    seed("seed of the split and of the event samples shown"),
    fig_dir(),
    record_path("00_data"),
)

COST = declare(  # nb/01_cost.ipynb
    dataset("embedded images for the firing rates (section 4): mnist5k, mnist5k-noisy or digits",
            ("mnist5k", "mnist5k-noisy", "digits"), "mnist5k"),
    Param("n_samples", "int", 256, "images in the batch whose firing rates are measured (section 4)",
          low=8, high=1024),
    Param("fire_wst", "wst", "4/4/2", "uniform W/S/T of the small CNN in section 4 (the paper's models "
          "start at 4/4/2)", low=1, high=8, integers=True, note="e.g. '4/4/2'"),
    seed("seeds the small CNN's initial weights and the data split"),
    Param("alloc_cap", "int", 4, "most bits one layer may get in the illustrative allocations of section 3",
          low=2, high=8),
    Param("cifar_input", "int", 32, "input height = width of the CIFAR architectures (the papers: 32)",
          low=16, high=128),
    Param("imagenet_input", "int", 224, "input height = width of SEW-ResNet-34 (the papers: 224)",
          low=64, high=320),
    fig_dir(),
    record_path("01_cost"),
)

THEOREM = declare(  # nb/02_theorem.ipynb
    Param("sigma", "float", 1.0, "scale of the half-normal input |N(0, sigma^2)|", low=0, open_low=True),
    Param("b_max", "int", 6, "largest bit width; every drop from b to a smaller width is evaluated",
          low=2, high=8),
    Param("n", "int", 10**6, "Monte Carlo samples per estimate", low=10**3, high=10**8),
    Param("n_grid", "int", 10**5, "samples the renewal grid search scores (section 7)", low=10**3, high=10**7),
    seed("base seed; every estimate derives its own seed from it"),
    Param("T_max", "int", 8, "longest time window of the T-step accumulation", low=1, high=64),
    fig_dir(),
    record_path("02_theorem"),
)

SCALE = declare(  # nb/09_scale.ipynb
    results_dir("where stored scale runs are looked up (one folder per run key)", "results/scale"),
    Param("epochs", "int", 200, "the reference schedule: cosine to 0 over 200 epochs", low=1),
    Param("batch_size", "int", 128, "global batch (split over GPUs under torchrun)", low=1),
    Param("device", "device", "cuda", "device written into the commands", choices=("auto",)),
    record_path("09_scale"),
)

PERFORMANCE = declare(  # nb/10_performance.ipynb
    Param("results_path", "path", "benchmarks/results/latest.json",
          "stored benchmark results (python -m benchmarks)", suffix=".json", exists=True,
          note="run `python -m benchmarks` from the repository root to create it"),
    fig_dir(),
    record_path("10_performance"),
)

#: chapter (notebook stem) -> where its declaration is ("module:NAME")
CHAPTERS = {
    "00_data": "adabit_lite.params:DATA",
    "01_cost": "adabit_lite.params:COST",
    "02_theorem": "adabit_lite.params:THEOREM",
    "03_neuron": "adabit_lite.studies.neuron:PARAMETERS",
    "04_quantizers": "adabit_lite.studies.quantizers:PARAMETERS",
    "05_fashion": "adabit_lite.studies.fashion:PARAMETERS",
    "05a_allocation": "adabit_lite.studies.allocation:PARAMETERS_05A",
    "05b_stability": "adabit_lite.studies.allocation:PARAMETERS_05B",
    "06_ablations": "adabit_lite.studies.ablations:PARAMETERS",
    "07_budgets": "adabit_lite.studies.budgets:PARAMETERS",
    "08_temporal": "adabit_lite.studies.temporal:PARAMETERS",
    "09_scale": "adabit_lite.params:SCALE",
    "10_performance": "adabit_lite.params:PERFORMANCE",
    "ledger": "adabit_lite.ledger:PARAMETERS",
}


def declaration(stem: str) -> tuple[Param, ...]:
    """The declaration of chapter ``stem`` (a key of ``CHAPTERS``)."""
    module, _, name = CHAPTERS[stem].partition(":")
    return getattr(importlib.import_module(module), name)
