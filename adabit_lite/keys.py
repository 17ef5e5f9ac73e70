"""What a training result's key is made of: every field of ``train.TrainConfig`` declared once.

A stored result is found again only by its key (``results.result_key``)::

    key = sha256(canonical JSON of {"parameters": key_parameters, "algorithm_version": V})[:16]

``key_parameters`` holds the fields below by their role:

- ``KEY``: always in the key (what the run computes);
- ``WHEN_SET``: in the key only when not at the default given here.  Options added after results
  were stored go here, so that the stored keys stay valid; a run that sets one is a new run;
- ``EVENT_ONLY``: in the key of event-data runs only (they mean nothing for static data);
- ``NOT_KEY``: where a run executes, not what it computes (recorded in ``result.json``, left out of
  the key);
- ``world_size`` (not a config field): added when a run is data-parallel (> 1 processes), so a
  data-parallel run never shares a key with a single-process one.

A field declared nowhere (or twice) fails ``check_schema``, which the tests call: adding a config
field means deciding here whether it changes the numbers.
"""

from __future__ import annotations

KEY = frozenset({
    "arch", "width", "dataset", "data_options", "split_seed", "train_limit", "augment",
    "init", "target", "learn_w", "learn_s", "learn_T", "layer_bits", "lam_w", "lam_s", "lam_T",
    "renewal", "rho", "min_epoch", "running_extrema", "hysteresis", "soft_bit_loss",
    "bit_tolerance", "freeze_bits", "renewal_limit", "tau", "firing", "per_step", "amplitude",
    "full_precision", "optimizer", "lr", "lr_step", "lr_bits", "lr_T", "momentum",
    "weight_decay", "epochs", "batch_size", "seed", "sync_stats"})
WHEN_SET = {"bn_recalibrate": False, "weight_renewal": "grid", "dtype": "float32",
            "project_at": None, "step_clamp": "floor"}
EVENT_ONLY = frozenset({"time_average_input"})
NOT_KEY = frozenset({"device"})
WORLD_SIZE = "world_size"


def check_schema(fields) -> None:
    """Raise ``ValueError`` unless every name in ``fields`` is declared exactly once above."""
    groups = (KEY, set(WHEN_SET), EVENT_ONLY, NOT_KEY)
    fields = set(fields)
    twice = {f for f in fields if sum(f in g for g in groups) > 1}
    missing = {f for f in fields if not any(f in g for g in groups)}
    extra = set().union(*groups) - fields
    if twice or missing or extra:
        raise ValueError(f"key schema: declared twice {sorted(twice)}, undeclared "
                         f"{sorted(missing)}, not config fields {sorted(extra)}")


def recorded_parameters(values: dict, event_data: bool, world_size: int) -> dict:
    """The parameters a result records, from a validated config's field ``values``:
    ``EVENT_ONLY`` fields only for event data, ``WHEN_SET`` fields only off their default,
    ``world_size`` only above 1."""
    params = {}
    for name, value in values.items():
        if name in EVENT_ONLY and not event_data:
            continue
        if name in WHEN_SET and value == WHEN_SET[name]:
            continue
        params[name] = value
    if world_size > 1:
        params[WORLD_SIZE] = int(world_size)
    return params


def key_parameters(recorded: dict) -> dict:
    """The part of recorded parameters that enters the key (all but ``NOT_KEY``)."""
    return {k: v for k, v in recorded.items() if k not in NOT_KEY}
