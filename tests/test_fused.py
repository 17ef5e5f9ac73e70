"""The faster executions of the neuron's T steps, the C pass (adabit_lite.fused) and torch.compile's,
give the bits of neuron.squeeze as written (T calls of neuron.neuron_step, the definition), or
stand aside; neuron.execution chooses between them."""

import shutil
import warnings

import pytest
import torch

from adabit_lite import fused
from adabit_lite.neuron import SpikingNeuron, execution

HAS_CC = fused._compiler() is not None


def _input(shape=(3, 5, 7, 11), seed=0):
    """Activations around the thresholds, exact halves (the rounding ties), both signs, big
    values that clip, zeros of both signs, inf and NaN."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * 3
    flat = x.view(-1)
    flat[:40] = torch.arange(-20, 20) / 4  # ties at vth = 0.5 below
    flat[40:46] = torch.tensor([0.0, -0.0, 1e30, -1e30, float("inf"), float("nan")])
    return x


def _run(n, x, env, monkeypatch, grad_x=True, threads=None, reduced=True):
    """Output, the tensors kept for backward and dL/dx, then (``reduced``) the parameters'
    gradients and the spike count."""
    monkeypatch.setenv("ADABIT_FUSED", env)
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        n.zero_grad()
        n.spike_count.zero_()
        xr = x.clone().requires_grad_(grad_x)
        y = n(xr)
        saved = [t for t in y.grad_fn.saved_tensors if t is not None] if y.grad_fn else []
        if y.requires_grad:
            y.backward(torch.linspace(-1, 1, y.numel()).view_as(y))
        elementwise = [y.detach(), *saved, xr.grad]
        reductions = [p.grad for p in n.parameters()] + [n.spike_count.clone()]
        return elementwise + reductions if reduced else elementwise
    finally:
        torch.set_num_threads(old)


def _bits(t):
    """The tensor's raw bits (so that -0 and +0 differ, and NaN equals NaN)."""
    return t.reshape(-1).view({torch.float32: torch.int32, torch.float64: torch.int64}[t.dtype])


def _same_bits(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert (u is None) == (v is None)
        if u is not None:
            assert u.dtype == v.dtype and u.shape == v.shape
            assert torch.equal(_bits(u), _bits(v))


@pytest.mark.skipif(not HAS_CC, reason="no C compiler: the eager path is tested elsewhere")
def test_kernel_is_built_where_a_compiler_exists():
    assert fused.library() is not None
    assert fused.covers(torch.zeros(4), True, False, "round", 4)


@pytest.mark.skipif(not HAS_CC, reason="no C compiler")
@pytest.mark.parametrize("T", [1, 2, 3, 4, 8, 9])
@pytest.mark.parametrize("firing,signed", [("round", False), ("round", True), ("floor", False),
                                           ("floor", True)])
@pytest.mark.parametrize("tau", [1.0, 2.0, 1.5])
def test_same_bits_as_the_eager_loop(T, firing, signed, tau, monkeypatch):
    """Output, the per-element sums kept for backward, every gradient and the spike count agree
    bit for bit (inf, NaN, ties and -0 included) for each bit width."""
    for bits in (1, 2, 4):
        n = SpikingNeuron(bits=bits, T=T, tau=tau, firing=firing, signed=signed).train()
        n.track_rate = True
        x = _input(seed=T + bits)
        n(x.abs().nan_to_num(posinf=1.0, neginf=1.0))  # step initialised on finite data
        with torch.no_grad():
            n.step.fill_(0.5)
        eager = _run(n, x, "0", monkeypatch)
        ours = _run(n, x, "1", monkeypatch)
        _same_bits(ours, eager)
        assert float(ours[-1]) > 0  # spikes were counted


@pytest.mark.skipif(not HAS_CC, reason="no C compiler")
def test_same_bits_without_some_gradients_and_in_eval(monkeypatch):
    """Sums not asked for are not computed (x without grad, frozen bits, frozen T), eval mode."""
    x = _input((64, 300), seed=3)
    for kw in ({"learnable_bits": False}, {"learnable_T": False}, {}):
        n = SpikingNeuron(bits=3, T=4, **kw).train()
        n(x.abs().nan_to_num(posinf=1.0, neginf=1.0))
        for grad_x in (False, True):
            _same_bits(_run(n, x, "1", monkeypatch, grad_x), _run(n, x, "0", monkeypatch, grad_x))
    n.eval()
    with torch.no_grad():
        _same_bits(_run(n, x, "1", monkeypatch), _run(n, x, "0", monkeypatch))


@pytest.mark.skipif(not HAS_CC, reason="no C compiler")
def test_thread_count_does_not_change_the_bits(monkeypatch):
    """The blocks are split over threads; each element's arithmetic is the same (the parameters'
    gradients are torch's reductions, whose last digits depend on the thread count)."""
    n = SpikingNeuron(bits=4, T=4).train()
    x = torch.randn(4 * fused.GRAIN + 77)  # enough elements for two threads
    n(x.abs())
    one = _run(n, x, "1", monkeypatch, threads=1, reduced=False)
    _same_bits(one, _run(n, x, "1", monkeypatch, threads=2, reduced=False))
    _same_bits(one, _run(n, x, "0", monkeypatch, threads=1, reduced=False))


def test_the_execution_is_chosen_in_one_place(monkeypatch):
    x = torch.zeros(8)
    monkeypatch.delenv("ADABIT_FUSED", raising=False)
    assert execution(x, True, False, "round", 4) == ("c" if HAS_CC else "eager")
    assert execution(x.double(), True, False, "round", 4) == "eager"
    assert execution(x, False, False, "round", 4) == "eager"
    monkeypatch.setenv("ADABIT_FUSED", "0")
    assert execution(x, True, False, "round", 4) == "eager"
    monkeypatch.setenv("ADABIT_FUSED", "compile")
    assert execution(x, True, False, "round", 4) == "compiled"
    assert execution(x.double(), False, True, "floor", 4) == "compiled"


@pytest.mark.parametrize("options", [{}, {"signed": True}, {"amplitude": True, "tau": 2.0,
                                                             "firing": "floor"},
                                     {"per_step": True, "T_bound": 3}])
def test_torch_compile_gives_the_same_bits(options, monkeypatch):
    """ADABIT_FUSED=compile runs neuron.squeeze compiled by torch.compile: the eager bits, ties,
    zeros and inf included (a NaN stays NaN, but its payload bits may differ, so there is none
    here).  The first case compiles, seconds to tens of seconds on a CPU."""
    n = SpikingNeuron(bits=3, T=3, **options).train()
    n.track_rate = True
    x = _input((4, 6, 9), seed=5).nan_to_num(nan=0.75)
    x = x if options.get("signed") else x.abs()
    n(x.abs().nan_to_num(posinf=1.0))  # step initialised on finite data
    with torch.no_grad():
        n.step.fill_(0.5)
    counters = torch._dynamo.utils.counters
    before = counters["stats"]["unique_graphs"]
    _same_bits(_run(n, x, "compile", monkeypatch), _run(n, x, "0", monkeypatch))
    assert counters["stats"]["unique_graphs"] > before or counters["stats"]["calls_captured"] > 0


def test_other_cases_take_the_eager_path():
    x = torch.zeros(8)
    assert not fused.covers(x.double(), True, False, "round", 4)  # float64
    assert not fused.covers(x, False, False, "round", 4)  # per-step slots
    assert not fused.covers(x, True, True, "floor", 4)  # the old neuron's amplitude
    assert not fused.covers(x, True, False, "binary", 4)
    assert not fused.covers(x, True, False, "round", fused.MAX_T + 1)


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("ADABIT_FUSED", "0")
    assert fused.library() is None
    assert not fused.covers(torch.zeros(8), True, False, "round", 4)


def test_no_compiler_warns_once_and_falls_back(monkeypatch, tmp_path):
    """A machine without a compiler runs the eager loop, after one warning, with right numbers."""
    monkeypatch.setattr(fused, "_lib", None)
    monkeypatch.setattr(fused, "_failed", None)
    monkeypatch.setattr(fused, "_compiler", lambda: None)
    monkeypatch.setenv("ADABIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("ADABIT_FUSED", "1")
    n = SpikingNeuron(bits=2, T=3).train()
    x = torch.rand(50) * 2
    with pytest.warns(UserWarning, match="no C compiler"):
        y = n(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(n(x), y)
    assert fused.library() is None and "no C compiler" in fused._failed
    assert torch.all(y <= 3 * n.step.detach())  # r = mean_t Vth1 S_t <= Vth1 qmax


@pytest.mark.skipif(not HAS_CC, reason="no C compiler")
def test_compiled_once_then_reused(monkeypatch, tmp_path):
    """The library goes to ADABIT_CACHE_DIR under a key of source, flags, compiler and CPU; a
    second build finds it; a compile error names the compiler's complaint."""
    monkeypatch.setenv("ADABIT_CACHE_DIR", str(tmp_path))
    cc = fused._compiler()
    lib = fused._build(cc, ())
    assert lib.parent == tmp_path and lib.suffix == ".so"
    stamp = lib.stat().st_mtime_ns
    assert fused._build(cc, ()) == lib and lib.stat().st_mtime_ns == stamp
    assert list(tmp_path.iterdir()) == [lib]  # no temporary file left behind
    with pytest.raises(RuntimeError):
        fused._build(cc, ("-fno-such-flag-xyz",))
    assert sorted(tmp_path.iterdir()) == [lib]


def test_compiler_lookup_honours_CC(monkeypatch):
    if shutil.which("cc"):
        monkeypatch.setenv("CC", "cc")
        assert fused._compiler() == shutil.which("cc")
