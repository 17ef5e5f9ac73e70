"""The published tables of Yao et al. (arXiv 2506.23717) and Shen et al. (arXiv 2311.10802) as data.

One CSV file per table in ``adabit_lite/paper_tables/``; its ``#`` header lines name the paper,
the arXiv id and the table.  ``paper_table(name)`` returns the table as a DataFrame with

- the published columns (numbers as numbers; W/S/T kept as the strings the papers print, since
  many learned ones give only W/S; "-" and empty cells are NaN);
- ``notes``: what is odd about a row; the papers' own inconsistencies are kept as published and
  their notes start with "(sic)";
- ``sic``: True where the notes flag such an inconsistency;
- ``source``: paper, arXiv id and table, from the file's header.

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
