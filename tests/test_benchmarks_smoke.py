"""The benchmarks' smoke mode (benchmarks/, issue 8): structure and the memory property, no timings.

One in-process run of ``python -m benchmarks --smoke --out FILE`` (every benchmark but the
opt-ins, compiled and book, at tiny sizes with one thread) feeds the assertions.  Timings are only checked to be
positive numbers: this test must not fail because the machine is busy.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("snntorch")
ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:  # benchmarks/ is not installed: found from the repository root, also
    sys.path.insert(0, ROOT)  # when pytest is started as .venv/bin/pytest rather than python -m

from benchmarks import bench_book, bench_memory, cli  # noqa: E402
from benchmarks.common import SHAPES, pick_device  # noqa: E402

SECTIONS = {"neuron", "layer", "memory", "epoch", "stage", "meter"}


@pytest.fixture(scope="module")
def smoke(benchmark_smoke):
    return benchmark_smoke  # (results, file) of the session's one smoke run (conftest.py)


def positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_result_file_and_machine(smoke):
    res, out = smoke
    assert res["schema"] == 1 and res["smoke"] is True
    assert set(res["benchmarks"]) == SECTIONS  # the opt-ins (compiled, book) are left out
    for key in ("cpu", "cores", "torch", "torch_threads", "gpu", "snntorch"):
        assert key in res["machine"]
    assert res["machine"]["torch"] == torch.__version__
    assert len(res["load_start"]) == 3 and len(res["load_end"]) == 3
    for name, sec in res["benchmarks"].items():
        assert sec["benchmark"] == name and sec["smoke"] is True
        assert sec["started"] <= sec["finished"] and sec["seconds"] >= 0
        assert sec["machine"]["cpu"] and len(sec["load_start"]) == 3
    for suffix in ("neuron", "layer", "memory", "targets"):
        assert (out.parent / f"smoke_{suffix}.csv").stat().st_size > 0


def test_neuron_rows(smoke):
    rows = smoke[0]["benchmarks"]["neuron"]["rows"]
    assert {(r["shape"], r["T"], r["Bs"]) for r in rows} == {
        (s, T, b) for s in SHAPES for T in (1, 2, 4, 8) for b in (1, 2, 4)}
    for r in rows:
        assert all(positive(r[k]) for k in ("ours_ms", "snntorch_ms", "ours_vs_snntorch"))
        assert r["ours_vs_snntorch_min"] <= r["ours_vs_snntorch"] <= r["ours_vs_snntorch_max"]
        assert not any(k.startswith("prototype") for k in r)  # the eager prototype is the package now


def test_layer_rows(smoke):
    rows = smoke[0]["benchmarks"]["layer"]["rows"]
    assert {(r["shape"], r["T"]) for r in rows} == {
        (s, T) for s in ("wide-resnet20", "small-cnn.conv2", "small-cnn.conv3") for T in (1, 2, 4, 8)}
    for r in rows:
        assert all(positive(r[k]) for k in ("squeezed_ms", "multistep_ms", "ann_ms",
                                             "squeezed_vs_multistep", "squeezed_vs_ann"))


def test_memory_independent_of_T(smoke):
    """Saved-for-backward bytes of the shared-parameter neuron do not depend on T (exactly), the
    per-step neuron keeps (almost) nothing but x, and no saved tensor or allocation is bigger than
    the input (no elements x levels tensor)."""
    rows = smoke[0]["benchmarks"]["memory"]["rows"]
    for shape in SHAPES:
        by = {(r["variant"], r["T"]): r for r in rows if r["shape"] == shape}
        ours = [by["ours", T]["saved"] for T in (1, 2, 4, 8)]
        assert len(set(ours)) == 1 and ours[0] <= 4.01, ours
        assert all(by["ours", T]["saved_max_tensor"] <= 1.0 for T in (1, 2, 4, 8))
        # the measurement sees growth where there is some: snntorch keeps every step
        theirs = [by["snntorch", T]["saved"] for T in (1, 2, 4, 8)]
        assert theirs == sorted(theirs) and theirs[-1] > 4 * theirs[0] * 0.99
        # per step (T >= 2): x (left out), the parameters and a few numbers, whatever T;
        # at T = 1 there is one slot, and the shared path runs
        assert all(by["ours_per_step", T]["saved"] < 0.01 for T in (2, 4, 8))
        assert by["ours_per_step", 1]["saved"] == ours[0]
    peaks = {r["T"]: r for r in rows if r["variant"] == "ours" and r["peak"] is not None}
    if peaks:  # profiler timeline available (private torch API)
        assert peaks[8]["peak"] <= peaks[2]["peak"] * 1.01
        assert all(r["alloc_max"] <= 1.0 + 1e-3 for r in peaks.values())


@pytest.mark.parametrize("options", [{}, {"amplitude": True}, {"per_step": True},
                                     {"per_step": True, "amplitude": True, "tau": 2.0}])
def test_saved_bytes_direct(options):
    """The same property without the CLI, on a shape of book/definitions.md#def-benchmark-shapes (batch 2), for every branch of the
    fused neuron: saved bytes constant in T, at most four input-sized tensors."""
    from adabit_lite.neuron import SpikingNeuron

    x = torch.relu(torch.randn(2, 32, 14, 14)).requires_grad_()
    saved = []
    for T in (2, 3, 8):  # T >= 2: with per_step, T = 1 is the shared path
        n = SpikingNeuron(bits=4, T=T, T_bound=8, **options).train()
        n(x)
        s = bench_memory.saved_bytes(n, x, list(n.parameters()))
        assert s["max_tensor_bytes"] <= x.numel() * 4
        saved.append(s["bytes"])
    assert saved[0] == saved[1] == saved[2] <= 4 * x.numel() * 4 + 64, saved


def test_epoch_and_meter(smoke):
    b = smoke[0]["benchmarks"]
    assert positive(b["epoch"]["epoch_s"]) and b["epoch"]["wall_s"] >= b["epoch"]["epoch_s"]
    assert b["epoch"]["config"]["epochs"] == 1
    assert positive(b["meter"]["cold_s"]) and positive(b["meter"]["warm_s"])
    assert b["meter"]["arch"] == "sew-resnet34" and b["meter"]["macs_g"] == pytest.approx(3.6638, abs=1e-3)


def test_targets_structure(smoke):
    targets = {t["id"]: t for t in smoke[0]["targets"]}
    assert {"layer_vs_multistep", "layer_vs_ann", "neuron_vs_snntorch", "no_elements_x_levels",
            "memory_constant_in_T"} <= set(targets)
    for t in targets.values():
        assert t["met"] in (True, False) and t["measured"] is not None
    assert targets["no_elements_x_levels"]["met"] and targets["memory_constant_in_T"]["met"]


def test_the_compiled_column_times_the_package_neuron(monkeypatch):
    """bench_compiled times the package's own neuron with its torch.compile execution chosen
    (ADABIT_FUSED=compile, adabit_lite.neuron.execution), not a copy of the neuron."""
    from benchmarks import bench_compiled

    monkeypatch.delenv("ADABIT_FUSED", raising=False)
    seen = []
    bench_compiled.compiled(lambda: seen.append(os.environ.get("ADABIT_FUSED")))()
    assert seen == ["compile"] and "ADABIT_FUSED" not in os.environ
    assert not (Path(ROOT) / "benchmarks" / "prototype_neuron.py").exists()


def test_book_output_parser():
    """bench_book parses the lines book/build.py prints."""
    line = "[book] 02_theorem: 31.4 s (62 % of the build)"
    m = bench_book.LINE.match(line)
    assert m and m["name"] == "02_theorem" and float(m["s"]) == 31.4 and float(m["pct"]) == 62
    build = (Path(__file__).resolve().parent.parent / "book" / "build.py").read_text()
    assert '% of the build)' in build and "[book] built" in build


def test_cli_rejects_unknown_name():
    with pytest.raises(SystemExit):
        cli.main(["nope", "--smoke"])


def test_timed_sections_record_the_device_they_ran_on(smoke):
    expected = "cuda" if torch.cuda.is_available() else "cpu"  # --device auto
    for name in ("neuron", "layer", "epoch"):
        assert smoke[0]["benchmarks"][name]["device"] == expected, name


def test_device_names_are_checked():
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(SystemExit, match="auto, cpu, cuda or cuda:N, got 'tpu'"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="torch sees no GPU"):
            pick_device("cuda")


def test_the_stage_epoch_has_its_float_floor_and_a_profile(smoke):
    res, _ = smoke
    stage = res["benchmarks"]["stage"]
    assert positive(stage["epoch_s"]) and positive(stage["floor_epoch_s"])
    assert stage["ratio"] == pytest.approx(stage["epoch_s"] / stage["floor_epoch_s"])
    shares = stage["profile_shares"]
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["convolution"] > 0 and shares["neuron"] > 0  # both run in every batch


def test_an_operator_counts_for_its_part():
    from benchmarks import bench_stage
    assert bench_stage.part_of("_SqueezedNeuronBackward") == "neuron"
    assert bench_stage.part_of("aten::mkldnn_convolution") == "convolution"
    assert bench_stage.part_of("aten::native_batch_norm") == "batch norm"
    assert bench_stage.part_of("aten::dot") == "other"  # alone; inside the neuron it is the neuron's
