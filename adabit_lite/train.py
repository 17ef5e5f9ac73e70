"""One training loop for every chapter and for the command line (book/method.md#method-training,
book/definitions.md#def-optimiser).

    from adabit_lite.train import TrainConfig, train
    result = train(TrainConfig(dataset="digits", epochs=3), out_dir="runs/demo")

    python -m adabit_lite.train --out runs/demo --dataset digits --epochs 3

Per batch (every rank of a data-parallel run does the same on its shard of the batch):

    loss = cross_entropy(model(x), y) + lam_w |mean Bw - Bw_tar| + lam_s |mean Bs - Bs_tar|
                                      + lam_T |mean T - T_tar|                   (loss.bit_loss)
    loss.backward();  average the gradients over ranks;  optimiser step;  layers.clamp_(model)

Quantizer steps are initialised on the first training batch, and a step is renewed the moment a
layer's rounded bit width changes (quant.StepQuantizer.observe).  After each epoch: the test
accuracy, the bit statistics, the cost (meter.learned_costs), the renewal switch-off rule
(renew.Renewal.end_epoch), one line of history, and a checkpoint.

Optimiser (the reference recipe): SGD with momentum 0.9 and four parameter groups with their own
learning rates (weights and biases ``lr``, quantizer steps ``lr_step``, bit latents ``lr_bits``,
T latents ``lr_T``; weight decay on the weights only), cosine-annealed per epoch to 0.  Adam is an
option (its default learning rates are those of the prototype in book/definitions.md#def-prototype).

Files in ``out_dir`` (written by rank 0 only, each atomically: temporary file + rename):

- ``result.json``: parameters, key, code version, final metrics and the per-epoch history.  It holds
  no times and no paths, so the same parameters on the same machine give the same bytes.
- ``checkpoint.pt``: everything needed to go on (model, optimiser, scheduler, renewal state, epoch,
  history, RNG state), written at the end of every epoch.  Rerunning the same command resumes from
  it; the interrupted epoch is replayed from its start, and since the data order is a pure function
  of (seed, epoch), the result is the same as that of an uninterrupted run.
- ``timing.json``: seconds per epoch (kept out of result.json).

Remedies against flip-flopping bit widths (options, all off by default = the paper's behaviour):
``hysteresis`` (bits.LearnableInt: B changes only when B_hat moves that far past the half-way
point), ``bit_tolerance`` (the bit loss is zero within that band around the target),
``soft_bit_loss`` (the bit loss on the un-rounded means of clip(B_hat)), ``freeze_bits``
(a kind's bits stop learning once the switch-off rule fires), ``renewal_limit`` (renewals per
quantizer and epoch), ``bn_recalibrate`` (BatchNorm statistics recomputed after every epoch).
Every epoch records per-layer flips and renewals; the result lists the epochs whose test accuracy
fell more than 5 points (``accuracy_drops``).

Baselines and reuse: ``cfg.uquant()`` fixes every learned layer at the target bits from the start
(no bit learning, no renewal); ``cfg.fixed("4/4/1")`` at other bits; ``cfg.control(result)`` fixes
the per-layer bits a run learned (the allocation control); ``cfg.full_precision_baseline()``
bypasses quantizers and neurons.  A result is keyed by the parameters that affect its numbers and by
``ALGORITHM_VERSION`` (``results.result_key``); ``load_or_train(cfg, results_dir)`` reuses a stored
result only when key, parameters and version all match, and says so.

Data-parallel training: start the CLI with
``torchrun --standalone --nproc_per_node N -m adabit_lite.train ...``
(gloo on CPU, nccl on GPU).  ``batch_size`` is the global batch; rank r takes samples r, r + N, ...
of every batch; gradients are summed over ranks and divided by N; BatchNorm running statistics are
averaged over ranks at the end of each epoch; the quantizers' initialisation and renewal statistics
are all-reduced inside quant.py (``sync_stats=False`` switches that off, for the control
experiment that shows why it is needed).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
import torch.utils.deterministic
from torch import nn
from tqdm import tqdm

from . import ALGORITHM_VERSION, __version__
from . import data as data_mod
from . import keys
from .layers import QuantConfig, clamp_, layer_reports, quant_layers
from .loss import BitTarget, bit_loss, bit_stats
from .meter import learned_costs
from .models import MODEL_NAMES, MODELS, build_model
from .neuron import SpikingNeuron
from .projection import freeze_all, project_model
from .quant import FIRING_MODES, RenewalPolicy, StepQuantizer
from .renew import VARIANTS, Renewal, default_min_epoch, renewal_counts
from .results import (DamagedFile, atomic_write, atomic_write_json, find_result, machine_record,
                      read_json_file, result_key)
from .wst import format_wst, parse_wst

__all__ = ["TrainConfig", "OptionError", "TrainingDiverged", "RunMismatch", "DamagedFile", "train",
           "failure_line", "load_or_train", "load_trained", "result_key", "find_result", "main"]

STATIC_DATASETS = ("digits", "mnist5k", "mnist5k-noisy", "fashion-mnist", "cifar10", "cifar100")
WEIGHT_RENEWALS = ("grid", "range-ratio")
STEP_CLAMPS = ("floor", "reflect")
#: event data (time axis kept) and the architectures made for them (time-preserving layers)
EVENT_DATASETS = ("moving-digits",)
EVENT_ARCHS = ("event-cnn",)
DTYPES = {"float32": torch.float32, "float64": torch.float64}
OPTIMIZERS = ("sgd", "adam")
AUGMENTS = ("default", "none", "crop-flip")
#: default learning rates (weights, steps, bits, T) and weight decay per optimiser
DEFAULT_LRS = {"sgd": (0.05, 0.05, 0.1, 0.1, 5e-4), "adam": (2e-3, 2e-3, 0.02, 0.02, 0.0)}
EVAL_BATCH = 500
RESULT_FILE, CHECKPOINT_FILE, TIMING_FILE = "result.json", "checkpoint.pt", "timing.json"


# ============================================================================ errors
class OptionError(ValueError):
    """A bad option value.  ``str()`` is one line naming the option and what it accepts."""

    def __init__(self, option: str, accepted: str, value=None, detail: str = ""):
        self.option, self.accepted, self.value = option, accepted, value
        self.detail = detail
        super().__init__(self.line())

    def line(self, cli: bool = False) -> str:
        name = "--" + self.option.replace("_", "-") if cli else repr(self.option)
        if self.detail:
            return f"option {name}: {self.detail}"
        return f"option {name} must be {self.accepted} (got {self.value!r})"


class TrainingDiverged(RuntimeError):
    """The loss (or a parameter) became NaN or infinite; the last good checkpoint is kept.  (A run
    that blows up while staying finite, ``blew_up``, is an outcome: stored as a failed result.)"""


class RunMismatch(RuntimeError):
    """``out_dir`` holds a result or checkpoint of different parameters or code version."""


# ============================================================================ the configuration
def _opt(default, help: str, *check):
    """A config field with its help text and its check: the name of a ``_Checker`` method and its
    arguments (e.g. ``"int", 1``), run by ``validated()``; none for the fields checked there by
    hand."""
    return field(default=default, metadata={"help": help, "check": check})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run.  ``validated()`` checks it and fills the defaults
    that depend on other fields (learning rates, weight decay, min_epoch); the result file records
    the validated config."""

    # model
    arch: str = _opt("small-cnn", f"network: {', '.join(MODEL_NAMES)}", "choice", MODEL_NAMES)
    width: int | None = _opt(None, "base channel width of the network (default: the model's)", "int_or_none", 1)
    # data
    dataset: str = _opt("mnist5k-noisy", f"data set: {', '.join(STATIC_DATASETS)} "
                                          "(the default is chosen in the data chapter), or "
                                          f"event data: {', '.join(EVENT_DATASETS)} "
                                          f"(with arch {', '.join(EVENT_ARCHS)})", "choice", STATIC_DATASETS + EVENT_DATASETS)
    data_options: str = _opt("", "data set options KEY=VALUE[,KEY=VALUE...], e.g. size=8 "
                                 "(see data.make_dataset)")
    split_seed: int = _opt(0, "seed of the stratified train/test split", "int", 0)
    train_limit: int | None = _opt(None, "train on a stratified subset of this many images", "int_or_none", 10)
    augment: str = _opt("default", "training augmentation: default (the data set's), none, "
                                   "crop-flip", "choice", AUGMENTS)
    time_average_input: bool = _opt(False, "event data only: feed the network the input's mean "
                                           "over time at every step (the control: it cannot "
                                           "see the order of the frames)", "bool")
    # bits
    init: str = _opt("4/4/2", "initial W/S/T of every learned layer (integers); with event "
                              "data T must equal the data's frames (T is fixed by the binning: "
                              "learn_T and lam_T have no effect), e.g. 4/4/8")
    target: str = _opt("1/1/1", "target mean W/S/T of the bit loss, e.g. 1.5/1.5/1 (event data: "
                                "T = the frames, as for init)")
    learn_w: bool = _opt(True, "learn the weight bit widths Bw", "bool")
    learn_s: bool = _opt(True, "learn the spike bit widths Bs", "bool")
    learn_T: bool = _opt(True, "learn the temporal lengths T", "bool")
    layer_bits: str = _opt("", "per-layer initial bits NAME=W/S/T[,NAME=W/S/T...] "
                               "(overrides init for those layers)")
    lam_w: float = _opt(0.04, "penalty coefficient of |mean Bw - target|", "float", 0.0)
    lam_s: float = _opt(0.04, "penalty coefficient of |mean Bs - target|", "float", 0.0)
    lam_T: float = _opt(0.01, "penalty coefficient of |mean T - target|", "float", 0.0)
    renewal: str = _opt("activation", f"step renewal: {', '.join(VARIANTS)}", "choice", VARIANTS)
    rho: float = _opt(0.24, "renewal switches off once |mean - target| < rho |init - target|", "float", 0.0, 1.0)
    min_epoch: int | None = _opt(None, "renewal never switches off before this epoch "
                                       "(default ceil(0.07 epochs))", "int_or_none", 0)
    running_extrema: bool = _opt(False, "reference-code renewal: the clipping range never shrinks", "bool")
    weight_renewal: str = _opt("grid", "how a weight step is renewed: grid (the grid search, "
                                       "the book's definitions) or range-ratio (the reference code: "
                                       "s * qmax(new) / qmax(old))", "choice", WEIGHT_RENEWALS)
    # remedies against flip-flopping bit widths (all off: the paper's behaviour)
    hysteresis: float = _opt(0.0, "a bit width changes only when B_hat moves this far past the "
                                  "half-way point (0: plain rounding)", "float", 0.0, 0.5, True)
    soft_bit_loss: bool = _opt(False, "bit loss on the un-rounded means of clip(B_hat) "
                                      "(the paper: rounded)", "bool")
    bit_tolerance: float = _opt(0.0, "the bit loss is zero once a mean is within this of its "
                                     "target (0: the paper's L1)", "float", 0.0)
    freeze_bits: bool = _opt(False, "freeze a kind's bit widths once the switch-off rule fires", "bool")
    renewal_limit: int = _opt(0, "at most this many renewals per quantizer and epoch (0: no limit)", "int", 0)
    step_clamp: str = _opt("floor", "a step (S_q, Vth1) that an optimiser step made <= 0: floor "
                                    "(held at the smallest positive float, where its quantizer "
                                    "outputs 0) or reflect (s -> |s|; a weight quantizer computes "
                                    "the same with s and -s)", "choice", STEP_CLAMPS)
    bn_recalibrate: bool = _opt(False, "after each epoch, recompute BatchNorm statistics on the "
                                       "training data with the epoch's final bits and steps", "bool")
    project_at: int | None = _opt(None, "after this many epochs, replace the learned bits by the "
                                        "nearest whose weighted means land on the target, freeze "
                                        "them and renew the steps (projection.py; none: never)", "int_or_none", 1)
    # neuron
    tau: float = _opt(1.0, "membrane decay of the neuron (old neuron: 2)", "float", 1.0)
    firing: str = _opt("round", f"spike count rule: {', '.join(FIRING_MODES)}", "choice", FIRING_MODES)
    per_step: bool = _opt(False, "every time step has its own Vth1 and Bs", "bool")
    amplitude: bool = _opt(False, "a separate learnable spike amplitude alpha (the old neuron: "
                                  "with tau 2 and floor firing)", "bool")
    full_precision: bool = _opt(False, "bypass every quantizer and neuron (a ReLU network; "
                                       "use cfg.full_precision_baseline())", "bool")
    # optimiser
    optimizer: str = _opt("sgd", f"optimiser: {', '.join(OPTIMIZERS)}", "choice", OPTIMIZERS)
    lr: float | None = _opt(None, "learning rate of weights and biases (sgd 0.05, adam 2e-3)", "float_or_none", 0.0)
    lr_step: float | None = _opt(None, "learning rate of the steps S_q, Vth1 (sgd 0.05, adam 2e-3)", "float_or_none", 0.0)
    lr_bits: float | None = _opt(None, "learning rate of the bit latents (sgd 0.1, adam 0.02)", "float_or_none", 0.0)
    lr_T: float | None = _opt(None, "learning rate of the T latents (sgd 0.1, adam 0.02)", "float_or_none", 0.0)
    momentum: float = _opt(0.9, "SGD momentum", "float", 0.0, 1.0, True)
    weight_decay: float | None = _opt(None, "weight decay of weights and biases "
                                            "(sgd 5e-4, adam 0)", "float_or_none", 0.0)
    epochs: int = _opt(10, "epochs (the cosine schedule reaches 0 at the end)", "int", 1)
    batch_size: int = _opt(64, "global batch size (split over ranks)", "int", 1)
    seed: int = _opt(0, "seed of the initialisation and the data order", "int", 0)
    # execution
    device: str = _opt("auto", "auto (cuda if available), cpu, cuda, cuda:N")
    dtype: str = _opt("float32", "float32, or float64 (slower; its last-bit differences between "
                                 "machines stay small for longer: the fingerprint check)", "choice", tuple(DTYPES))
    sync_stats: bool = _opt(True, "all-reduce the quantizers' init/renewal statistics over ranks", "bool")

    # ------------------------------------------------------------------ variants
    def fixed(self, wst: str | None = None) -> "TrainConfig":
        """Every learned layer fixed at ``wst`` (default: the target) from the start: no bit or T
        learning and so no renewal.  ``cfg.fixed()`` is the U-quant baseline."""
        option = "target" if wst is None else "init"
        wst = self.target if wst is None else wst
        wst = format_wst(_parse_wst(option, wst, integers=True))  # fixed bits are integers
        return dataclasses.replace(self, init=wst, target=wst, learn_w=False, learn_s=False,
                                   learn_T=False, renewal="none")

    def uquant(self) -> "TrainConfig":
        """U-quant (book/definitions.md#def-uquant): every learned layer at the target bits from the start."""
        return self.fixed()

    def control(self, result: dict) -> "TrainConfig":
        """The allocation control (book/definitions.md#def-control): the per-layer bits that the run ``result`` learned,
        fixed from the start (same network, data, optimiser and seed as this config).  The stem
        keeps the init's T (fixed), as the bounds of the init allow every learned bit width."""
        pairs = []
        for layer in result["metrics"]["layers"]:
            bs = layer["Bs"]
            if len(set(bs)) != 1:
                raise ValueError(f"layer {layer['name']} learned per-step Bs {bs}: the control "
                                 "fixes one Bs per layer")
            pairs.append(f"{layer['name']}={layer['Bw']}/{bs[0]}/{layer['T']}")
        fixed = self.fixed(self.init)  # the init's bounds and stem; every learned layer overridden
        return dataclasses.replace(fixed, layer_bits=",".join(pairs), hysteresis=0.0,
                                   bit_tolerance=0.0, soft_bit_loss=False, freeze_bits=False, renewal_limit=0)

    def full_precision_baseline(self) -> "TrainConfig":
        """The full-precision network (book/definitions.md#def-full-precision): quantizers and
        neurons bypassed (so no step is clamped either: ``step_clamp`` back at its default)."""
        return dataclasses.replace(self.fixed(), full_precision=True, lam_w=0.0, lam_s=0.0,
                                   lam_T=0.0, step_clamp="floor")

    # ------------------------------------------------------------------ validation
    def validated(self) -> "TrainConfig":
        """Check every field (raise ``OptionError``, one line) and fill the derived defaults."""
        v = _Checker(self)
        for f in dataclasses.fields(self):
            if f.metadata["check"]:
                getattr(v, f.metadata["check"][0])(f.name, *f.metadata["check"][1:])
        data_options = _canonical_pairs("data_options", self.data_options, _parse_scalar)
        if "seed" in dict(data_options):
            raise OptionError("data_options", "", detail="use split_seed, not seed=, for the split")
        init = _parse_wst("init", self.init, integers=True)
        target = _parse_wst("target", self.target, integers=False)
        for i, (name, extra) in enumerate((("W", 2), ("S", 2), ("T", 1))):
            if target[i] > init[i] + extra:
                raise OptionError("target", f"<= init + {extra} for {name} (the bound)",
                                  self.target)
        _check_event_options(self)
        layer_bits = _canonical_pairs("layer_bits", self.layer_bits,
                                      lambda s: format_wst(_parse_wst("layer_bits", s, True)))
        if self.project_at is not None and self.project_at >= self.epochs:
            raise OptionError("project_at", f"< epochs ({self.epochs}) or none", self.project_at)
        if self.project_at is not None and self.per_step:
            raise OptionError("project_at", "", self.project_at, detail="projection needs one Bs "
                              "per layer: use per_step false")
        _check_device_name(self.device)  # whether CUDA is there is checked when training
        lr, lr_step, lr_bits, lr_T, wd = DEFAULT_LRS[self.optimizer]

        def pick(value, default):
            return float(default if value is None else value)

        return dataclasses.replace(
            self, data_options=format_pairs(data_options), init=format_wst(init),
            target=format_wst(target), layer_bits=format_pairs(layer_bits),
            lr=pick(self.lr, lr), lr_step=pick(self.lr_step, lr_step),
            lr_bits=pick(self.lr_bits, lr_bits), lr_T=pick(self.lr_T, lr_T),
            weight_decay=pick(self.weight_decay, wd),
            min_epoch=default_min_epoch(self.epochs) if self.min_epoch is None else self.min_epoch,
            **{k: float(getattr(self, k)) for k in ("lam_w", "lam_s", "lam_T", "rho", "tau",
                                                    "momentum", "hysteresis", "bit_tolerance")})

    def parameters(self, world_size: int | None = None) -> dict:
        """What result.json records: the validated fields as the key schema says
        (``keys.recorded_parameters``), with ``world_size`` (default: that of the running process
        group) when > 1."""
        cfg = self.validated()
        world = _dist_info()[1] if world_size is None else int(world_size)
        return keys.recorded_parameters(dataclasses.asdict(cfg), cfg.dataset in EVENT_DATASETS,
                                        world)

    def key_parameters(self, world_size: int | None = None) -> dict:
        """The parameters that decide the numbers: the result key (``keys.key_parameters``)."""
        return keys.key_parameters(self.parameters(world_size))

    # ------------------------------------------------------------------ parsed views
    def wst(self, which: str) -> tuple[float, float, float]:
        return _parse_wst(which, getattr(self, which), integers=(which == "init"))

    def dataset_options(self) -> dict:
        return dict(_canonical_pairs("data_options", self.data_options, _parse_scalar))

    def layer_bits_map(self) -> dict[str, tuple[int, int, int]]:
        pairs = _canonical_pairs("layer_bits", self.layer_bits, lambda s: s)
        return {k: tuple(int(x) for x in _parse_wst("layer_bits", s, True)) for k, s in pairs}


class _Checker:
    """Field checks that raise one-line OptionErrors."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg

    def _get(self, name):
        return getattr(self.cfg, name)

    def choice(self, name, choices):
        if self._get(name) not in choices:
            raise OptionError(name, f"one of {', '.join(choices)}", self._get(name))

    def bool(self, name):
        if not isinstance(self._get(name), (bool, np.bool_)):
            raise OptionError(name, "true or false", self._get(name))

    def int(self, name, low):
        value = self._get(name)
        if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool)
                and value >= low):
            raise OptionError(name, f"an integer >= {low}", value)

    def int_or_none(self, name, low):
        if self._get(name) is not None:
            try:
                self.int(name, low)
            except OptionError:
                raise OptionError(name, f"an integer >= {low} or none", self._get(name)) from None

    def float(self, name, low, high=math.inf, open_high=False):
        value = self._get(name)
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and value >= low and (
            value < high if open_high else value <= high)
        if not ok:
            rng = (f"a number >= {low:g}" if high == math.inf else
                   f"a number in [{low:g}, {high:g}{')' if open_high else ']'}")
            raise OptionError(name, rng, value)

    def float_or_none(self, name, low):
        if self._get(name) is not None:
            try:
                self.float(name, low)
            except OptionError:
                raise OptionError(name, f"a number >= {low:g} or none", self._get(name)) from None


def _check_event_options(cfg: TrainConfig) -> None:
    """Event data go with an event architecture and back; event-only options need event data.
    (That the T of init and target equals the data's frames is checked in ``build``, where the
    frames are known.)"""
    event_data, event_arch = cfg.dataset in EVENT_DATASETS, cfg.arch in EVENT_ARCHS
    if event_arch and not event_data:
        raise OptionError("arch", "", cfg.arch, detail=f"{cfg.arch} takes event data (dataset "
                          f"{', '.join(EVENT_DATASETS)}), not {cfg.dataset!r}")
    if event_data and not event_arch:
        raise OptionError("dataset", "", cfg.dataset, detail=f"{cfg.dataset} is event data: use "
                          f"arch {', '.join(EVENT_ARCHS)} (time-preserving layers), not "
                          f"{cfg.arch!r}")
    if cfg.time_average_input and not event_data:
        raise OptionError("time_average_input", "", cfg.time_average_input, detail="only for "
                          f"event data (dataset {', '.join(EVENT_DATASETS)})")
    if event_arch and cfg.amplitude:
        raise OptionError("amplitude", "", cfg.amplitude, detail=f"{cfg.arch}'s time-preserving "
                          "layers have no amplitude neuron; use amplitude false")


def _check_frames(cfg: TrainConfig, frames: int) -> None:
    """The rule for T with event data: the T of init and target equals the data's frames."""
    for option in ("init", "target"):
        if cfg.wst(option)[2] != frames:
            raise OptionError(option, "", getattr(cfg, option), detail=f"T must equal the data's "
                              f"{frames} frames (T is fixed by the binning for time-preserving "
                              f"layers), got {getattr(cfg, option)!r}")


def _parse_wst(option: str, value, integers: bool) -> tuple:
    """``wst.parse_wst``, its error as the OptionError of ``option``."""
    try:
        return parse_wst(value, integers)
    except ValueError:
        accepted = ("W/S/T, three integers >= 1, e.g. 4/4/2" if integers else
                    "W/S/T, three numbers >= 1, e.g. 1.5/1.5/1")
        raise OptionError(option, accepted, value) from None


def _parse_scalar(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _canonical_pairs(option: str, text, convert) -> list[tuple[str, object]]:
    """'b=2,a=1' -> [('a', convert('1')), ('b', convert('2'))] (sorted, duplicates refused)."""
    if not isinstance(text, str):
        raise OptionError(option, "a string KEY=VALUE[,KEY=VALUE...]", text)
    pairs = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip() or key.strip() in pairs:
            raise OptionError(option, "KEY=VALUE[,KEY=VALUE...] with distinct keys", text)
        pairs[key.strip()] = convert(value.strip())
    return sorted(pairs.items())


def format_pairs(pairs) -> str:
    """(key, value) pairs as an option text "key=value,..." (booleans as true/false), in order."""
    def fmt(v):
        return str(v).lower() if isinstance(v, bool) else str(v)
    return ",".join(f"{k}={fmt(v)}" for k, v in pairs)


def _check_device_name(name) -> None:
    if not isinstance(name, str) or not (name in ("auto", "cpu", "cuda") or (
            name.startswith("cuda:") and name[5:].isdigit())):
        raise OptionError("device", "auto, cpu, cuda or cuda:N", name)


def _resolve_device(name: str) -> torch.device:
    """The torch device of a (checked) device name; OptionError when CUDA is asked for but absent."""
    _check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise OptionError("device", "", name, detail=f"{name!r} asked for, but torch sees no GPU; "
                                                     "use auto or cpu")
    return torch.device(name)


# ============================================================================ building blocks
def _seed_for(*parts: int) -> int:
    """A 63-bit seed that is a pure function of the integers ``parts``."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _model_spec(cfg: TrainConfig, bundle) -> dict:
    spec = {"num_classes": bundle.num_classes, "in_channels": bundle.in_channels,
            "image_size": list(bundle.image_size)}
    if bundle.is_temporal:  # event data: the number of frames T
        spec["frames"] = bundle.time_steps
    return spec


def build(cfg: TrainConfig, spec: dict) -> nn.Module:
    """The model of a validated config (``spec``: num_classes, in_channels; frames for event
    data)."""
    w, s, t = cfg.wst("init")
    policy = RenewalPolicy(running_extrema=cfg.running_extrema,
                           range_ratio=cfg.weight_renewal == "range-ratio",
                           renewal_limit=cfg.renewal_limit, sync_stats=cfg.sync_stats)
    qcfg = QuantConfig(w_bits=w, s_bits=s, T=t, learn_w=cfg.learn_w, learn_s=cfg.learn_s,
                       learn_T=cfg.learn_T, tau=cfg.tau, firing=cfg.firing,
                       per_step=cfg.per_step, amplitude=cfg.amplitude,
                       full_precision=cfg.full_precision, renewal=policy,
                       hysteresis=cfg.hysteresis)
    accepted = inspect.signature(MODELS[cfg.arch]).parameters
    kwargs = {}
    if cfg.width is not None:
        if "width" not in accepted:
            raise OptionError("width", "", cfg.width, detail=f"{cfg.arch} has no width option")
        kwargs["width"] = cfg.width
    if "stem_cfg" in accepted:  # the stem's T is learned only when T is
        kwargs["stem_cfg"] = QuantConfig.stem(T=t, learn_T=cfg.learn_T,
                                              full_precision=cfg.full_precision, renewal=policy)
    if "frames" in accepted:  # an event architecture (validated(): only with event data)
        if "frames" not in spec:
            raise OptionError("arch", "", cfg.arch, detail=f"{cfg.arch} needs event data")
        _check_frames(cfg, spec["frames"])
        kwargs.update(frames=spec["frames"], time_average_input=cfg.time_average_input)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.arch, num_classes=spec["num_classes"],
                        in_channels=spec["in_channels"], cfg=qcfg, **kwargs)
    layers = dict(quant_layers(model))
    for name, (bw, bs, bt) in cfg.layer_bits_map().items():
        if name not in layers:
            raise OptionError("layer_bits", "", cfg.layer_bits,
                              detail=f"no learned layer {name!r}; layers: {', '.join(layers)}")
        layer = layers[name]
        try:
            layer.wq.bits[0].set_(bw)
            for b in layer.neuron.bits:
                b.set_(bs)
            layer.neuron.T.set_(bt)
        except ValueError as err:
            raise OptionError("layer_bits", "", cfg.layer_bits, detail=str(err)) from None
    return model


def _param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """Four groups: weights (with weight decay), steps, bit latents, T latents."""
    kind = {}
    for m in model.modules():
        if isinstance(m, StepQuantizer):
            kind[id(m.step)] = "steps"
            if isinstance(getattr(m, "alpha", None), nn.Parameter):  # the old neuron's amplitude
                kind[id(m.alpha)] = "steps"
            for b in m.bits:
                kind[id(b.latent)] = "bits"
        if isinstance(m, SpikingNeuron):
            kind[id(m.T.latent)] = "T"
    groups = {"weights": [], "steps": [], "bits": [], "T": []}
    for p in model.parameters():
        if p.requires_grad:
            groups[kind.get(id(p), "weights")].append(p)
    lrs = {"weights": cfg.lr, "steps": cfg.lr_step, "bits": cfg.lr_bits, "T": cfg.lr_T}
    return [{"params": ps, "lr": lrs[name], "name": name,
             "weight_decay": cfg.weight_decay if name == "weights" else 0.0}
            for name, ps in groups.items() if ps]


def _make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = _param_groups(model, cfg)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.Adam(groups, lr=cfg.lr)


def _epoch_batches(n: int, cfg: TrainConfig, epoch: int, world: int) -> list[torch.Tensor]:
    """The global batches of one epoch: a pure function of (seed, epoch).  A last batch smaller
    than the number of ranks is dropped (every rank needs at least one sample)."""
    g = torch.Generator().manual_seed(_seed_for(cfg.seed, epoch, 0))
    batches = list(torch.randperm(n, generator=g).split(cfg.batch_size))
    return [b for b in batches if len(b) >= world]


def _all_reduce_(t: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        dist.all_reduce(t)
    return t


def _average_gradients(model: nn.Module, world: int) -> None:
    """Mean of the ranks' gradients, in one all-reduce of all gradients flattened together."""
    if world == 1:
        return
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat.div_(world)
    for g, part in zip(grads, flat.split([g.numel() for g in grads])):
        g.copy_(part.view_as(g))


def _average_bn_buffers(model: nn.Module, world: int) -> None:
    if world == 1:
        return
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            for buf in (m.running_mean, m.running_var):
                dist.all_reduce(buf)
                buf.div_(world)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, x: torch.Tensor, device: torch.device, batch: int,
                   rank: int = 0, world: int = 1) -> None:
    """Recompute every BatchNorm layer's running mean and variance as the plain average over the
    training data ``x`` (batches of ``batch``), with quantizers and neurons in eval mode (no
    initialisation, flips or renewals) and the current bits and steps."""
    bns = [m for m in model.modules()
           if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns:
        return
    model.eval()
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
        m.train()
    for start in range(0, len(x), batch):
        model(x[start:start + batch][rank::world].to(device))
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum
    model.eval()
    _average_bn_buffers(model, world)


@torch.no_grad()
def _forward_with_frozen_bn(model: nn.Module, x: torch.Tensor) -> None:
    """One training-mode pass (quantizers observe, renew) that leaves BatchNorm statistics alone."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.eval()
    model(x)
    for m in bns:
        m.train()


def _all_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device,
             rank: int = 0, world: int = 1) -> float:
    """Test accuracy in percent (rank r scores chunks r, r + world, ...; counts are summed)."""
    model.eval()
    counts = torch.zeros(2, dtype=torch.float64, device=device)
    for i, start in enumerate(range(0, len(x), EVAL_BATCH)):
        if i % world != rank:
            continue
        xb = x[start:start + EVAL_BATCH].to(device)
        yb = y[start:start + EVAL_BATCH].to(device)
        counts[0] += (model(xb).argmax(1) == yb).sum()
        counts[1] += len(yb)
    _all_reduce_(counts, world)
    return 100.0 * counts[0].item() / counts[1].item()


def layer_bits_report(model: nn.Module) -> list[dict]:
    """Per learned layer: Bw, Bs (one entry per active step, or one when shared), T, the steps."""
    rows = []
    for r, (name, layer) in zip(layer_reports(model, include_stem=False), quant_layers(model)):
        n = layer.neuron
        rows.append({"name": name, "kind": r.kind, "Bw": r.Bw, "Bs": list(r.Bs), "T": r.T,
                     "weights": r.weights, "in_features": r.in_features,
                     "S_q": layer.wq.step.detach()[0].item(),
                     "Vth1": n.step.detach()[: n.active_slots()].tolist()})
    return rows


def _epoch_record(model: nn.Module, epoch: int, lr: float, sums: torch.Tensor, test_acc: float,
                  fired: list[str], renewal: Renewal) -> dict:
    stats = bit_stats(model)
    costs = learned_costs(model)
    n = sums[3].item()
    return {"epoch": epoch, "lr": lr, "train_loss": sums[0].item() / n,
            "train_task_loss": sums[1].item() / n, "train_accuracy": 100.0 * sums[2].item() / n,
            "test_accuracy": test_acc, "W": stats.W.item(), "S": stats.S.item(),
            "T": stats.T.item(), "wst": stats.wst(), "bit_budget": stats.bit_budget.item(),
            "s_ace_g": costs["s_ace_g"], "macs_g": costs["macs_g"],
            "size_mbit": costs["size_mbit"], "layers": layer_bits_report(model),
            "renewals": renewal_counts(model),
            "renewal_switched_off": [k for k in fired if renewal.renews[k]],
            "renewal_active": renewal.active,
            "bits_frozen": [k for k in fired if renewal.freeze]}


# ============================================================================ files
def _atomic_torch_save(obj, path: Path) -> None:
    atomic_write(path, lambda f: torch.save(obj, f), binary=True)


def _differences(stored: dict, current: dict) -> str:
    keys = sorted(set(stored) | set(current))
    diff = [f"{k}: {stored.get(k, '(absent)')!r} there, {current.get(k, '(absent)')!r} now"
            for k in keys if stored.get(k) != current.get(k)]
    return "; ".join(diff) or "code version differs"


def check_out_dir(out) -> Path:
    """``out`` as a Path, once it is known to be a folder this process can write into; an
    ``OptionError`` (one line) otherwise.  Checked before any work; leaves nothing behind (a
    folder it had to create for the check is removed again)."""
    if not isinstance(out, (str, os.PathLike)) or not str(out).strip():
        raise OptionError("out", "", out, detail="the output folder must be a non-empty path")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OptionError("out", "", str(out), detail=f"{out} is a file, not a folder")
    missing, parent = [], out
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    if not parent.is_dir():
        raise OptionError("out", "", str(out), detail=f"{parent} is a file, so {out} cannot be "
                          "a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OptionError("out", "", str(out), detail=f"cannot write into {out} "
                          f"({err.strerror or err})") from None
    finally:
        for folder in missing:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()
    return out


def _read_checkpoint(path: Path, device) -> dict:
    """A checkpoint file's content; ``DamagedFile`` (one line) when it cannot be read as one."""
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        first = (str(err).strip().splitlines() or [""])[0][:120]
        raise DamagedFile(f"{path}: damaged checkpoint ({type(err).__name__}: {first}); delete "
                          "it and rerun to start this run from scratch") from None
    if not isinstance(ckpt, dict) or "key" not in ckpt or "history" not in ckpt:
        raise DamagedFile(f"{path}: not a training checkpoint of adabit_lite; delete it and "
                          "rerun to start this run from scratch")
    return ckpt


def _rebuilt_result(out: Path, cfg: TrainConfig, key: str) -> dict | None:
    """The result of a run whose checkpoint is intact, of this key and final (None otherwise)."""
    path = out / CHECKPOINT_FILE
    if not path.exists():
        return None
    try:
        ckpt = _read_checkpoint(path, "cpu")
    except DamagedFile:
        return None
    if ckpt.get("key") != key or (ckpt.get("epoch") != cfg.epochs and not ckpt.get("failure")):
        return None
    renewal = Renewal(nn.Module(), cfg.renewal, freeze=cfg.freeze_bits)
    renewal.load_state_dict(ckpt["renewal"])
    world = ckpt["parameters"].get("world_size", 1)
    return _result(cfg, key, list(ckpt["history"]), renewal, ckpt.get("machine"), world,
                   ckpt.get("failure"))


def _finished_result(out: Path, cfg: TrainConfig, key: str) -> dict | None:
    path = out / RESULT_FILE
    if not path.exists():
        return None
    try:
        stored = read_json_file(path, "result file")
    except DamagedFile as err:
        stored = _rebuilt_result(out, cfg, key)
        if stored is None:
            raise DamagedFile(f"{err}; no intact final checkpoint to rebuild it from: delete it "
                              "and rerun to train this run again") from None
        atomic_write_json(path, stored)
        print(f"{path} was damaged: rebuilt from the run's final checkpoint", file=sys.stderr)
    wanted = cfg.key_parameters()
    have = keys.key_parameters(stored.get("parameters", {}))
    if stored.get("key") != key or have != wanted:
        raise RunMismatch(f"{path} holds a result of other parameters or another code version "
                          f"({_differences(have, wanted)}); use another output folder")
    return stored


def _load_checkpoint(out: Path, key: str, cfg: TrainConfig, device: torch.device) -> dict | None:
    path = out / CHECKPOINT_FILE
    if not path.exists():
        return None
    ckpt = _read_checkpoint(path, device)
    if ckpt.get("key") != key:
        have = keys.key_parameters(ckpt.get("parameters", {}))
        raise RunMismatch(f"{path} was written for other parameters or another code version "
                          f"({_differences(have, cfg.key_parameters())}); refusing to resume "
                          "from it: use another output folder or delete it")
    return ckpt


# ============================================================================ the loop
@dataclass
class _Run:
    """Everything one training run works on, built by ``_setup`` before any file is written."""

    cfg: TrainConfig
    key: str
    device: torch.device
    rank: int
    world: int
    bundle: Any
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    augment: str
    spec: dict
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    renewal: Renewal
    target: BitTarget
    start: int = 0
    history: list = field(default_factory=list)
    timing: list = field(default_factory=list)
    failure: dict | None = None
    machine: dict | None = None


def train(cfg: TrainConfig, out_dir: str | os.PathLike | None = None, *, progress: bool = True,
          keep_checkpoint: bool = True,
          on_batch: Callable[[int, int, nn.Module], None] | None = None) -> dict:
    """Train one model and return its result (the content of ``out_dir/result.json``).

    ``out_dir=None`` writes no files.  With ``out_dir``: a finished result of the same parameters
    is returned without training again; a checkpoint of the same parameters is resumed; a result
    or checkpoint of other parameters raises ``RunMismatch``.  ``keep_checkpoint=False`` deletes
    the checkpoint once the result is written.  ``on_batch(epoch, batch, model)`` is called
    before every training batch (tests use it to interrupt a run or to inject a NaN).
    Raises ``OptionError`` (bad option, nothing written) or ``TrainingDiverged``.  A run that
    blows up while finite (``blew_up``) ends there and its result carries ``failure``.
    """
    cfg = cfg.validated()
    key = result_key(cfg)
    rank, world = _dist_info()
    device = _resolve_device(cfg.device)
    if device.type == "cuda" and device.index is None and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
    if out_dir is None:
        out = None
    else:  # one process checks (two racing ones would remove each other's probe folder)
        out = check_out_dir(out_dir) if rank == 0 else Path(out_dir)
    show = progress and rank == 0
    if out is not None:
        finished = _finished_result(out, cfg, key)
        if finished is not None:
            if show:
                print(f"{out / RESULT_FILE}: finished result for these parameters, not rerun",
                      file=sys.stderr)
            return finished

    run = _setup(cfg, key, device, rank, world)
    _resume(run, out, show)
    with _deterministic(device):
        epochs = tqdm(range(run.start, cfg.epochs if run.failure is None else run.start),
                      desc="epochs", disable=not show, initial=run.start, total=cfg.epochs)
        for epoch in epochs:
            t0 = time.perf_counter()
            lr = run.optimizer.param_groups[0]["lr"]
            sums = _train_epoch(run, epoch, out, show, on_batch)
            _finish_epoch(run, epoch, lr, sums, out)
            run.timing.append(time.perf_counter() - t0)
            epochs.set_postfix(acc=f"{run.history[-1]['test_accuracy']:.2f}",
                               wst=run.history[-1]["wst"], refresh=False)
            if out is not None and rank == 0:
                _save_checkpoint(run, out)
            if world > 1:
                dist.barrier()
            if run.failure is not None:
                break
        epochs.close()

    result = _result(cfg, key, run.history, run.renewal, run.machine, world, run.failure)
    if out is not None and rank == 0:
        atomic_write_json(out / RESULT_FILE, result)
        if not keep_checkpoint:
            (out / CHECKPOINT_FILE).unlink(missing_ok=True)
    if world > 1:
        dist.barrier()
    return result


def _setup(cfg: TrainConfig, key: str, device: torch.device, rank: int, world: int) -> _Run:
    """Data, model, optimiser, schedule, renewal policy and bit target of a run (any bad option
    raises here, before a file is written)."""
    try:
        bundle = data_mod.make_dataset(cfg.dataset, seed=cfg.split_seed, **cfg.dataset_options())
    except ValueError as err:
        raise OptionError("data_options", "", cfg.data_options, detail=str(err)) from None
    except FileNotFoundError as err:  # CIFAR's files are not there
        raise data_mod.DataUnavailable(str(err)) from None
    x_train, y_train = bundle.train.tensors
    if cfg.train_limit is not None:
        if cfg.train_limit >= len(y_train):
            raise OptionError("train_limit", f"< {len(y_train)} (the training split)",
                              cfg.train_limit)
        keep = data_mod.stratified_split(y_train, test_fraction=cfg.train_limit / len(y_train),
                                         seed=cfg.split_seed)[1]
        x_train, y_train = x_train[keep], y_train[keep]
    x_test, y_test = bundle.test.tensors
    x_train, x_test = x_train.to(DTYPES[cfg.dtype]), x_test.to(DTYPES[cfg.dtype])
    augment = bundle.default_augment if cfg.augment == "default" else cfg.augment
    if augment == "crop-flip" and x_train.dim() != 4:
        raise OptionError("augment", "none for this data set", cfg.augment)
    spec = _model_spec(cfg, bundle)
    model = build(cfg, spec).to(device, DTYPES[cfg.dtype])
    optimizer = _make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    w0, s0, _ = cfg.wst("init")
    wt, st, _ = cfg.wst("target")
    renewal = Renewal(model, cfg.renewal, init=(w0, s0), target=(wt, st), rho=cfg.rho,
                      min_epoch=cfg.min_epoch, freeze=cfg.freeze_bits)
    target = BitTarget.parse(cfg.target, lam_w=cfg.lam_w, lam_s=cfg.lam_s, lam_T=cfg.lam_T,
                             tol=cfg.bit_tolerance)
    return _Run(cfg, key, device, rank, world, bundle, x_train, y_train, x_test, y_test, augment,
                spec, model, optimizer, scheduler, renewal, target,
                machine=machine_record(device, world))


def _resume(run: _Run, out: Path | None, show: bool) -> None:
    """Continue from the checkpoint in ``out`` (if any): state, RNG, history; a failed run's
    checkpoint only rebuilds its result.  Under torch.distributed every replica then starts from
    rank 0's state."""
    ckpt = _load_checkpoint(out, run.key, run.cfg, run.device) if out is not None else None
    if ckpt is not None:
        before = ckpt.get("machine")
        if before != run.machine:  # a run that moved between machines matches neither
            run.machine = {"mixed": [before, run.machine]}
        run.model.load_state_dict(ckpt["model"])
        run.optimizer.load_state_dict(ckpt["optimizer"])
        run.scheduler.load_state_dict(ckpt["scheduler"])
        run.renewal.load_state_dict(ckpt["renewal"])
        torch.set_rng_state(ckpt["rng"]["torch"].cpu())
        if run.device.type == "cuda" and ckpt["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"].cpu(), run.device)
        run.start, run.history, run.timing = (ckpt["epoch"], list(ckpt["history"]),
                                              list(ckpt["timing"]))
        run.failure = ckpt.get("failure")  # a failed run is over: rebuilt, not resumed
        if run.cfg.project_at is not None and run.start > run.cfg.project_at:
            freeze_all(run.model)  # requires_grad is not part of a state dict
        if show:
            print(f"resuming from {out / CHECKPOINT_FILE} after epoch {run.start}", file=sys.stderr)
    if run.world > 1:
        for t in list(run.model.parameters()) + list(run.model.buffers()):
            dist.broadcast(t.data, 0)


def _train_epoch(run: _Run, epoch: int, out: Path | None, show: bool, on_batch) -> torch.Tensor:
    """One pass over the training data (projecting onto the target first at ``project_at``);
    returns the epoch's sums of loss, task loss, correct and samples over every replica."""
    cfg, model, rank, world, device = run.cfg, run.model, run.rank, run.world, run.device
    model.train()
    run.renewal.start_epoch()
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, task, correct, n
    batches = _epoch_batches(len(run.y_train), cfg, epoch, world)
    if epoch == cfg.project_at:  # land on the target: project, freeze, renew
        project_model(model, cfg.wst("target"))
        first = run.x_train[batches[0]][rank::world].to(device)
        run.renewal.renew_now(lambda: _forward_with_frozen_bn(model, first))
    bar = tqdm(batches, desc=f"epoch {epoch + 1}", leave=False, disable=not show)
    for b, idx in enumerate(bar):
        if on_batch is not None:
            on_batch(epoch, b, model)
        xb, yb = run.x_train[idx], run.y_train[idx]
        if run.augment == "crop-flip":
            g = torch.Generator().manual_seed(_seed_for(cfg.seed, epoch, 1, b))
            xb = data_mod.random_crop_flip(xb, padding=4, fill=run.bundle.pad_value, generator=g)
        xb, yb = xb[rank::world].to(device), yb[rank::world].to(device)
        logits = model(xb)
        task = F.cross_entropy(logits, yb)
        loss = task + bit_loss(bit_stats(model, soft=cfg.soft_bit_loss), run.target)
        n = len(yb)
        batch_sums = torch.stack([loss.detach() * n, task.detach() * n,
                                  (logits.argmax(1) == yb).sum(),
                                  torch.tensor(n, device=device)]).to(torch.float64)
        bad = (~torch.isfinite(loss.detach())).to(torch.float64).reshape(1)
        synced = _all_reduce_(torch.cat([batch_sums, bad]), world)  # one call per batch
        if synced[4].item() > 0:  # every rank stops at the same batch
            raise _diverged(out, epoch, b, loss.item(), run.history)
        sums += synced[:4]
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        _average_gradients(model, world)
        run.optimizer.step()
        if cfg.step_clamp == "reflect":
            reflect_steps_(model)
        clamp_(model)
        if show and b % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", wst=bit_stats(model).wst(), refresh=False)
    bar.close()
    return sums


def _finish_epoch(run: _Run, epoch: int, lr: float, sums: torch.Tensor, out: Path | None) -> None:
    """After an epoch: BN statistics, the finite check, the test accuracy, the blow-up rule,
    renewal's end of epoch, the schedule step, and the epoch's record."""
    cfg, model = run.cfg, run.model
    _average_bn_buffers(model, run.world)
    if cfg.bn_recalibrate:
        recalibrate_bn(model, run.x_train, run.device, cfg.batch_size, run.rank, run.world)
    if not _all_finite(model):
        raise _diverged(out, epoch, None, float("nan"), run.history)
    test_acc = evaluate(model, run.x_test, run.y_test, run.device, run.rank, run.world)
    blown = blew_up(sums[1].item() / sums[3].item(), test_acc, run.bundle.num_classes,
                    final=epoch == cfg.epochs - 1,
                    best_before=max((h["test_accuracy"] for h in run.history), default=None))
    if blown:  # an outcome of the method, stored as such: the run ends here
        run.failure = {"epoch": epoch + 1, "reason": blown, "steps_at_floor": steps_at_floor(model)}
    fired = run.renewal.end_epoch(epoch, bit_stats(model))
    run.scheduler.step()
    run.history.append(_epoch_record(model, epoch, lr, sums, test_acc, fired, run.renewal))


def _save_checkpoint(run: _Run, out: Path) -> None:
    """Everything a resumed run needs, written atomically after each epoch."""
    out.mkdir(parents=True, exist_ok=True)
    _atomic_torch_save({
        "format": 1, "key": run.key, "parameters": run.cfg.parameters(),
        "code": _code_version(), "model_spec": run.spec, "epoch": len(run.history),
        "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(), "renewal": run.renewal.state_dict(),
        "history": run.history, "timing": run.timing, "machine": run.machine,
        "failure": run.failure,
        "rng": {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(run.device) if run.device.type == "cuda"
                else None}}, out / CHECKPOINT_FILE)
    atomic_write_json(out / TIMING_FILE, _timing_record(run.timing, run.device, run.world))


#: a run has blown up when an epoch's mean training task loss exceeds this many times the loss of
#: a uniform guess, ln(classes) (no stored run ever exceeded 0.8 times it)
BLOWUP_FACTOR = 10.0
#: ... or when it collapsed: after its last epoch its test accuracy is within CHANCE_MARGIN points
#: of chance although an earlier epoch was LEARNED points above it (a control that is meant to be
#: at chance, and never learns, is not a collapse)
CHANCE_MARGIN, LEARNED = 1.0, 10.0


def blew_up(task_loss: float, test_accuracy: float, classes: int, final: bool,
            best_before: float | None = None) -> str:
    """Why a run that stayed finite has failed all the same ("" if it has not): its epoch's mean
    training task loss is above ``BLOWUP_FACTOR * ln(classes)``, or (``final``: after the last
    epoch) it collapsed to chance, 100 / classes, from an earlier best ``best_before``."""
    chance = 100.0 / classes
    if task_loss > BLOWUP_FACTOR * math.log(classes):
        return (f"the mean training loss is {task_loss:.3g}, over {BLOWUP_FACTOR:g} times that of a "
                f"uniform guess ({math.log(classes):.2f})")
    if (final and best_before is not None and test_accuracy <= chance + CHANCE_MARGIN
            and best_before >= chance + LEARNED):
        return (f"the network collapsed: after training the test accuracy is {test_accuracy:.2f} %, "
                f"at chance ({chance:.0f} %), after {best_before:.2f} % in an earlier epoch")
    return ""


@torch.no_grad()
def reflect_steps_(model: nn.Module) -> None:
    """s -> |s| for every quantizer step (option ``step_clamp="reflect"``), before the clamp."""
    for m in model.modules():
        if isinstance(m, StepQuantizer):
            m.step.abs_()


def steps_at_floor(model: nn.Module) -> list[str]:
    """The quantizers whose step (S_q or Vth1) the clamp holds at its floor, the smallest positive
    float: such a quantizer maps every input to 0 (a weight step there zeroes its layer's weights,
    and the network behind it goes silent), the usual cause of a collapse."""
    return [name or "model" for name, m in model.named_modules() if isinstance(m, StepQuantizer)
            and bool((m.step.detach() <= torch.finfo(m.step.dtype).tiny).any())]


def _diverged(out, epoch, batch, loss, history) -> TrainingDiverged:
    where = (f"the end of epoch {epoch + 1}" if batch is None else
             f"epoch {epoch + 1}, batch {batch + 1}")
    if out is not None and (out / CHECKPOINT_FILE).exists():
        kept = f"the last good checkpoint ({out / CHECKPOINT_FILE}, end of epoch {len(history)}) is kept"
    else:
        kept = "no checkpoint was written before it"
    return TrainingDiverged(f"training diverged at {where}: the loss is {loss} (or a parameter is "
                            f"not finite); lower the learning rates; "
                            f"{kept}")


@contextlib.contextmanager
def _deterministic(device: torch.device):
    """Deterministic kernels while training (restored afterwards), without the NaN fill of every
    new tensor that deterministic mode adds: torch's kernels write every element they allocate
    before reading it, so the fill only costs a pass over memory (a fifth of a batch's time here)."""
    fill = torch.utils.deterministic
    before = (torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
              fill.fill_uninitialized_memory)
    if device.type == "cuda":  # deterministic cuBLAS (read when CUDA first starts cuBLAS)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    fill.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2:4]
        fill.fill_uninitialized_memory = before[4]


def _code_version() -> dict:
    return {"algorithm_version": ALGORITHM_VERSION, "package_version": __version__}


def _timing_record(timing: list[float], device: torch.device, world: int) -> dict:
    return {"epoch_seconds": timing, "device": str(device), "world_size": world,
            "threads": torch.get_num_threads()}


DROP_POINTS = 5.0


def accuracy_drops(history: list[dict], points: float = DROP_POINTS) -> list[dict]:
    """Epochs whose test accuracy fell more than ``points`` below the epoch before."""
    return [{"epoch": b["epoch"], "from": a["test_accuracy"], "to": b["test_accuracy"]}
            for a, b in zip(history, history[1:])
            if b["test_accuracy"] < a["test_accuracy"] - points]


def _result(cfg: TrainConfig, key: str, history: list[dict], renewal: Renewal,
            machine: dict | None, world: int, failure: dict | None = None) -> dict:
    """The result file's content: built from the history and the machine record alone, so a run
    whose last checkpoint is already final gives the same file as one that has just trained.
    A run that failed (``blew_up``) carries ``failure``: the epoch it ended and why."""
    last = history[-1]
    device_type = "cuda" if (machine or {}).get("device", "cpu") != "cpu" else "cpu"
    return {
        "key": key,
        "code": _code_version(),
        "parameters": cfg.parameters(world),
        "run": {"world_size": world, "device_type": device_type,  # not in the key
                "machine": machine if machine is not None else "not recorded"},
        "metrics": {
            "accuracy": last["test_accuracy"], "best_accuracy": max(h["test_accuracy"]
                                                                  for h in history),
            "wst": last["wst"], "W": last["W"], "S": last["S"], "T": last["T"],
            "bit_budget": last["bit_budget"], "s_ace_g": last["s_ace_g"],
            "macs_g": last["macs_g"], "size_mbit": last["size_mbit"],
            "layers": last["layers"], "renewals": last["renewals"],
            "renewal_switched_off_at": renewal.switched_off_at,
            "bits_frozen_at": renewal.frozen_at,
            "accuracy_drops": accuracy_drops(history),
            "epochs": len(history),
            **({"bits_projected_at": cfg.project_at} if cfg.project_at is not None else {})},
        "history": history,
        **({"failure": failure} if failure is not None else {}),
    }


def failure_line(result: dict, out: Path | None = None) -> str:
    """One line saying that a stored run failed, when, and why ("" for a run that did not)."""
    failure = result.get("failure")
    if not failure:
        return ""
    where = f" in {out / RESULT_FILE}" if out is not None else ""
    dead = failure.get("steps_at_floor")
    cause = f" (steps at their floor, every value quantized to 0: {', '.join(dead)})" if dead else ""
    return (f"the run failed at the end of epoch {failure['epoch']}: {failure['reason']}{cause}; "
            f"it is stored{where} as a failed result (an outcome of these settings, counted as "
            "such)")


# ============================================================================ reuse and reload
def load_or_train(cfg: TrainConfig, results_dir: str | os.PathLike, *, progress: bool = True,
                  keep_checkpoint: bool = False, verbose: bool = True) -> dict:
    """A stored result for exactly these parameters and code version, else train and store one.

    Stored results live in ``results_dir/<key>/result.json``.  Says which it did (``verbose``).
    """
    found = find_result(results_dir, cfg)
    if found is not None:
        if verbose:
            print(f"reusing the stored result {found['_path']} (key {found['key']}, algorithm "
                  f"version {found['code']['algorithm_version']})")
        return found
    out = Path(results_dir) / result_key(cfg)
    if verbose:
        print(f"no stored result for key {result_key(cfg)}: training into {out}")
    result = train(cfg, out, progress=progress, keep_checkpoint=keep_checkpoint)
    if verbose and result.get("failure"):
        print(failure_line(result, out))
    return result


def load_trained(out_dir: str | os.PathLike, device: str = "cpu") -> tuple[nn.Module, TrainConfig]:
    """The trained model of a run folder (from its checkpoint) and its config, in eval mode.

    One forward pass of zeros tells every layer its shapes, so ``layer_reports``, ``bit_stats``
    and the meter work on it at once.
    """
    ckpt = _read_checkpoint(Path(out_dir) / CHECKPOINT_FILE, device)
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in ckpt["parameters"].items() if k in names})
    cfg = dataclasses.replace(cfg, device=device).validated()
    model = build(cfg, ckpt["model_spec"]).to(device)
    model.load_state_dict(ckpt["model"])
    model.eval()
    spec = ckpt["model_spec"]
    frames = (spec["frames"],) if "frames" in spec else ()  # event data: [B, T, C, H, W]
    with torch.no_grad():
        model(torch.zeros(1, *frames, spec["in_channels"], *spec["image_size"], device=device))
    return model, cfg


# ============================================================================ command line
class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message):  # noqa: D401 - argparse hook
        self.exit(2, f"{self.prog}: error: {message}\n")


def _from_cli(name: str, field_type: str, text: str):
    """Convert one CLI string to the field's type, with a one-line OptionError."""
    optional = "None" in field_type
    if optional and text.lower() in ("none", ""):
        return None
    base = field_type.replace("| None", "").strip()
    if base == "bool":
        low = text.lower()
        if low in ("true", "yes", "1", "on"):
            return True
        if low in ("false", "no", "0", "off"):
            return False
        raise OptionError(name, "true or false", text)
    if base == "int":
        try:
            return int(text)
        except ValueError:
            raise OptionError(name, "an integer" + (" or none" if optional else ""), text) from None
    if base == "float":
        try:
            return float(text)
        except ValueError:
            raise OptionError(name, "a number" + (" or none" if optional else ""), text) from None
    return text


def _parser() -> argparse.ArgumentParser:
    p = _OneLineParser(prog="python -m adabit_lite.train",
                       description="Train a spiking network with learnable bit widths "
                                   "(adabit_lite).  Rerunning a command resumes it.")
    p.add_argument("--out", required=True, help="output folder (result.json, checkpoint.pt)")
    p.add_argument("--uquant", action="store_true",
                   help="U-quant baseline: every learned layer fixed at the target from the start")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-checkpoint", action="store_true",
                   help="delete the checkpoint once result.json is written")
    for f in dataclasses.fields(TrainConfig):
        flags = ["--" + f.name.replace("_", "-")]
        if f.name != f.name.lower():
            flags.append("--" + f.name.lower().replace("_", "-"))
        p.add_argument(*flags, dest=f.name, default=None, metavar=f.type.replace(" | None", "?")
                       .upper(), help=f.metadata["help"] + ("" if f.default in (None, "") else
                                                                  f" [default: {f.default}]"))
    return p


def command_line(cfg: TrainConfig, out: str | os.PathLike, launcher: str = "python") -> str:
    """The CLI command that trains ``cfg`` into ``out`` (options that differ from the defaults).

    ``launcher="torchrun"`` gives the data-parallel form (one process per GPU).
    """
    parts = ["python -m adabit_lite.train" if launcher == "python" else
             "torchrun --standalone --nproc_per_node gpu -m adabit_lite.train", f"--out {out}"]
    for f in dataclasses.fields(TrainConfig):
        value = getattr(cfg, f.name)
        if value != f.default:
            parts.append(cli_option(f.name, value))
    return " ".join(parts)


def cli_option(name: str, value) -> str:
    """A TrainConfig field as the CLI option that sets it: ``--lam-T 0.01``."""
    return f"--{name.replace('_', '-')} {value}"


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The validated TrainConfig of parsed CLI arguments (raises OptionError)."""
    values = {}
    for f in dataclasses.fields(TrainConfig):
        text = getattr(args, f.name)
        if text is not None:
            values[f.name] = _from_cli(f.name, f.type, text)
    cfg = TrainConfig(**values)
    if args.uquant:
        cfg = cfg.uquant()
    return cfg.validated()


def _init_distributed() -> bool:
    """Join the process group that torchrun describes in the environment (if any)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    return True


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code (0 done, 1 failed, 2 bad option, 130 interrupted)."""
    prog = "python -m adabit_lite.train"
    try:
        args = _parser().parse_args(argv)
    except SystemExit as done:  # --help (0) or a usage error (2, one line already printed)
        return int(done.code or 0)
    try:
        cfg = config_from_args(args)
    except OptionError as err:
        print(f"{prog}: error: {err.line(cli=True)}", file=sys.stderr)
        return 2
    started = _init_distributed()
    try:
        result = train(cfg, args.out, progress=not args.no_progress,
                       keep_checkpoint=not args.no_checkpoint)
    except OptionError as err:
        print(f"{prog}: error: {err.line(cli=True)}", file=sys.stderr)
        return 2
    except (RunMismatch, DamagedFile, data_mod.DataUnavailable) as err:  # refused input
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; rerun the same command to resume from the last checkpoint",
              file=sys.stderr)
        return 130
    finally:
        if started:
            dist.destroy_process_group()
    m = result["metrics"]
    if result.get("failure"):
        print(f"{prog}: {failure_line(result, Path(args.out))}", file=sys.stderr)
        return 1
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only rank 0 reports
        print(f"accuracy {m['accuracy']:.2f} %  W/S/T {m['wst']}  BB {m['bit_budget']:.2f}  "
              f"S-ACE {m['s_ace_g']:.4f} G  -> {Path(args.out) / RESULT_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
