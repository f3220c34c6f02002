import hashlib
import http.server
import socket
import threading
from functools import partial

import numpy as np
import pytest

from genlab.data import files
from genlab.data.datasets import load
from genlab.data.files import candidate_roots, fetch_dataset, locate, verify_file
from genlab.data.registry import MNIST, DataFile, DatasetSpec, Digest, Download
from genlab.errors import DataError
from conftest import write_idx


def _spec(url: str, digest: str) -> DatasetSpec:
    return DatasetSpec("toy", "toy", "toy", (DataFile("a.bin", (Digest("sha256", digest),)),),
                       (Download((url,), "a.bin", Digest("sha256", digest)),), (1, 2, 2), ("x",), {"train": 1})


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def test_download_good_file_lands_verified(server, tmp_path):
    served, base = server
    payload = b"genlab" * 1000
    (served / "a.bin").write_bytes(payload)
    spec = _spec(base + "a.bin", hashlib.sha256(payload).hexdigest())
    root = tmp_path / "root"
    fetch_dataset(spec, root)
    assert (root / "toy" / "a.bin").read_bytes() == payload
    assert list((root / "toy").iterdir()) == [root / "toy" / "a.bin"]  # no temp files left


def test_download_bad_checksum_leaves_nothing(server, tmp_path):
    served, base = server
    (served / "a.bin").write_bytes(b"tampered")
    spec = _spec(base + "a.bin", hashlib.sha256(b"original").hexdigest())
    root = tmp_path / "root"
    with pytest.raises(DataError, match="a.bin.*checksum mismatch"):
        fetch_dataset(spec, root)
    assert list((root / "toy").iterdir()) == []


def test_download_server_gone(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = _spec(f"http://127.0.0.1:{port}/a.bin", "0" * 64)
    with pytest.raises(DataError, match="could not download a.bin.*127.0.0.1"):
        fetch_dataset(spec, tmp_path / "root")


def test_missing_dataset_offline_names_files_places_and_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "candidate_roots", lambda data_dir=None: [(tmp_path / "empty", "--data-dir")])
    with pytest.raises(DataError) as err:
        locate(MNIST, tmp_path / "empty")
    text = str(err.value)
    assert "train-images-idx3-ubyte.gz" in text and str(tmp_path / "empty" / "mnist") in text
    assert "GENLAB_OFFLINE" in text and "--data-dir" in err.value.hint


def test_missing_dataset_when_download_fails_says_why(tmp_path, monkeypatch):
    monkeypatch.delenv("GENLAB_OFFLINE")
    monkeypatch.setattr(files, "candidate_roots", lambda data_dir=None: [(tmp_path / "root", "--data-dir")])
    spec = _spec("http://127.0.0.1:9/a.bin", "0" * 64)
    with pytest.raises(DataError, match="dataset 'toy' not found.*Download failed: could not download a.bin"):
        locate(spec, tmp_path / "root")


def test_checksum_mismatch_names_file(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"corrupt")
    with pytest.raises(DataError, match=r"checksum mismatch for .*a\.bin \(7 bytes\)") as err:
        verify_file(path, DataFile("a.bin", (Digest("md5", "0" * 32),)))
    assert "download a fresh copy" in err.value.hint


def test_data_dir_comes_first_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA_DIR", str(tmp_path / "env"))
    roots = [r for r, _ in candidate_roots(tmp_path / "explicit")]
    assert roots[0] == tmp_path / "explicit" and roots[1] == tmp_path / "env"
    assert roots[-1] == files.cache_dir() / "data"


def test_corrupted_real_layout_is_refused_by_loader(tmp_path, monkeypatch):
    """A dataset folder with a file whose bytes are not the official ones is refused, naming the file."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        write_idx(folder / name, np.zeros((3, 28, 28), np.uint8))
    for name in ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        write_idx(folder / name, np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="checksum mismatch for .*ubyte.gz"):
        load("mnist", "train", data_dir=tmp_path)
