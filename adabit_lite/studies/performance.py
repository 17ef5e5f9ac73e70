"""The performance appendix (chapter 10): tables, figures and sentences from a stored benchmark file.

Nothing here runs a benchmark: every function reads the results that ``python -m benchmarks``
wrote (``benchmarks/results/latest.json``; the schema is the one of ``benchmarks/cli.py``).  A
results file holds ``benchmarks`` (one section per benchmark, each with the machine it ran on and
its ``rows``) and ``targets`` (each with its ``id``, ``variant``, ``threshold``, ``measured`` and
``met``: True, False or None when not measured).

Names.  "package" (column prefix ``ours``) is the package's neuron, T time steps squeezed into one
average (``SpikingNeuron(bits=Bs, T=T)``); "snntorch" is ``snntorch.Leaky`` run for the same T
steps; the "squeezed" layer is one convolution after that neuron, the "multi-step" layer T
convolutions after ``Leaky``, and the "ANN floor" one plain convolution + BatchNorm + ReLU.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import plotting
from . import words

LAYER_T = 4  # the T at which the layer targets are judged (benchmarks/cli.py)
SECTIONS = ("neuron", "layer", "memory", "epoch", "meter", "compiled", "book")
VARIANTS = ("ours", "ours_per_step", "snntorch")  # the neurons of the memory benchmark
STATUS = {True: "met", False: "NOT met", None: "not measured"}
SMOKE_NOTE = "NOTE: these are smoke-mode results (tiny sizes, one round): not meaningful timings"
LAYER_COLUMNS = ["shape", "T", "squeezed_ms", "multistep_ms", "ann_ms", "squeezed_vs_multistep",
                 "squeezed_vs_ann", "multistep_vs_ann"]
COMPILED_NEURON_COLUMNS = ["shape", "ours_ms", "compiled_ms", "snntorch_ms", "ours_vs_snntorch",
                           "compiled_vs_snntorch", "compile_s", "compiled_max_rel_diff"]
COMPILED_LAYER_COLUMNS = ["shape", "squeezed_ms", "compiled_ms", "multistep_ms", "ann_ms", "squeezed_vs_ann",
                          "compiled_vs_ann", "squeezed_vs_multistep", "compiled_vs_multistep"]


# ------------------------------------------------------------------ the run and its machine
def machine_text(sec: dict) -> str:
    """Where a section was measured: CPU, cores, GPU, torch and its threads, snntorch, and the
    device it timed on (when the section says)."""
    m = sec["machine"]
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU"
    ran_on = f"; timed on {sec['device']}" if sec.get("device") else ""
    return (f"{m['cpu']}, {m['cores']} cores{gpu}; torch {m['torch']} with {m['torch_threads']} "
            f"thread(s); snntorch {m.get('snntorch')}{ran_on}")


def measured_before_v2(sec: dict) -> bool:
    """A section stored by the benchmarks of ALGORITHM_VERSION 1: it still has the eager draft's
    columns, and its ours / squeezed columns are the package's old neuron."""
    rows = [r for key in ("rows", "neuron_rows", "layer_rows") for r in (sec.get(key) or [])]
    return any("prototype" in k for r in rows for k in r) or any(r.get("variant") == "prototype" for r in rows)


def old_sections(bench: dict) -> list[str]:
    """The sections measured with the package's old neuron (:func:`measured_before_v2`)."""
    return [name for name, sec in bench.items() if measured_before_v2(sec)]


def machine_table(bench: dict) -> pd.DataFrame:
    """One row per benchmark of ``SECTIONS``: when it started (UTC), its minutes, the machine and
    the load average at start and at end; "not measured" for a section the file lacks."""
    rows = []
    for name in SECTIONS:
        sec = bench.get(name)
        if sec is None:
            rows.append({"benchmark": name, "measured": "not measured"})
            continue
        rows.append({"benchmark": name, "measured": sec["started"][:16].replace("T", " ") + " UTC",
                     "minutes": round(sec["seconds"] / 60, 1), "machine": machine_text(sec),
                     "load average at start": sec["load_start"], "at end": sec["load_end"]})
    return pd.DataFrame(rows)


def run_notes(bench: dict) -> list[str]:
    """The notes stored with the sections (each once, in the order of the sections), then a line
    per section measured with the old neuron saying how to measure it again."""
    notes = dict.fromkeys(sec["note"] for sec in bench.values() if sec.get("note"))
    lines = [f"note stored with the run: {note}" for note in notes]
    return lines + [f"NOTE: the {name} section was measured with the package's old neuron (before "
                    f"ALGORITHM_VERSION 2); rerun `python -m benchmarks {name}`" for name in old_sections(bench)]


def rows_frame(bench: dict, name: str) -> pd.DataFrame:
    """The rows of section ``name`` as a table (empty when the section was not measured)."""
    return pd.DataFrame(bench[name]["rows"]) if name in bench else pd.DataFrame()


# ------------------------------------------------------------------ targets
def format_measured(m) -> str:
    """A target's measured value as text: "key: value" pairs for a dict of numbers; max (with its
    worst case), median and cases over the threshold for a summary; else its text."""
    if isinstance(m, dict) and all(isinstance(v, (int, float)) for v in m.values()):
        return ", ".join(f"{k}: {v:.2f}" if isinstance(v, float) else f"{k}: {v}" for k, v in m.items())
    if isinstance(m, dict) and "max" in m:
        return (f"max {m['max']:.2f} ({m['worst_case']}), median {m['median']:.2f}, "
                f"{m['cases_over']} of {m['cases']} cases over")
    return "see the memory section" if isinstance(m, dict) else str(m)


def target_table(res: dict) -> pd.DataFrame:
    """One row per target: id, variant, threshold, measured value (:func:`format_measured`),
    status (met, NOT met, not measured) and description."""
    return pd.DataFrame([{"target": t["id"], "variant": t["variant"], "threshold": t["threshold"],
                          "measured": format_measured(t["measured"]), "status": STATUS[t["met"]],
                          "description": t["description"]} for t in res["targets"]])


def target_lines(res: dict) -> str:
    """One line per target: its id and its status."""
    return "\n".join(f"{t['id']:32s} {STATUS[t['met']]}" for t in res["targets"])


# ------------------------------------------------------------------ section 1: the neuron alone
def neuron_table(neuron: pd.DataFrame) -> pd.DataFrame:
    """Per shape and T: the package's and snntorch's time (ms) at the largest Bs, and the ratio
    package / snntorch for every Bs."""
    table = neuron.pivot_table(index=["shape", "T"], columns="Bs", values="ours_vs_snntorch")
    table.columns = [f"package/snntorch Bs={b}" for b in table.columns]
    bs_max = neuron.Bs.max()
    ms = neuron[neuron.Bs == bs_max].set_index(["shape", "T"])[["ours_ms", "snntorch_ms"]]
    ms.columns = [f"package ms (Bs={bs_max})", "snntorch ms"]
    return pd.concat([ms, table], axis=1).reset_index()


def neuron_record(neuron: pd.DataFrame) -> dict:
    """Per shape and T the median over Bs of package / snntorch (``neuron_by_T``), and in how many
    of the cases the package is faster (``neuron_faster`` of ``neuron_cases``)."""
    by_T = {shape: {int(T): float(v) for T, v in d.groupby("T")["ours_vs_snntorch"].median().items()}
            for shape, d in neuron.groupby("shape", sort=False)}
    return dict(neuron_by_T=by_T, neuron_faster=int((neuron["ours_vs_snntorch"] < 1).sum()),
                neuron_cases=len(neuron))


def neuron_lines(neuron: pd.DataFrame) -> str:
    """Per shape the median ratio package / snntorch by T, and the count of cases it is faster."""
    rec = neuron_record(neuron)
    lines = [f"{shape:16s} package/snntorch (median over Bs) by T: "
             + "  ".join(f"T={T}: {v:.2f}" for T, v in by_T.items()) for shape, by_T in rec["neuron_by_T"].items()]
    lines.append(f"package faster than snntorch.Leaky in {rec['neuron_faster']} of {rec['neuron_cases']} cases")
    return "\n".join(lines)


def neuron_sentence(neuron: pd.DataFrame) -> str:
    """How often the package's neuron is faster than snntorch.Leaky, its smallest and largest
    time ratio (with their case) and the median ratio at the smallest and the largest T."""
    lo, hi = neuron.loc[neuron["ours_vs_snntorch"].idxmin()], neuron.loc[neuron["ours_vs_snntorch"].idxmax()]
    med_T = neuron.groupby("T")["ours_vs_snntorch"].median()
    faster = int((neuron["ours_vs_snntorch"] < 1).sum())
    return (f"The package's neuron is faster than `snntorch.Leaky` in {faster} of the {len(neuron)} cases. Its time "
            f"ranges from {lo['ours_vs_snntorch']:.2f} times snntorch's ({lo['shape']}, $T = {lo['T']}$, "
            f"$B_s = {lo['Bs']}$) to {hi['ours_vs_snntorch']:.2f} times ({hi['shape']}, $T = {hi['T']}$, "
            f"$B_s = {hi['Bs']}$); the median over shapes and $B_s$ is {med_T.iloc[0]:.2f} at $T = {med_T.index[0]}$ "
            f"and {med_T.iloc[-1]:.2f} at $T = {med_T.index[-1]}$.")


def _log2_T_axis(ax, shape: str) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks([1, 2, 4, 8], ["1", "2", "4", "8"])
    ax.set_title(shape, fontsize=9)
    ax.set_xlabel("T")


def plot_neuron_ratio(neuron: pd.DataFrame, comp: dict | None, threshold: float):
    """One panel per shape: package / snntorch time against T for every Bs (bars: the spread over
    the rounds), the compiled variant's point when measured, and the target as a dotted line."""
    shapes = list(dict.fromkeys(neuron["shape"]))
    fig, axes = plotting.figure(ncols=len(shapes), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, shape in zip(axes, shapes):
        d = neuron[neuron["shape"] == shape]
        for bs, style in zip(sorted(d.Bs.unique()), ("o-", "s-", "^-")):
            e = d[d.Bs == bs].sort_values("T")
            ax.errorbar(e["T"], e["ours_vs_snntorch"], yerr=[e["ours_vs_snntorch"] - e["ours_vs_snntorch_min"],
                        e["ours_vs_snntorch_max"] - e["ours_vs_snntorch"]], fmt=style, ms=4,
                        color=plotting.COLORS["lbw"], alpha=0.4 + 0.2 * (bs > 1) + 0.2 * (bs > 2),
                        label=f"package, Bs={bs}")
        c = [r for r in (comp or {}).get("neuron_rows", []) if r["shape"] == shape]
        if c:
            ax.plot([c[0]["T"]], [c[0]["compiled_vs_snntorch"]], "*", ms=9, color=plotting.COLORS["lbw_renew"],
                    label=f"compiled variant, Bs={c[0]['Bs']}")
        ax.axhline(threshold, color=plotting.COLORS["uquant"], ls=":", label=f"target {threshold}")
        _log2_T_axis(ax, shape)
    axes[0].set_ylabel("time / snntorch.Leaky")
    plotting.legend_below(fig, fontsize=8)
    return fig


# ------------------------------------------------------------------ section 2: one layer
def layer_at_T(layer: pd.DataFrame) -> pd.DataFrame:
    """The layer rows at T = LAYER_T, the T of the layer targets."""
    return layer[layer["T"] == LAYER_T]


def layer_record(layer: pd.DataFrame) -> dict:
    """Per shape at T = LAYER_T: squeezed / multi-step and squeezed / ANN floor."""
    return {r["shape"]: {"vs_multistep": r["squeezed_vs_multistep"], "vs_ann": r["squeezed_vs_ann"]}
            for _, r in layer_at_T(layer).iterrows()}


def layer_lines(layer: pd.DataFrame, targets: dict) -> str:
    """Per shape at T = LAYER_T both layer ratios beside their targets' thresholds."""
    lim_multi, lim_ann = targets["layer_vs_multistep"]["threshold"], targets["layer_vs_ann"]["threshold"]
    return "\n".join(f"{r['shape']:16s} T={LAYER_T}: squeezed/multi-step {r['squeezed_vs_multistep']:.2f} "
                     f"(target <= {lim_multi}), squeezed/ANN {r['squeezed_vs_ann']:.2f} (target <= {lim_ann})"
                     for _, r in layer_at_T(layer).iterrows())


def layer_sentence(layer: pd.DataFrame) -> str:
    """The layer ratios at T = LAYER_T over the shapes, how the medians over shapes of the
    multi-step and the squeezed layer (per ANN floor) grow from the smallest to the largest T,
    and the spread of squeezed / ANN over the rounds of the run."""
    at_T = layer_at_T(layer)
    T_lo, T_hi = layer["T"].min(), layer["T"].max()
    med = layer.groupby("T")[["squeezed_vs_ann", "multistep_vs_ann"]].median()
    return (
        f"At $T = {LAYER_T}$ the squeezed layer takes {at_T['squeezed_vs_multistep'].min():.2f} to "
        f"{at_T['squeezed_vs_multistep'].max():.2f} times the multi-step layer's time and "
        f"{at_T['squeezed_vs_ann'].min():.2f} to {at_T['squeezed_vs_ann'].max():.2f} times the ANN floor's, over the "
        f"{len(at_T)} shapes. From $T = {T_lo}$ to $T = {T_hi}$ the median over shapes of the multi-step layer's time "
        f"goes from {med.loc[T_lo, 'multistep_vs_ann']:.2f} to {med.loc[T_hi, 'multistep_vs_ann']:.2f} times the ANN "
        f"floor, that of the squeezed layer from {med.loc[T_lo, 'squeezed_vs_ann']:.2f} to "
        f"{med.loc[T_hi, 'squeezed_vs_ann']:.2f}: the squeezed layer runs one convolution whatever $T$ is, so only its "
        f"neuron's share depends on $T$. Over the {int(at_T['rounds'].iloc[0])} rounds of this run the squeezed "
        f"layer's time at $T = {LAYER_T}$ per ANN-floor time spread over "
        + "; ".join(f"{r['shape']} {r['squeezed_vs_ann_min']:.2f} to {r['squeezed_vs_ann_max']:.2f}"
                    for _, r in at_T.iterrows()) + ".")


def plot_layer_time(layer: pd.DataFrame, comp: dict | None, threshold: float):
    """One panel per shape: the multi-step and the squeezed layer's time over the ANN floor's
    against T (log-log; the median of the per-round ratios, as in the tables and targets), the
    floor, the target at T = LAYER_T and the compiled variant's point."""
    shapes = list(dict.fromkeys(layer["shape"]))
    fig, axes = plotting.figure(ncols=len(shapes), sharey=False)
    axes = np.atleast_1d(axes)
    for ax, shape in zip(axes, shapes):
        d = layer[layer["shape"] == shape].sort_values("T")
        ax.plot(d["T"], d["multistep_vs_ann"], "s-", color=plotting.COLORS["uquant"], ms=4,
                label="multi-step (snntorch)")
        ax.plot(d["T"], d["squeezed_vs_ann"], "o-", color=plotting.COLORS["lbw"], ms=4,
                label="squeezed (package)")
        ax.axhline(1.0, color=plotting.COLORS["fp"], lw=0.8, label="ANN floor")
        ax.plot([LAYER_T], [threshold], "v", color=plotting.COLORS["control"], label=f"target at T={LAYER_T}")
        c = [r for r in (comp or {}).get("layer_rows", []) if r["shape"] == shape]
        if c:
            ax.plot([c[0]["T"]], [c[0]["compiled_vs_ann"]], "*", ms=9, color=plotting.COLORS["lbw_renew"],
                    label="squeezed (compiled variant)")
        ax.set_yscale("log")
        _log2_T_axis(ax, shape)
    axes[0].set_ylabel("time / (conv + BN + ReLU)")
    plotting.legend_below(fig, fontsize=8)
    return fig


# ------------------------------------------------------------------ section 3: memory
def _first_shape(memory: pd.DataFrame) -> pd.DataFrame:
    return memory[memory["shape"] == memory["shape"].iloc[0]]


def memory_table(memory: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """For the first shape: a caption (shape, input, Bs, levels) and, per neuron variant, the
    saved, peak and largest memory (input-sized tensors) for every T."""
    one = _first_shape(memory)
    caption = (f"shape {one['shape'].iloc[0]}, input {one['input'].iloc[0]}, Bs = {one['Bs'].iloc[0]}, "
               f"{one['levels'].iloc[0]} levels")
    wide = one.pivot_table(index="variant", columns="T", values=["saved", "peak", "alloc_max"], dropna=False)
    wide = wide.rename(columns={"alloc_max": "largest"}, level=0)
    return caption, wide.reindex([v for v in VARIANTS if v in set(one["variant"])])


def memory_record(memory: pd.DataFrame) -> dict:
    """Of the shared neuron ("ours"): whether its saved memory is the same for every T on every
    shape, its largest saved tensor or allocation, and its saved memory per shape and T."""
    ours = memory[memory["variant"] == "ours"]
    same = bool(ours.groupby("shape")["saved"].agg(lambda s: s.max() - s.min() < 1e-9 * s.max()).all())
    largest = float(max(ours["saved_max_tensor"].max(), ours["alloc_max"].max(skipna=True)))
    saved = {s: {int(r["T"]): r["saved"] for _, r in d.iterrows()} for s, d in ours.groupby("shape", sort=False)}
    return dict(memory_same_for_every_T=same, memory_largest=largest, memory_saved=saved)


def memory_lines(memory: pd.DataFrame) -> str:
    """Per variant (first shape) the saved and peak memory by T, then the two checks of the
    shared neuron (:func:`memory_record`)."""
    one = _first_shape(memory)
    lines = []
    for variant in VARIANTS:
        d = one[one["variant"] == variant].sort_values("T")
        if not d.empty:
            lines.append(f"{variant:14s} saved by T: " + " ".join(f"{v:.2f}" for v in d["saved"])
                         + "   peak by T: " + " ".join("-" if pd.isna(v) else f"{v:.1f}" for v in d["peak"]))
    rec = memory_record(memory)
    levels = memory.loc[memory["variant"] == "ours", "levels"].iloc[0]
    lines += [f"shared neuron: saved bytes identical for every T on every shape: {rec['memory_same_for_every_T']}",
              f"largest saved tensor or allocation of the shared neuron: {rec['memory_largest']:.2f} input-sized "
              f"tensors ({levels} levels)"]
    return "\n".join(lines)


# ------------------------------------------------------------------ section 4: training, meter, book
def times_table(bench: dict) -> pd.DataFrame:
    """Absolute times (s) with their detail: one training epoch, the cold meter pass and the book
    build, each when measured."""
    rows = []
    if "epoch" in bench:
        e = bench["epoch"]
        rows.append({"what": f"one training epoch, {e['config']['arch']} on {e['config']['dataset']}",
                     "seconds": e["epoch_s"], "detail": f"whole train() call {e['wall_s']:.1f} s; "
                     f"median of {e['repeats']}; {e['threads']} thread(s)"})
    if "meter" in bench:
        m = bench["meter"]
        rows.append({"what": f"meter {m['arch']} at 224x224 ({m['wst']}), cold", "seconds": m["cold_s"],
                     "detail": f"warm (cached) {1e3 * m['warm_s']:.1f} ms; {m['macs_g']:.4f} G MACs; "
                     f"median of {m['repeats']}"})
    book = bench.get("book")
    if book:
        rows.append({"what": "book build from a clean checkout", "seconds": book["wall_s"],
                     "detail": f"{book['source'][:17]}, {'ok' if book['ok'] else 'FAILED'}; "
                     f"{len(book['notebooks'])} notebook(s); checkout {book['checkout_s']:.1f} s"})
    return pd.DataFrame(rows)


def times_record(times: pd.DataFrame) -> dict:
    """{what: seconds} of :func:`times_table`."""
    return {r["what"]: float(r["seconds"]) for r in times.to_dict("records")}


def book_shares(book: dict) -> pd.DataFrame:
    """Seconds and share of the build per notebook, and Sphinx's own share when measured."""
    shares = pd.DataFrame(book["notebooks"])
    if book.get("sphinx_s") is not None:
        shares = pd.concat([shares, pd.DataFrame([{
            "notebook": "(jupyter-book / Sphinx)", "seconds": book["sphinx_s"],
            "share_percent": 100 * book["sphinx_s"] / book["build_s"]}])], ignore_index=True)
    return shares


def book_missing(book: dict, chapters) -> str:
    """One line naming the ``chapters`` (notebook names) that the stored book build did not run
    (added since it was measured), or "" when it ran them all."""
    built = {n["notebook"] for n in book["notebooks"]}
    new = [c for c in sorted(chapters) if c not in built]
    if not new:
        return ""
    return (f"This build was measured before {words(new)} {'were' if len(new) > 1 else 'was'} added: it ran "
            f"{len(built)} of the "
            f"{len(built) + len(new)} notebooks the book has now, so today's build takes longer "
            f"(re-measure with python -m benchmarks book).")


def stage_sentence(stage: dict) -> str:
    """One epoch of chapter 5's stage with the quantized spiking layers against its float floor."""
    c = stage["config"]
    return (f"One epoch of {c['arch']} (width {c['width']}) on {c['dataset']} ({c['train_limit']} images): "
            f"**{stage['epoch_s']:.1f} s** with the quantized spiking layers, **{stage['floor_epoch_s']:.1f} s** "
            f"for the float floor: **{stage['ratio']:.2f} times** the floor (median of {stage['repeats']} "
            f"interleaved runs each, {stage['threads']} thread(s), {stage['device']}).")


def stage_parts(stage: dict) -> pd.DataFrame:
    """Each part's share (%) of a training batch's time (torch.profiler self time)."""
    return pd.DataFrame([{"part": k, "share of the batch time (%)": 100 * v}
                         for k, v in stage["profile_shares"].items()])


# ------------------------------------------------------------------ section 5: C loop, growth, compiled
def fused_vs_eager(neuron: pd.DataFrame) -> dict | None:
    """Per shape and T the median over Bs of the C step loop's time over the eager loop's; None
    when the file has no eager column (a GPU run, or a run from before the C loop)."""
    if neuron.empty or "ours_vs_eager" not in neuron:
        return None
    vs_eager = neuron.dropna(subset=["ours_vs_eager"]).groupby(["shape", "T"], sort=False)["ours_vs_eager"].median()
    return {shape: {int(T): float(v) for (_, T), v in d.items()} for shape, d in vs_eager.groupby(level=0, sort=False)}


def fused_lines(fused: dict) -> str:
    """One line per shape of :func:`fused_vs_eager`."""
    return "\n".join(f"{shape:16s} C loop / eager loop (median over Bs) by T: "
                     + "  ".join(f"T={T}: {v:.2f}" for T, v in by_T.items()) for shape, by_T in fused.items())


def neuron_growth(neuron: pd.DataFrame) -> dict:
    """Per shape, at the largest Bs: the package's and snntorch's time at the largest T over
    their time at the smallest T."""
    T_lo, T_hi, bs_max = neuron["T"].min(), neuron["T"].max(), neuron["Bs"].max()
    growth = {}
    for shape, d in neuron[neuron["Bs"] == bs_max].groupby("shape", sort=False):
        d = d.set_index("T")
        growth[shape] = {"package": d.loc[T_hi, "ours_ms"] / d.loc[T_lo, "ours_ms"],
                         "snntorch": d.loc[T_hi, "snntorch_ms"] / d.loc[T_lo, "snntorch_ms"]}
    return growth


def growth_lines(neuron: pd.DataFrame) -> str:
    """One line per shape of :func:`neuron_growth`."""
    T_lo, T_hi, bs_max = neuron["T"].min(), neuron["T"].max(), neuron["Bs"].max()
    return "\n".join(f"{shape:16s} neuron time T={T_hi} / T={T_lo} (Bs={bs_max}): package {g['package']:.1f}, "
                     f"snntorch.Leaky {g['snntorch']:.1f}" for shape, g in neuron_growth(neuron).items())


def compiled_tables(comp: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The compiled variant's neuron rows and layer rows as tables."""
    return pd.DataFrame(comp["neuron_rows"]), pd.DataFrame(comp["layer_rows"])


def compiled_record(comp: dict) -> dict:
    """Whether the compiled neuron agrees with the package's (relative difference below 1e-3 on
    every shape) and, per shape, both layers' time over the ANN floor."""
    cn, cl = compiled_tables(comp)
    return dict(compiled_agrees=bool((cn["compiled_max_rel_diff"] < 1e-3).all()),
                compiled_layer={r["shape"]: {"package_vs_ann": r["squeezed_vs_ann"],
                                             "compiled_vs_ann": r["compiled_vs_ann"]} for _, r in cl.iterrows()})


def compiled_lines(comp: dict, targets: dict) -> str:
    """Per shape both layers' time over the ANN floor beside the target, and the agreement check."""
    _, cl = compiled_tables(comp)
    lim_ann = targets["layer_vs_ann"]["threshold"]
    lines = [f"{r['shape']:16s} T={comp['T']}: time / ANN floor: package {r['squeezed_vs_ann']:.2f}, "
             f"compiled {r['compiled_vs_ann']:.2f} (target <= {lim_ann})" for _, r in cl.iterrows()]
    lines.append("compiled neuron: same output as the package and gradients within 1e-3 on every shape: "
                 f"{compiled_record(comp)['compiled_agrees']}")
    return "\n".join(lines)


def compiled_sentence(comp: dict) -> str:
    """The ranges over the shapes of the compiled and the package's neuron per snntorch.Leaky, of
    both layers per ANN floor, and of the compile time."""
    cn, cl = compiled_tables(comp)
    return (f"At $T = {comp['T']}$ the compiled neuron alone takes {cn['compiled_vs_snntorch'].min():.2f} to "
            f"{cn['compiled_vs_snntorch'].max():.2f} times `snntorch.Leaky`'s time, against "
            f"{cn['ours_vs_snntorch'].min():.2f} to {cn['ours_vs_snntorch'].max():.2f} for the package's neuron, "
            f"and the layer with it {cl['compiled_vs_ann'].min():.2f} to {cl['compiled_vs_ann'].max():.2f} times "
            f"the ANN floor (package: {cl['squeezed_vs_ann'].min():.2f} to {cl['squeezed_vs_ann'].max():.2f}), "
            f"after {cn['compile_s'].min():.0f} to {cn['compile_s'].max():.0f} s of compilation per shape.")
