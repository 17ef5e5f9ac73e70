"""python -m benchmarks [neuron|layer|memory|epoch|stage|meter|compiled|book|all ...] [--smoke] [--out FILE]

Runs the named benchmarks (default: all, which leaves out the slow opt-ins ``compiled`` and
``book``), prints their tables and the targets, and writes the results with the machine they were
measured on to benchmarks/results/latest.json (latest_cuda.json for a run on a GPU; one CSV per
table beside it).  A full run merges into the existing file: the benchmarks not run keep their
stored section, each section carrying its own machine, device, dates and load averages.
``--smoke`` runs every benchmark but the opt-ins once at tiny sizes in a few seconds and writes
nothing unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import torch

from . import common

NAMES = ("neuron", "layer", "memory", "epoch", "stage", "meter", "compiled", "book")
DEFAULT_ALL = ("neuron", "layer", "memory", "epoch", "stage", "meter")

# the performance targets (thresholds)
LAYER_T = 4
LAYER_VS_MULTISTEP = 0.5
LAYER_VS_ANN = 1.5
NEURON_VS_SNNTORCH = 1.0


def _rows(results: dict, name: str) -> list[dict]:
    return (results.get("benchmarks", {}).get(name) or {}).get("rows", [])


def _target(tid: str, description: str, threshold, measured, met, source: str,
            variant: str = "package") -> dict:
    return {"id": tid, "description": description, "threshold": threshold, "measured": measured,
            "met": met, "source": source, "variant": variant}


def targets(results: dict) -> list[dict]:
    """Evaluate the targets on whatever sections ``results`` holds (None = not measured)."""
    out = []
    layer = [r for r in _rows(results, "layer") if r["T"] == LAYER_T]
    vs_multi = {r["shape"]: round(r["squeezed_vs_multistep"], 3) for r in layer}
    vs_ann = {r["shape"]: round(r["squeezed_vs_ann"], 3) for r in layer}
    out.append(_target(
        "layer_vs_multistep", f"squeezed layer at T = {LAYER_T}: time <= {LAYER_VS_MULTISTEP} x "
        "the multi-step snntorch layer (every shape)", LAYER_VS_MULTISTEP, vs_multi,
        all(v <= LAYER_VS_MULTISTEP for v in vs_multi.values()) if vs_multi else None, "layer"))
    out.append(_target(
        "layer_vs_ann", f"squeezed layer at T = {LAYER_T}: time <= {LAYER_VS_ANN} x the conv + BN + "
        "ReLU ANN floor (every shape)", LAYER_VS_ANN, vs_ann,
        all(v <= LAYER_VS_ANN for v in vs_ann.values()) if vs_ann else None, "layer"))
    neuron = _rows(results, "neuron")
    vals = [r["ours_vs_snntorch"] for r in neuron]
    measured = None
    if vals:
        worst = max(neuron, key=lambda r: r["ours_vs_snntorch"])
        measured = {"max": round(max(vals), 3), "median": round(sorted(vals)[len(vals) // 2], 3),
                    "cases_over": sum(v > NEURON_VS_SNNTORCH for v in vals), "cases": len(vals),
                    "worst_case": f"{worst['shape']} T={worst['T']} Bs={worst['Bs']}"}
    out.append(_target(
        "neuron_vs_snntorch", f"neuron alone: time <= {NEURON_VS_SNNTORCH} x snntorch.Leaky over T "
        "steps (every shape, T, Bs)", NEURON_VS_SNNTORCH, measured,
        (measured["cases_over"] == 0) if measured else None, "neuron"))
    comp = (results.get("benchmarks", {}).get("compiled") or {}).get("layer_rows", [])
    if comp:
        vs_multi = {r["shape"]: round(r["compiled_vs_multistep"], 3) for r in comp}
        vs_ann = {r["shape"]: round(r["compiled_vs_ann"], 3) for r in comp}
        out.append(_target("layer_vs_multistep_compiled", "as layer_vs_multistep, with the "
                           "torch.compile prototype neuron", LAYER_VS_MULTISTEP, vs_multi,
                           all(v <= LAYER_VS_MULTISTEP for v in vs_multi.values()), "compiled",
                           "compiled"))
        out.append(_target("layer_vs_ann_compiled", "as layer_vs_ann, with the torch.compile "
                           "prototype neuron", LAYER_VS_ANN, vs_ann,
                           all(v <= LAYER_VS_ANN for v in vs_ann.values()), "compiled", "compiled"))
    ncomp = (results.get("benchmarks", {}).get("compiled") or {}).get("neuron_rows", [])
    if ncomp:
        vals = {r["shape"]: round(r["compiled_vs_snntorch"], 3) for r in ncomp}
        out.append(_target("neuron_vs_snntorch_compiled", "neuron alone at T = 4 (Bs = 4) with the "
                           "torch.compile prototype: time <= 1.0 x snntorch.Leaky", NEURON_VS_SNNTORCH,
                           vals, all(v <= NEURON_VS_SNNTORCH for v in vals.values()), "compiled",
                           "compiled"))
    mem = [r for r in _rows(results, "memory") if r["variant"] == "ours"]
    if mem:
        biggest = max(max(r["saved_max_tensor"] for r in mem),
                      max((r["alloc_max"] for r in mem if r["alloc_max"] is not None), default=0))
        out.append(_target(
            "no_elements_x_levels", "no tensor of size elements x levels: the largest saved tensor "
            "and the largest allocation of the shared neuron's forward + backward are at most one "
            "input-sized tensor (Bs = 4: 16 levels)", 1.0,
            {"largest_tensor_in_inputs": round(biggest, 4), "levels": mem[0]["levels"]},
            biggest <= 1.0 + 1e-3, "memory"))
        per_shape, ok = {}, True
        for shape in dict.fromkeys(r["shape"] for r in mem):
            rows = sorted((r for r in mem if r["shape"] == shape), key=lambda r: r["T"])
            saved = [r["saved"] for r in rows]
            peaks = [r["peak"] for r in rows if r["peak"] is not None and r["T"] >= 2]
            flat_saved = max(saved) <= min(saved) * 1.001
            flat_peak = (max(peaks) <= min(peaks) * 1.01) if peaks else True
            ok &= flat_saved and flat_peak
            per_shape[shape] = {"saved_by_T": {r["T"]: round(r["saved"], 3) for r in rows},
                                "peak_by_T": {r["T"]: None if r["peak"] is None else round(r["peak"], 3)
                                              for r in rows}}
        out.append(_target(
            "memory_constant_in_T", "extra memory O(elements): the shared neuron's saved-for-"
            "backward bytes are the same for every T and its peak extra memory does not grow with "
            "T (T >= 2; in input-sized tensors)", "constant in T", per_shape, ok, "memory"))
    return out


def print_summary(results: dict) -> None:
    b = results.get("benchmarks", {})
    if b.get("neuron"):
        print("\nneuron alone, forward + backward: time ours / snntorch.Leaky")
        for r in b["neuron"]["rows"]:
            print(f"  {r['shape']:16s} T={r['T']} Bs={r['Bs']}: {r['ours_vs_snntorch']:.2f}")
    if b.get("layer"):
        print("\nlayer, forward + backward: squeezed / multi-step, squeezed / ANN")
        for r in b["layer"]["rows"]:
            print(f"  {r['shape']:16s} T={r['T']}: {r['squeezed_vs_multistep']:.2f}, "
                  f"{r['squeezed_vs_ann']:.2f}")
    print("\ntargets:")
    for t in results.get("targets", []):
        state = {True: "MET", False: "NOT MET", None: "not measured"}[t["met"]]
        print(f"  [{state}] {t['id']}: {t['measured']}")


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (v if not isinstance(v, (list, dict)) else str(v)) for k, v in r.items()})


def write(results: dict, path: Path) -> None:
    common.write_json(path, results)
    stem = path.with_suffix("")
    for name in ("neuron", "layer", "memory"):
        _write_csv(Path(f"{stem}_{name}.csv"), _rows(results, name))
    comp = results["benchmarks"].get("compiled")
    if comp:
        _write_csv(Path(f"{stem}_compiled_neuron.csv"), comp.get("neuron_rows", []))
        _write_csv(Path(f"{stem}_compiled_layer.csv"), comp.get("layer_rows", []))
    book = results["benchmarks"].get("book")
    if book:
        _write_csv(Path(f"{stem}_book.csv"), book.get("notebooks", []))
    _write_csv(Path(f"{stem}_targets.csv"), [
        {**t, "measured": str(t["measured"])} for t in results.get("targets", [])])


def _compiled(rounds, min_time, device):
    from . import bench_compiled

    return bench_compiled.run(rounds=rounds or 3, min_time=0.25 if min_time is None else min_time,
                              device=device)


def run(names: list[str], smoke: bool = False, rounds: int | None = None,
        min_time: float | None = None, book_source: str = "head", book_timeout: float = 3600,
        keep_book: bool = False, venv: str | None = None,
        device: torch.device = torch.device("cpu")) -> dict:
    from . import bench_layer, bench_memory, bench_neuron, bench_stage, bench_train

    jobs = {  # memory, meter and book measure the CPU whatever the device
        "neuron": lambda: bench_neuron.run(smoke, rounds, min_time, device),
        "layer": lambda: bench_layer.run(smoke, rounds, min_time, device),
        "memory": lambda: bench_memory.run(smoke),
        "epoch": lambda: bench_train.run_epoch(smoke, device=device),
        "stage": lambda: bench_stage.run(smoke, device=device),
        "meter": lambda: bench_train.run_meter(smoke),
        "compiled": lambda: _compiled(rounds, min_time, device),
    }
    sections = {}
    for name in names:
        if name == "book":
            from . import bench_book
            body = lambda: bench_book.run(book_source, venv, keep_book, book_timeout)  # noqa: E731
        else:
            body = jobs[name]
        sections[name] = common.section(name, body)
        sections[name]["smoke"] = smoke
    return sections


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[1])
    p.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(NAMES)} or all "
                   "(all = every one but the slow opt-ins compiled and book)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one round, a few seconds; "
                   "the opt-ins compiled and book are left out; nothing is written unless --out "
                   "is given")
    p.add_argument("--out", type=Path, default=None,
                   help=f"result file (default {common.LATEST.relative_to(common.ROOT)})")
    p.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds")
    p.add_argument("--min-time", type=float, default=None, help="seconds per measurement")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's; 1 with --smoke)")
    p.add_argument("--device", default="auto", help="where neuron, layer, compiled and epoch run: "
                   "auto (CUDA when torch sees a GPU, else cpu), cpu, cuda or cuda:N; memory, meter "
                   "and book always measure the CPU.  The default result file of a CUDA run is "
                   "results/latest_cuda.json, so that it never mixes with the CPU file")
    p.add_argument("--book-source", choices=("head", "worktree"), default="head",
                   help="book: clone HEAD (default) or copy the working tree")
    p.add_argument("--book-timeout", type=float, default=3600)
    p.add_argument("--keep-book", action="store_true", help="book: keep the temporary checkout")
    p.add_argument("--note", default="", help="a line stored with the results (why these settings)")
    p.add_argument("--venv", default=None, help="book: environment to reuse (default $VENV or .venv)")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in NAMES + ("all",)]
    if unknown:
        p.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(NAMES)}, all")
    names = []
    for n in args.names or ["all"]:
        names += DEFAULT_ALL if n == "all" else [n]
    names = list(dict.fromkeys(names))
    for slow in ("book", "compiled"):
        if args.smoke and slow in names:
            names.remove(slow)
            print(f"[benchmarks] --smoke leaves out {slow} (a slow, opt-in benchmark)")
    if args.threads or args.smoke:  # smoke: one thread, so that a busy machine does not stall it
        torch.set_num_threads(args.threads or 1)
    device = common.pick_device(args.device)
    load_start = common.load_average()
    print(f"[benchmarks] {', '.join(names)}{' (smoke)' if args.smoke else ''}; load average "
          f"{load_start}; torch {torch.__version__}, {torch.get_num_threads()} threads; device {device}",
          flush=True)
    sections = run(names, args.smoke, args.rounds, args.min_time, args.book_source,
                   args.book_timeout, args.keep_book, args.venv, device)
    default_out = common.LATEST if device.type == "cpu" else common.LATEST_CUDA
    out_path = args.out or (None if args.smoke else default_out)
    results = {"schema": common.SCHEMA, "benchmarks": {}}
    if out_path is not None and not args.smoke:
        stored = common.read_json(out_path)
        if stored and stored.get("schema") == common.SCHEMA and not stored.get("smoke"):
            results["benchmarks"].update(stored.get("benchmarks", {}))
    results["benchmarks"].update(sections)
    for sec in sections.values():
        sec["note"] = args.note
    results.update(updated=common.now(), smoke=args.smoke, machine=common.machine(),
                   load_start=load_start, load_end=common.load_average())
    results["targets"] = targets(results)
    print_summary(results)
    if out_path is not None:
        write(results, out_path)
        print(f"\n[benchmarks] wrote {out_path}")
    return 0
