"""The numerical experiments that the book's chapters show, one module per chapter topic.

The notebooks stay thin: they call these functions, and tests call them too.  Modules here may
use everything in the package (models, training); nothing in the package imports them.
"""

import math


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
