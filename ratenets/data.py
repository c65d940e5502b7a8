"""Image datasets for ratespike: MNIST, Fashion-MNIST, CIFAR-10, STL-10, scikit-learn's digits, synthetic.

The data root comes from the ``data_root`` argument (CLI ``--data-root``), else the environment
variable ``RATESPIKE_DATA``, else the per-user cache directory (``$XDG_CACHE_HOME/ratespike/data``,
by default ``~/.cache/ratespike/data``). Folders follow torchvision's layout (``MNIST/raw/...``).

MNIST and Fashion-MNIST are read directly from torchvision's IDX files, compressed (``.gz``) or not.
A read-only root holding only the ``.gz`` files works: they are decoded into the cache directory,
never into the root. When a dataset is missing it is downloaded with torchvision (into the root if it
is writable, else into the cache); offline, a one-line :class:`~bridge.errors.DataError` names the
dataset, the folders searched and the fix.

Every loader returns an :class:`ImageDataset` of ``uint8`` tensors shaped ``(N, C, H, W)``.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bridge.errors import DataError, unknown_choice

ENV_VAR = "RATESPIKE_DATA"


def cache_dir() -> Path:
    """The per-user cache directory of ratespike (``$XDG_CACHE_HOME/ratespike``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ratespike"


def resolve_root(data_root: str | os.PathLike | None = None) -> Path:
    """The data root: the argument, else ``$RATESPIKE_DATA``, else ``cache_dir()/data``."""
    if data_root:
        return Path(data_root).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return cache_dir() / "data"


@dataclass
class ImageDataset:
    """An image classification dataset held in memory.

    Attributes
    ----------
    name : str
        Registry name (``"mnist"`` ...).
    x_train, x_test : torch.Tensor
        ``uint8`` images, shape ``(N, C, H, W)``.
    y_train, y_test : torch.Tensor
        ``int64`` labels, shape ``(N,)``.
    classes : tuple of str
        Class names, ``len(classes)`` = number of classes.
    x_unlabeled : torch.Tensor or None
        Extra unlabelled images (STL-10's ``unlabeled`` split), ``uint8`` ``(M, C, H, W)``.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]
    x_unlabeled: torch.Tensor | None = None
    source: str = ""
    citation: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> "ImageDataset":
        """The first ``n_train`` training and ``n_test`` test images (for quick runs and tests)."""
        return ImageDataset(self.name, self.x_train[:n_train], self.y_train[:n_train], self.x_test[:n_test],
                            self.y_test[:n_test], self.classes, self.x_unlabeled, self.source, self.citation,
                            dict(self.extra))


def to_float(x: torch.Tensor) -> torch.Tensor:
    """``uint8`` images to ``float32`` in [0, 1]."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def batches(n: int, batch_size: int, gen: torch.Generator | None = None, drop_last: bool = False
            ) -> Iterator[torch.Tensor]:
    """Index batches over ``range(n)``; shuffled with ``gen`` when given."""
    order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    stop = n - (n % batch_size) if drop_last else n
    for i in range(0, stop, batch_size):
        yield order[i:i + batch_size]


# ----------------------------------------------------------------------------------------------------------------
# IDX files (MNIST, Fashion-MNIST)

_IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a uint8 array.

    Raises
    ------
    DataError
        If the file is truncated, corrupt or not an IDX file.
    """
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read {str(path)!r}: corrupt or truncated file ({e}); "
                        "delete it and download it again") from None
    if len(raw) < 8:
        raise DataError(f"{str(path)!r} is not an IDX file (too short); delete it and download it again")
    magic, = struct.unpack(">I", raw[:4])
    if magic not in (2049, 2051):
        raise DataError(f"{str(path)!r} is not an IDX file (magic number {magic}); delete it and download it again")
    ndim = magic - 2048
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{str(path)!r} is truncated: its IDX header needs {4 + 4 * ndim} bytes, the file has "
                        f"{len(raw)}; delete it and download it again")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{str(path)!r} is truncated: header says {dims}, found {data.size} bytes of data")
    return data.reshape(dims)


def _find_idx(folder: str, roots: list[Path]) -> dict[str, Path] | None:
    for root in roots:
        raw = root / folder / "raw"
        found = {}
        for key, name in _IDX_FILES.items():
            for cand in (raw / name, raw / f"{name}.gz"):
                if cand.is_file():
                    found[key] = cand
                    break
        if len(found) == len(_IDX_FILES):
            return found
    return None


def _cached_idx(path: Path) -> np.ndarray:
    """Decode an IDX file once into the cache directory (never next to the source) and memory-map it."""
    st = path.stat()
    key = hashlib.sha1(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache_dir() / "unpacked" / f"{path.name.removesuffix('.gz')}.{key}.npy"
    if target.is_file():
        try:
            return np.load(target)
        except (OSError, ValueError):
            pass
    arr = read_idx(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, arr)
        os.replace(tmp, target)
    except OSError:
        pass  # an unwritable cache only costs speed
    return arr


def _first_missing(p: Path) -> Path | None:
    """The topmost folder of ``p`` that does not exist yet (None if ``p`` exists)."""
    missing = None
    for q in [p, *p.parents]:
        if q.exists():
            break
        missing = q
    return missing


def _writable(p: Path) -> bool:
    """Whether files can be created in ``p``, tried by creating one (``os.access`` is true for root on
    read-only places); a folder created for the test is removed again."""
    from bridge.io import try_create_file

    created = _first_missing(p)
    try:
        p.mkdir(parents=True, exist_ok=True)
        return try_create_file(p) is None
    except OSError:
        return False
    finally:
        if created is not None:
            _remove_empty_dirs(created, set())


def _download_target(root: Path) -> Path:
    return root if _writable(root) else cache_dir() / "data"


def _missing(name: str, searched: list[Path], hint: str, err: Exception | None) -> DataError:
    where = ", ".join(str(p) for p in dict.fromkeys(searched))
    why = f" and the download failed ({type(err).__name__}: no network?)" if err else ""
    return DataError(f"dataset {name!r} not found in {where}{why}; {hint} into {searched[0]}, "
                     f"or pass --data-root DIR / set {ENV_VAR}")


def _remove_empty_dirs(top: Path, existed: set[Path]) -> None:
    """Undo the empty folders a failed download left behind (never touches folders that existed)."""
    if not top.exists() or top in existed:
        return
    for d in sorted((p for p in [top, *top.rglob("*")] if p.is_dir()), key=lambda p: -len(p.parts)):
        try:
            d.rmdir()
        except OSError:
            pass


def _download(target: Path, folder: str, make: Callable[[], object]) -> Exception | None:
    """Run a torchvision download into ``target``; on failure remove the empty folders it created."""
    created = _first_missing(target / folder)
    try:
        make()
    except Exception as e:  # noqa: BLE001 - any failure of the download is reported in one line
        if created is not None:
            _remove_empty_dirs(created, set())  # the folders this download made, the data root included
        return e
    return None


def _load_idx_dataset(name: str, folder: str, tv_class: str, classes: tuple[str, ...], root: Path,
                      download: bool, citation: str) -> ImageDataset:
    roots = [root, cache_dir() / "data"]
    files = _find_idx(folder, roots)
    if files is None and download:
        import torchvision

        target = _download_target(root)
        err = _download(target, folder, lambda: getattr(torchvision.datasets, tv_class)(str(target), download=True))
        files = _find_idx(folder, roots)
        if files is None:
            raise _missing(name, roots, f"put torchvision's {folder}/raw/*-ubyte.gz files", err)
    if files is None:
        raise _missing(name, roots, f"put torchvision's {folder}/raw/*-ubyte.gz files", None)
    arrs = {k: _cached_idx(p) for k, p in files.items()}
    if arrs["train_x"].shape[0] != arrs["train_y"].shape[0] or arrs["test_x"].shape[0] != arrs["test_y"].shape[0]:
        raise DataError(f"dataset {name!r} in {files['train_x'].parent}: image and label counts differ")
    to_t = lambda a: torch.from_numpy(np.array(a, copy=True))  # noqa: E731
    return ImageDataset(name, to_t(arrs["train_x"])[:, None], to_t(arrs["train_y"]).long(),
                        to_t(arrs["test_x"])[:, None], to_t(arrs["test_y"]).long(), classes,
                        source=str(files["train_x"].parent), citation=citation)


def load_mnist(root: Path, download: bool = True) -> ImageDataset:
    """MNIST (LeCun et al. 1998): 60 000 + 10 000 grey 28x28 digits."""
    return _load_idx_dataset("mnist", "MNIST", "MNIST", tuple(str(i) for i in range(10)), root, download,
                             "LeCun, Bottou, Bengio, Haffner (1998), Proc. IEEE 86(11):2278-2324")


def load_fashion_mnist(root: Path, download: bool = True) -> ImageDataset:
    """Fashion-MNIST (Xiao, Rasul, Vollgraf 2017): 60 000 + 10 000 grey 28x28 clothing images."""
    classes = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")
    return _load_idx_dataset("fashion-mnist", "FashionMNIST", "FashionMNIST", classes, root, download,
                             "Xiao, Rasul, Vollgraf (2017), arXiv:1708.07747")


def _tv_load(name: str, folder: str, root: Path, download: bool, make: Callable[[str, bool], object],
             hint: str):
    """Load a torchvision dataset from root or cache, downloading when allowed."""
    roots = [root, cache_dir() / "data"]
    for r in roots:
        if (r / folder).exists():
            try:
                return make(str(r), False)
            except RuntimeError:
                continue  # incomplete or corrupt folder: try the next, then download
    err: Exception | None = None
    if download:
        target = _download_target(root)
        result: list = []
        err = _download(target, folder, lambda: result.append(make(str(target), True)))
        if err is None:
            return result[0]
    raise _missing(name, roots, hint, err)


def load_cifar10(root: Path, download: bool = True) -> ImageDataset:
    """CIFAR-10 (Krizhevsky 2009) through torchvision: 50 000 + 10 000 colour 32x32 images."""
    import torchvision

    def make(r: str, dl: bool):
        tr = torchvision.datasets.CIFAR10(r, train=True, download=dl)
        te = torchvision.datasets.CIFAR10(r, train=False, download=dl)
        return tr, te

    tr, te = _tv_load("cifar10", "cifar-10-batches-py", root, download, make,
                      "put the extracted cifar-10-batches-py/ folder")
    to_x = lambda d: torch.from_numpy(np.ascontiguousarray(d.data)).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    return ImageDataset("cifar10", to_x(tr), torch.tensor(tr.targets), to_x(te), torch.tensor(te.targets),
                        tuple(tr.classes), source=str(root), citation="Krizhevsky (2009), tech. report, U. Toronto")


def load_stl10(root: Path, download: bool = True, unlabeled: bool = False) -> ImageDataset:
    """STL-10 (Coates, Ng, Lee 2011) through torchvision: 5 000 train, 8 000 test, 100 000 unlabelled 96x96.

    The unlabelled split (2.7 GB as uint8) is loaded only with ``unlabeled=True``.
    """
    import torchvision

    def make(r: str, dl: bool):
        tr = torchvision.datasets.STL10(r, split="train", download=dl)
        te = torchvision.datasets.STL10(r, split="test", download=dl)
        un = torchvision.datasets.STL10(r, split="unlabeled", download=dl) if unlabeled else None
        return tr, te, un

    tr, te, un = _tv_load("stl10", "stl10_binary", root, download, make, "put the extracted stl10_binary/ folder")
    return ImageDataset("stl10", torch.from_numpy(tr.data), torch.from_numpy(tr.labels).long(),
                        torch.from_numpy(te.data), torch.from_numpy(te.labels).long(), tuple(tr.classes),
                        x_unlabeled=torch.from_numpy(un.data) if un is not None else None, source=str(root),
                        citation="Coates, Ng, Lee (2011), AISTATS")


def load_digits(root: Path | None = None, download: bool = False) -> ImageDataset:
    """scikit-learn's 8x8 digits (1 797 images, shipped with scikit-learn): a fixed 80/20 split.

    Pixel values 0..16 are scaled to 0..255. Needs no download and no data root.
    """
    from sklearn.datasets import load_digits as _ld

    d = _ld()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (N, 1, 8, 8)
    y = d.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    n_train = int(round(0.8 * len(y)))
    tr, te = order[:n_train], order[n_train:]
    t = torch.from_numpy
    return ImageDataset("digits", t(x[tr]), t(y[tr]), t(x[te]), t(y[te]), tuple(str(i) for i in range(10)),
                        source="sklearn.datasets.load_digits",
                        citation="Alpaydin & Kaynak (1998), UCI Optical Recognition of Handwritten Digits")


def make_synthetic(n_train: int = 2000, n_test: int = 500, n_classes: int = 10, size: int = 16,
                   channels: int = 1, noise: float = 0.35, seed: int = 0) -> ImageDataset:
    """A seeded synthetic image set: each class is a smooth random prototype plus pixel noise.

    Linearly separable in expectation, learnable in seconds: for tests and smoke runs.
    """
    g = torch.Generator().manual_seed(seed)
    proto = torch.rand(n_classes, channels, size // 4, size // 4, generator=g)
    proto = torch.nn.functional.interpolate(proto, size=(size, size), mode="bilinear", align_corners=False)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, n_classes, (n,), generator=g)
        x = proto[y] + noise * torch.randn(n, channels, size, size, generator=g)
        return (x.clamp(0, 1) * 255).round().to(torch.uint8), y

    xtr, ytr = draw(n_train)
    xte, yte = draw(n_test)
    return ImageDataset("synthetic", xtr, ytr, xte, yte, tuple(str(i) for i in range(n_classes)),
                        source=f"ratenets.data.make_synthetic(seed={seed})")


def _load_gabor(root: Path | None = None, download: bool = False) -> ImageDataset:
    """Consecutive Gabor-sequence frames (seeded, generated; see :func:`ratenets.gabor.load_gabor`)."""
    from ratenets.gabor import load_gabor

    return load_gabor()


LOADERS: dict[str, Callable[..., ImageDataset]] = {
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
    "stl10": load_stl10,
    "digits": load_digits,
    "synthetic": lambda root=None, download=False: make_synthetic(),
    "gabor": _load_gabor,
}


#: (image shape, classes, training images, test images) of the registry's image sets, known before loading
#: them, so that a config too large for memory is refused before any data are read
SHAPES: dict[str, tuple[tuple[int, int, int], int, int, int]] = {
    "mnist": ((1, 28, 28), 10, 60000, 10000),
    "fashion-mnist": ((1, 28, 28), 10, 60000, 10000),
    "cifar10": ((3, 32, 32), 10, 50000, 10000),
    "digits": ((1, 8, 8), 10, 1438, 359),
    "synthetic": ((1, 16, 16), 10, 2000, 500),
}


def shape_stub(name: str):
    """An object with the sizes of dataset ``name`` (``image_shape``, ``num_classes``, ``len(x_train)``,
    ``len(x_test)``) for memory estimates, without loading it; None when unknown."""
    import types

    if name not in SHAPES:
        return None
    shape, classes, n_train, n_test = SHAPES[name]
    return types.SimpleNamespace(name=name, image_shape=shape, num_classes=classes, x_train=range(n_train),
                                 x_test=range(n_test))


def dataset_names() -> list[str]:
    return list(LOADERS)


def check_dataset_name(name: str) -> str:
    if name not in LOADERS:
        raise unknown_choice("dataset", name, LOADERS)
    return name


def load_dataset(name: str, data_root: str | os.PathLike | None = None, download: bool = True) -> ImageDataset:
    """Load a dataset by registry name from the resolved data root.

    Raises
    ------
    ConfigError
        For an unknown dataset name.
    DataError
        When the data cannot be found, downloaded or read.
    """
    check_dataset_name(name)
    return LOADERS[name](resolve_root(data_root), download=download)
