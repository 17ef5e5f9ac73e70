"""The published tables of Yao et al. (arXiv 2506.23717) and Shen et al. (arXiv 2311.10802) as data.

One CSV file per table in ``adabit_lite/paper_tables/``; its ``#`` header lines name the paper,
the arXiv id and the table.  ``paper_table(name)`` returns the table as a DataFrame with

- the published columns (numbers as numbers; W/S/T kept as the strings the papers print, since
  many learned ones give only W/S; "-" and empty cells are NaN);
- ``notes``: what is odd about a row; the papers' own inconsistencies are kept as published and
  their notes start with "(sic)";
- ``sic``: True where the notes flag such an inconsistency;
- ``source``: paper, arXiv id and table, from the file's header.

``table_citation(name)`` says how a reader finds a table in its paper: Shen et al.'s tables by
their number ("Table 1"), Yao et al.'s by the caption of the authors' draft (the ``# caption:``
header line), or, where the draft has none that is known here, by the words its text cites the
table with (``# cited as:``): the published numbering of Yao et al.'s tables is not known here.

``paper_statements()`` holds the few numbers that the papers print in their text or figures rather
than in a table (``paper_tables/statements.csv``, one row per statement with its source).

The notebooks read the published numbers from here, never typing them in.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

TABLES = {
    "yao_cifar": "Yao et al. CIFAR comparison (CIFAR-10/100)",
    "yao_imagenet": "Yao et al. ImageNet comparison",
    "yao_ablation": "Yao et al. ablation: learnable bit widths and renewal (ResNet20, CIFAR-10)",
    "yao_neuron_ablation": "Yao et al. refined-neuron ablation (ResNet20, CIFAR-10)",
    "yao_spikformer_cifar10": "Yao et al. Spikformer-4-384 on CIFAR-10",
    "yao_spikformer_dvs": "Yao et al. Spikformer on CIFAR10-DVS (temporal constraint)",
    "shen_table1": "Shen et al. Table 1: ImageNet",
    "shen_table2": "Shen et al. Tables 2 and 5: CIFAR-10/100",
    "shen_table3": "Shen et al. Table 3: neuromorphic data sets (Spikformer)",
}

# Architecture names as the papers print them -> the model zoo / meter name (models/__init__.py).
METER_ARCH = {
    "ResNet20": "resnet20", "ResNet19": "resnet19", "ResNet-19": "resnet19",
    "SEW-ResNet34": "sew-resnet34", "SEW-ResNet-34": "sew-resnet34",
    "Spikformer-4-384": "spikformer-4-384", "Spikformer-4-256": "spikformer-4-256",
    "Spikformer-2-384": "spikformer-2-384",
}


def _path(name: str):
    if name not in TABLES:
        raise ValueError(f"unknown paper table {name!r}; accepted: {', '.join(TABLES)}")
    return resources.files(__package__).joinpath("paper_tables", f"{name}.csv")


def table_header(name: str) -> list[str]:
    """The ``#`` comment lines at the top of a table's file (without the ``#``)."""
    lines = []
    for line in _path(name).read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return lines


def table_source(name: str) -> str:
    """'<paper title>, arXiv <id>; <table>' from the file header."""
    head = table_header(name)
    paper = head[0]
    table = next((h[len("table:"):].strip() for h in head if h.startswith("table:")), name)
    return f"{paper}; {table.split('. ')[0].rstrip('.')}"


def table_citation(name: str) -> str:
    """How a reader finds table ``name`` in its paper: 'Table 1' (Shen et al., numbered), the
    quoted caption of Yao et al.'s draft, or 'the table cited as "..."' where only the words of the
    draft's text are known."""
    head = table_header(name)
    for field in ("caption:", "cited as:"):
        line = next((h[len(field):].strip() for h in head if h.startswith(field)), None)
        if line is not None:
            quoted = line[line.index('"'):line.index('"', line.index('"') + 1) + 1]
            return f"the table {quoted}" if field == "caption:" else f"the table cited as {quoted}"
    table = next((h[len("table:"):].strip() for h in head if h.startswith("table:")), None)
    if table is None or not table.startswith("Table"):
        raise ValueError(f"paper table {name!r} has no caption, no citation and no table number")
    return table.split(",")[0]


def paper_statements() -> pd.DataFrame:
    """The numbers the papers print outside their tables, indexed by ``id``: ``paper``, ``source``
    (where a reader finds it), ``statement``, ``number``, ``unit`` and ``notes``."""
    path = resources.files(__package__).joinpath("paper_tables", "statements.csv")
    with path.open(encoding="utf-8") as f:
        df = pd.read_csv(f, comment="#", dtype={"notes": str})
    df["notes"] = df["notes"].fillna("")
    return df.set_index("id")


def paper_table(name: str) -> pd.DataFrame:
    """A published table as a DataFrame with ``notes``, ``sic`` and ``source`` columns."""
    with _path(name).open(encoding="utf-8") as f:
        df = pd.read_csv(f, comment="#", na_values=["-"], keep_default_na=True,
                         dtype={c: str for c in ("wst", "target", "lbw_wst", "c100_wst", "notes")})
    df["notes"] = df["notes"].fillna("")
    df["sic"] = df["notes"].str.startswith("(sic)")
    df["source"] = table_source(name)
    return df


def paper_tables() -> dict[str, pd.DataFrame]:
    """All tables by name."""
    return {name: paper_table(name) for name in TABLES}
