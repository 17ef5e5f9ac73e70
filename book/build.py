"""Build the HTML book: run every chapter notebook with papermill, then jupyter-book 1.x.

    python book/build.py [--profile default|smoke|gpu] [--only NAME ...] [--output DIR]

Chapters are the toc entries under ``book/chapters/``; ``book/chapters/NAME`` is the executed copy
of ``nb/NAME.ipynb`` (the folder is rebuilt from scratch, so no stale page survives a failure).
They run in toc order, except the pages of ``LAST`` (the claims ledger), which read the other
chapters' records and so run after all of them wherever the toc puts them.  Every chapter writes
its key numbers into ``OUTPUT/_build/records/NAME.json`` (the notebooks' default when OUTPUT is the
project root; otherwise passed as ``record_path``, and the ledger gets the folder as
``records_dir``); ``--only`` keeps the records of the chapters it does not run.
``book/profiles.yml`` holds the papermill parameters of each non-default profile.  Any notebook
error or Sphinx warning fails the build with a non-zero exit.  MathJax is copied from the
django-static-mathjax wheel into ``book/_static`` so that pages render math offline.
The HTML lands in ``_build/html`` (with ``--output DIR``: ``DIR/_build/html``; the tests build
their smoke book there so that it never replaces the book of ``make book``).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import papermill
import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
CHAPTERS = BOOK / "chapters"
DEFAULT_RECORDS = ROOT / "_build" / "records"  # the notebooks' default record_path folder
LAST = ("ledger",)  # pages that read the other chapters' records: run after every other chapter


def toc_chapters() -> list[str]:
    """Names of the notebook chapters listed in the toc, in order."""
    names: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("root", "file"):
                entry = node.get(key)
                if isinstance(entry, str) and entry.startswith("book/chapters/"):
                    names.append(entry.removeprefix("book/chapters/"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load((BOOK / "_toc.yml").read_text()))
    return names


def run_order(names: list[str]) -> list[str]:
    """``names`` in toc order, the pages of ``LAST`` moved to the end."""
    return [n for n in names if n not in LAST] + [n for n in names if n in LAST]


def record_parameters(names: list[str], records: Path) -> dict[str, dict]:
    """The parameters that send each chapter's record into ``records`` (none where that is the
    notebooks' own default folder, so that the default book runs every notebook unchanged)."""
    if records.resolve() == DEFAULT_RECORDS.resolve():
        return {}
    out = {name: {"record_path": str(records / f"{name}.json")} for name in names}
    for name in names:
        if name in LAST:
            out[name]["records_dir"] = str(records)
    return out


def profile_parameters(profile: str) -> dict[str, dict]:
    if profile == "default":
        return {}
    profiles = yaml.safe_load((BOOK / "profiles.yml").read_text()) or {}
    if profile not in profiles:
        raise SystemExit(f"unknown profile {profile!r}; accepted: default, {', '.join(profiles)}")
    return profiles[profile] or {}


def copy_mathjax() -> None:
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("MathJax not found: install the book extra (django-static-mathjax)")
    src = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax" / "es5"
    dst = BOOK / "_static" / "mathjax" / "es5"
    if not (dst / "tex-mml-chtml.js").exists():
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)


def hide_injected_parameters(path: Path) -> None:
    """Tag the cell papermill injects (this build's paths and profile values) remove-cell: the page
    shows the chapter's own parameters cell, with its defaults and their help, not the build's
    bookkeeping."""
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(nb, str(path))


def run_notebooks(names: list[str], params: dict[str, dict]) -> list[tuple[str, float]]:
    CHAPTERS.mkdir(parents=True, exist_ok=True)
    timings = []
    for name in names:
        src = ROOT / "nb" / f"{name}.ipynb"
        if not src.exists():
            raise SystemExit(f"the toc lists book/chapters/{name} but nb/{name}.ipynb does not exist")
        start = time.perf_counter()
        print(f"[book] running nb/{name}.ipynb", flush=True)
        out = CHAPTERS / f"{name}.ipynb"
        papermill.execute_notebook(str(src), str(out), parameters=params.get(name, {}),
                                   cwd=str(ROOT), kernel_name="python3", progress_bar=False)
        hide_injected_parameters(out)
        timings.append((name, time.perf_counter() - start))
        print(f"[book] nb/{name}.ipynb done in {timings[-1][1]:.1f} s", flush=True)
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default", help="parameter profile (book/profiles.yml)")
    parser.add_argument("--only", nargs="*", help="run only these chapters (others are left out)")
    parser.add_argument("--output", default=".", help="the HTML goes to OUTPUT/_build/html")
    args = parser.parse_args(argv)
    build = (ROOT / args.output).resolve() / "_build"
    html = build / "html"

    records = build / "records"
    params = profile_parameters(args.profile)
    names = toc_chapters()
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            raise SystemExit(f"unknown chapter(s) {unknown}; accepted: {', '.join(names)}")
        names = [n for n in names if n in args.only]
    names = run_order(names)
    for name, values in record_parameters(names, records).items():
        params[name] = {**values, **params.get(name, {})}

    shutil.rmtree(CHAPTERS, ignore_errors=True)
    kept = None
    if args.only and records.is_dir():  # the other chapters' records stay (the ledger reads them)
        kept = Path(tempfile.mkdtemp(prefix=".records-", dir=build.parent))
        shutil.move(str(records), kept / "records")
    shutil.rmtree(build, ignore_errors=True)  # stale doctrees would hide warnings
    if kept is not None:
        build.mkdir(parents=True, exist_ok=True)
        shutil.move(str(kept / "records"), records)
        kept.rmdir()
    copy_mathjax()
    start = time.perf_counter()
    timings = run_notebooks(names, params)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", ".", "--config", "book/_config.yml", "--toc", "book/_toc.yml",
           "--path-output", str(build.parent), "-W", "-n", "--keep-going"]
    subprocess.run(cmd, cwd=ROOT, check=True)
    total = time.perf_counter() - start
    for name, seconds in timings:
        print(f"[book] {name}: {seconds:.1f} s ({100 * seconds / total:.0f} % of the build)")
    print(f"[book] built {html / 'index.html'} in {total:.1f} s (profile {args.profile})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
