"""Datasets: the data root, IDX files (.gz, read-only roots, corruption), offline errors, digits, synthetic."""
from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest
import torch

from bridge.errors import ConfigError, DataError
from ratenets.data import (cache_dir, load_dataset, load_digits, make_synthetic, read_idx, resolve_root)


def _write_idx(path, arr: np.ndarray, compress: bool = True) -> None:
    magic = 2048 + arr.ndim
    raw = struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


def _fake_mnist(root, n_train=6, n_test=4, folder="MNIST"):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    _write_idx(raw / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28)))
    _write_idx(raw / "train-labels-idx1-ubyte.gz", np.arange(n_train) % 10)
    _write_idx(raw / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n_test, 28, 28)))
    _write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.arange(n_test) % 10)
    return raw


def test_root_resolution_order(monkeypatch, tmp_path):
    monkeypatch.setenv("RATESPIKE_DATA", str(tmp_path / "env"))
    assert resolve_root(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_root(None) == tmp_path / "env"
    monkeypatch.delenv("RATESPIKE_DATA")
    assert resolve_root(None) == cache_dir() / "data"


def test_read_only_gz_root_is_never_written(tmp_path, monkeypatch):
    """Read-only enforced by refusing every create under the root (chmod alone does not stop root, and CI
    runs as root)."""
    import builtins

    raw = _fake_mnist(tmp_path / "root")
    for p in [raw, raw.parent, raw.parent.parent]:
        p.chmod(0o555)
    top = str(tmp_path / "root")
    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

    def guarded_open(file, mode="r", *a, **k):
        if str(file).startswith(top) and any(c in mode for c in "wax+"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, mode, *a, **k)

    def guarded_os_open(path, flags, *a, **k):
        if str(path).startswith(top) and flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR):
            raise PermissionError(13, "Permission denied", str(path))
        return real_os_open(path, flags, *a, **k)

    def guarded_mkdir(path, *a, **k):
        if str(path).startswith(top):
            raise PermissionError(13, "Permission denied", str(path))
        return real_mkdir(path, *a, **k)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    monkeypatch.setattr(os, "mkdir", guarded_mkdir)
    before = sorted(os.listdir(raw))
    ds = load_dataset("mnist", tmp_path / "root", download=False)
    assert ds.x_train.shape == (6, 1, 28, 28) and ds.x_train.dtype == torch.uint8
    assert sorted(os.listdir(raw)) == before


def test_gz_root_is_decoded_into_the_cache_not_the_root(tmp_path):
    raw = _fake_mnist(tmp_path / "root")
    before = sorted(os.listdir(raw))
    ds = load_dataset("mnist", tmp_path / "root", download=False)
    assert sorted(os.listdir(raw)) == before
    assert ds.y_train.tolist() == [0, 1, 2, 3, 4, 5] and ds.x_test.shape == (4, 1, 28, 28)
    assert any((cache_dir() / "unpacked").iterdir())


def test_corrupt_gz_is_a_one_line_data_error(tmp_path):
    raw = _fake_mnist(tmp_path / "root")
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(DataError, match="corrupt or truncated") as e:
        load_dataset("mnist", tmp_path / "root", download=False)
    assert "\n" not in str(e.value)


def test_truncated_idx_is_detected(tmp_path):
    p = tmp_path / "x-idx3-ubyte"
    _write_idx(p, np.zeros((3, 4, 4)), compress=False)
    p.write_bytes(p.read_bytes()[:-5])
    with pytest.raises(DataError, match="truncated"):
        read_idx(p)


def test_missing_dataset_offline_names_dataset_folder_and_fix(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset("fashion-mnist", tmp_path / "empty", download=False)
    msg = str(e.value)
    assert "'fashion-mnist'" in msg and str(tmp_path / "empty") in msg and "--data-root" in msg


def test_unknown_dataset():
    with pytest.raises(ConfigError, match="did you mean 'mnist'"):
        load_dataset("mnsit")


def test_digits_and_synthetic_need_no_files():
    d = load_digits()
    assert d.x_train.shape[1:] == (1, 8, 8) and len(d.x_train) + len(d.x_test) == 1797
    assert int(d.x_train.max()) == 255
    a, b = make_synthetic(seed=1), make_synthetic(seed=1)
    assert torch.equal(a.x_train, b.x_train) and not torch.equal(a.x_train, make_synthetic(seed=2).x_train)


def test_real_mnist_and_fashion_from_the_offline_root(data_root):
    m = load_dataset("mnist", data_root, download=False)
    assert m.x_train.shape == (60000, 1, 28, 28) and m.x_test.shape == (10000, 1, 28, 28)
    assert m.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    f = load_dataset("fashion-mnist", data_root, download=False)
    assert f.y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]


def test_shapes_known_before_loading_match_the_loaders(data_root):
    from ratenets.data import SHAPES, load_dataset

    for name in ("digits", "synthetic", "mnist", "fashion-mnist"):
        d = load_dataset(name, data_root)
        assert SHAPES[name] == (tuple(d.image_shape), d.num_classes, len(d.x_train), len(d.x_test)), name
