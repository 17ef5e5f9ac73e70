"""Run one chapter of the book with your own parameters; a failure ends in one line, not a traceback.

    python -m adabit_lite.chapter CHAPTER [-p NAME VALUE ...] [-y YAML] [-o OUT.ipynb] [--profile NAME]
    python -m adabit_lite.chapter --list [CHAPTER] [--profile NAME]

CHAPTER is a notebook's prefix (``05a``) or stem (``05a_allocation``).  ``-p`` values are read like
papermill's ``-p`` (int, float, True/False, None, else a string); ``-y`` takes a YAML mapping
(for lists: ``-y 'seeds: [0, 1]'``); ``-p`` wins over ``-y``, which wins over the profile
(``book/profiles.yml``, as for ``book/build.py --profile``).  The notebook runs from the project root,
so relative paths in parameters are taken from there; unless you set them, ``fig_dir`` and
``record_path`` go beside the output notebook instead of the book's ``_build/``.

Exit status: 0 done; 1 a cell failed (one line; the output notebook keeps the traceback);
2 unknown chapter or parameter, or a parameter value the notebook's validation rejects (one line).
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import io
import logging
import os
import sys
import time
import tokenize
from dataclasses import dataclass
from pathlib import Path

from adabit_lite.results import project_path

DEFAULT_OUTPUT_DIR = Path("runs") / "chapters"


class UsageError(Exception):
    """A request the runner refuses before running anything (exit 2, one line)."""


@dataclass(frozen=True)
class Parameter:
    """One assignment of a notebook's ``parameters`` cell."""

    name: str
    default: str  # the source text of the default value
    help: str  # the comment at the end of the assignment


def project_root() -> Path:
    """The project root above the working directory (the folder with nb/ and book/build.py)."""
    root = project_path(".").resolve()
    if not (root / "nb").is_dir() or not (root / "book" / "build.py").is_file():
        raise UsageError("no book found: run from the project root or a folder inside it")
    return root


def load_book_build(root: Path):
    """book/build.py as a module: its toc_chapters() and profile_parameters() say what a chapter
    and a profile are."""
    spec = importlib.util.spec_from_file_location("adabit_book_build", root / "book" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chapter_stems(build) -> list[str]:
    """The chapters of the book's toc, sorted by name (00_data, 01_cost, ..., 10_performance)."""
    return sorted(build.toc_chapters())


def resolve_chapter(name: str, stems: list[str]) -> str:
    """The chapter stem that ``name`` (prefix, stem, or nb/STEM.ipynb) means."""
    wanted = Path(name).name.removesuffix(".ipynb")
    for stem in stems:
        if wanted in (stem, stem.split("_", 1)[0]):
            return stem
    prefixes = ", ".join(stem.split("_", 1)[0] for stem in stems)
    raise UsageError(f"unknown chapter {name!r}; chapters: {prefixes} (--list shows them)")


def profile_values(build, profile: str, stem: str) -> dict:
    """The chapter's parameters in ``profile`` (book/profiles.yml; 'default': none)."""
    try:
        return dict(build.profile_parameters(profile).get(stem) or {})
    except SystemExit as exc:  # build.py's one-line refusal of an unknown profile
        raise UsageError(str(exc)) from None


def read_notebook(path: Path):
    import nbformat

    return nbformat.read(str(path), as_version=4)


def parameters_cell_index(notebook) -> int:
    """Index of the cell tagged ``parameters``."""
    for index, cell in enumerate(notebook.cells):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return index
    raise UsageError("the notebook has no cell tagged 'parameters'")


def validation_cell_source(notebook) -> str | None:
    """Source of the validation cell: the first code cell after the ``parameters`` cell."""
    start = parameters_cell_index(notebook) + 1
    return next((cell.source for cell in notebook.cells[start:] if cell.cell_type == "code"), None)


def notebook_parameters(notebook) -> dict[str, Parameter]:
    """The names, default values (as written) and comments of the ``parameters`` cell."""
    source = notebook.cells[parameters_cell_index(notebook)].source
    comments = {token.start[0]: token.string.lstrip("#").strip()
                for token in tokenize.generate_tokens(io.StringIO(source).readline)
                if token.type == tokenize.COMMENT}
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target = node.target
        else:
            continue
        if isinstance(target, ast.Name):
            found[target.id] = Parameter(target.id, ast.get_source_segment(source, node.value),
                                         comments.get(node.end_lineno, ""))
    return found


def parse_value(text: str):
    """A ``-p`` value read as papermill's own ``-p`` reads it (int, float, bool, None, else str)."""
    from papermill.cli import _resolve_type

    return _resolve_type(text)


def parse_yaml(text: str) -> dict:
    """A ``-y`` mapping {NAME: VALUE}."""
    import yaml

    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"-y is not valid YAML: {' '.join(str(exc).split())}") from None
    if values is None:
        return {}
    if not isinstance(values, dict) or not all(isinstance(key, str) for key in values):
        raise UsageError(f"-y must be a YAML mapping NAME: VALUE, got {text!r}")
    return values


def output_path(option: str | None, stem: str, root: Path) -> Path:
    """Where the executed notebook goes: -o (a file, or a folder for STEM.ipynb), else
    runs/chapters/STEM.ipynb under the working directory (under the root when that is inside nb/).
    Never inside nb/: those are the book's notebooks, and nbval runs every notebook there."""
    notebooks = (root / "nb").resolve()
    if option:
        out = Path(option)
        out = (out / f"{stem}.ipynb" if out.is_dir() else out).resolve()
    else:
        here = Path.cwd().resolve()
        out = (root if here.is_relative_to(notebooks) else here) / DEFAULT_OUTPUT_DIR / f"{stem}.ipynb"
    if out.suffix != ".ipynb":
        raise UsageError(f"the output must end in .ipynb, got {option!r}")
    if out.is_relative_to(notebooks):
        raise UsageError(f"refusing to write into nb/ (the book's notebooks): choose another -o than "
                         f"{option!r}")
    return out


def shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies under it."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def list_chapters(root: Path, stems: list[str], build, profile: str) -> None:
    """Print each chapter with its parameters, defaults (and the profile's values) and comments."""
    print("fig_dir and record_path, unless set, go beside the output notebook (not into _build/).\n")
    for stem in stems:
        parameters = notebook_parameters(read_notebook(root / "nb" / f"{stem}.ipynb"))
        overrides = profile_values(build, profile, stem)
        print(f"{stem.split('_', 1)[0]:<4}{stem}")
        lines = {name: f"{name} = {p.default}" for name, p in parameters.items()}
        for name, value in overrides.items():
            lines[name] += f"  [{profile}: {value!r}]"
        width = max((len(line) for line in lines.values() if len(line) <= 60), default=0)
        for name, line in lines.items():
            comment = parameters[name].help
            print(f"      {line:<{width}}  # {comment}" if comment else f"      {line}")
        print()


def run_chapter(root: Path, stem: str, parameters: dict, out: Path) -> int:
    """Execute nb/STEM.ipynb into ``out`` with papermill; return the exit status (see the module)."""
    import papermill

    logging.getLogger("papermill").addHandler(logging.NullHandler())  # its warnings would reach stderr
    source = root / "nb" / f"{stem}.ipynb"
    validation = validation_cell_source(read_notebook(source))
    out.parent.mkdir(parents=True, exist_ok=True)
    running = out.with_name(f".{out.stem}.running.ipynb")  # out keeps the last finished run until then
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(source), str(running), parameters=parameters, cwd=str(root),
                                   kernel_name="python3", progress_bar={"file": sys.stdout, "desc": stem},
                                   extra_arguments=["--log-level=CRITICAL"])  # no kernel logs on stderr
    except papermill.PapermillExecutionError as err:
        message = " ".join(err.evalue.split())
        if err.source == validation and message.startswith("parameter "):
            running.unlink(missing_ok=True)  # the message says it all; out keeps the previous run
            print(message, file=sys.stderr)
            return 2
        os.replace(running, out)
        print(f"{stem}: cell In [{err.exec_count}] raised {err.ename}: {message} "
              f"(full traceback in {shown(out)})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if running.exists():
            os.replace(running, out)
        print(f"{stem}: interrupted (partial notebook: {shown(out)})", file=sys.stderr)
        return 130
    except Exception as exc:  # the kernel died or could not start
        if running.exists():
            os.replace(running, out)
        print(f"{stem}: the run stopped: {type(exc).__name__}: {' '.join(str(exc).split())} "
              f"(partial notebook: {shown(out)})", file=sys.stderr)
        return 1
    os.replace(running, out)
    print(f"[chapter] {stem} done in {time.perf_counter() - start:.1f} s; executed notebook: {shown(out)}",
          flush=True)
    return 0


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (--help shows the usage)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m adabit_lite.chapter", description=__doc__.splitlines()[0],
                           epilog=__doc__.split("\n\n", 2)[2],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapter", nargs="?", help="prefix (05a) or stem (05a_allocation) of a notebook")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="set a parameter (repeatable)")
    parser.add_argument("-y", "--yaml", action="append", default=[], metavar="YAML",
                        help="set parameters from a YAML mapping (repeatable)")
    parser.add_argument("-o", "--output", help="executed notebook (default: runs/chapters/STEM.ipynb here)")
    parser.add_argument("--profile", default="default", help="start from this profile of book/profiles.yml")
    parser.add_argument("--list", action="store_true", help="list the chapters and their parameters")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        root = project_root()
        build = load_book_build(root)
        stems = chapter_stems(build)
        if args.list:
            chosen = [resolve_chapter(args.chapter, stems)] if args.chapter else stems
            profile_values(build, args.profile, chosen[0])  # refuse an unknown profile first
            try:
                list_chapters(root, chosen, build, args.profile)
            except BrokenPipeError:  # the list piped into head
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        if not args.chapter:
            raise UsageError("name a chapter (e.g. 05a) or use --list")
        stem = resolve_chapter(args.chapter, stems)
        known = notebook_parameters(read_notebook(root / "nb" / f"{stem}.ipynb"))
        values = profile_values(build, args.profile, stem)
        given = {}
        for text in args.yaml:
            given.update(parse_yaml(text))
        given.update({name: parse_value(value) for name, value in args.parameter})
        unknown = [name for name in given if name not in known]
        if unknown:
            raise UsageError(f"{stem} has no parameter {unknown[0]!r}; its parameters: {', '.join(known)}")
        values.update(given)
        out = output_path(args.output, stem, root)
        chosen = ", ".join(f"{name}={value!r}" for name, value in values.items()) or "its defaults"
        side_files = out.with_suffix("")  # figures and key numbers of this run, beside the notebook
        if "fig_dir" in known and "fig_dir" not in values:
            values["fig_dir"] = str(side_files / "figures")
        if "record_path" in known and "record_path" not in values:
            values["record_path"] = str(side_files / "record.json")
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"[chapter] running nb/{stem}.ipynb with {chosen} -> {shown(out)}", flush=True)
    return run_chapter(root, stem, values, out)


if __name__ == "__main__":
    sys.exit(main())
