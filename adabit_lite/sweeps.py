"""Named sweeps: the multi-seed training runs whose stored results the chapters show.

    python -m adabit_lite.sweeps list
    python -m adabit_lite.sweeps run [NAME ...] [--results results] [--limit N]

Each run trains into ``results/<sweep>/<key>/result.json`` (``train.load_or_train``): the key
hashes the run's parameters and ``ALGORITHM_VERSION``, so a run whose result exists is skipped, a
killed sweep resumes where it stopped (an interrupted run resumes from its checkpoint), and a result
from other parameters or another code version is never reused.  ``make results`` runs them all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .train import TrainConfig, load_or_train

RESULTS = Path("results")


# Candidate default data sets, in the order they are considered (book.md, "Datasets").
CANDIDATES = (("mnist5k", ""), ("digits", "size=16"), ("mnist5k-noisy", ""))


def dataset_choice() -> list[TrainConfig]:
    """Uniform 1/1/1 against uniform 4/4/1 on each candidate data set, 3 seeds.

    The criterion (book.md): the default data must make uniform 1/1/1 lose >= 2 points to uniform
    4/4/1, so that quantization matters; it looks at no learned-bit method.
    """
    runs = []
    for dataset, options in CANDIDATES:
        for target in ("1/1/1", "4/4/1"):
            for seed in range(3):
                runs.append(TrainConfig(dataset=dataset, data_options=options, target=target,
                                        init=target, epochs=10, seed=seed).uquant())
    return runs


SWEEPS = {"dataset-choice": dataset_choice}

# The run of each sweep that tests/test_stored_results.py trains again in `make test` and compares
# with its stored file (one seed of one setting; the cheapest).
SUBSET = {"dataset-choice": lambda c: c.dataset == "digits" and c.target == "1/1/1" and c.seed == 0}

GAP_POINTS = 2.0  # uniform 1/1/1 must lose at least this much to uniform 4/4/1


def dataset_choice_table(results: Path = RESULTS):
    """Per candidate: mean/std accuracy of uniform 1/1/1 and 4/4/1 over the stored seeds, the gap,
    whether the criterion holds, and how many runs are stored (a pandas DataFrame)."""
    import pandas as pd

    from .results import find_result

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


def run(names: list[str], results: Path = RESULTS, limit: int | None = None,
        progress: bool = True) -> list[dict]:
    """Run (or reuse) every run of the named sweeps; returns their results."""
    out = []
    for name in names:
        configs = SWEEPS[name]()[:limit]
        for i, cfg in enumerate(configs, 1):
            print(f"[{name}] run {i}/{len(configs)}", flush=True)
            out.append(load_or_train(cfg, results / name, progress=progress))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adabit_lite.sweeps",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the sweeps and their run counts")
    p_run = sub.add_parser("run", help="run sweeps (all when none is named)")
    p_run.add_argument("names", nargs="*")
    p_run.add_argument("--results", type=Path, default=RESULTS)
    p_run.add_argument("--limit", type=int, default=None, help="only the first N runs of each")
    p_run.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, make in SWEEPS.items():
            print(f"{name}: {len(make())} runs")
        return 0
    unknown = sorted(set(args.names) - set(SWEEPS))
    if unknown:
        print(f"unknown sweep(s) {unknown}; accepted: {', '.join(SWEEPS)}", file=sys.stderr)
        return 2
    run(args.names or list(SWEEPS), args.results, args.limit, not args.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
