"""Dataset readers: MNIST and Fashion-MNIST (IDX files), CIFAR-10 (python pickles).

Files are read from a directory (``root/mnist``, ``root/fashion_mnist``,
``root/cifar-10-batches-py``); with ``download=True`` a missing file is fetched from the
dataset's home and its MD5 checked against the published one before it is kept. Without the
files and without a network, the error says which files to put where.

    train = load_mnist("data", "train", download=True)      # Labelled: x [60000, 1, 28, 28] uint8
    test = load_cifar10("data", "test").to("cuda")           # x [10000, 3, 32, 32] uint8, y [10000]

The readers check the format as they go (magic number, dimensions, sizes, dtypes) and refuse
a truncated or corrupted file with an error naming it. CIFAR pickles are read with an
unpickler that only rebuilds NumPy arrays and plain containers, so a tampered file cannot run
code. Images stay ``uint8`` (the encoders scale by 1/255); labels are ``int64``.

Default root: ``$SANDBOX_DATA`` if set, else ``./data``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from foundations.batches import Labelled

__all__ = [
    "CIFAR10_CLASSES",
    "FASHION_MNIST_CLASSES",
    "DataError",
    "default_root",
    "download",
    "load_cifar10",
    "load_fashion_mnist",
    "load_mnist",
    "md5sum",
    "read_cifar_batch",
    "read_idx",
    "write_cifar_batch",
    "write_idx",
]


class DataError(ValueError):
    """A dataset file is missing, corrupted or not in the expected format."""


def default_root() -> Path:
    """``$SANDBOX_DATA`` if set, else ``./data``."""
    return Path(os.environ.get("SANDBOX_DATA", "data"))


# ----------------------------------------------------------------------------------- checksums
def md5sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex MD5 of a file (the checksum the datasets publish)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: str | os.PathLike, md5: str | None = None, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` atomically, checking ``md5`` before the file is kept.

    Raises :class:`DataError` when the checksum differs (the partial file is deleted) and
    ``OSError`` (``urllib.error.URLError``) when the network fails.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, out)
        if md5 is not None and (got := md5sum(tmp)) != md5:
            raise DataError(f"download of {url} has MD5 {got}, expected {md5}; not kept")
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


_fetch = download  # for the loaders, whose ``download`` flag shadows the function's name


def _verify(path: Path, md5: str | None) -> None:
    if md5 is not None and (got := md5sum(path)) != md5:
        raise DataError(
            f"{path} is corrupted or not the published file: MD5 {got}, expected {md5}. "
            "Delete it and download again (download=True), or pass verify=False for your own files."
        )


# ---------------------------------------------------------------------------------------- IDX
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read {path}: {e}") from e


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) into an array of its stored shape and type.

    Format (LeCun's MNIST page): two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, then each dimension as a
    big-endian uint32, then the data in C order.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise DataError(f"{path}: unknown IDX type code 0x{code:02x}; known {sorted(hex(c) for c in _IDX_DTYPES)}")
    if ndim < 1 or len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header ({ndim} dimensions, {len(raw)} bytes)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    expected = 4 + 4 * ndim + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(
            f"{path}: IDX header says shape {shape} of {dtype} ({expected} bytes in all), "
            f"but the file has {len(raw)} bytes (truncated or corrupted)"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``)."""
    path = Path(path)
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(f"IDX stores uint8, int8, int16, int32, float32 or float64, got {array.dtype}")
    code = codes[native]
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    body = np.ascontiguousarray(array, dtype=_IDX_DTYPES[code]).tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + body)
    return path


# ------------------------------------------------------------------------------ MNIST-like sets
@dataclass(frozen=True)
class _IdxSet:
    name: str
    folder: str
    urls: tuple[str, ...]
    md5: dict[str, str]
    classes: tuple[str, ...]


_MNIST = _IdxSet(
    "MNIST",
    "mnist",
    ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    tuple(str(d) for d in range(10)),
)
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
_FASHION = _IdxSet(
    "Fashion-MNIST",
    "fashion_mnist",
    ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    FASHION_MNIST_CLASSES,
)


def _split_prefix(split: str) -> str:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return "train" if split == "train" else "t10k"


def _offline_error(name: str, where: Path, files: list[str], urls: tuple[str, ...], reason: str) -> DataError:
    listing = ", ".join(files)
    return DataError(
        f"{name} files not found in {where} ({reason}). Put {listing} there "
        f"(from {' or '.join(urls)}), or call with download=True on a machine with network access."
    )


def _find_or_fetch(ds: _IdxSet, folder: Path, filename: str, download_missing: bool, verify: bool) -> Path:
    gz = folder / filename
    plain = folder / filename.removesuffix(".gz")
    if gz.is_file():
        if verify:
            _verify(gz, ds.md5[filename])
        return gz
    if plain.is_file():  # decompressed by the user: no published checksum to compare with
        return plain
    if not download_missing:
        raise _offline_error(ds.name, folder, [filename], ds.urls, "download=False")
    errors = []
    for base in ds.urls:
        try:
            return _fetch(base + filename, gz, ds.md5[filename] if verify else None)
        except (OSError, DataError) as e:
            errors.append(f"{base}: {e}")
    raise _offline_error(ds.name, folder, [filename], ds.urls, "download failed: " + "; ".join(errors))


def _load_idx_set(ds: _IdxSet, root: str | os.PathLike | None, split: str, download: bool, verify: bool) -> Labelled:
    prefix = _split_prefix(split)
    folder = (Path(root) if root is not None else default_root()) / ds.folder
    images_file = _find_or_fetch(ds, folder, f"{prefix}-images-idx3-ubyte.gz", download, verify)
    labels_file = _find_or_fetch(ds, folder, f"{prefix}-labels-idx1-ubyte.gz", download, verify)
    images, labels = read_idx(images_file), read_idx(labels_file)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{images_file}: expected uint8 images [n, rows, cols], got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{labels_file}: expected {len(images)} labels (one per image), got shape {labels.shape}"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= len(ds.classes)):
        raise DataError(f"{labels_file}: labels must be in [0, {len(ds.classes)}), got {labels.min()}..{labels.max()}")
    x = torch.from_numpy(images).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return Labelled(x, y, ds.classes)


def load_mnist(
    root: str | os.PathLike | None = None, split: str = "train", download: bool = False, verify: bool = True
) -> Labelled:
    """MNIST ``split`` ("train": 60,000, "test": 10,000): ``x [n, 1, 28, 28]`` uint8, ``y [n]``.

    Reads ``root/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``; ``verify`` checks the
    ``.gz`` files' MD5 against the published ones (turn off for your own files in this format).
    """
    return _load_idx_set(_MNIST, root, split, download, verify)


def load_fashion_mnist(
    root: str | os.PathLike | None = None, split: str = "train", download: bool = False, verify: bool = True
) -> Labelled:
    """Fashion-MNIST, same layout as :func:`load_mnist` under ``root/fashion_mnist``."""
    return _load_idx_set(_FASHION, root, split, download, verify)


# ------------------------------------------------------------------------------------ CIFAR-10
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_CIFAR_ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
_CIFAR_FOLDER = "cifar-10-batches-py"
_CIFAR_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}

_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds NumPy arrays and plain containers only; any other global is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only NumPy arrays are allowed)")
        return super().find_class(module, name)


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch: images ``[n, 3, 32, 32]`` uint8 and labels ``[n]`` int64.

    A batch is a pickled dict with ``data`` (``[n, 3072]`` uint8, channel-major rows) and
    ``labels`` (n ints in [0, 10)); keys may be bytes (the published files) or str.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            entry = _ArrayUnpickler(f, encoding="bytes").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise DataError(f"cannot read CIFAR batch {path}: {e}") from e
    if not isinstance(entry, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(entry).__name__}")
    entry = {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}
    if "data" not in entry or "labels" not in entry:
        raise DataError(f"{path}: a CIFAR batch needs 'data' and 'labels', found keys {sorted(map(str, entry))}")
    data = np.asarray(entry["data"])
    labels = np.asarray(entry["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: 'data' must be uint8 [n, 3072], got {data.dtype} {list(data.shape)}")
    if labels.shape != (data.shape[0],):
        raise DataError(f"{path}: {data.shape[0]} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path}: labels must be in [0, 10), got {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32).copy(), labels


def _extract_cifar(archive: Path, root: Path) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(root, filter="data")


def load_cifar10(
    root: str | os.PathLike | None = None, split: str = "train", download: bool = False, verify: bool = True
) -> Labelled:
    """CIFAR-10 ``split`` ("train": 50,000, "test": 10,000): ``x [n, 3, 32, 32]`` uint8, ``y [n]``.

    Reads ``root/cifar-10-batches-py/{data_batch_1..5, test_batch}``; if they are missing but
    ``root/cifar-10-python.tar.gz`` is there (or ``download=True`` fetches it), it is verified
    and extracted. ``verify`` checks each batch's published MD5.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root) if root is not None else default_root()
    folder = root / _CIFAR_FOLDER
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    if not all((folder / n).is_file() for n in names):
        archive = root / "cifar-10-python.tar.gz"
        if not archive.is_file():
            if not download:
                raise _offline_error("CIFAR-10", folder, names, (_CIFAR_URL,), "download=False")
            try:
                _fetch(_CIFAR_URL, archive, _CIFAR_ARCHIVE_MD5 if verify else None)
            except (OSError, DataError) as e:
                raise _offline_error("CIFAR-10", folder, names, (_CIFAR_URL,), f"download failed: {e}") from e
        elif verify:
            _verify(archive, _CIFAR_ARCHIVE_MD5)
        _extract_cifar(archive, root)
    xs, ys = [], []
    for n in names:
        path = folder / n
        if not path.is_file():
            raise _offline_error("CIFAR-10", folder, [n], (_CIFAR_URL,), "missing after extraction")
        if verify:
            _verify(path, _CIFAR_MD5[n])
        x, y = read_cifar_batch(path)
        xs.append(x)
        ys.append(y)
    return Labelled(torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)), CIFAR10_CLASSES)


def write_cifar_batch(path: str | os.PathLike, images: np.ndarray, labels: np.ndarray) -> Path:
    """Write images ``[n, 3, 32, 32]`` uint8 and labels ``[n]`` as a CIFAR-10 python batch."""
    images = np.asarray(images, dtype=np.uint8)
    if images.ndim != 4 or images.shape[1:] != (3, 32, 32):
        raise ValueError(f"images must be [n, 3, 32, 32], got {list(images.shape)}")
    entry = {b"data": images.reshape(len(images), -1), b"labels": [int(v) for v in labels]}
    buffer = io.BytesIO()
    pickle.dump(entry, buffer, protocol=2)
    Path(path).write_bytes(buffer.getvalue())
    return Path(path)
