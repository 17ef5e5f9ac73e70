"""The scale chapter (nb/09_scale.ipynb): the paper's ResNet-20 rows on CIFAR-10/100 as training
commands, each beside the stored result of that exact configuration when one exists.

A row is a paper cell (Yao et al.'s ablation table for CIFAR-10, the "Ours" rows of its CIFAR
table for CIFAR-100) and the ``TrainConfig`` that reproduces it at the chapter's epochs, batch and
device; ``stored_accuracy`` looks its key up under the results folder (never a near match)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import data
from ..paper import paper_table
from ..results import find_result
from ..train import TrainConfig, cli_option, command_line

#: the ablation table's methods: its column and the renewal variant (None: U-quant)
METHODS = {"U-quant": ("uquant", None), "LBW": ("lbw", "none"),
           "+ weight renewal": ("weight_renew", "weight"),
           "+ bilateral renewal": ("bilateral_renew", "both"),
           "+ activation renewal": ("act_renew", "activation")}
NOT_RUN = "not run here"


def wst_text(wst, T: int | None = None) -> str:
    """A W/S/T as the chapter's tables write it: a fixed split in integers ("1/2/1"); a learned one
    (any fractional width) with W and S to two decimals and T an integer where it is whole
    ("1.57/2.12/1", "4.02/3.93/1.92").  The paper prints many learned rows as W/S only: ``T``
    (the target's) completes them.  Text that is no W/S/T is returned as it is."""
    try:
        values = [float(v) for v in str(wst).split("/")]
    except ValueError:
        return str(wst)
    if len(values) == 2 and T is not None:
        values.append(float(T))
    if len(values) not in (2, 3):
        return str(wst)
    if all(v.is_integer() for v in values):
        return "/".join(str(int(v)) for v in values)
    return "/".join([f"{v:.2f}" for v in values[:2]]
                    + [str(int(v)) if v.is_integer() else f"{v:.2f}" for v in values[2:]])


def scale_config(dataset: str, target: str, renewal: str | None, epochs: int, batch_size: int,
                 device: str) -> TrainConfig:
    """ResNet-20 at the paper's width from the 4/4/2 init towards ``target`` with ``renewal``
    (None: U-quant at the target)."""
    cfg = TrainConfig(arch="resnet20", dataset=dataset, init="4/4/2", target=target,
                      renewal=renewal or "none", epochs=epochs, batch_size=batch_size, device=device)
    return cfg.uquant() if renewal is None else cfg


def stored_accuracy(results_dir, cfg: TrainConfig) -> tuple[str, str]:
    """(final accuracy to two decimals, final W/S/T) of the run stored for ``cfg``'s exact key,
    or (``NOT_RUN``, "")."""
    found = find_result(results_dir, cfg)
    if found is None:
        return NOT_RUN, ""
    return f"{found['metrics']['accuracy']:.2f}", found["metrics"]["wst"]


def scale_rows(results_dir, epochs: int, batch_size: int, device: str,
               command_dir: str) -> pd.DataFrame:
    """One row per paper cell: data, target, method, the paper's W/S/T and top-1, ours (or
    ``NOT_RUN``), and the command that trains it into ``command_dir``/<key>."""
    rows = []

    def add(data, target, method, paper_wst, paper_top1, cfg, note=""):
        acc, wst = stored_accuracy(results_dir, cfg)
        sic = f" {SIC}" if is_sic(note) else ""
        rows.append({"data": data, "target": target, "method": method,
                     "paper W/S/T": wst_text(paper_wst, int(target.split("/")[2])) + sic
                     if isinstance(paper_wst, str) else "",
                     "paper top-1": paper_top1, "ours top-1": acc, "our W/S/T": wst,
                     "command": command_line(cfg, f"{command_dir}/<key>")})

    for _, row in paper_table("yao_ablation").iterrows():
        for method, (column, renewal) in METHODS.items():
            cfg = scale_config("cifar10", row["target"], renewal, epochs, batch_size, device)
            paper_wst = row["target"] if column == "uquant" else row.get(f"{column}_wst", "")
            add("CIFAR-10", row["target"], method, paper_wst, row[column], cfg)
    cifar = paper_table("yao_cifar")
    for _, row in cifar[cifar["method"].str.startswith("Ours")].iterrows():
        target = "/".join(row["method"].split("-")[1])  # Ours-111 -> 1/1/1
        cfg = scale_config("cifar100", target, "activation", epochs, batch_size, device)
        add("CIFAR-100", target, "+ activation renewal", row["c100_wst"], row["cifar100"], cfg,
            row.get("notes", ""))
    return pd.DataFrame(rows)


SIC = "(sic)"  # a data file's note that starts so: the paper prints the cell as it is, inconsistent


def is_sic(note) -> bool:
    """Whether a data file's note marks its cell as printed so by the paper (``SIC``)."""
    return isinstance(note, str) and note.startswith(SIC)


def sic_notes() -> list[str]:
    """The data file's notes on the paper cells this chapter shows that are marked ``SIC``: one
    line per CIFAR table row."""
    cifar = paper_table("yao_cifar")
    ours = cifar[cifar["method"].str.startswith("Ours") & cifar["notes"].map(is_sic)]
    return [f"{SIC} {r['method']}: {r['notes'].removeprefix(SIC).strip()}" for _, r in ours.iterrows()]


#: options the commands leave at the package's default, named in ``defaults_line``
DEFAULTS_SHOWN = ("target", "init", "renewal", "seed", "lam_w", "lam_s", "lam_T", "rho", "optimizer",
                  "momentum")


def defaults_line() -> str:
    """The defaults that every command relies on without writing them (the paper's rows are one
    run each: seed 0 here)."""
    defaults = TrainConfig()
    shown = ", ".join(cli_option(n, getattr(defaults, n)) for n in DEFAULTS_SHOWN)
    return (f"Options a command leaves out take the package's defaults: {shown}, and the reference "
            "recipe's learning rates and weight decay (python -m adabit_lite.train --help lists them all).")


def scale_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The rows as the chapter shows them: without the commands (listed in their own section) and,
    when no row has a stored result, without our two columns (:func:`ours_note` says so once);
    otherwise our W/S/T written as the paper's (:func:`wst_text`), and a row not run here shows
    ``NOT_RUN`` and "-"."""
    shown = runs.drop(columns="command")
    done = shown["ours top-1"] != NOT_RUN
    if not done.any():
        return shown.drop(columns=["ours top-1", "our W/S/T"])
    ours = [wst_text(w) if d else None for w, d in zip(shown["our W/S/T"], done)]
    return shown.assign(**{"our W/S/T": ours})


def ours_note(runs: pd.DataFrame, results_dir: str) -> str:
    """One line on our results beside the table: none stored (the table then leaves our columns
    out), or how many rows have one."""
    done = int((runs["ours top-1"] != NOT_RUN).sum())
    if done == 0:
        return (f"ours: not run here (no row has a stored result under {results_dir}; the commands "
                "below train them)")
    return f"ours: {done} of {len(runs)} rows have a stored result under {results_dir}, the others are {NOT_RUN}"


def scale_record(runs: pd.DataFrame) -> dict:
    """What the chapter records: the row and stored-run counts, the commands, and per row the
    paper's and our top-1 (None where not run)."""
    done = runs["ours top-1"] != NOT_RUN
    return {"n_runs": len(runs), "n_done": int(done.sum()), "commands": runs["command"].tolist(),
            "runs": [{"data": r["data"], "target": r["target"], "method": r["method"],
                      "paper top-1": r["paper top-1"],
                      "ours top-1": None if r["ours top-1"] == NOT_RUN else float(r["ours top-1"])}
                     for r in runs.to_dict("records")]}


def cifar_status(name: str) -> str:
    """Where ``data.find_cifar_folder`` finds CIFAR set ``name``, or why not (the home folder
    written as ~, so that a page built on one machine names no other's paths)."""
    try:
        return f"{name}: found in {data.find_cifar_folder(name)}".replace(str(Path.home()), "~")
    except FileNotFoundError as missing:
        return f"{name}: not on this machine. {missing}".replace(str(Path.home()), "~")
