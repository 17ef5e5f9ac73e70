"""The time-preserving layer mode for event data (book chapter 8;
book/method.md#method-temporal-mode).

Temporal squeezing (neuron.py) sends on the time average of a layer's spikes, so after the first
layer a network no longer knows the order of its input frames.  Event data carry their label in
that order (the ``moving-digits`` task: the sense of rotation), so this module keeps the time axis.
Tensors are time-major, ``[T, B, ...]``; T is the number of frames that the binning of the data
gives, fixed (not learned); the bit widths and Vth1 are learned as everywhere else.

The time-preserving neuron (``TemporalNeuron``) is the refined neuron of neuron.py with a
different input x_t at every step: neuron.neuron_step fed x_0, x_1, ...  As coded, for
t = 0 .. T-1, with v_{-1} = 0 and S_{-1} = 0 (zero tensors):

    R_t = v_{t-1} / tau - Vth1_p(t-1) S_{t-1}            the residual carried over (detached;
                                                         neuron.residual)
    v_t = R_t + x_t
    u_t = v_t / Vth1_p(t)
    S_t = clip(round(u_t), qmin, qmax)                   neuron.neuron_step's firing, which is
          quant.int_codes' (up to the sign of a zero): unsigned [0, 2^Bs - 1],
          round(u) = floor(u + 0.5) ('round') or floor(u) ('floor'); signed (the stem)
          [-qmax, qmax], qmax = max(2^(Bs-1) - 1, 1), round(u) = sign(u) floor(|u| + 1/2)
    y_t = Vth1_p(t) S_t                                  the output keeps its time axis (no mean)

p(t) = t with ``per_step=True`` (one Vth1_t, Bs_t per frame), else 0.  With x_t = x at every step
this is exactly neuron.py's recurrence (the same float operations in the same order), so fed a
constant input the time-preserving neuron emits the squeezed neuron's spikes S_t, and
(sum_t y_t) / T, summed in order t = 0, 1, ..., is its output r bit for bit.  After the layer's
op the mean over t of the output equals the squeezed layer's output up to float round-off (the
op is linear), and so do the gradients when the loss sees that mean (tests/test_temporal.py).

Backward.  R_t is detached (no BPTT through the reset, as in neuron.py and the reference code), so
y_t depends on x_t, Vth1 and Bs through one quantizer call, and the gradients are quant.py's LSQ
gradients of y_t = Vth1 clip(round(v_t / Vth1)) evaluated at v_t (G_t = dL/dy_t):

    dL/dx_t    = G_t m_t                  m_t = [round(u_t) inside the range]
                                          c_t = +1 / -1 / 0 clipped above / below / inside
    dL/dVth1_p = g sum_{t: p(t) = p} sum G_t (S_t - u_t m_t)
    dL/dBs_p   = g c_B Vth1_p sum_{t: p(t) = p} sum G_t c_t
    g = 1 / sqrt(N qmax), N = elements of one step's tensor (book/definitions.md#def-per-step),
    c_B = quant.bit_grad_factor

The forward pass runs neuron.neuron_step once without autograd to get the residuals R, then
quantizes v = x + R with quant's LSQ function in one call over all T steps (one call per step with
``per_step=True``).  v = x + R repeats the step's own addition, so the spikes are the step's.

Layers (``TQConv2d``, ``TQLinear``) are ``layers.QuantLayer``s, so quant_layers, layer_reports,
bit_stats, the meter and the renewal policy treat them like the squeezed layers.  A layer maps
``[T, B, ...] -> [T, B, ...]``: the neuron, then the weight-quantized conv/linear on the folded
tensor ``[T*B, ...]`` (one call for all steps).  Its ``in_shape``/``out_shape`` are per sample and
per time step, its MACs (output elements x weights per output) per sample and per step, and its
report has T = the number of frames.

Cost, squeezed vs time-preserving.  The meter charges every layer (meter.layer_costs)

    S-ACE = MACs * Bw * sum_{t<T} Bs_t   (= MACs * Bw * Bs * T with shared Bs)

with MACs per sample and per step.  For a time-preserving layer that is what runs: T convolutions,
one per frame, each on Bs-bit spikes.  A squeezed layer is charged the same (its T spike maps are
what spiking hardware would process), although this software runs its convolution once, on the
time average, since conv(mean_t Vth1 S_t) = mean_t conv(Vth1 S_t); and its input is the same x at
every step, whereas a time-preserving layer gets a different x_t per step.  The difference is
therefore in what the layers compute (order kept or not) and in the software's run time (T
convolutions instead of one), not in the formula.  In both kinds ``in_features`` (the weight of a
layer's Bs and T in the bit statistics) counts one step's input per sample.

``shape_only(model)`` (layers.py) works: inside it a time-preserving layer skips its neuron and its op,
records its per-step shapes and returns zeros of the output shape.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from .bits import LearnableInt
from .layers import QConv2d, QuantConfig, QuantLayer
from .neuron import SpikingNeuron, State, neuron_step, residual
from .quant import _LSQ, RenewalPolicy, WeightQuantizer, bit_grad_factor, grad_scale, qrange


# --------------------------------------------------------------------------- time axis helpers
def fold(x: torch.Tensor) -> torch.Tensor:
    """[T, B, ...] -> [T*B, ...] (a view when x is contiguous)."""
    return x.reshape((x.shape[0] * x.shape[1],) + tuple(x.shape[2:]))


def unfold(y: torch.Tensor, T: int) -> torch.Tensor:
    """[T*B, ...] -> [T, B, ...]."""
    return y.reshape((T, y.shape[0] // T) + tuple(y.shape[1:]))


class PerStep(nn.Module):
    """Apply a stateless module (BN, ReLU, pooling, flatten) to every step of [T, B, ...] at once,
    on the folded tensor [T*B, ...].  BatchNorm's statistics are then shared by all steps."""

    def __init__(self, *modules: nn.Module):
        super().__init__()
        self.body = modules[0] if len(modules) == 1 else nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return unfold(self.body(fold(x)), x.shape[0])


# --------------------------------------------------------------------------- the neuron
def _zero_state(x: torch.Tensor) -> State:
    """v_{-1} = 0, S_{-1} = 0 as tensors, so that v_0 = R_0 + x_0 with R_0 = 0."""
    zero = torch.zeros_like(x[0])
    return State(zero, zero)


@torch.no_grad()
def residuals(x: torch.Tensor, vth: torch.Tensor, ranges: list[tuple[int, int]], tau: float = 1.0,
              firing: str = "round") -> torch.Tensor:
    """R_t = v_{t-1}/tau - Vth1 S_{t-1} for t = 0..T-1 (R_0 = 0), for x of shape [T, ...]: the
    states of neuron.neuron_step run on x_0, x_1, ...

    ``vth`` has one entry per parameter slot (1 or T), ``ranges`` one (qmin, qmax) per slot.
    """
    shared = vth.shape[0] == 1
    R = torch.empty_like(x)
    state = _zero_state(x)
    for t in range(x.shape[0]):
        p = 0 if shared else t
        R[t] = residual(state, tau)  # neuron_step adds x_t to it: v_t = R_t + x_t
        _, state = neuron_step(x[t], state, vth[p], *ranges[p], tau, firing)
    return R


@torch.no_grad()
def time_neuron_trace(x: torch.Tensor, vth, bits, tau: float = 1.0, firing: str = "round",
                      signed: bool = False):
    """Membrane potentials and spike counts (v, S), each [T, ...], of neuron.neuron_step run on
    x_0, x_1, ... for an input x of shape [T, ...] (numbers, or per-step sequences of length T,
    for vth/bits)."""
    T = x.shape[0]
    per = isinstance(vth, (list, tuple)) or isinstance(bits, (list, tuple))
    vths = list(vth) if isinstance(vth, (list, tuple)) else [vth] * (T if per else 1)
    bitss = list(bits) if isinstance(bits, (list, tuple)) else [bits] * len(vths)
    if len(vths) != len(bitss) or (per and len(vths) < T):
        raise ValueError(f"per-step vth and bits need T = {T} entries each")
    v_thr = torch.as_tensor([float(v) for v in vths[:T]], dtype=x.dtype)
    ranges = [qrange(int(b), signed) for b in bitss[:T]]
    state, vs, ss = _zero_state(x), [], []
    for t in range(T):
        p = t if per else 0
        spikes, state = neuron_step(x[t], state, v_thr[p], *ranges[p], tau, firing)
        vs.append(state.v)
        ss.append(spikes.S)
    return torch.stack(vs), torch.stack(ss)


class TemporalNeuron(SpikingNeuron):
    """Time-preserving multi-bit spiking neuron: [T, B, ...] -> [T, B, ...] (module docstring).

    A SpikingNeuron (so a StepQuantizer: step initialisation, renewal, flips, renewal counts, the
    renewal policy, firing-rate counters and the meter work unchanged) whose ``T`` is a
    non-learnable LearnableInt fixed at ``frames`` (bounds [frames, frames]: it cannot be set to
    anything else).  Parameters: Vth1 (``step``) and Bs (``bits``), one per slot.  The old neuron's
    separate amplitude is not offered here.
    """

    def __init__(self, bits: int = 4, frames: int = 8, bits_bound: int | None = None,
                 learnable_bits: bool = True, tau: float = 1.0, firing: str = "round",
                 signed: bool = False, per_step: bool = False,
                 policy: RenewalPolicy = RenewalPolicy(), hysteresis: float = 0.0):
        if isinstance(frames, bool) or int(frames) != frames or frames < 1:
            raise ValueError(f"frames must be an integer >= 1, got {frames!r}")
        frames = int(frames)
        super().__init__(bits, frames, bits_bound, frames, learnable_bits, False, tau, firing,
                         signed, per_step, amplitude=False, policy=policy, hysteresis=hysteresis)
        self.T = LearnableInt(frames, frames, frames, learnable=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = int(self.T)
        if x.dim() < 2 or x.shape[0] != T:
            raise ValueError(f"the time-preserving neuron expects [T={T}, B, ...], got a tensor "
                             f"of shape {tuple(x.shape)}")
        slots = self.active_slots(T)
        if self.training:
            self.observe(x, slots)
        bits = [int(b) for b in self.bits[:slots]]
        ranges = [qrange(b, self.signed) for b in bits]
        step = self.step[:slots]
        v = x + residuals(x, step.detach(), ranges, self.tau, self.firing)
        n = x[0].numel()  # N: one step's elements
        if slots == 1:
            y = self._quantize(v, step[0:1], self.bits[0](), bits[0], ranges[0], n)
        else:
            y = torch.stack([self._quantize(v[t], step[t:t + 1], self.bits[t](), bits[t],
                                            ranges[t], n) for t in range(T)])
        if self.track_rate:
            self.spike_count += torch.count_nonzero(y.detach()).to(torch.float64)
            self.spike_slots += x.numel()
        return y

    def _quantize(self, v, step, bits_ste, b, rng, n):
        qmin, qmax = rng
        return _LSQ.apply(v, step, bits_ste, qmin, qmax, self.firing, grad_scale(n, qmax),
                          bit_grad_factor(b, qmax))

    def extra_repr(self) -> str:
        return (f"T={int(self.T)} (frames, fixed), Bs={self.bit_values(self.active_slots())}, "
                f"tau={self.tau}, firing={self.firing}, signed={self.signed}, "
                f"per_step={self.per_step}")


# --------------------------------------------------------------------------- the layers
class TimePreservingLayer(QuantLayer):
    """Mixin: a QuantLayer whose neuron is a TemporalNeuron and whose op runs once per step.

    ``cfg``'s bits, bounds, learn_w/learn_s, tau, firing, per_step, signed_spikes and
    full_precision apply; its T, T_bound and learn_T do not (T = ``frames``, fixed).
    """

    def _setup_time(self, cfg: QuantConfig, stem: bool, frames: int) -> None:
        if cfg.amplitude:
            raise ValueError("time-preserving layers have no amplitude neuron (amplitude=True)")
        self.cfg, self.stem, self.frames = cfg, stem, int(frames)
        self.neuron = TemporalNeuron(cfg.s_bits, frames, cfg.s_bound, cfg.learn_s, cfg.tau,
                                     cfg.firing, cfg.signed_spikes, cfg.per_step,
                                     replace(cfg.renewal, range_ratio=False), cfg.hysteresis)
        self.wq = WeightQuantizer.from_config(cfg)
        self.in_shape: tuple = ()
        self.out_shape: tuple = ()

    def _op(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _out_shape(self, x: torch.Tensor) -> tuple:
        raise NotImplementedError

    def _time_forward(self, x: torch.Tensor) -> torch.Tensor:
        """[T, B, ...] -> [T, B, ...]: neuron per step, then the op on the folded [T*B, ...]."""
        T = x.shape[0]
        if self.shape_only:
            y = x.new_zeros((x.shape[0], x.shape[1]) + self._out_shape(x))
        elif self.cfg.full_precision:
            y = unfold(self._op(fold(x), self.weight), T)
        else:
            y = unfold(self._op(fold(self.neuron(x)), self.wq(self.weight)), T)
        self._remember(fold(x[:1]), fold(y[:1]))  # per sample and per time step
        return y


class TQConv2d(nn.Conv2d, TimePreservingLayer):
    """Conv2d on [T, B, C, H, W]: time-preserving neuron, then the quantized conv at every step."""

    kind = "conv"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1,
                 bias=False, cfg: QuantConfig = QuantConfig(), stem: bool = False,
                 frames: int = 8):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         groups=groups, bias=bias)
        self._setup_time(cfg, stem, frames)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._time_forward(x)

    def _op(self, x, w):
        return self._conv_forward(x, w, self.bias)

    def _out_shape(self, x):
        return (self.out_channels,) + QConv2d._spatial_out(self, x.shape[-2:])


class TQLinear(nn.Linear, TimePreservingLayer):
    """Linear on [T, B, F]: time-preserving neuron, then the quantized linear at every step."""

    kind = "linear"

    def __init__(self, in_features, out_features, bias=True, cfg: QuantConfig = QuantConfig(),
                 stem: bool = False, frames: int = 8):
        super().__init__(in_features, out_features, bias=bias)
        self._setup_time(cfg, stem, frames)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._time_forward(x)

    def _op(self, x, w):
        return F.linear(x, w, self.bias)

    def _out_shape(self, x):
        return tuple(x.shape[2:-1]) + (self.out_features,)
