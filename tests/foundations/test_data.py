"""Dataset readers on tiny files the tests write in the published formats."""

from __future__ import annotations

import gzip
import pickle
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from foundations import data
from foundations.data import DataError


def _mnist_dir(root: Path, n: int = 7, gz: bool = True, prefix: str = "train") -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    folder = root / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    data.write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
    data.write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return images, labels


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_roundtrip_every_type(tmp_path: Path, dtype: type) -> None:
    array = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    path = data.write_idx(tmp_path / "a.idx", array)
    raw = path.read_bytes()
    assert raw[:2] == b"\x00\x00" and raw[3] == 3 and int.from_bytes(raw[4:8], "big") == 2
    back = data.read_idx(path)
    assert back.shape == (2, 3, 4) and back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, array)


def test_idx_header_is_big_endian_as_published(tmp_path: Path) -> None:
    # 2 int32 values 1 and 256, written by hand in the published layout.
    raw = bytes([0, 0, 0x0C, 1]) + (2).to_bytes(4, "big") + (1).to_bytes(4, "big") + (256).to_bytes(4, "big")
    (tmp_path / "h.idx").write_bytes(raw)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "h.idx"), [1, 256])


def test_load_mnist_reads_gz_and_plain_files(tmp_path: Path) -> None:
    images, labels = _mnist_dir(tmp_path / "a", gz=True)
    ds = data.load_mnist(tmp_path / "a", "train", verify=False)
    assert ds.x.shape == (7, 1, 28, 28) and ds.x.dtype == torch.uint8 and ds.y.dtype == torch.int64
    np.testing.assert_array_equal(ds.x[:, 0].numpy(), images)
    np.testing.assert_array_equal(ds.y.numpy(), labels)
    assert ds.classes == tuple("0123456789")
    _mnist_dir(tmp_path / "b", gz=False, prefix="t10k")
    assert len(data.load_mnist(tmp_path / "b", "test")) == 7  # plain files: no checksum to check


@pytest.mark.parametrize(
    "corrupt,match",
    [
        (lambda raw: raw[:-5], r"header says shape \(7, 28, 28\).*truncated or corrupted"),
        (lambda raw: raw + b"\x00", r"5504 bytes in all\), but the file has 5505 bytes"),
        (lambda raw: b"\x01\x02" + raw[2:], "not an IDX file"),
        (lambda raw: raw[:2] + b"\x07" + raw[3:], "unknown IDX type code 0x07"),
        (lambda raw: raw[:6], "truncated IDX header"),
    ],
)
def test_corrupted_idx_is_refused_with_the_file_named(tmp_path: Path, corrupt, match: str) -> None:
    _mnist_dir(tmp_path, gz=False)
    path = tmp_path / "mnist" / "train-images-idx3-ubyte"
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(DataError, match=match) as err:
        data.load_mnist(tmp_path, "train")
    assert str(path) in str(err.value)


def test_truncated_gzip_is_refused(tmp_path: Path) -> None:
    _mnist_dir(tmp_path)
    path = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(DataError, match=r"cannot read .*train-labels"):
        data.load_mnist(tmp_path, verify=False)


def test_label_count_must_match_images(tmp_path: Path) -> None:
    _mnist_dir(tmp_path)
    data.write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", np.zeros(6, np.uint8))
    with pytest.raises(DataError, match="expected 7 labels"):
        data.load_mnist(tmp_path, verify=False)


def test_checksum_mismatch_names_file_and_both_hashes(tmp_path: Path) -> None:
    _mnist_dir(tmp_path)
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    with pytest.raises(DataError, match=r"MD5 [0-9a-f]{32}, expected f68b3c2dcbeaaa9fbdd348bbdeb94873") as err:
        data.load_mnist(tmp_path, "train")  # our tiny file is not the published one
    assert str(path) in str(err.value)


def test_missing_files_offline_say_where_to_put_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match=r"MNIST files not found in .*mnist \(download=False\)\. Put t10k-images"):
        data.load_mnist(tmp_path, "test")

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match=r"download failed: .*no network.*Put train-images-idx3-ubyte.gz there"):
        data.load_fashion_mnist(tmp_path, "train", download=True)
    assert not list((tmp_path / "fashion_mnist").iterdir())  # no partial file left behind


def test_download_checks_md5_before_keeping_the_file(tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(b"hello data")
    good = data.md5sum(source)
    dest = data.download(source.as_uri(), tmp_path / "out" / "f.bin", md5=good)
    assert dest.read_bytes() == b"hello data"
    with pytest.raises(DataError, match=r"has MD5 .* expected 0{32}; not kept"):
        data.download(source.as_uri(), tmp_path / "out" / "g.bin", md5="0" * 32)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["f.bin"]


def test_split_name_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        data.load_mnist(tmp_path, "val")
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        data.load_cifar10(tmp_path, "valid")


def _cifar_batches(folder: Path, n: int = 5) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, n)
        data.write_cifar_batch(folder / name, images, labels)
        written[name] = (images, labels)
    return written


def test_cifar_reader_matches_what_was_written(tmp_path: Path) -> None:
    written = _cifar_batches(tmp_path / "cifar-10-batches-py")
    train = data.load_cifar10(tmp_path, "train", verify=False)
    test = data.load_cifar10(tmp_path, "test", verify=False)
    assert train.x.shape == (25, 3, 32, 32) and train.x.dtype == torch.uint8 and len(test) == 5
    np.testing.assert_array_equal(train.x[5:10].numpy(), written["data_batch_2"][0])
    np.testing.assert_array_equal(test.y.numpy(), written["test_batch"][1])
    assert train.classes[3] == "cat"


def test_cifar_layout_is_channel_major_rows(tmp_path: Path) -> None:
    """A published row is 1024 red, then 1024 green, then 1024 blue values, each row-major."""
    row = np.zeros(3072, np.uint8)
    row[1024 + 32 * 2 + 5] = 200  # green channel, y=2, x=5
    with open(tmp_path / "b", "wb") as f:
        pickle.dump({b"data": row[None], b"labels": [4]}, f, protocol=2)
    images, labels = data.read_cifar_batch(tmp_path / "b")
    assert images[0, 1, 2, 5] == 200 and images.sum() == 200 and labels.tolist() == [4]


def test_cifar_archive_is_extracted(tmp_path: Path) -> None:
    _cifar_batches(tmp_path / "staging" / "cifar-10-batches-py")
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "staging" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    assert len(data.load_cifar10(tmp_path, "test", verify=False)) == 5
    assert (tmp_path / "cifar-10-batches-py" / "data_batch_3").is_file()


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize(
    "payload,match",
    [
        (b"not a pickle at all", "cannot read CIFAR batch"),
        (pickle.dumps({b"data": _Evil(), b"labels": [1]}), "refusing to load builtins.print"),
        (pickle.dumps([1, 2, 3]), "expected a pickled dict, got list"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}), "needs 'data' and 'labels'"),
        (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}), r"uint8 \[n, 3072\]"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "2 images but 1 labels"),
        (pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}), r"labels must be in \[0, 10\)"),
    ],
)
def test_bad_cifar_batches_are_refused_without_running_code(
    tmp_path: Path, capsys: pytest.CaptureFixture, payload: bytes, match: str
) -> None:
    (tmp_path / "bad").write_bytes(payload)
    with pytest.raises(DataError, match=match):
        data.read_cifar_batch(tmp_path / "bad")
    assert "pwned" not in capsys.readouterr().out


def test_cifar_checksum_is_checked(tmp_path: Path) -> None:
    _cifar_batches(tmp_path / "cifar-10-batches-py")
    with pytest.raises(DataError, match="test_batch is corrupted or not the published file"):
        data.load_cifar10(tmp_path, "test")


def test_default_root_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SANDBOX_DATA", str(tmp_path))
    assert data.default_root() == tmp_path
    monkeypatch.delenv("SANDBOX_DATA")
    assert data.default_root() == Path("data")


def test_gzip_idx_is_really_compressed(tmp_path: Path) -> None:
    path = data.write_idx(tmp_path / "z.gz", np.zeros((100, 28, 28), np.uint8))
    assert path.stat().st_size < 2000
    with gzip.open(path) as f:
        assert f.read(4) == b"\x00\x00\x08\x03"
