"""W/S/T: a network's weight bits, spike bits and time steps written "W/S/T" (e.g. "4/4/2").

The one parser of such strings in the package: the training options, the bit target, the meter
and the budget study all read them here.
"""

from __future__ import annotations

import math


def parse_wst(text, integers: bool = False) -> tuple:
    """"W/S/T" -> (W, S, T): three finite numbers >= 1 (``integers``: whole numbers, as ints).
    Anything else raises a one-line ValueError that says what is accepted."""
    kind = "integers" if integers else "numbers"
    example = "4/4/2" if integers else "1.5/1.5/1"
    try:
        parts = [float(p) for p in text.split("/")] if isinstance(text, str) else []
    except ValueError:
        parts = []
    if (len(parts) != 3 or not all(math.isfinite(p) for p in parts) or min(parts) < 1
            or (integers and any(p != int(p) for p in parts))):
        raise ValueError(f"W/S/T must be three {kind} >= 1 written W/S/T (e.g. {example}), "
                         f"got {text!r}")
    return tuple(int(p) for p in parts) if integers else tuple(parts)


def format_wst(values) -> str:
    """(W, S, T) -> "W/S/T", each number in its shortest form (1.0 -> "1")."""
    return "/".join(f"{v:g}" for v in values)
