"""Finding, verifying and downloading dataset files.

The data root is searched in this order: an explicit ``--data-dir``, the ``GENLAB_DATA_DIR`` environment
variable, a ``shared/data`` folder beside the checkout (or beside the working directory), then
``~/.cache/genlab/data`` (``$GENLAB_CACHE_DIR/data``). The first root holding every required file of a
dataset wins. A root the user named (``--data-dir`` or ``GENLAB_DATA_DIR``) that holds some but not all
of them is an error naming the missing files: it is never passed over for another. When no root has them, the files are downloaded from their official sources into the explicit
root if one was given, else into the cache, verified, and moved into place atomically.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import sys
import tempfile
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from genlab.data.registry import DataFile, DatasetSpec, Download
from genlab.errors import DataError

DATA_ENV = "GENLAB_DATA_DIR"
CACHE_ENV = "GENLAB_CACHE_DIR"
OFFLINE_ENV = "GENLAB_OFFLINE"
DOWNLOAD_TIMEOUT_S = 30

_verified: dict[tuple[str, int, int], str] = {}
EXPLICIT = ("--data-dir", f"${DATA_ENV}")  # the reasons of roots the user named


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "genlab")


def candidate_roots(data_dir: str | os.PathLike | None = None) -> list[tuple[Path, str]]:
    """Data roots in search order, each with the reason it is searched."""
    checkout = Path(__file__).resolve().parents[3]
    roots = []
    if data_dir:
        roots.append((Path(data_dir), "--data-dir"))
    if os.environ.get(DATA_ENV):
        roots.append((Path(os.environ[DATA_ENV]), f"${DATA_ENV}"))
    roots.append((checkout.parent / "shared" / "data", "shared/data beside the checkout"))
    roots.append((Path.cwd().parent / "shared" / "data", "shared/data beside the working directory"))
    roots.append((cache_dir() / "data", "the genlab cache"))
    seen, unique = set(), []
    for path, why in roots:
        key = str(path.expanduser().resolve())
        if key not in seen:
            seen.add(key)
            unique.append((path.expanduser(), why))
    return unique


def download_root(data_dir: str | os.PathLike | None = None) -> Path:
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return cache_dir() / "data"


@dataclass(frozen=True)
class DatasetFiles:
    """A dataset found on disk: its folder and the files present there."""

    spec: DatasetSpec
    folder: Path
    present: tuple[str, ...]
    root: Path | None = None
    found_by: str = ""  # why that root was searched (``--data-dir``, ``$GENLAB_DATA_DIR``, ...)

    def path(self, name: str) -> Path:
        return self.folder / name

    def has(self, name: str) -> bool:
        return name in self.present


def _present(spec: DatasetSpec, folder: Path) -> tuple[str, ...]:
    return tuple(f.name for f in spec.files if (folder / f.name).is_file())


def locate(spec: DatasetSpec, data_dir: str | os.PathLike | None = None, download: bool = True) -> DatasetFiles:
    """Find the dataset's files, downloading them if no root holds them all."""
    required = [f.name for f in spec.files if f.required]
    roots = candidate_roots(data_dir)
    for root, why in roots:
        folder = root / spec.folder
        present = _present(spec, folder)
        if all(name in present for name in required):
            return _found(DatasetFiles(spec, folder, present, root, why))
        if why in EXPLICIT and present:
            missing = [name for name in required if name not in present]
            raise DataError(f"the data root {root} ({why}) holds part of dataset '{spec.name}': {folder} has "
                            f"{', '.join(present)} but not {', '.join(missing)}",
                            hint=f"put the missing file(s) in {folder}, or name another root with --data-dir "
                                 f"or {DATA_ENV}")
    offline = os.environ.get(OFFLINE_ENV, "").lower() in ("1", "true", "yes")
    failure = "downloads are off (GENLAB_OFFLINE is set)" if offline or not download else ""
    if not failure:
        target = download_root(data_dir)
        try:
            fetch_dataset(spec, target)
            return _found(DatasetFiles(spec, target / spec.folder, _present(spec, target / spec.folder), target,
                                       "downloaded"))
        except DataError as err:
            failure = err.message
    searched = "; ".join(
        f"{root / spec.folder} ({why}" + (f", has {len(_present(spec, root / spec.folder))} of them" if
                                          _present(spec, root / spec.folder) else "") + ")"
        for root, why in roots)
    raise DataError(
        f"dataset '{spec.name}' not found: need {', '.join(required)}. Searched: {searched}. "
        f"Download failed: {failure}",
        hint=f"put the files in <DIR>/{spec.folder}/ and pass --data-dir DIR or set {DATA_ENV}=DIR")


_recording: list[tuple[dict[str, dict[str, str]], bool]] = []


@contextmanager
def recording(announce: bool = False) -> Iterator[dict[str, dict[str, str]]]:
    """Collect the root each dataset is found in while the block runs: ``{name: {"root", "found_by"}}``.

    With ``announce``, the first time a dataset is found also prints one line to stderr saying where,
    so a run says at its start which data it reads.
    """
    entry: tuple[dict[str, dict[str, str]], bool] = ({}, announce)
    _recording.append(entry)
    try:
        yield entry[0]
    finally:
        _recording.remove(entry)


def _found(files: DatasetFiles) -> DatasetFiles:
    for roots, announce in _recording:
        if files.spec.name not in roots:
            roots[files.spec.name] = {"root": str(files.root), "found_by": files.found_by}
            if announce:
                print(f"genlab: data: {files.spec.name} from {files.root} ({files.found_by})", file=sys.stderr)
    return files


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_file(path: Path, entry: DataFile) -> str:
    """Check a file against its known digests. Returns how it was verified; raises DataError if corrupt.

    Files without a published digest (``structure_verified``) that match no known digest return
    ``"structure"``: their reader must then check the records against the header.
    """
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _verified:
        return _verified[key]
    computed = {}
    for d in entry.digests:
        if d.algorithm not in computed:
            computed[d.algorithm] = _digest(path, d.algorithm)
        if computed[d.algorithm] == d.hexdigest:
            _verified[key] = f"{d.algorithm} ({d.source})"
            return _verified[key]
    if entry.structure_verified:
        return "structure"
    expected = " or ".join(f"{d.algorithm} {d.hexdigest} ({d.source})" for d in entry.digests)
    got = ", ".join(f"{a} {h}" for a, h in computed.items())
    raise DataError(f"checksum mismatch for {path} ({stat.st_size:,} bytes): got {got}, expected {expected}; "
                    "the file is corrupt, truncated or not the right file",
                    hint="delete it and run again to download a fresh copy, or replace it with a good copy")


def fetch(download: Download, dest_dir: Path) -> Path:
    """Download one file to ``dest_dir``, verifying its digest, atomically (temp file, then rename)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / download.filename
    errors = []
    for url in download.urls:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{download.filename}.", suffix=".part", dir=dest_dir)
        tmp = Path(tmp_name)
        try:
            hasher = hashlib.new(download.digest.algorithm) if download.digest else None
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    out.write(chunk)
                    if hasher:
                        hasher.update(chunk)
            if hasher and hasher.hexdigest() != download.digest.hexdigest:
                errors.append(f"{url}: checksum mismatch ({download.digest.algorithm} {hasher.hexdigest()}, "
                              f"expected {download.digest.hexdigest})")
                continue
            os.replace(tmp, dest)
            return dest
        except (urllib.error.URLError, OSError, ValueError) as err:
            errors.append(f"{url}: {getattr(err, 'reason', err)}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DataError(f"could not download {download.filename}: " + "; ".join(errors))


def _extract(archive: Path, into: Path) -> None:
    """Unpack a tar archive next to its final place, then move its folders in."""
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=into))
    try:
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(staging, filter="data")
            else:
                tar.extractall(staging)
        for item in staging.iterdir():
            target = into / item.name
            if target.exists():
                shutil.rmtree(target)
            os.replace(item, target)
    except (tarfile.TarError, OSError) as err:
        raise DataError(f"could not unpack {archive}: {err}", hint="delete it and download again") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        archive.unlink(missing_ok=True)


def fetch_dataset(spec: DatasetSpec, root: Path) -> None:
    """Download every file of a dataset that is missing under ``root``."""
    folder = root / spec.folder
    for download in spec.downloads:
        if not download.extract and (folder / download.filename).is_file():
            continue
        dest_dir = folder.parent if download.extract else folder
        try:
            path = fetch(download, dest_dir)
        except DataError:
            if download.extract or spec.file(download.filename).required:
                raise
            continue
        if download.extract:
            _extract(path, dest_dir)
