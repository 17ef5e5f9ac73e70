"""The numerical experiments that the book's chapters show, one module per chapter topic.

The notebooks stay thin: they call these functions, and tests call them too.  Modules here may
use everything in the package (models, training); nothing in the package imports them.
"""

import math
from typing import NamedTuple

from ..results import result_key


def json_rows(table, keys: dict | None = None) -> list[dict]:
    """The rows of a DataFrame as JSON-ready dicts for ``results.record``: numpy scalars as Python
    numbers, NaN as None; ``keys`` (column -> recorded name): only those columns, renamed."""
    def plain(v):
        v = v.item() if hasattr(v, "item") else v
        return None if isinstance(v, float) and math.isnan(v) else v

    if keys is not None:
        table = table[list(keys)].rename(columns=keys)
    return [{k: plain(v) for k, v in row.items()} for row in table.to_dict("records")]


def stored_result(results_dir, cfg, train_missing: bool = False) -> dict | None:
    """The stored result of ``cfg`` under ``results_dir`` (``results.find_result``), or None; with
    ``train_missing``, a missing one is trained and stored first (``train.load_or_train``, quietly)."""
    from ..results import find_result

    found = find_result(results_dir, cfg)
    if found is None and train_missing:
        from ..train import load_or_train

        found = load_or_train(cfg, results_dir, progress=False, verbose=False)
    return found


class Stored(NamedTuple):
    """What ``load_stored`` read: ``groups`` (the configs' nesting, each list of configs replaced by
    the stored results among them, in order), the ``configs`` read, and the runs wanted and found."""

    groups: dict
    configs: dict
    wanted: int
    found: int


def _leaves(tree: dict):
    """Every (group name, list) of a nested dict whose innermost values are lists."""
    for name, value in tree.items():
        yield from _leaves(value) if isinstance(value, dict) else [(name, value)]


def _map(tree: dict, f) -> dict:
    """``tree`` with each innermost list replaced by ``f(its group name, the list)``."""
    return {k: _map(v, f) if isinstance(v, dict) else f(k, v) for k, v in tree.items()}


def load_stored(configs, folder, train_missing: bool = False, control=None,
                distinct: bool = False) -> Stored:
    """The stored results of a chapter's runs (``stored_result``).

    ``configs``: the runs as a dict of lists of configs, or of dicts of such lists (target ->
    method -> configs), or a function returning one: a function is called again after the learned
    runs are trained, because a "control" run that copies a learned run's bits is named only once
    that run is stored (``sweeps.allocation_groups``).  ``folder(group name, cfg)``: the sweep
    folder of a run (the group name is the innermost key).  ``train_missing``: train and store the
    missing runs first, those of the groups that ``control(group name)`` names only after all the
    others.  The runs wanted and found are counted once per result key (``distinct``) or once per
    place they take in the groups (a run shown at two targets counts twice)."""
    make = configs if callable(configs) else (lambda: configs)

    def get(name, cfg):
        return stored_result(folder(name, cfg), cfg, train_missing)

    if train_missing and control is not None:  # the learned runs, before the controls
        for name, cfgs in _leaves(make()):
            for cfg in cfgs if not control(name) else ():
                get(name, cfg)
    tree = make()
    groups = _map(tree, lambda name, cfgs: [r for c in cfgs if (r := get(name, c)) is not None])
    if distinct:
        wanted = len({result_key(c) for _, cfgs in _leaves(tree) for c in cfgs})
        found = len({r["key"] for _, runs in _leaves(groups) for r in runs})
    else:
        wanted = sum(len(cfgs) for _, cfgs in _leaves(tree))
        found = sum(len(runs) for _, runs in _leaves(groups))
    return Stored(groups, tree, wanted, found)


def runs_shown(found: int, wanted: int, *sweeps: str) -> str:
    """How many of the wanted runs a chapter shows, and the command that trains the others
    (``python -m adabit_lite.sweeps run`` with the names of ``sweeps``)."""
    if found >= wanted:
        return f"runs shown: {found} of {wanted} wanted (all stored)"
    return (f"runs shown: {found} of {wanted} wanted (the rest are not stored: run "
            f"`python -m adabit_lite.sweeps run {' '.join(sweeps)}` or set train_missing = True)")


def words(items) -> str:
    """Items as a reader lists them: "a", "a and b", "a, b and c"."""
    items = [str(i) for i in items]
    return " and ".join(items) if len(items) < 3 else ", ".join(items[:-1]) + " and " + items[-1]
