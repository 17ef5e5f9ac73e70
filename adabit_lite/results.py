"""Small result files: atomic JSON writes, result keys, and finding a stored result again.

A training result (``train.py`` writes it as ``result.json``) is keyed by the parameters that
affect its numbers and by ``ALGORITHM_VERSION``::

    key = sha256(canonical JSON of {"parameters": ..., "algorithm_version": ...})[:16]

``find_result(results_dir, cfg)`` returns a stored result only when key, parameters and version all
match; anything else (another parameter, another version) is never reused.  ``record`` merges a
chapter's key numbers into a small JSON file that its test reads.

Every result also records the machine that computed it (``machine_record``: CPU model and torch's
CPU capability or the GPU's name, torch version, threads, world size, device).  The same key on the
same machine record gives the same bits; on another machine the float sums differ in their last
bits and a training run turns that into other numbers of the same distribution
(``same_machine``; the book's reproduction page says what a re-run on another machine can promise).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from pathlib import Path


def project_path(path: str | Path) -> Path:
    """A relative ``path`` taken from the project root (the nearest folder above the working
    directory that holds pyproject.toml), so that a notebook finds results/ whether it runs from
    the root (papermill, the book build) or from nb/ (nbval).  Absolute paths are returned as is."""
    path = Path(path)
    if path.is_absolute():
        return path
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "pyproject.toml").exists():
            return folder / path
    return path


def atomic_write(path: str | Path, write, binary: bool = False) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it onto ``path``:
    a reader (or a crash) never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, obj) -> Path:
    """Write ``obj`` as JSON atomically (see ``atomic_write``)."""
    return atomic_write(path, lambda f: json.dump(obj, f, indent=1, sort_keys=True))


def record(path: str | Path, **numbers) -> Path:
    """Record a chapter's key numbers (merged into the JSON file at ``path``)."""
    path = Path(path)
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(numbers)
    return atomic_write_json(path, data)


# ---------------------------------------------------------------- the machine a result was made on
#: the fields of a machine record that decide whether two machines give the same bits
MACHINE_FIELDS = ("cpu", "cpu_capability", "device", "torch", "threads", "world_size")
#: set to 1 to treat every stored machine record as foreign (tests the other-machine checks)
FOREIGN_ENV = "ADABIT_FOREIGN_MACHINE"


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_record(device="cpu", world_size: int = 1, threads: int | None = None) -> dict:
    """Where a run computes: CPU model, torch's CPU capability (AVX2, AVX512, ...), torch version,
    threads, world size and device (the GPU's name on CUDA)."""
    import torch

    device = torch.device(device)
    name = (torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu")
    return {"cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "device": name, "torch": str(torch.__version__),
            "threads": torch.get_num_threads() if threads is None else int(threads),
            "world_size": int(world_size)}


def same_machine(stored: dict | None, here: dict) -> bool:
    """Whether a stored machine record is this machine's (every field of ``MACHINE_FIELDS``
    equal).  A missing or partial record, a run that moved between machines, or
    ``ADABIT_FOREIGN_MACHINE=1`` in the environment: False."""
    if os.environ.get(FOREIGN_ENV, "") not in ("", "0") or not isinstance(stored, dict):
        return False
    return all(k in stored and stored[k] == here.get(k) for k in MACHINE_FIELDS)


# ---------------------------------------------------------------- keys: parameters + code version
def key_parameters(params) -> dict:
    """The parameters that decide a run's numbers, as a plain dict.

    ``params`` is a training config (anything with a ``key_parameters()`` method, such as
    ``train.TrainConfig``) or a plain mapping of parameter names to JSON values.
    """
    if hasattr(params, "key_parameters"):
        return dict(params.key_parameters())
    if isinstance(params, dict):
        return dict(params)
    raise TypeError(f"expected a training config or a dict of parameters, got {type(params).__name__}")


def result_key(params, algorithm_version: int | None = None) -> str:
    """A stable 16-hex-digit key: SHA-256 of the canonical JSON of the parameters and the version.

    Two runs share a key exactly when every parameter that affects the numbers is equal and they
    were computed by the same ``ALGORITHM_VERSION`` (the package bumps it whenever numbers change).
    """
    if algorithm_version is None:
        from . import ALGORITHM_VERSION as algorithm_version
    blob = json.dumps({"parameters": key_parameters(params),
                       "algorithm_version": int(algorithm_version)},
                      sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class DamagedFile(RuntimeError):
    """A result or checkpoint file that cannot be read (empty, truncated, not what it should be).
    ``str()`` is one line naming the file and what to do."""


def read_json_file(path: str | Path, what: str = "result file", remedy: str = "") -> dict:
    """The JSON object in ``path``; ``DamagedFile`` (one line) when it is not valid JSON or not
    an object."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, ValueError) as err:
        raise DamagedFile(f"{path}: damaged {what} ({type(err).__name__}: "
                          f"{str(err).splitlines()[0]}){'; ' + remedy if remedy else ''}") from None
    if not isinstance(data, dict):
        raise DamagedFile(f"{path}: damaged {what} (a JSON {type(data).__name__}, not an "
                          f"object){'; ' + remedy if remedy else ''}")
    return data


def _is_result(data) -> bool:
    return isinstance(data, dict) and {"key", "parameters", "code", "metrics"} <= data.keys()


def load_results(results_dir: str | Path, current_version_only: bool = True) -> list[dict]:
    """Every stored result file under ``results_dir`` (searched recursively, ``*.json``).

    Each result gets ``"_path"`` (where it was found).  With ``current_version_only`` (default) a
    result computed by another ``ALGORITHM_VERSION`` is left out.
    """
    from . import ALGORITHM_VERSION

    found = []
    for path in sorted(Path(results_dir).rglob("*.json")):
        data = _read_json(path)
        if not _is_result(data):
            continue
        if current_version_only and data["code"].get("algorithm_version") != ALGORITHM_VERSION:
            continue
        found.append({**data, "_path": str(path)})
    return found


def find_result(results_dir: str | Path, params) -> dict | None:
    """The stored result for exactly these parameters and this code version, or None.

    A file matches only if its key equals ``result_key(params)`` *and* its recorded parameters and
    algorithm version are equal to the current ones (so a hash collision or a hand-edited file
    is never taken for a match).  Never raises for a missing folder.
    """
    from . import ALGORITHM_VERSION

    if not Path(results_dir).is_dir():
        return None
    key, wanted = result_key(params), key_parameters(params)
    direct = Path(results_dir) / key / "result.json"  # where train.load_or_train puts it
    candidates = [{**d, "_path": str(direct)}] if _is_result(d := _read_json(direct)) else []
    for data in candidates + load_results(results_dir):
        stored = {k: v for k, v in data["parameters"].items() if k in wanted}
        if (data["key"] == key and stored == wanted
                and data["code"].get("algorithm_version") == ALGORITHM_VERSION):
            return data
    return None


def results_frame(results: list[dict]):
    """A pandas DataFrame with one row per result: its parameters and its scalar final metrics."""
    import pandas as pd

    rows = []
    for r in results:
        metrics = {k: v for k, v in r["metrics"].items() if isinstance(v, (int, float, str))}
        rows.append({"key": r["key"], **r["parameters"], **metrics})
    return pd.DataFrame(rows)
