"""Small result files: atomic JSON writes and the key numbers a chapter records for its tests."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def atomic_write_json(path: str | Path, obj) -> Path:
    """Write JSON to a temporary file beside ``path`` and rename it: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def record(path: str | Path, **numbers) -> Path:
    """Record a chapter's key numbers (merged into the JSON file at ``path``)."""
    path = Path(path)
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(numbers)
    return atomic_write_json(path, data)
