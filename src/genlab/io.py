"""Files written atomically (temp file in the same folder, then a rename) and read safely, and the lock
that keeps two processes from writing one place.

JSON stores non-finite floats as null so any reader can parse it; torch files are read with
``weights_only=True`` so a file cannot run code when loaded.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import pickle
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

from genlab.errors import CheckpointError, RunError


def clean(value: Any) -> Any:
    """Replace NaN/inf by None and tensors/numpy scalars by Python numbers, recursively."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return clean(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: Any, indent: int | None = None) -> str:
    return json.dumps(clean(value), indent=indent, allow_nan=False)


def write_atomic(path: Path, text: str) -> None:
    """Write text to ``path`` through a temp file in the same folder and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, value: Any) -> None:
    write_atomic(path, dumps(value, indent=2) + "\n")


def read_json(path: Path) -> Any:
    """A JSON file's value; RunError naming the file when it is not valid JSON (cut short, edited)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunError(f"{path} is not valid JSON ({err}): it was cut short or changed by hand",
                       hint="restore it from a backup; a run's summary.json may instead be deleted: "
                            "`genlab resume RUN_DIR` writes it again") from None


def save_torch(obj: Any, path: Path) -> None:
    """torch.save through a temp file and a rename: a kill mid-write leaves the old file intact."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as err:
        raise RunError(f"could not write checkpoint {path}: {err.strerror or err}; "
                       "the previous checkpoint is intact",
                       hint="free disk space or fix permissions, then continue with `genlab resume RUN_DIR`") from None
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_torch(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely (no arbitrary objects); raise CheckpointError naming the file."""
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; torch's own error for others misleads
        raise CheckpointError(f"{path} is not a readable checkpoint (not a torch archive: truncated, overwritten "
                              "or another kind of file)", hint="delete it or restore it from a backup")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        reason = str(err).splitlines()[0]
        raise CheckpointError(f"{path} holds objects genlab will not unpickle ({reason})",
                              hint="only load checkpoints written by genlab") from None
    except Exception as err:  # torch.load raises many types for damaged files (RuntimeError, KeyError, ...)
        raise CheckpointError(f"{path} is not a readable checkpoint ({str(err).splitlines()[0]})",
                              hint="it may be truncated or not a torch file") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a genlab checkpoint (holds a {type(state).__name__})")
    return state


@contextmanager
def exclusive(lock_file: Path, what: str) -> Iterator[None]:
    """Hold an OS lock (``flock``) on ``lock_file`` while the block runs, or raise RunError naming ``what``
    and the process holding it. The OS drops the lock when its process ends, however it ends, so a killed
    run never leaves a stale lock behind."""
    lock_file = Path(lock_file)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            raise RunError(f"{what} is being written by another genlab process"
                           + (f" (pid {holder})" if holder else "") + "; two writers would corrupt it",
                           hint="wait for that process to end (or stop it), then run the command again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
