"""The numerical experiments that the book's chapters show, one module per chapter topic.

The notebooks stay thin: they call these functions, and tests call them too.  Modules here may
use everything in the package (models, training); nothing in the package imports them.
"""


def stored_result(results_dir, cfg, train_missing: bool = False) -> dict | None:
    """The stored result of ``cfg`` under ``results_dir`` (``results.find_result``), or None; with
    ``train_missing``, a missing one is trained and stored first (``train.load_or_train``, quietly)."""
    from ..results import find_result

    found = find_result(results_dir, cfg)
    if found is None and train_missing:
        from ..train import load_or_train

        found = load_or_train(cfg, results_dir, progress=False, verbose=False)
    return found
