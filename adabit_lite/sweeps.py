"""Named sweeps: the multi-seed training runs whose stored results the chapters show.

    python -m adabit_lite.sweeps list
    python -m adabit_lite.sweeps run [NAME ...] [--results results] [--limit N] [--jobs J]

Each run trains into ``results/<sweep>/<key>/result.json`` (``train.load_or_train``): the key
hashes the run's parameters and ``ALGORITHM_VERSION``, so a run whose result exists is skipped, a
killed sweep resumes where it stopped (an interrupted run resumes from its checkpoint), and a result
from other parameters or another code version is never reused.  ``make results`` runs them all.
``--jobs J`` trains J runs at once in separate processes, each with ``--threads`` torch threads
(default 1: the stored runs were made with one thread, and the thread count changes the last
digits of float sums).  Sweeps run in the order of ``SWEEPS``: a later sweep may build its runs from
the stored results of an earlier one (the allocation control fixes the bits that LBW learned).
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import shutil
import sys
import time
from pathlib import Path

import torch

from .results import find_result, result_key
from .train import TrainConfig, TrainingDiverged, load_or_train

RESULTS = Path("results")


# Candidate default data sets, in the order they are considered (book/definitions.md#def-default-data).
CANDIDATES = (("mnist5k", ""), ("digits", "size=16"), ("mnist5k-noisy", ""))


def dataset_choice() -> list[TrainConfig]:
    """Uniform 1/1/1 against uniform 4/4/1 on each candidate data set, 3 seeds.

    The criterion (book/definitions.md#def-default-data): the default data must make uniform 1/1/1 lose >= 2 points to uniform
    4/4/1, so that quantization matters; it looks at no learned-bit method.
    """
    runs = []
    for dataset, options in CANDIDATES:
        for target in ("1/1/1", "4/4/1"):
            for seed in range(3):
                runs.append(TrainConfig(dataset=dataset, data_options=options, target=target,
                                        init=target, epochs=10, seed=seed).uquant())
    return runs


# ---------------------------------------------------------------- stable bit widths
STABILITY_TARGETS = ("2/2/1", "1.5/1.5/1")
STABILITY_SEEDS = tuple(range(5))
HYSTERESIS = 0.25
# Tolerance bands of the bit loss: 0.3 is the tolerance within which the book counts a run as on
# target (the band says: inside it, stop pushing); 0.2 is a stricter band, to show what happens
# when the band holds no mean that whole bits can reach.
BANDS = (0.2, 0.3)
# The paper's behaviour and the remedies (TrainConfig options), in the order the book shows them.
REMEDIES = {
    "paper": {},
    "hysteresis": {"hysteresis": HYSTERESIS},
    "soft loss": {"soft_bit_loss": True},
    "freeze": {"freeze_bits": True},
    **{f"band {b} + hysteresis": {"bit_tolerance": b, "hysteresis": HYSTERESIS} for b in BANDS},
    # the same, with BatchNorm statistics recomputed after each epoch (train.recalibrate_bn)
    "band 0.3 + hysteresis + BN": {"bit_tolerance": 0.3, "hysteresis": HYSTERESIS,
                                   "bn_recalibrate": True},
}
CHOSEN_REMEDY = "band 0.3 + hysteresis + BN"


def remedy_of(cfg: TrainConfig) -> str:
    """The name in ``REMEDIES`` whose options ``cfg`` carries."""
    base = TrainConfig()
    fields = set().union(*(o.keys() for o in REMEDIES.values()))
    for name, options in REMEDIES.items():
        if all(getattr(cfg, f) == options.get(f, getattr(base, f)) for f in fields):
            return name
    raise ValueError("the config matches no remedy")


def bit_stability(targets=STABILITY_TARGETS, seeds=STABILITY_SEEDS, **base) -> list[TrainConfig]:
    """LBW + activation renewal at targets above the minimum, the paper's rounding vs each remedy;
    with U-quant at the nearest uniform settings (1/1/1 and 2/2/1), 5 seeds each.  ``base``:
    TrainConfig fields shared by every run (the defaults give the stored sweep)."""
    runs = []
    for target in targets:
        for options in REMEDIES.values():
            runs += [TrainConfig(target=target, seed=seed, **base, **options) for seed in seeds]
    for uniform in ("1/1/1", "2/2/1"):
        runs += [TrainConfig(target=uniform, seed=seed, **base).uquant() for seed in seeds]
    return runs


def bit_stability_control(results: Path = RESULTS, **kwargs) -> list[TrainConfig]:
    """The allocation control: each stored LBW run's learned per-layer bits (with the combined
    remedy), fixed from the start.  Only runs whose LBW result is stored under ``results``."""
    return [c for group in bit_stability_groups(results, **kwargs).values()
            for c in group.get("control", [])]


def bit_stability_groups(results: Path = RESULTS, targets=STABILITY_TARGETS,
                         seeds=STABILITY_SEEDS, **base) -> dict[str, dict[str, list[TrainConfig]]]:
    """The runs of the stability chapter by target and method: each remedy, U-quant at 1/1/1 and
    2/2/1, and the control of the combined remedy (for the LBW runs stored under ``results``)."""
    configs = bit_stability(targets, seeds, **base)
    groups = {}
    for target in targets:
        group = {name: [c for c in configs if c.learn_w and c.target == target
                        and remedy_of(c) == name] for name in REMEDIES}
        for uniform in ("1/1/1", "2/2/1"):
            group[f"U-quant {uniform}"] = [c for c in configs
                                           if not c.learn_w and c.target == uniform]
        group["control"] = [c.control(found) for c in group[CHOSEN_REMEDY]
                            if (found := find_result(results / "bit-stability", c)) is not None]
        groups[target] = group
    return groups


# ---------------------------------------------------------------- temporal data (chapter 8)
# One event stream of TEMPORAL_FRAMES frames in which the digit circles twice, seen through K time
# bins (data.py, options turns and bins): a bin that spans a whole turn holds a closed path, so at
# K <= 2 the two members of every pair are identical and the label (the sense of rotation) cannot
# be read; at K = 4 and 8 every bin is half or a quarter of a turn.  The settings were chosen in
# chapter 8 (why, and what they cost, is said there).
TEMPORAL_FRAMES = 8
TEMPORAL_BINS = (8, 4, 2, 1)
TEMPORAL_BUDGET = 8  # W * S * T of every fixed split: 1/1/8, 1/2/4, 1/4/2, 1/8/1
TEMPORAL_DATA = "num_samples=1000,turns=2,canvas=16,digit_size=8"
TEMPORAL_BASE = {"arch": "event-cnn", "dataset": "moving-digits", "width": 8, "epochs": 8,
                 "batch_size": 32, "lr_bits": 0.4}
TEMPORAL_METHODS = ("fixed", "learned", "full precision", "time average")


def temporal_split(T: int, budget: int = TEMPORAL_BUDGET) -> str:
    """The fixed split W/S/T = 1/(budget/T)/T of Shen et al.'s pattern (T must divide budget)."""
    if budget % T:
        raise ValueError(f"T = {T} does not divide the Bit Budget {budget}")
    return f"1/{budget // T}/{T}"


def _temporal_runs(seeds, bins, data, budget, base):
    """(T, method, config) for every run of ``temporal_budget``."""
    base = {**TEMPORAL_BASE, **base}
    runs = []
    for T in bins:
        opts = f"{data},T={TEMPORAL_FRAMES},bins={T}" if data else f"T={TEMPORAL_FRAMES},bins={T}"
        split = temporal_split(T, budget)
        s = budget // T
        for seed in seeds:
            one = dict(base, data_options=opts, seed=seed)
            learned = TrainConfig(init=f"4/{max(4, s)}/{T}", target=split, **one)
            fixed = learned.fixed()
            runs += [(T, "fixed", fixed), (T, "learned", learned),
                     (T, "full precision", fixed.full_precision_baseline())]
            if T == max(bins):
                runs.append((T, "time average", dataclasses.replace(
                    fixed.full_precision_baseline(), time_average_input=True)))
    return runs


def temporal_budget(seeds=range(5), bins=TEMPORAL_BINS, data=TEMPORAL_DATA,
                    budget=TEMPORAL_BUDGET, **base) -> list[TrainConfig]:
    """Chapter 8's sweep: one event stream binned into T time bins (T in ``bins``), at each T the
    fixed split 1/(budget/T)/T, the learned bits (LBW + activation renewal, init 4/max(4, S)/T,
    target that split) and the full-precision network, plus the time-average control (full
    precision fed the input's mean over time) at the largest T; one run per seed.  ``base``:
    TrainConfig fields that replace ``TEMPORAL_BASE`` (the defaults give the sweep to store)."""
    return [cfg for _, _, cfg in _temporal_runs(list(seeds), bins, data, budget, base)]


def temporal_groups(seeds=range(5), bins=TEMPORAL_BINS, data=TEMPORAL_DATA,
                    budget=TEMPORAL_BUDGET, **base) -> dict[int, dict[str, list[TrainConfig]]]:
    """The runs of ``temporal_budget`` by T (largest first) and method (``TEMPORAL_METHODS``;
    "time average" only at the largest T), seeds in order."""
    groups: dict[int, dict[str, list[TrainConfig]]] = {}
    for T, method, cfg in _temporal_runs(list(seeds), bins, data, budget, base):
        groups.setdefault(T, {}).setdefault(method, []).append(cfg)
    order = {m: i for i, m in enumerate(TEMPORAL_METHODS)}
    return {T: dict(sorted(groups[T].items(), key=lambda kv: order[kv[0]]))
            for T in sorted(groups, reverse=True)}


# ---------------------------------------------------------------- adaptive allocation (chapter 5)
ALLOCATION_TARGETS = ("1/1/1", "2/2/1", "3/4/1", "4/4/1")
ALLOCATION_SEEDS = {"1/1/1": tuple(range(8))}  # U-quant is noisy at 1/1/1 (book/definitions.md#def-seeds): 8 seeds
DEFAULT_SEEDS = tuple(range(5))
ALLOCATION_METHODS = ("U-quant", "LBW", "LBW + renewal", "control", "full precision")
# the control is run where LBW can allocate unevenly; at 3/4/1 and 4/4/1 it learns near-uniform
# bits, so its control would repeat U-quant
CONTROL_TARGETS = ("1/1/1", "2/2/1")


def allocation_seeds(target: str) -> tuple[int, ...]:
    return ALLOCATION_SEEDS.get(target, DEFAULT_SEEDS)


def _allocation_runs(targets, seeds, base) -> list[tuple[str, str, TrainConfig]]:
    seeds = {t: tuple(seeds[t]) if seeds and t in seeds else allocation_seeds(t) for t in targets}
    runs = []
    for target in targets:
        for seed in seeds[target]:
            lbw = TrainConfig(target=target, seed=seed, **base)
            runs += [(target, "U-quant", lbw.uquant()),
                     (target, "LBW", dataclasses.replace(lbw, renewal="none")),
                     (target, "LBW + renewal", lbw)]
    # full precision has no target: one run per seed of the largest seed set
    runs += [("-", "full precision", TrainConfig(seed=s, **base).full_precision_baseline())
             for s in max(seeds.values(), key=len)]
    return runs


def allocation(targets=ALLOCATION_TARGETS, seeds: dict | None = None, **base) -> list[TrainConfig]:
    """Chapter 5: at each target, U-quant, LBW without renewal and LBW + activation renewal (the
    paper's method: the default options), over ``seeds[target]`` (default: 8 seeds at 1/1/1, 5
    elsewhere); the full-precision network over the largest seed set.  ``base``: TrainConfig
    fields shared by every run (the defaults give the stored sweep)."""
    return [cfg for _, _, cfg in _allocation_runs(targets, seeds, base)]


def allocation_groups(results: Path = RESULTS, targets=ALLOCATION_TARGETS,
                      seeds: dict | None = None, **base) -> dict[str, dict[str, list[TrainConfig]]]:
    """The runs of chapter 5 by target and method (``ALLOCATION_METHODS``); "control" fixes the
    bits of each stored "LBW + renewal" run (only those stored under ``results``), and "full
    precision" is the same list at every target."""
    runs = _allocation_runs(targets, seeds, base)
    fp = [c for _, m, c in runs if m == "full precision"]
    groups = {}
    for target in targets:
        group = {m: [c for t, mm, c in runs if t == target and mm == m]
                 for m in ALLOCATION_METHODS[:3]}
        group["control"] = [c.control(found) for c in group["LBW + renewal"]
                            if target in CONTROL_TARGETS
                            and (found := find_result(results / "allocation", c)) is not None]
        group["full precision"] = fp
        groups[target] = group
    return groups


def allocation_control(results: Path = RESULTS, **kwargs) -> list[TrainConfig]:
    """The allocation control of chapter 5: each stored LBW + renewal run's bits, fixed."""
    return [c for g in allocation_groups(results, **kwargs).values() for c in g["control"]]


# ---------------------------------------------------------------- ablations (chapter 6)
ABLATION_TARGET = "1/1/1"
OLD_NEURON = {"tau": 2.0, "firing": "floor", "amplitude": True}
# name -> TrainConfig options over LBW + activation renewal at the ablation target (the default)
ABLATIONS = {
    "default": {},
    # renewal variants (the paper's ablation table)
    "renewal none": {"renewal": "none"},
    "renewal weight-only": {"renewal": "weight"},
    "renewal both": {"renewal": "both"},
    # the neuron (the paper's refined-neuron ablation): tau 2 & floor is the old neuron, as U-quant,
    # as LBW without renewal and as LBW + activation renewal (the paper's five columns)
    "old neuron, U-quant": OLD_NEURON,  # made U-quant by ablation_config (UQUANT_ABLATIONS)
    "old neuron, no renewal": {**OLD_NEURON, "renewal": "none"},
    "old neuron": OLD_NEURON,
    "tau 2, round": {"tau": 2.0},
    # learnable T off: T fixed at the target's 1 from the start
    "T fixed": {"learn_T": False, "init": "4/4/1"},
    # the reference code's renewal against the book's defaults (book/definitions.md#def-renewal-range)
    "running extrema": {"running_extrema": True},
    "renewal both, range-ratio weights": {"renewal": "both", "weight_renewal": "range-ratio"},
}


# ablations run as U-quant (every learned layer fixed at the target from the start)
UQUANT_ABLATIONS = frozenset({"old neuron, U-quant"})


def ablation_config(name: str, seed: int, target: str = ABLATION_TARGET, **base) -> TrainConfig:
    """The run of ablation ``name`` (``ABLATIONS``): its options over ``base`` at ``target``."""
    cfg = TrainConfig(target=target, seed=seed, **{**base, **ABLATIONS[name]})
    return cfg.uquant() if name in UQUANT_ABLATIONS else cfg


def ablation_groups(seeds=DEFAULT_SEEDS, target=ABLATION_TARGET,
                    **base) -> dict[str, list[TrainConfig]]:
    """Chapter 6's runs by ablation name (``ABLATIONS``), seeds in order."""
    return {name: [ablation_config(name, s, target, **base) for s in seeds] for name in ABLATIONS}


def ablations(**kwargs) -> list[TrainConfig]:
    """Chapter 6: each ablation of ``ABLATIONS`` at 1/1/1 over 5 seeds."""
    return [c for group in ablation_groups(**kwargs).values() for c in group]


# ---------------------------------------------------------------- fixed budgets (chapter 7)
# Shen et al. tables 2 and 5 compare these splits (and 2/1/2) of Bit Budget 4 for Spikformer
BUDGETS = {4: ("1/4/1", "1/2/2", "1/1/4", "2/2/1", "4/1/1")}


def fixed_budget_groups(seeds=DEFAULT_SEEDS, budgets=BUDGETS,
                        **base) -> dict[int, dict[str, list[TrainConfig]]]:
    """Chapter 7's runs by Bit Budget and W/S/T split: every learned layer fixed at the split
    (U-quant), seeds in order."""
    for budget, splits in budgets.items():
        for split in splits:
            w, s, t = (int(v) for v in split.split("/"))
            if w * s * t != budget:
                raise ValueError(f"split {split} has Bit Budget {w * s * t}, not {budget}")
    return {budget: {split: [TrainConfig(target=split, seed=s, **base).uquant() for s in seeds]
                     for split in splits} for budget, splits in budgets.items()}


def fixed_budget(**kwargs) -> list[TrainConfig]:
    """Chapter 7: U-quant at W/S/T splits of one Bit Budget (Shen et al.), 5 seeds each."""
    return [c for group in fixed_budget_groups(**kwargs).values()
            for runs in group.values() for c in runs]


# ---------------------------------------------------------------- the Fashion-MNIST stage
# Candidate settings of the second stage, cheapest first: (arch, width, training images).  The stage
# takes the first whose U-quant 1/1/1 loses at least FASHION_GAP_POINTS to U-quant 4/4/1 over
# FASHION_CHOICE_SEEDS (mean accuracy), a rule that looks at no learned-bit method; a candidate is
# trained only when the ones before it are stored and miss the rule.
FASHION_CANDIDATES = (("resnet8", 16, 12000), ("resnet20", 16, 12000))
FASHION_GAP_POINTS = 3.0
FASHION_CHOICE_SEEDS = (0, 1, 2)
FASHION_EPOCHS = 10
#: the short runs that `make test` trains again: LBW + renewal at 1/1/1 for 2 epochs on 2000 images
FASHION_SHORT = {"epochs": 2, "train_limit": 2000}


def fashion_base(arch: str, width: int, limit: int) -> dict:
    """TrainConfig fields of a candidate setting of the Fashion-MNIST stage."""
    return {"dataset": "fashion-mnist", "arch": arch, "width": width, "train_limit": limit,
            "epochs": FASHION_EPOCHS}


def _fashion_gap(results: Path, candidate) -> float | None:
    """Mean accuracy of U-quant 4/4/1 minus 1/1/1 over the stored seeds (None: not all stored)."""
    means = []
    for target in ("1/1/1", "4/4/1"):
        found = [find_result(results / "fashion-choice",
                             TrainConfig(**fashion_base(*candidate), target=target, init=target,
                                         seed=s).uquant()) for s in FASHION_CHOICE_SEEDS]
        if any(r is None for r in found):
            return None
        means.append(sum(r["metrics"]["accuracy"] for r in found) / len(found))
    return means[1] - means[0]


def fashion_stage(results: Path = RESULTS) -> tuple | None:
    """The chosen candidate (arch, width, training images), or None while the rule is undecided."""
    for candidate in FASHION_CANDIDATES:
        gap = _fashion_gap(results, candidate)
        if gap is None:
            return None
        if gap >= FASHION_GAP_POINTS:
            return candidate
    return None


def fashion_choice(results: Path = RESULTS) -> list[TrainConfig]:
    """U-quant 1/1/1 and 4/4/1 of each candidate up to the first that meets the rule (or is not
    yet stored), 3 seeds; and the short LBW + renewal runs of the first candidate that the tests
    train again."""
    runs = []
    for candidate in FASHION_CANDIDATES:
        base = fashion_base(*candidate)
        runs += [TrainConfig(**base, target=t, init=t, seed=s).uquant()
                 for t in ("1/1/1", "4/4/1") for s in FASHION_CHOICE_SEEDS]
        gap = _fashion_gap(results, candidate)
        if gap is None or gap >= FASHION_GAP_POINTS:
            break
    short = {**fashion_base(*FASHION_CANDIDATES[0]), **FASHION_SHORT}
    runs += [TrainConfig(**short, seed=s) for s in FASHION_CHOICE_SEEDS]
    return runs


# The stage's comparisons (chapter 5 leads with them).  The landing remedy: the paper's rule (LBW +
# activation renewal) for FASHION_PROJECT_AT epochs, then the learned bits projected onto the
# target, frozen, and the steps renewed (TrainConfig.project_at, projection.py); at the targets
# above the minimum also with the small stage's stability remedy before the projection.
FASHION_PROJECT_AT = 6
# Every comparison run of the stage reflects a step that crosses zero (|s|) instead of holding it at
# the floor: with the floor, the stem's weight step of the paper's rule at 1/1/1 sat at the floor in
# two of its first three seeds, every stem weight rounded to 0 and the network collapsed to chance
# (the sweep fashion-collapse keeps that evidence: the same runs with the floor and with |s|).
FASHION_STEP_CLAMP = "reflect"
FASHION_COLLAPSE_SEEDS = tuple(range(5))
FASHION_REMEDY = {"project_at": FASHION_PROJECT_AT}
FASHION_STABLE_REMEDY = {**REMEDIES[CHOSEN_REMEDY], **FASHION_REMEDY}
FASHION_TARGETS = ("1/1/1", "2/2/1", "1.5/1.5/1", "3/4/1", "4/4/1")
FASHION_SEEDS = {"1/1/1": tuple(range(8))}  # U-quant is noisy at 1/1/1: 8 seeds, 5 elsewhere
#: the uniform settings nearest each target, for U-quant (a fractional target has two)
FASHION_NEAREST_UNIFORM = {"1.5/1.5/1": ("1/1/1", "2/2/1")}
FASHION_METHODS = {
    # target -> methods trained there (the controls are a sweep of their own, see below)
    "1/1/1": ("U-quant", "LBW", "LBW + renewal", "LBW + renewal + projection", "full precision"),
    "2/2/1": ("U-quant", "LBW + renewal", "LBW + renewal + projection",
              f"{CHOSEN_REMEDY} + projection"),
    "1.5/1.5/1": ("U-quant", "LBW + renewal", "LBW + renewal + projection",
                  f"{CHOSEN_REMEDY} + projection"),
    "3/4/1": ("U-quant", "LBW + renewal"),
    "4/4/1": ("U-quant", "LBW + renewal"),
}
#: the learned runs whose per-layer bits the control fixes from the start, by target
FASHION_CONTROLLED = {"1/1/1": ("LBW + renewal", "LBW + renewal + projection"),
                      "2/2/1": ("LBW + renewal + projection",),
                      "1.5/1.5/1": ("LBW + renewal + projection",)}


def fashion_seeds(target: str) -> tuple[int, ...]:
    return FASHION_SEEDS.get(target, DEFAULT_SEEDS)


def fashion_method(method: str, target: str, seed: int, base: dict | None = None
                   ) -> list[TrainConfig]:
    """The run(s) of ``method`` at ``target`` for one seed on the Fashion-MNIST stage (U-quant at a
    fractional target: one run per nearest uniform setting).  ``base``: other TrainConfig fields
    than the stage's (a chapter's quick settings)."""
    base = fashion_base(*FASHION_CANDIDATES[0]) if base is None else base
    lbw = TrainConfig(**{"step_clamp": FASHION_STEP_CLAMP, **base}, target=target, seed=seed)
    epochs = lbw.epochs  # quick settings project after the same share of training (at least 1)
    at = FASHION_PROJECT_AT if epochs == FASHION_EPOCHS else \
        max(1, min(epochs - 1, round(epochs * FASHION_PROJECT_AT / FASHION_EPOCHS)))
    if method == "U-quant":
        return [dataclasses.replace(lbw, target=u).uquant()
                for u in FASHION_NEAREST_UNIFORM.get(target, (target,))]
    if method == "full precision":
        return [lbw.full_precision_baseline()]
    return [{"LBW": dataclasses.replace(lbw, renewal="none"), "LBW + renewal": lbw,
             "LBW + renewal + projection": dataclasses.replace(lbw, **{**FASHION_REMEDY,
                                                                  "project_at": at}),
             f"{CHOSEN_REMEDY} + projection": dataclasses.replace(
                 lbw, **{**FASHION_STABLE_REMEDY, "project_at": at}),
             }[method]]


def fashion_groups(results: Path = RESULTS, targets=FASHION_TARGETS, seeds: dict | None = None,
                   base: dict | None = None) -> dict[str, dict[str, list[TrainConfig]]]:
    """The stage's runs by target and method (``FASHION_METHODS``), seeds in order; "control of M"
    fixes the bits of each stored run of method M (``FASHION_CONTROLLED``).  ``seeds`` (target ->
    seeds) and ``base`` (TrainConfig fields) replace the stage's for a chapter's quick settings."""
    groups = {}
    for target in targets:
        chosen = (seeds or {}).get(target, fashion_seeds(target))
        group = {m: [c for s in chosen for c in fashion_method(m, target, s, base)]
                 for m in FASHION_METHODS[target]}
        for m in FASHION_CONTROLLED.get(target, ()):
            group[f"control of {m}"] = [
                c.control(found) for c in group[m]
                if (found := find_result(results / "fashion-allocation", c)) is not None]
        groups[target] = group
    return groups


def fashion_allocation() -> list[TrainConfig]:
    """The Fashion-MNIST stage: every method of ``FASHION_METHODS`` at its targets (8 seeds at
    1/1/1, 5 elsewhere); runs shared by two targets (U-quant 1/1/1) are listed once.  Seed by
    seed, so that a sweep stopped half-way has every method at its first seeds."""
    runs = {}
    for target, group in fashion_groups(Path("/nonexistent")).items():
        for method, cfgs in group.items():
            for c in cfgs:
                runs.setdefault(result_key(c), c)
    return sorted(runs.values(), key=lambda c: c.seed)  # stable: targets, methods within a seed


def fashion_collapse() -> list[TrainConfig]:
    """The paper's rule at 1/1/1 on the stage, with the step floor (the package's default) and with
    reflected steps (the stage's), ``FASHION_COLLAPSE_SEEDS``: how often the floor collapses."""
    return [dataclasses.replace(c, step_clamp=clamp) for s in FASHION_COLLAPSE_SEEDS
            for c in fashion_method("LBW + renewal", "1/1/1", s) for clamp in ("floor", "reflect")]


def fashion_control(results: Path = RESULTS) -> list[TrainConfig]:
    """The allocation controls of the stage: each stored learned run's bits, fixed."""
    return [c for g in fashion_groups(results).values() for m, cfgs in g.items()
            if m.startswith("control of ") for c in cfgs]


SWEEPS = {"dataset-choice": dataset_choice, "bit-stability": bit_stability,
          "bit-stability-control": bit_stability_control, "temporal-budget": temporal_budget,
          "allocation": allocation, "allocation-control": allocation_control,
          "ablations": ablations, "fixed-budget": fixed_budget, "fashion-choice": fashion_choice,
          "fashion-allocation": fashion_allocation, "fashion-collapse": fashion_collapse,
          "fashion-control": fashion_control}

#: sweeps whose runs are still being trained (hours on two cores): their stored runs must be
#: current, and the chapters say how many are missing; remove a name once it is complete
IN_PROGRESS: frozenset[str] = frozenset()

# The run that tests/test_stored_results.py trains again in `make test` and compares with its
# stored file: one seed of one setting (the cheapest) per sweep; a control sweep, whose runs are
# built from its parent's results, is covered by its parent's chapter.
SUBSET = {"dataset-choice": lambda c: c.dataset == "digits" and c.target == "1/1/1" and c.seed == 0,
          "bit-stability": lambda c: c.target == "2/2/1" and c.hysteresis > 0 and c.seed == 0
          and c.bit_tolerance == 0,
          "bit-stability-control": lambda c: c.seed == 0,  # the first: target 2/2/1
          "temporal-budget": lambda c: c.seed == 0 and "bins=1" in c.data_options
          and not c.learn_w and not c.full_precision,
          "allocation": lambda c: c.seed == 0 and c.full_precision,
          "ablations": lambda c: c.seed == 0 and c.tau == 2.0 and c.firing == "round",
          "fixed-budget": lambda c: c.seed == 0 and c.target == "1/4/1",
          "fashion-choice": lambda c: c.seed == 0 and c.epochs == FASHION_SHORT["epochs"]}

GAP_POINTS = 2.0  # uniform 1/1/1 must lose at least this much to uniform 4/4/1


def dataset_choice_table(results: Path = RESULTS):
    """Per candidate: mean/std accuracy of uniform 1/1/1 and 4/4/1 over the stored seeds, the gap,
    whether the criterion holds, and how many runs are stored (a pandas DataFrame)."""
    import pandas as pd

    from .results import find_result, result_key

    rows = []
    for dataset, options in CANDIDATES:
        row = {"dataset": dataset, "options": options}
        for target in ("1/1/1", "4/4/1"):
            accs = [r["metrics"]["accuracy"] for c in dataset_choice()
                    if (c.dataset, c.data_options, c.target) == (dataset, options, target)
                    and (r := find_result(results / "dataset-choice", c)) is not None]
            s = pd.Series(accs, dtype=float)
            row.update({f"{target} runs": len(accs), f"{target} mean": s.mean(),
                        f"{target} std": s.std()})
        row["gap"] = row["4/4/1 mean"] - row["1/1/1 mean"]
        row["criterion met"] = bool(row["gap"] >= GAP_POINTS)
        rows.append(row)
    return pd.DataFrame(rows)


def default_dataset(results: Path = RESULTS) -> str:
    """The first candidate, in the declared order, whose stored runs meet the criterion."""
    table = dataset_choice_table(results)
    complete = table[(table["1/1/1 runs"] == 3) & (table["4/4/1 runs"] == 3)]
    met = complete[complete["criterion met"]]
    if met.empty:
        raise LookupError("no candidate data set meets the criterion in the stored results: "
                          "run `make results` (python -m adabit_lite.sweeps run dataset-choice)")
    return str(met.iloc[0]["dataset"])


def sweep_configs(name: str, results: Path = RESULTS) -> list[TrainConfig]:
    """The runs of sweep ``name`` (a later sweep may read the stored results of an earlier one)."""
    make = SWEEPS[name]
    return make(results) if "results" in make.__code__.co_varnames else make()


def _copy_from_another_sweep(cfg: TrainConfig, name: str, results: Path) -> bool:
    """Copy the run's folder from another sweep under ``results`` that stored the same run (same
    key, parameters and code version), so that each sweep folder holds all of its own runs."""
    for other in sorted(p for p in results.iterdir() if p.is_dir() and p.name != name):
        found = find_result(other, cfg) if (other / result_key(cfg)).is_dir() else None
        if found is not None:
            shutil.copytree(Path(found["_path"]).parent, results / name / found["key"])
            return True
    return False


def _train_one(job: tuple) -> tuple[TrainConfig, dict | str]:
    """Train one run; its result, or the one-line reason it diverged (the sweep goes on)."""
    name, cfg, results, threads, progress = job
    torch.set_num_threads(threads)
    try:
        return cfg, load_or_train(cfg, results / name, progress=progress, verbose=False)
    except TrainingDiverged as err:
        return cfg, str(err)


def run(names: list[str], results: Path = RESULTS, limit: int | None = None,
        progress: bool = True, jobs: int = 1, threads: int = 1) -> list[dict]:
    """Run (or reuse) every run of the named sweeps, ``jobs`` at a time; returns their results.
    A run that diverges is reported and the sweep goes on; ``SweepFailed`` names them at the end."""
    out, failed = [], []
    for name in names:
        configs = sweep_configs(name, results)[:limit]
        todo = [c for c in configs if find_result(results / name, c) is None]
        copied = [c for c in todo if _copy_from_another_sweep(c, name, results)]
        if copied:
            print(f"[{name}] {len(copied)} runs copied from other sweeps' stored results (same key)")
            todo = [c for c in todo if c not in copied]
        print(f"[{name}] {len(configs)} runs, {len(configs) - len(todo)} stored, "
              f"{len(todo)} to train ({jobs} at a time)", flush=True)
        start = time.perf_counter()
        work = [(name, c, results, threads, progress and jobs == 1) for c in todo]
        if jobs > 1 and len(work) > 1:
            pool = multiprocessing.get_context("spawn").Pool(jobs)
            done = pool.imap_unordered(_train_one, work)
        else:
            pool, done = None, map(_train_one, work)
        try:
            for i, (cfg, result) in enumerate(done, 1):
                took = f"({time.perf_counter() - start:.0f} s)"
                if isinstance(result, str):
                    failed.append(result_key(cfg))
                    print(f"[{name}] {i}/{len(todo)} DIVERGED: {result_key(cfg)} {result} {took}",
                          flush=True)
                    continue
                m = result["metrics"]
                status = "FAILED (stored as such)" if result.get("failure") else "trained"
                print(f"[{name}] {i}/{len(todo)} {status}: {result['key']} acc {m['accuracy']:.2f} "
                      f"W/S/T {m['wst']} {took}", flush=True)
        finally:
            if pool is not None:
                pool.terminate()
        out += [find_result(results / name, c) for c in configs]
    if failed:
        raise SweepFailed(f"{len(failed)} run(s) diverged (their last good checkpoints are kept): "
                          f"{', '.join(failed)}")
    return out


class SweepFailed(RuntimeError):
    """Some runs of a sweep diverged; the others were trained and stored."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adabit_lite.sweeps",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="list the sweeps and their run counts")
    p_list.add_argument("--results", type=Path, default=RESULTS)
    p_run = sub.add_parser("run", help="run sweeps (all when none is named)")
    p_run.add_argument("names", nargs="*")
    p_run.add_argument("--results", type=Path, default=RESULTS)
    p_run.add_argument("--limit", type=int, default=None, help="only the first N runs of each")
    p_run.add_argument("--no-progress", action="store_true")
    p_run.add_argument("--jobs", type=int, default=1, help="runs trained at once (processes)")
    p_run.add_argument("--threads", type=int, default=1, help="torch threads per run")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name in SWEEPS:
            print(f"{name}: {len(sweep_configs(name, args.results))} runs")
        return 0
    unknown = sorted(set(args.names) - set(SWEEPS))
    if unknown:
        print(f"unknown sweep(s) {unknown}; accepted: {', '.join(SWEEPS)}", file=sys.stderr)
        return 2
    if args.jobs < 1 or args.threads < 1:
        print("--jobs and --threads must be integers >= 1", file=sys.stderr)
        return 2
    try:
        run(args.names or list(SWEEPS), args.results, args.limit, not args.no_progress, args.jobs,
            args.threads)
    except SweepFailed as err:
        print(f"python -m adabit_lite.sweeps: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
