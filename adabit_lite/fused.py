"""The neuron's T steps as one compiled C pass on the CPU (csrc/neuron_steps.c).

``neuron.squeeze`` runs ``neuron.neuron_step`` T times, about fifteen passes over memory per step;
the C kernel reads x once and writes r and the three per-element sums, whatever T is, with
``neuron_step``'s operations in its order (so the same bits: tests/test_fused.py).  It covers the
default neuron on a CPU: float32, one shared parameter slot, no amplitude, 'round' or 'floor'.
Whether it runs is decided by ``neuron.execution``; everything it does not cover (CUDA, float64,
per-step slots, the old neuron's amplitude) runs ``neuron.squeeze`` as written.

The kernel runs on torch's threads (``torch.get_num_threads()``): it is built with OpenMP and so
shares torch's OpenMP runtime and thread pool (separate threads of its own would compete with
torch's waiting workers for the cores).  The source is compiled once per machine with the system C compiler (``$CC``, else ``cc``) into
``$ADABIT_CACHE_DIR`` (default ``~/.cache/adabit_lite``), keyed by a hash of the source, the flags,
the compiler and the CPU, and loaded with ctypes.  Without a compiler the eager path runs, after
one warning.  ``ADABIT_FUSED=0`` turns the kernel off (for comparisons; ``ADABIT_FUSED=compile``
runs torch.compile's fusion of ``neuron.squeeze`` instead, see ``neuron.execution``).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("csrc") / "neuron_steps.c"
# no contraction into fused multiply-adds and no fast-math: the same roundings as the eager path;
# -fno-trapping-math only lets the compiler vectorise the branches (it changes no value)
FLAGS = ("-O3", "-fno-trapping-math", "-ffp-contract=off", "-fPIC", "-shared")
# tried in this order, the first that compiles is kept: the CPU's own vector instructions, and
# OpenMP (whose runtime, libgomp, is the one torch has loaded: one thread pool for both)
EXTRA = (("-march=native", "-fopenmp"), ("-fopenmp",), ("-march=native",), ())
MODES = {("round", False): 0, ("round", True): 1, ("floor", False): 2, ("floor", True): 2}
MAX_T = 4096  # the kernel counts spikes per block in float (exact below 2^24 = BLOCK * 32768)
GRAIN = 32768  # elements per thread, at least

_lib = None
_failed: str | None = None


def enabled() -> bool:
    """False when ``ADABIT_FUSED=0`` (read at each call, so tests can switch it)."""
    return os.environ.get("ADABIT_FUSED", "1") != "0"


def cache_dir() -> Path:
    return Path(os.environ.get("ADABIT_CACHE_DIR") or Path.home() / ".cache" / "adabit_lite")


def _cpu_id() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features", "model name")):
                return line
    except OSError:
        pass
    return platform.processor()


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")


def _build(cc: str, extra: tuple[str, ...]) -> Path:
    """Compile the source with ``extra`` flags into the cache (atomically: processes may race)
    and return the library's path; reuse one already there."""
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256(b"\0".join([SOURCE.read_bytes(), " ".join(FLAGS + extra).encode(),
                                     version.encode(), _cpu_id().encode(),
                                     platform.machine().encode()])).hexdigest()[:16]
    for folder in (cache_dir(), Path(tempfile.gettempdir()) / f"adabit_lite-{os.getuid()}"):
        lib = folder / f"neuron_steps-{key}.so"
        if lib.exists():
            return lib
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
            os.close(fd)
        except OSError:
            continue  # not writable: the next folder
        done = subprocess.run([cc, *FLAGS, *extra, str(SOURCE), "-o", tmp, "-lm"],
                              capture_output=True, text=True)
        if done.returncode != 0:
            os.unlink(tmp)
            lines = done.stderr.strip().splitlines()
            raise RuntimeError(lines[-1] if lines else f"{cc} exited with {done.returncode}")
        os.replace(tmp, lib)
        return lib
    raise RuntimeError("no writable folder for the compiled kernel (set ADABIT_CACHE_DIR)")


def _load() -> ctypes.CDLL:
    """The first flag set of EXTRA that compiles and loads."""
    cc = _compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (set CC)")
    errors = []
    for extra in EXTRA:
        try:
            lib = ctypes.CDLL(str(_build(cc, extra)))
        except (OSError, RuntimeError, subprocess.SubprocessError) as err:
            errors.append(f"{' '.join(extra) or 'plain'}: {err}")
            continue
        p, f = ctypes.c_void_p, ctypes.c_float
        lib.neuron_steps.argtypes = [p, p, p, p, p, ctypes.c_int64, f, f, f, f, ctypes.c_int,
                                     ctypes.c_int, ctypes.c_int]
        lib.neuron_steps.restype = ctypes.c_int64
        lib.built_with_openmp.restype = ctypes.c_int
        return lib
    raise RuntimeError("; ".join(errors))


def library():
    """The loaded kernel, or None (no compiler, compile error, or ``ADABIT_FUSED=0``)."""
    global _lib, _failed
    if not enabled() or _failed is not None:
        return None
    if _lib is None:
        try:
            _lib = _load()
        except RuntimeError as err:
            _failed = str(err)
            warnings.warn(f"adabit_lite: the fused CPU neuron is not available ({_failed}); the "
                          "eager step loop runs instead (the same numbers, slower)", stacklevel=3)
            return None
    return _lib


def covers(x: torch.Tensor, shared: bool, amplitude: bool, firing: str, T: int) -> bool:
    """Whether the kernel can compute this call (``neuron.execution`` asks)."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and shared and not amplitude
            and firing in ("round", "floor") and 1 <= T <= MAX_T and library() is not None)


def neuron_steps(x: torch.Tensor, vth: float, qmin: int, qmax: int, tau: float, T: int,
                 firing: str, sums: tuple[bool, bool, bool]):
    """r and the per-element sums (n_inside, d_vth, n_clip; None where ``sums`` says no) of the T
    steps, as ``neuron.squeeze`` computes them, and the count of non-zero spikes (an int)."""
    x = x.contiguous()
    r = torch.empty_like(x)
    out = [torch.empty_like(x) if need else None for need in sums]
    threads = max(1, min(torch.get_num_threads(), x.numel() // GRAIN))
    nonzero = library().neuron_steps(
        x.data_ptr(), r.data_ptr(), *[None if t is None else t.data_ptr() for t in out], x.numel(),
        vth, qmin, qmax, tau, T, MODES[(firing, qmin < 0)], threads)
    return (r, *out, nonzero)
