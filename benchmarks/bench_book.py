"""Benchmark 4 (opt-in, slow): the full book build from a clean checkout.

``python -m benchmarks book`` clones the repository's HEAD into a temporary folder (``--book-source
worktree`` copies the working tree instead: tracked and untracked files that git does not ignore),
points ``.venv`` there at the existing environment (a symlink, so nothing is reinstalled: ``make
book`` would reinstall into that shared environment, because the fresh checkout's files are newer
than its stamp, so the benchmark runs what ``make book`` runs after its install step,
``python book/build.py``), and times it.  ``PYTHONPATH`` is the checkout, so the notebooks import
the checkout's adabit_lite, not the editable install.  book/build.py prints each notebook's time and
share of the build; they are parsed into the result.  Nothing in the repository is changed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import ROOT

LINE = re.compile(r"^\[book\] (?P<name>\S+): (?P<s>[0-9.]+) s \((?P<pct>[0-9.]+) % of the build\)")
TOTAL = re.compile(r"^\[book\] built .* in (?P<s>[0-9.]+) s")


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True,
                          text=True).stdout


def checkout(dest: Path, source: str) -> str:
    """A clean copy of the repository in ``dest``; returns a description of what was copied."""
    if source == "head":
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(dest)], check=True)
        return "HEAD " + _git("rev-parse", "HEAD").strip()
    if source == "worktree":
        files = _git("ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
        for name in filter(None, files):
            src = ROOT / name
            if src.is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / name)
        return "working tree of HEAD " + _git("rev-parse", "HEAD").strip()
    raise ValueError(f"book source must be head or worktree, got {source!r}")


def run(source: str = "head", venv: str | None = None, keep: bool = False,
        timeout: float = 3600, profile: str = "default") -> dict:
    venv_path = Path(venv or os.environ.get("VENV") or ROOT / ".venv").resolve()
    python = venv_path / "bin" / "python"
    tmp = Path(tempfile.mkdtemp(prefix="adabit-book-"))
    repo = tmp / "repo"
    try:
        t0 = time.perf_counter()
        if source == "worktree":
            repo.mkdir()
        what = checkout(repo, source)
        clone_s = time.perf_counter() - t0
        (repo / ".venv").symlink_to(venv_path, target_is_directory=True)
        env = dict(os.environ, PYTHONPATH=str(repo), PYTHONDONTWRITEBYTECODE="1")
        probe = subprocess.run([str(python), "-c", "import adabit_lite; print(adabit_lite.__file__)"],
                               cwd=repo, env=env, capture_output=True, text=True).stdout.strip()
        print(f"[book] building the book of {what} in {repo} (adabit_lite from {probe})", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run([str(python), "book/build.py", "--profile", profile], cwd=repo,
                              env=env, capture_output=True, text=True, timeout=timeout)
        wall = time.perf_counter() - t0
        out = proc.stdout + proc.stderr
        notebooks, build_total = [], None
        for line in proc.stdout.splitlines():
            m = LINE.match(line)
            if m:
                notebooks.append({"notebook": m["name"], "seconds": float(m["s"]),
                                  "share_percent": float(m["pct"])})
            m = TOTAL.match(line)
            if m:
                build_total = float(m["s"])
        result = {"source": what, "profile": profile, "returncode": proc.returncode,
                  "ok": proc.returncode == 0, "wall_s": wall, "build_s": build_total,
                  "checkout_s": clone_s, "adabit_lite_imported_from": probe,
                  "notebooks": notebooks,
                  "sphinx_s": (build_total - sum(n["seconds"] for n in notebooks))
                  if build_total is not None else None,
                  "output_tail": out[-3000:] if proc.returncode else ""}
        print(f"[book] {'built' if result['ok'] else 'FAILED'} in {wall:.1f} s "
              f"(checkout {clone_s:.1f} s)", flush=True)
        for n in notebooks:
            print(f"[book]   {n['notebook']}: {n['seconds']:.1f} s ({n['share_percent']:.0f} %)")
        if proc.returncode:
            print(out[-3000:], file=sys.stderr)
        return result
    finally:
        if keep:
            print(f"[book] kept {repo}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
