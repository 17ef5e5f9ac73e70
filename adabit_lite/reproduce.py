"""Reproducing a stored result on your machine: what can be promised, and a command that checks it.

A stored run re-trained with the same key on the same machine record (``results.same_machine``)
gives the same bits.  On another machine the float sums of the CPU kernels differ in their last
bits (AVX-512 against AVX2, other MKL/oneDNN paths), and ten epochs of training turn that into
other numbers from the same distribution over seeds.  So a re-run elsewhere is judged against the
stored seeds of its setting (the runs whose parameters differ only in ``seed``, or in ``seed`` and
the per-layer bits of a control run):

- final accuracy within the seeds' range widened by ``SPREAD_WIDTHS`` standard deviations (at least
  ``MIN_WIDENING`` points) on each side;
- final mean W, S and T within the seeds' range widened by ``WST_TOLERANCE`` (the book's on-target
  band), and the same number of epochs.

The fingerprint is the check that stays sharp on every machine: the first three training steps
of a fixed run, too few for last-bit differences to grow, compared with the stored ones within a
relative tolerance (``fingerprint``, ``fingerprint_failures``; stored in
``results/fingerprint.json`` by ``python -m adabit_lite.reproduce --write-fingerprint``, which
``make results`` runs).

    python -m adabit_lite.reproduce allocation --list
    python -m adabit_lite.reproduce allocation --setting 3 --seeds 2
    python -m adabit_lite.reproduce allocation --key 0d0d44fd4cad2a2f --seeds 8 --jobs 2

re-trains N seeds of a stored setting here (the stored seeds first, then new ones) into ``--out``
(resumable) and prints the stored seeds beside the new runs: mean, spread, the Welch test and a
verdict.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

import numpy as np

from .results import load_results, machine_record, same_machine
from .train import TrainConfig, load_or_train

SPREAD_WIDTHS = 3.0
MIN_WIDENING = 1.0  # points of accuracy
WST_TOLERANCE = 0.3
#: fields in which the runs of one setting may differ
SEED_FIELDS = ("seed", "layer_bits")
#: the fingerprint's relative tolerance (measured: torch's AVX2 kernels against its AVX-512 ones
#: differ by at most 3e-7 in its numbers; a changed rule moves some of them by far more)
FINGERPRINT_RTOL = 1e-4


def welch(a, b) -> float:
    """Two-sided Welch t-test p-value of mean(a) != mean(b) (nan with fewer than 2 values each,
    or when neither group has any spread). scipy's precision warning for nearly equal values is
    silenced: it would print a path-dependent line into every notebook that shows a p-value."""
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2 or (a.std() == 0 and b.std() == 0):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def p_text(p: float) -> str:
    """A p-value as the book writes it: "p < 0.001" below 0.001, else "p = 0.015" (3 decimals);
    "p = n/a" for NaN (no test possible: ``welch``)."""
    if math.isnan(p):
        return "p = n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


# ---------------------------------------------------------------- settings
def setting_of(result_or_params: dict) -> tuple:
    """What a run's setting is: its key parameters without ``SEED_FIELDS``, as a sortable tuple."""
    params = result_or_params.get("parameters", result_or_params)
    return tuple(sorted((k, repr(v)) for k, v in params.items()
                        if k not in SEED_FIELDS and k != "device"))


def siblings(sweep_dir: str | Path, params: dict) -> list[dict]:
    """The stored results under ``sweep_dir`` of the same setting as ``params`` (every seed)."""
    want = setting_of(params)
    return sorted((r for r in load_results(sweep_dir) if setting_of(r) == want),
                  key=lambda r: r["parameters"]["seed"])


def settings(sweep_dir: str | Path) -> list[list[dict]]:
    """The stored results under ``sweep_dir`` grouped by setting, in a stable order."""
    groups: dict[tuple, list[dict]] = {}
    for r in load_results(sweep_dir):
        groups.setdefault(setting_of(r), []).append(r)
    return [sorted(g, key=lambda r: r["parameters"]["seed"]) for _, g in sorted(groups.items())]


def label(group: list[dict], all_groups: list[list[dict]]) -> str:
    """The parameters that set ``group`` apart from the sweep's other settings, as k=v words."""
    first = group[0]["parameters"]
    varying = sorted({k for g in all_groups for k, v in g[0]["parameters"].items()
                      if k not in SEED_FIELDS and k != "device"
                      and any(o[0]["parameters"].get(k) != v for o in all_groups)})
    return " ".join(f"{k}={first.get(k)}" for k in varying) or "(the only setting)"


# ---------------------------------------------------------------- what another machine can promise
def bounds(stored: list[dict]) -> dict[str, tuple[float, float]]:
    """Per checked metric, the interval a re-run on another machine must fall in (see module)."""
    acc = np.array([r["metrics"]["accuracy"] for r in stored], float)
    widen = max(SPREAD_WIDTHS * (acc.std(ddof=1) if len(acc) > 1 else 0.0), MIN_WIDENING)
    out = {"accuracy": (float(acc.min() - widen), float(acc.max() + widen))}
    for k in ("W", "S", "T"):
        v = np.array([r["metrics"][k] for r in stored], float)
        out[k] = (float(v.min() - WST_TOLERANCE), float(v.max() + WST_TOLERANCE))
    return out


def statistical_failures(fresh: dict, stored: list[dict]) -> list[str]:
    """Why ``fresh`` does not agree with the stored seeds of its setting ([] when it does)."""
    fails = []
    for k, (lo, hi) in bounds(stored).items():
        v = fresh["metrics"][k]
        if not lo <= v <= hi:
            fails.append(f"{k} {v:.3f} outside [{lo:.3f}, {hi:.3f}] (from {len(stored)} stored seeds)")
    if len(fresh["history"]) != len(stored[0]["history"]):
        fails.append(f"{len(fresh['history'])} epochs, stored {len(stored[0]['history'])}")
    return fails


#: the fingerprint's run: the default network and data, both renewals on and a bit learning rate
#: large enough that bit widths drop, and so renew, within its first steps
FINGERPRINT_CONFIG = dict(renewal="both", lr_bits=20.0, seed=0)
FINGERPRINT_STEPS = 3


class _Stop(Exception):
    pass


def fingerprint(steps: int = FINGERPRINT_STEPS) -> dict[str, float]:
    """The first ``steps`` training steps of ``train`` on ``FINGERPRINT_CONFIG``, as named numbers:
    per step, each parameter's change ||p_k - p_(k-1)|| (the update: gradient, learning rate,
    momentum, step initialisation and renewal) and the rounded bit widths and T.  Short enough
    that the last-bit differences of another CPU stay far below ``FINGERPRINT_RTOL``."""
    import torch

    from .train import train

    cfg = TrainConfig(**FINGERPRINT_CONFIG)
    snaps: list[dict] = []

    def record(epoch, batch, model):
        snaps.append({n: p.detach().double().clone() for n, p in model.named_parameters()})
        if batch == steps:
            raise _Stop

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(cfg, None, progress=False, on_batch=record)
    except _Stop:
        pass
    finally:
        torch.set_num_threads(threads)
    numbers = {}
    for k in range(1, len(snaps)):
        for name, p in snaps[k].items():
            if name.endswith(".latent"):
                numbers[f"step {k} {name} rounded"] = float(p.round().sum())
            numbers[f"step {k} {name} change"] = float((p - snaps[k - 1][name]).norm())
    return numbers


def fingerprint_failures(fresh: dict[str, float], stored: dict[str, float],
                         rtol: float = FINGERPRINT_RTOL) -> list[str]:
    """Where a fingerprint differs from the stored one beyond ``rtol`` ([] when it agrees)."""
    if fresh.keys() != stored.keys():
        return ["the fingerprints name other numbers"]
    return [f"{k}: {fresh[k]:.6g} vs {stored[k]:.6g}" for k in stored
            if abs(fresh[k] - stored[k]) > rtol * max(abs(stored[k]), 1e-12)]


def rerun_mode(stored: dict) -> str:
    """``"exact"`` when the machine that stored a result is this one (threads as stored), else
    ``"statistical"``: the check that a re-run of it on this machine must pass."""
    machine = stored.get("run", {}).get("machine")
    threads = machine.get("threads", 1) if isinstance(machine, dict) else 1
    return "exact" if same_machine(machine, machine_record("cpu", 1, threads)) else "statistical"


def rerun_failures(fresh: dict, stored: dict, stored_seeds: list[dict]) -> list[str]:
    """Why a re-run of a stored run fails its check (``rerun_mode``); [] when it passes: exact,
    metrics and history identical; statistical, ``statistical_failures`` against the stored seeds
    of its setting."""
    if rerun_mode(stored) == "exact":
        return [f"{part} differ" for part in ("metrics", "history") if fresh[part] != stored[part]]
    return statistical_failures(fresh, stored_seeds)


FINGERPRINT_FILE = "fingerprint.json"


def write_fingerprint(results: str | Path) -> Path:
    """Compute the fingerprint here and store it, with this code version and machine record."""
    from . import ALGORITHM_VERSION
    from .results import atomic_write_json

    return atomic_write_json(Path(results) / FINGERPRINT_FILE, {
        "algorithm_version": ALGORITHM_VERSION, "config": FINGERPRINT_CONFIG,
        "steps": FINGERPRINT_STEPS, "machine": machine_record("cpu", 1, 1),
        "numbers": fingerprint()})


def fingerprint_mode(stored: dict) -> str:
    """``"exact"`` when the stored fingerprint was computed on this machine, else ``"rtol"``."""
    return "exact" if same_machine(stored.get("machine"), machine_record("cpu", 1, 1)) else "rtol"


# ---------------------------------------------------------------- the command
def _config(params: dict, seed: int | None = None) -> TrainConfig:
    import dataclasses

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in params.items() if k in names})
    return cfg if seed is None else dataclasses.replace(cfg, seed=seed)


def rerun_configs(group: list[dict], n: int) -> list[TrainConfig]:
    """N runs of a stored setting: its stored seeds first, then new seeds after the largest."""
    cfgs = [_config(r["parameters"]) for r in group[:n]]
    if n > len(group):
        if any(r["parameters"].get("layer_bits") for r in group):
            raise ValueError(f"this setting fixes per-seed learned bits (a control): at most "
                             f"{len(group)} seeds")
        top = max(r["parameters"]["seed"] for r in group)
        cfgs += [_config(group[0]["parameters"], top + 1 + i) for i in range(n - len(group))]
    return cfgs


def comparison(stored: list[dict], fresh: list[dict]) -> tuple[str, str]:
    """A table of stored seeds against re-runs (accuracy and W/S/T) and a verdict line."""
    import pandas as pd

    def describe(rs, who):
        acc = np.array([r["metrics"]["accuracy"] for r in rs], float)
        row = {"runs": who, "seeds": ",".join(str(r["parameters"]["seed"]) for r in rs),
               "n": len(rs), "accuracy mean (%)": f"{acc.mean():.2f}",
               "accuracy std": f"{acc.std(ddof=1):.2f}" if len(rs) > 1 else "-"}
        for k in ("W", "S", "T"):
            row[k] = f"{np.mean([r['metrics'][k] for r in rs]):.2f}"
        return row

    table = pd.DataFrame([describe(stored, "stored"), describe(fresh, "here")])
    a = [r["metrics"]["accuracy"] for r in stored]
    b = [r["metrics"]["accuracy"] for r in fresh]
    p = welch(a, b)
    outside = [f for r in fresh for f in statistical_failures(r, stored)]
    if outside:
        verdict = f"DIFFERS: {len(outside)} check(s) outside the stored seeds' bounds: {outside[0]}"
    elif not math.isnan(p) and p < 0.05:
        verdict = (f"DIFFERS: mean accuracy {np.mean(b):.2f} vs {np.mean(a):.2f} "
                   f"(Welch {p_text(p)}, below 0.05)")
    else:
        why = " (fewer than 2 runs on a side)" if math.isnan(p) else ""
        verdict = (f"AGREES: every re-run inside the stored seeds' bounds, mean accuracy "
                   f"{np.mean(b):.2f} vs {np.mean(a):.2f} (Welch {p_text(p)}{why})")
    return table.to_string(index=False), verdict


def main(argv: list[str] | None = None) -> int:
    prog = "python -m adabit_lite.reproduce"
    p = argparse.ArgumentParser(prog=prog, description="Re-train N seeds of a stored setting on "
                                "this machine and compare them with the stored seeds.")
    p.add_argument("sweep", nargs="?", help="a sweep folder name under --results (e.g. allocation)")
    p.add_argument("--results", type=Path, default=Path("results"))
    which = p.add_mutually_exclusive_group()
    which.add_argument("--list", action="store_true", help="list the sweep's stored settings")
    which.add_argument("--write-fingerprint", action="store_true",
                       help="compute the fingerprint here and store it in --results")
    which.add_argument("--setting", type=int, help="the setting's number in --list")
    which.add_argument("--key", help="the key of any stored run of the setting")
    p.add_argument("--seeds", type=int, default=None, help="runs to train (default: as stored)")
    p.add_argument("--out", type=Path, default=Path("runs/reproduce"),
                   help="where the re-runs go (rerun the command to resume)")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once")
    p.add_argument("--no-progress", action="store_true")
    p.error = lambda message: p.exit(2, f"{prog}: error: {message}\n")  # one line
    args = p.parse_args(argv)
    from .results import project_path

    if args.write_fingerprint:
        path = write_fingerprint(project_path(args.results))
        print(f"fingerprint of {FINGERPRINT_STEPS} training steps written to {path}")
        return 0
    if args.sweep is None:
        return _fail(prog, "name a sweep (a folder under --results), e.g. allocation")
    folder = project_path(args.results) / args.sweep
    groups = settings(folder)
    if not groups:
        return _fail(prog, f"no stored results under {folder} for this code version")
    if args.list or (args.setting is None and args.key is None):
        for i, g in enumerate(groups):
            acc = np.array([r["metrics"]["accuracy"] for r in g])
            print(f"{i:3d}  {len(g)} seeds  accuracy {acc.mean():6.2f}  key {g[0]['key']}  "
                  f"{label(g, groups)}")
        return 0
    if args.setting is not None:
        if not 0 <= args.setting < len(groups):
            return _fail(prog, f"--setting must be 0..{len(groups) - 1} (see --list)")
        group = groups[args.setting]
    else:
        group = next((g for g in groups if any(r["key"] == args.key for r in g)), None)
        if group is None:
            return _fail(prog, f"no stored run with key {args.key!r} in {folder} (see --list)")
    n = len(group) if args.seeds is None else args.seeds
    if n < 1 or args.jobs < 1:
        return _fail(prog, "--seeds and --jobs must be integers >= 1")
    try:
        cfgs = rerun_configs(group, n)
    except ValueError as err:
        return _fail(prog, str(err))
    out = args.out / args.sweep
    print(f"{label(group, groups)}: {len(group)} stored seeds; training {n} here into {out}",
          flush=True)
    fresh = _train_all(cfgs, out, args.jobs, not args.no_progress)
    table, verdict = comparison(group, fresh)
    print(table)
    print(verdict)
    return 0


def _train_one(job):
    import torch

    cfg, out, progress = job
    torch.set_num_threads(1)
    return load_or_train(cfg, out, progress=progress, verbose=False)


def _train_all(cfgs, out: Path, jobs: int, progress: bool) -> list[dict]:
    work = [(c, out, progress and jobs == 1) for c in cfgs]
    if jobs == 1:
        done = []
        for i, w in enumerate(work, 1):
            done.append(_train_one(w))
            print(f"  {i}/{len(work)} seed {w[0].seed}: accuracy "
                  f"{done[-1]['metrics']['accuracy']:.2f}", flush=True)
        return done
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        return pool.map(_train_one, work)


def _fail(prog: str, message: str) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
