"""Every way a user's file can be wrong is one UserError line naming the file and what is
wrong with it, with the user's folder left exactly as it was (no temporary files, nothing
unpacked, nothing rewritten): edge lists, MNIST-style IDX files (plain and .gz), CIFAR-10
python batches, text for shakespeare; and the numeric settings of the data loaders and
partitions that pass a plain ``> 0`` check but cannot work (nan, inf, out of range)."""

from __future__ import annotations

import builtins
import gzip
import hashlib
import io
import os
import pickle
import struct
import subprocess

import numpy as np
import pytest

from compoptim.data import load_dataset
from compoptim.data.digits import load_digits
from compoptim.data.partition import dirichlet_partition
from compoptim.data.shakespeare import load_shakespeare
from compoptim.data.synthetic import load_synthetic
from compoptim.errors import UserError
from compoptim.topology import from_edges
from tests.conftest import tool

# ---------------------------------------------------------------- helpers

_open = builtins.open  # the real one, also while make_unreadable replaces it


def snapshot(folder) -> dict[str, bytes | None]:
    """Every entry under ``folder`` (hidden ones too): file bytes, a link's target, None for a directory."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), folder)] = None
        for f in filenames:
            path = os.path.join(dirpath, f)
            out[os.path.relpath(path, folder)] = (b"-> " + os.fsencode(os.readlink(path)) if os.path.islink(path)
                                                  else _read(path))
    return out


def _read(path) -> bytes:
    mode = os.stat(path).st_mode
    os.chmod(path, mode | 0o400)
    try:
        with _open(path, "rb") as f:
            return f.read()
    finally:
        os.chmod(path, mode)


def make_unreadable(path, monkeypatch) -> None:
    """``chmod 000``; where that does not stop reads (tests run as root), opening the path
    raises the PermissionError a non-root user would get."""
    os.chmod(path, 0)
    if not os.geteuid():
        real = builtins.open
        target = os.fspath(path)

        def refuse(file, *args, **kwargs):
            if isinstance(file, (str, bytes, os.PathLike)) and os.fspath(file) == target:
                raise PermissionError(13, "Permission denied", target)
            return real(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", refuse)
        monkeypatch.setattr(io, "open", refuse)


def make_unlistable(folder, monkeypatch) -> None:
    """``chmod 000`` on a folder; as root, ``os.access`` answers as it would for another user."""
    os.chmod(folder, 0)
    if not os.geteuid():
        real = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if os.fspath(path) == os.fspath(folder)
                            else real(path, mode, **kw))


def one_line_error(call) -> str:
    with pytest.raises(UserError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- edge lists


def edges(tmp_path, data: bytes, n: int = 3) -> tuple[str, str]:
    """(the message from_edges gives for a file holding ``data``, the file's path); the file is unchanged."""
    path = tmp_path / "g.txt"
    path.write_bytes(data)
    message = one_line_error(lambda: from_edges(n, path=str(path)))
    assert path.read_bytes() == data and sorted(os.listdir(tmp_path)) == ["g.txt"]
    return message, str(path)


@pytest.mark.parametrize("data, what", [
    (b"0 1\n\xff\xfe 2\n", "is not UTF-8 text (byte 0xff on line 2)"),
    (b"0 1\n1 2 # caf\xe9 latin-1\n", "is not UTF-8 text (byte 0xe9 on line 2)"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is a binary file, not text (a NUL byte on line 3)"),
    (b"0 1\n1\x002\n", "is a binary file, not text (a NUL byte on line 2)"),
], ids=["invalid-utf8", "latin1", "png", "nul"])
def test_an_edge_list_that_is_not_text_is_named(tmp_path, data, what):
    message, path = edges(tmp_path, data)
    assert message == f"topology.path: the edge list {path} {what}; it needs one 'i j' edge per line"


@pytest.mark.parametrize("line, bad", [
    ("١ ٢", "'١'"),         # Arabic-Indic digits: str.isdigit says yes and int() reads them
    ("０ １", "'０'"),      # fullwidth digits
    ("0 ²", "'²'"),          # superscript: isdigit says yes, int() raises
    ("1.5 2", "'1.5'"),
    ("0 1e1", "'1e1'"),
    ("0x1 2", "'0x1'"),
    ("0 --1", "'--1'"),      # lstrip('-') made this look like a number
    ("+1 2", "'+1'"),
], ids=["arabic-indic", "fullwidth", "superscript", "float", "exponent", "hex", "double-minus", "plus"])
def test_an_edge_list_node_that_is_not_a_plain_number_is_named(tmp_path, line, bad):
    message, path = edges(tmp_path, f"0 1\n{line}\n".encode())
    assert message == (f"edge list {path}, line 2: expected two node numbers 'i j'; {bad} is not a whole number "
                       f"written in digits 0-9 (got {line!r})")


@pytest.mark.parametrize("line, what", [
    ("0", "got 1 fields '0'"),
    ("0 1 2 3", "got 4 fields '0 1 2 3'"),
    ("0 1 0.5", "got 3 fields '0 1 0.5' (weights are not read: topology.weights sets them)"),
], ids=["one", "four", "weighted"])
def test_an_edge_list_line_with_other_than_two_fields_is_named(tmp_path, line, what):
    message, path = edges(tmp_path, f"{line}\n".encode())
    assert message == f"edge list {path}, line 1: expected two node numbers 'i j'; {what}"


@pytest.mark.parametrize("line, what", [
    ("-1 0", "edge (-1, 0) names a node outside 0..2 (the run has n=3 nodes)"),
    ("0 3", "edge (0, 3) names a node outside 0..2 (the run has n=3 nodes)"),
    ("0 99999999999999999999999",
     "edge (0, 99999999999999999999999) names a node outside 0..2 (the run has n=3 nodes)"),
    ("1 1", "self-loop (1, 1); self-weights come from the weight rule, list only edges"),
], ids=["negative", "too-large", "huge", "self-loop"])
def test_an_edge_list_edge_outside_the_nodes_is_named(tmp_path, line, what):
    message, path = edges(tmp_path, f"0 1\n{line}\n".encode())
    assert message == f"edge list {path}, line 2: {what}"


@pytest.mark.parametrize("data, what", [
    (b"", "is empty"),
    (b"\n  \n\t\n", "is empty"),
    (b"# no edges yet\n\n", "has no edges (only comments and blank lines)"),
], ids=["zero-bytes", "blank", "comments"])
def test_an_edge_list_without_edges_is_named(tmp_path, data, what):
    message, path = edges(tmp_path, data)
    assert message == (f"topology.path: the edge list {path} {what}; it needs a connected graph over the 3 nodes, "
                       f"one 'i j' edge per line")


@pytest.mark.parametrize("kind", ["directory", "unreadable", "missing"])
def test_an_edge_list_path_that_cannot_be_read_is_named(tmp_path, monkeypatch, kind):
    path = tmp_path / "g.txt"
    if kind == "directory":
        path.mkdir()
        expected = f"topology.path: the edge list {path} is a directory; give the path of the edge-list file"
    elif kind == "unreadable":
        path.write_text("0 1\n1 2\n")
        make_unreadable(path, monkeypatch)
        expected = f"topology.path: cannot read the edge list {path} (Permission denied)"
    else:
        expected = f"topology.path: cannot read the edge list {path} (No such file or directory)"
    assert one_line_error(lambda: from_edges(3, path=str(path))) == expected


def test_an_edge_list_with_a_byte_order_mark_and_crlf_is_read(tmp_path):
    path = tmp_path / "g.txt"
    path.write_bytes("\ufeff0 1\r\n1,2\r\n".encode())
    assert from_edges(3, path=str(path)).n == 3


@pytest.mark.slow  # a compoptim-run process
def test_the_cli_prints_a_damaged_edge_list_as_one_line(tmp_path):
    graph = tmp_path / "g.txt"
    graph.write_bytes(b"0 1\n1 \xff\n")
    cli = subprocess.run([tool("compoptim-run"), "backend=local", "backend.nodes=2", "model=mlp", "model.hidden=[8]",
                          "topology=from_edges", f"topology.path={graph}", "trainer.epochs=1", "hydra.run.dir=tmp"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert cli.returncode == 2, cli.stderr
    assert cli.stderr.strip().splitlines() == [
        f"compoptim-run: error: topology.path: the edge list {graph} is not UTF-8 text (byte 0xff on line 2); "
        f"it needs one 'i j' edge per line"]
    assert graph.read_bytes() == b"0 1\n1 \xff\n"


# ---------------------------------------------------------------- MNIST / Fashion-MNIST IDX files

IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """An IDX file of unsigned bytes (magic 0x000008<ndim>, then the sizes big-endian, then the data)."""
    magic = 0x0800 | array.ndim if magic is None else magic
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def good_idx(name: str) -> bytes:
    count = 6 if name.startswith("train") else 4
    rng = np.random.default_rng(0)
    return idx_bytes(rng.integers(0, 256, (count, 28, 28)) if "images" in name else rng.integers(0, 10, count))


def mnist_folder(tmp_path, damaged: str, data: bytes | None, gz: bool):
    """<tmp>/MNIST/raw with the four IDX files (each as .gz if ``gz``), ``damaged`` holding ``data`` instead."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in IDX:
        content = data if name == damaged else good_idx(name)
        if content is not None:
            if gz:
                (raw / f"{name}.gz").write_bytes(gzip.compress(content, mtime=0))
            else:
                (raw / name).write_bytes(content)
    return raw


def mnist_error(tmp_path, raw) -> str:
    before = snapshot(tmp_path)
    message = one_line_error(lambda: load_dataset({"name": "mnist", "root": str(tmp_path), "download": False}))
    assert snapshot(tmp_path) == before  # nothing unpacked, no temporary file, nothing rewritten
    return message


IMAGES, LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
BAD_IDX = [
    (IMAGES, struct.pack(">I", 0x1234) + bytes(20),
     "not an IDX file of unsigned bytes (magic 0x00001234, expected 0x00000803)"),
    (IMAGES, b"PK\x03\x04" + bytes(20), "not an IDX file of unsigned bytes (magic 0x504b0304, expected 0x00000803)"),
    (IMAGES, idx_bytes(np.zeros((6, 28, 28)), magic=0x0D03),
     "not an IDX file of unsigned bytes (magic 0x00000d03, expected 0x00000803)"),
    (IMAGES, idx_bytes(np.zeros((6, 784))),
     "an IDX file with 2 dimensions (magic 0x00000802); images need 3 (images x rows x cols, magic 0x00000803)"),
    (LABELS, idx_bytes(np.zeros((6, 1))),
     "an IDX file with 2 dimensions (magic 0x00000802); labels need 1 (labels, magic 0x00000801)"),
    (IMAGES, idx_bytes(np.zeros((6, 28, 28)))[:1000],
     "is truncated: its header gives 6 x 28 x 28 images (4720 bytes with the header), the file has 1000 bytes"),
    (LABELS, idx_bytes(np.zeros(6)) + b"\0\0",
     "is too long: its header gives 6 labels (14 bytes with the header), the file has 16 bytes"),
    (IMAGES, idx_bytes(np.zeros((6, 28, 28)))[:10], "is truncated: 10 bytes, shorter than its 16-byte IDX header"),
    (IMAGES, b"\0\0\x08", "is truncated: 3 bytes, shorter than the 4-byte IDX magic number"),
    (LABELS, b"", "is empty (0 bytes); expected an IDX file of labels"),
    (IMAGES, idx_bytes(np.zeros((0, 28, 28))), "holds no images (its header gives 0 x 28 x 28)"),
]


@pytest.mark.parametrize("gz", [False, True], ids=["idx", "idx.gz"])
@pytest.mark.parametrize("damaged, data, what", BAD_IDX, ids=[
    "magic", "zip", "float-type", "images-2d", "labels-2d", "truncated", "too-long", "short-header", "short-magic",
    "zero-bytes", "no-images"])
def test_a_damaged_idx_file_is_named(tmp_path, gz, damaged, data, what):
    raw = mnist_folder(tmp_path, damaged, data, gz)
    shown = f"{raw / damaged}.gz (unpacked)" if gz else str(raw / damaged)
    separator = "" if what.startswith("is ") or what.startswith("holds ") else ":"
    assert mnist_error(tmp_path, raw) == f"dataset=mnist: {shown}{separator} {what}"


@pytest.mark.parametrize("damage, what", [
    (lambda gz: b"hello, world", "not a gzip file (it starts with 0x6865, not 0x1f8b); replace it with the "
                                 "published .gz or the unpacked IDX file"),
    (lambda gz: gz[: len(gz) // 2], "truncated gzip file (it ends before the end of the compressed data); "
                                    "replace it with the complete .gz"),
    (lambda gz: gz[:-8] + bytes(8), "damaged gzip file (CRC check failed 0x0 != {crc}); replace it with the "
                                    "published .gz"),
    (lambda gz: gz[:10] + b"\xff" + gz[11:], "damaged gzip data (Error -3 while decompressing data: invalid block "
                                             "type); replace it with the published .gz"),  # deflate block type 3
    (lambda gz: b"", "is empty (0 bytes); expected a gzip file"),
], ids=["not-gzip", "truncated", "crc", "corrupt-stream", "zero-bytes"])
@pytest.mark.parametrize("damaged", ["train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
def test_a_damaged_gzip_is_named_and_nothing_is_left_unpacked(tmp_path, damage, what, damaged):
    raw = mnist_folder(tmp_path, damaged, None, gz=True)
    packed = gzip.compress(good_idx(damaged), mtime=0)
    broken = damage(packed)
    (raw / f"{damaged}.gz").write_bytes(broken)
    message = mnist_error(tmp_path, raw)  # the other three .gz files were good: none of them is unpacked either
    if "{crc}" in what:
        what = what.format(crc=hex(int.from_bytes(packed[-8:-4], "little")))
    separator = " " if what.startswith("is ") else ": "
    assert message == f"dataset=mnist: {raw / damaged}.gz{separator}{what}"


@pytest.mark.parametrize("gz", [False, True], ids=["idx", "idx.gz"])
def test_an_idx_path_that_is_a_directory_is_named(tmp_path, gz):
    raw = mnist_folder(tmp_path, IMAGES, None, gz)
    (raw / (f"{IMAGES}.gz" if gz else IMAGES)).mkdir()
    what = (f"{raw / IMAGES}.gz is a directory, not a gzip file" if gz
            else f"{raw / IMAGES} is a directory, not an IDX file")
    assert mnist_error(tmp_path, raw) == f"dataset=mnist: {what}"


@pytest.mark.parametrize("gz", [False, True], ids=["idx", "idx.gz"])
def test_an_unreadable_idx_file_is_named(tmp_path, monkeypatch, gz):
    raw = mnist_folder(tmp_path, None, None, gz)
    path = raw / (f"{LABELS}.gz" if gz else LABELS)
    make_unreadable(path, monkeypatch)
    before = snapshot(tmp_path)
    message = one_line_error(lambda: load_dataset({"name": "mnist", "root": str(tmp_path)}))
    assert message == f"dataset=mnist: cannot read {path} (Permission denied)"
    assert snapshot(tmp_path) == before


def test_a_gz_in_a_folder_that_cannot_be_written_is_named(tmp_path, monkeypatch):
    raw = mnist_folder(tmp_path, None, None, gz=True)
    os.chmod(raw, 0o555)
    if not os.geteuid():  # root writes anyway: the temporary file's creation fails as it would for a user
        real = builtins.open

        def refuse(file, mode="r", *args, **kwargs):
            if "w" in mode and os.path.dirname(os.fspath(file)) == str(raw):
                raise PermissionError(13, "Permission denied", os.fspath(file))
            return real(file, mode, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", refuse)
    try:
        message = mnist_error(tmp_path, raw)
    finally:
        os.chmod(raw, 0o755)
    assert message == (f"dataset=mnist: cannot unpack {raw / IDX[0]}.gz into {raw} (Permission denied); unpack it "
                       f"yourself or make the folder writable")


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_an_unreadable_data_folder_is_not_called_missing(tmp_path, monkeypatch, dataset):
    folder = mnist_folder(tmp_path, None, None, gz=False) if dataset == "mnist" else cifar_folder(tmp_path)
    make_unlistable(folder, monkeypatch)
    try:
        message = one_line_error(lambda: load_dataset({"name": dataset, "root": str(tmp_path)}))
    finally:
        os.chmod(folder, 0o755)
    assert message == f"dataset={dataset}: cannot read the folder {folder} (Permission denied)"


def test_idx_image_and_label_counts_must_match(tmp_path):
    raw = mnist_folder(tmp_path, LABELS, idx_bytes(np.zeros(5)), gz=True)
    assert mnist_error(tmp_path, raw) == (
        f"dataset=mnist: {raw / IMAGES} holds 6 images but {raw / LABELS} holds 5 labels; they must be the same "
        f"set (one label per image)")


def test_an_idx_label_outside_the_classes_is_named(tmp_path):
    raw = mnist_folder(tmp_path, "t10k-labels-idx1-ubyte", idx_bytes(np.array([0, 1, 12, 3])), gz=False)
    assert mnist_error(tmp_path, raw) == (
        f"dataset=mnist: {raw / 't10k-labels-idx1-ubyte'}: label 12 at position 2 is outside 0..9")


def test_only_the_missing_idx_files_are_called_missing(tmp_path):
    raw = mnist_folder(tmp_path, "t10k-images-idx3-ubyte", None, gz=False)
    assert mnist_error(tmp_path, raw) == (
        f"dataset=mnist: files not found; looked in {raw} for t10k-images-idx3-ubyte; put the IDX files "
        f"(optionally .gz) there or set dataset.download=true")


def test_good_gz_files_are_unpacked_without_a_trace(tmp_path):
    raw = mnist_folder(tmp_path, None, None, gz=True)
    data = load_dataset({"name": "mnist", "root": str(tmp_path)})
    assert data.x_train.shape == (6, 1, 28, 28)
    assert sorted(os.listdir(raw)) == sorted([*IDX, *(f"{n}.gz" for n in IDX)])  # no .tmp left
    assert all((raw / n).read_bytes() == good_idx(n) for n in IDX)


# ---------------------------------------------------------------- CIFAR-10 python batches

CIFAR = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch", "batches.meta")


def batch(count=4, **changes) -> dict:
    rng = np.random.default_rng(0)
    entry = {"batch_label": "b", "labels": rng.integers(0, 10, count).tolist(),
             "data": rng.integers(0, 256, (count, 3072), dtype=np.uint8)}
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


def cifar_folder(tmp_path, damaged: str | None = None, data: bytes | None = None):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in CIFAR:
        entry = {"label_names": [f"c{i}" for i in range(10)]} if name == "batches.meta" else batch()
        (folder / name).write_bytes(data if name == damaged else pickle.dumps(entry, protocol=2))
    return folder


@pytest.fixture
def no_md5(monkeypatch):
    """As in test_datasets: the written batches are not the published ones, so torchvision's
    md5 check becomes a presence check; everything else reads them as it would the real files."""
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))


def cifar_error(tmp_path) -> str:
    before = snapshot(tmp_path)
    message = one_line_error(lambda: load_dataset({"name": "cifar10", "root": str(tmp_path)}))
    assert snapshot(tmp_path) == before
    return message


GOOD_BATCH = pickle.dumps(batch(), protocol=2)
DATA_SHAPE = ": 'data' must be a uint8 array of shape (N, 3072) (rows of 3x32x32 pixels)"
BAD_BATCHES = [
    ("data_batch_3", GOOD_BATCH[: len(GOOD_BATCH) // 2], f"is truncated (its pickle ends early; "
                                                         f"{len(GOOD_BATCH) // 2} bytes)"),
    ("data_batch_3", b"", "is empty (0 bytes)"),
    ("test_batch", b"\x00\x01garbage", "is not a pickled CIFAR-10 batch (UnpicklingError: invalid load key, '\\x00'.)"),
    ("data_batch_1", pickle.dumps([1, 2, 3]), ": holds a pickled list, not a CIFAR-10 batch dict"),
    ("data_batch_2", pickle.dumps(batch(labels=None)), ": a batch needs 'data' and 'labels' entries; it has "
                                                      "'batch_label', 'data'"),
    ("data_batch_5", pickle.dumps(batch(data=np.zeros((4, 1024), np.uint8))),
     f"{DATA_SHAPE}; got a uint8 array of shape (4, 1024)"),
    ("data_batch_5", pickle.dumps(batch(data=np.zeros((4, 3072), np.float32))),
     f"{DATA_SHAPE}; got a float32 array of shape (4, 3072)"),
    ("test_batch", pickle.dumps(batch(labels=[1, 2, 3])),
     ": 'labels' must give one label per image; 4 images, 3 labels"),
    ("data_batch_4", pickle.dumps(batch(labels=[0, 1, 10, 2])), ": label 10 is not a class number 0..9"),
    ("data_batch_4", pickle.dumps(batch(labels=[0, 1, -1, 2])), ": label -1 is not a class number 0..9"),
    ("batches.meta", pickle.dumps({"names": []}), ": 'label_names' must list the 10 class names; got None"),
]


@pytest.mark.parametrize("damaged, data, what", BAD_BATCHES, ids=[
    "truncated", "zero-bytes", "not-pickle", "list", "no-labels", "short-rows", "float-data", "label-count",
    "label-10", "label-negative", "meta"])
def test_a_damaged_cifar_batch_is_named(tmp_path, no_md5, damaged, data, what):
    folder = cifar_folder(tmp_path, damaged, data)
    separator = "" if what.startswith(":") else " "
    assert cifar_error(tmp_path) == (f"dataset=cifar10: {folder / damaged}{separator}{what}; replace it with the "
                                     f"published file (or delete the folder and set dataset.download=true)")


def test_a_cifar_batch_that_is_not_the_published_file_names_its_checksum(tmp_path):
    """Without the test's md5 bypass: the written batch is not the published one, so it is
    named with both checksums (and it is never unpickled)."""
    folder = cifar_folder(tmp_path)
    md5 = hashlib.md5((folder / "data_batch_1").read_bytes()).hexdigest()
    assert cifar_error(tmp_path) == (
        f"dataset=cifar10: {folder / 'data_batch_1'} is damaged: its md5 checksum is {md5}, the published file's is "
        f"c99cafc152244af753f735de768cd75f; replace it with the published file (or delete the folder and set "
        f"dataset.download=true)")


@pytest.mark.parametrize("kind", ["directory", "unreadable", "broken-link"])
def test_a_cifar_batch_path_that_cannot_be_read_is_named(tmp_path, no_md5, monkeypatch, kind):
    folder = cifar_folder(tmp_path)
    path = folder / "data_batch_2"
    if kind == "directory":
        path.unlink()
        path.mkdir()
        what = "is a directory, not a batch file"
    elif kind == "unreadable":
        make_unreadable(path, monkeypatch)
        what = None
    else:
        path.unlink()
        path.symlink_to(folder / "nowhere")
        what = "is a broken symbolic link"
    expected = f"cannot read {path} (Permission denied)" if what is None else f"{path} {what}"
    assert cifar_error(tmp_path) == (f"dataset=cifar10: {expected}; replace it with the published file "
                                     f"(or delete the folder and set dataset.download=true)")


def test_a_cifar_folder_that_is_a_file_is_named(tmp_path):
    (tmp_path / "cifar-10-batches-py").write_bytes(b"x")
    assert cifar_error(tmp_path).startswith(f"dataset=cifar10: {tmp_path / 'cifar-10-batches-py'} is a file, "
                                            f"not a folder")


# ---------------------------------------------------------------- text (shakespeare)


@pytest.mark.parametrize("data, what", [
    (b"To be, or not\xff to be", "is not UTF-8 text (byte 0xff at offset 13); convert it to UTF-8 or "),
    (b"caf\xe9 au lait " * 9, "is not UTF-8 text (byte 0xe9 at offset 3); convert it to UTF-8 or "),
    (b"text\x00\x00\x00", "is a binary file, not text (a NUL byte at offset 4); "),
    (b"", "is empty (0 bytes); "),
], ids=["invalid-utf8", "latin1", "nul", "zero-bytes"])
def test_a_text_file_that_is_not_text_is_named(tmp_path, data, what):
    path = tmp_path / "input.txt"
    path.write_bytes(data)
    message = one_line_error(lambda: load_dataset({"name": "shakespeare", "path": str(path), "context": 2}))
    assert message == (f"dataset=shakespeare: {path} {what}set dataset.path=FILE (a UTF-8 text file, e.g. Tiny "
                       f"Shakespeare's input.txt)")
    assert path.read_bytes() == data and os.listdir(tmp_path) == ["input.txt"]


@pytest.mark.parametrize("kind", ["directory", "unreadable"])
def test_a_text_path_that_cannot_be_read_is_named(tmp_path, monkeypatch, kind):
    path = tmp_path / "input.txt"
    if kind == "directory":
        path.mkdir()
        what = f"{path} is a directory, not a text file"
    else:
        path.write_text("hello world " * 20)
        make_unreadable(path, monkeypatch)
        what = f"cannot read the text file {path} (Permission denied)"
    assert one_line_error(lambda: load_dataset({"name": "shakespeare", "path": str(path)})) == (
        f"dataset=shakespeare: {what}; set dataset.path=FILE (a UTF-8 text file, e.g. Tiny Shakespeare's input.txt)")


def test_a_text_too_short_for_the_context_names_both(tmp_path):
    path = tmp_path / "input.txt"
    path.write_text("abcdefghij")
    assert one_line_error(lambda: load_dataset({"name": "shakespeare", "path": str(path), "context": 8})) == (
        f"dataset=shakespeare: {path} has 10 characters, too short for dataset.context=8 with "
        f"dataset.test_fraction=0.1")


# ---------------------------------------------------------------- numeric settings
# The loaders and partitions are called directly: their own checks are what is tested (through
# the config, a nan or inf may already be refused when the settings are converted).

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("key, value, message", [
    ("stride", 0, "dataset.stride must be >= 1 (characters between window starts) or null (= context); got 0"),
    ("stride", -3, "dataset.stride must be >= 1 (characters between window starts) or null (= context); got -3"),
    ("context", 0, "dataset.context must be >= 1 (characters per sample); got 0"),
    ("context", -8, "dataset.context must be >= 1 (characters per sample); got -8"),
    *(("test_fraction", v, f"dataset.test_fraction must be > 0 and < 1 (the share of the text kept for testing); "
                           f"got {v:g}") for v in (0.0, 1.0, 1.5, -0.1, NAN, INF)),
])
def test_a_shakespeare_setting_that_cannot_work_is_named(tmp_path, key, value, message):
    path = tmp_path / "input.txt"
    path.write_text("hello world " * 50)
    assert one_line_error(lambda: load_shakespeare(path=str(path), **{key: value})) == message


@pytest.mark.parametrize("loader, key, value, message", [
    *((load_digits, "test_fraction", v, f"dataset.test_fraction must be > 0 and < 1 (the share of each class held "
                                        f"out for testing); got {v:g}") for v in (0.0, 1.0, -0.5, NAN, INF)),
    *((load_synthetic, key, v, f"dataset.{key} must be >= 0 and finite; got {v:g}")
      for key in ("heterogeneity", "noise") for v in (-1.0, NAN, INF)),
], ids=lambda v: getattr(v, "__name__", None) or (v if isinstance(v, str) and " " not in v else None))
def test_a_dataset_setting_that_cannot_work_is_named(loader, key, value, message):
    assert one_line_error(lambda: loader(**{key: value})) == message


@pytest.mark.parametrize("alpha", [0.0, -1.0, NAN, INF, -INF])
def test_a_dirichlet_alpha_that_cannot_work_is_named(alpha):
    labels = np.arange(40) % 4
    assert one_line_error(lambda: dirichlet_partition(labels, 4, 0, alpha=alpha)) == (
        f"dataset.partition.alpha must be > 0 and finite (the Dirichlet concentration: small is non-iid, large "
        f"near iid); got {alpha:g}")
