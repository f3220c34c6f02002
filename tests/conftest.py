"""Shared fixtures: an isolated cache per test, no network, writers of small dataset files."""

from __future__ import annotations

import gzip
import importlib.util
import os
import pickle
import signal
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.data.files import locate
from genlab.data.registry import get_spec
from genlab.errors import DataError
from genlab.train.checkpoint import CheckpointStore


# The user's data root, read once at session start: the skip markers (evaluated at collection) and the
# tests themselves both see it, so the suite gives one result with the data beside the checkout, in
# GENLAB_DATA_DIR, or absent.
SESSION_DATA_DIR = os.environ.get("GENLAB_DATA_DIR") or None


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory, monkeypatch):
    """Each test gets its own genlab cache and no downloads (tests never touch the network); the data
    root is the session's."""
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("GENLAB_OFFLINE", "1")
    if SESSION_DATA_DIR:
        monkeypatch.setenv("GENLAB_DATA_DIR", SESSION_DATA_DIR)
    else:
        monkeypatch.delenv("GENLAB_DATA_DIR", raising=False)


@pytest.fixture
def one_thread():
    """Tiny networks: a second thread only adds synchronisation (costly on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sigkill_after_checkpoint(cmd: list[str], checkpoints: Path, step: int, timeout: float = 120) -> None:
    """Start ``cmd``, SIGKILL it once a checkpoint at ``step`` or later exists, and wait for it to die."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    store = CheckpointStore(checkpoints)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        paths = store.paths() if checkpoints.exists() else []
        if paths and int(paths[0].stem.split("_")[1]) >= step:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def load_benchmark(name: str):
    """The script benchmarks/NAME.py as a module, for tests of its functions."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def have_dataset(name: str) -> bool:
    """Whether the tests can read a dataset: searched as in a test, with the session's data root and
    without the user's own genlab cache (each test has an empty one)."""
    saved = {k: os.environ.get(k) for k in ("GENLAB_CACHE_DIR", "GENLAB_DATA_DIR")}
    os.environ["GENLAB_CACHE_DIR"] = str(Path(tempfile.gettempdir()) / "genlab-tests-no-cache")
    if SESSION_DATA_DIR:
        os.environ["GENLAB_DATA_DIR"] = SESSION_DATA_DIR
    try:
        locate(get_spec(name), download=False)
        return True
    except DataError:
        return False
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def needs_data(*names: str):
    missing = [n for n in names if not have_dataset(n)]
    return pytest.mark.skipif(bool(missing), reason=f"dataset(s) {', '.join(missing)} not found "
                              "(no offline mirror; set GENLAB_DATA_DIR)")


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    magic = 0x0800 | array.ndim
    payload = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def write_cifar_batch(path: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    batch = {"data": images.reshape(len(images), -1), "labels": [int(v) for v in labels],
             "filenames": [f"img{i}.png" for i in range(len(labels))], "batch_label": "test batch"}
    with open(path, "wb") as f:
        pickle.dump(batch, f)
    return path


def encode_runs(image: np.ndarray) -> bytes:
    """One binary image as Hoda run lengths: per row, alternating background/ink, starting with background."""
    out = bytearray()
    for row in image:
        ink, run = False, 0
        for pixel in row:
            if bool(pixel) == ink:
                run += 1
            else:
                out.append(run)
                ink, run = not ink, 1
        out.append(run)
    return bytes(out)


def write_cdb(path: Path, images: list[np.ndarray], labels: list[int], declared_count: int | None = None) -> Path:
    """A Hoda .cdb with varying image sizes (header height/width 0), as the originals are."""
    counts = np.bincount(labels, minlength=128).astype("<u4")
    header = struct.pack("<HBBBBI", 2007, 1, 1, 0, 0, len(images) if declared_count is None else declared_count)
    header += counts.tobytes() + bytes([0]) + b"test file".ljust(256, b"\0") + bytes(245)
    assert len(header) == 1024
    body = bytearray()
    for image, label in zip(images, labels):
        runs = encode_runs(image)
        h, w = image.shape
        body += bytes([0xFF, label, w, h]) + struct.pack("<H", len(runs)) + runs
    path.write_bytes(header + bytes(body))
    return path
