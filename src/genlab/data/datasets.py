"""Datasets as in-memory uint8 tensors, loaded from verified files."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genlab.data import user
from genlab.data.files import DatasetFiles, locate, verify_file
from genlab.data.readers import normalise_hoda, read_cdb, read_cifar_batch, read_idx_pair
from genlab.data.registry import get_spec
from genlab.data.splits import HODA_FRACTIONS, stratified_split
from genlab.errors import DataError


@dataclass(frozen=True)
class ImageSet:
    """Images as uint8 (N, C, H, W) with integer labels, held in memory."""

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    note: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def class_counts(self) -> list[int]:
        return torch.bincount(self.labels, minlength=len(self.classes)).tolist()

    def subset(self, indices: torch.Tensor | np.ndarray, split: str | None = None) -> "ImageSet":
        indices = torch.as_tensor(indices, dtype=torch.long)
        return ImageSet(self.name, split or self.split, self.images[indices], self.labels[indices],
                        self.classes, self.note)


@dataclass(frozen=True)
class RawData:
    """What a dataset's files hold, before splitting; ``notes`` say what is partial."""

    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    verified: dict[str, str]
    notes: tuple[str, ...]


def splits_of(name: str) -> tuple[str, ...]:
    return ("train", "val", "test") if name == "hoda" or user.is_user(name) else ("train", "test")


def load(name: str, split: str, data_dir: str | os.PathLike | None = None, split_seed: int = 0) -> ImageSet:
    """Load one split of a dataset. Hoda's splits are an 85/10/5 stratified split of all files present; a
    user dataset's an 80/10/10 split (stratified when labelled), both seeded by ``split_seed``."""
    if split not in splits_of(name):
        raise DataError(f"dataset '{name}' has no split '{split}'; its splits: {', '.join(splits_of(name))}")
    if user.is_user(name):
        data = user.read(name)
        indices = torch.from_numpy(data.split_indices(split_seed)[split])
        return ImageSet(name, split, data.images[indices], data.labels[indices], data.classes)
    spec = get_spec(name)
    raw = read_raw(locate(spec, data_dir))
    note = " ".join(raw.notes)
    if name == "hoda":
        images, labels = raw.splits["pool"]
        indices = hoda_split(labels, split_seed)[split]
        images, labels = images[indices], labels[indices]
    else:
        images, labels = raw.splits[split]
    return ImageSet(name, split, torch.from_numpy(images), torch.from_numpy(labels), spec.classes, note)


def hoda_split(labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    return stratified_split(labels, HODA_FRACTIONS, seed)


def split_indices(name: str, data_dir: str | os.PathLike | None, seed: int) -> dict[str, np.ndarray] | None:
    """Indices of each split into a dataset's pool, for datasets split by a seed (Hoda: all its files present
    in registry order; a user dataset: its images in file order); None for datasets split by their files."""
    if user.is_user(name):
        return user.read(name).split_indices(seed)
    return hoda_split_indices(data_dir, seed) if name == "hoda" else None


def hoda_split_indices(data_dir: str | os.PathLike | None, seed: int) -> dict[str, np.ndarray]:
    """Indices into the pool of all Hoda files present (in registry order) of each split."""
    _, labels = read_raw(locate(get_spec("hoda"), data_dir)).splits["pool"]
    return hoda_split(labels, seed)


def read_raw(files: DatasetFiles) -> RawData:
    """Verify and read a dataset's files (cached per folder and file state within a process)."""
    stamp = tuple((n, files.path(n).stat().st_size, files.path(n).stat().st_mtime_ns) for n in files.present)
    return _read_raw(files.spec.name, str(files.folder), stamp)


@functools.lru_cache(maxsize=8)
def _read_raw(name: str, folder: str, stamp: tuple) -> RawData:
    spec = get_spec(name)
    files = DatasetFiles(spec, Path(folder), tuple(n for n, _, _ in stamp))
    verified = {n: verify_file(files.path(n), spec.file(n)) for n in files.present}
    reader = {"mnist": _read_idx_dataset, "fashion_mnist": _read_idx_dataset,
              "cifar10": _read_cifar, "hoda": _read_hoda}[name]
    splits, notes = reader(files)
    return RawData(splits, verified, tuple(notes))


def _read_idx_dataset(files: DatasetFiles):
    splits = {"train": read_idx_pair(files.path("train-images-idx3-ubyte.gz"),
                                     files.path("train-labels-idx1-ubyte.gz")),
              "test": read_idx_pair(files.path("t10k-images-idx3-ubyte.gz"),
                                    files.path("t10k-labels-idx1-ubyte.gz"))}
    return splits, []


def _read_cifar(files: DatasetFiles):
    batches = [read_cifar_batch(files.path(f"data_batch_{i}")) for i in range(1, 6)]
    train = (np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]))
    if files.has("test_batch"):
        return {"train": train, "test": read_cifar_batch(files.path("test_batch"))}, []
    if files.has("test_batch_first1000"):
        test = read_cifar_batch(files.path("test_batch_first1000"))
        note = (f"CIFAR-10 test figures use the first {len(test[1]):,} of the 10,000 test images "
                "(test_batch is absent; test_batch_first1000 was found).")
        return {"train": train, "test": test}, [note]
    raise DataError(f"CIFAR-10 in {files.folder} has no test set: need test_batch (or test_batch_first1000)",
                    hint="download the full CIFAR-10 python archive, or delete the folder to re-download")


def _read_hoda(files: DatasetFiles):
    spec = files.spec
    images, labels, notes = [], [], []
    for entry in spec.files:
        if not files.has(entry.name):
            notes.append(f"Hoda: {entry.name} is absent; the pool uses the other files.")
            continue
        imgs, labs, _ = read_cdb(files.path(entry.name))
        expected = spec.counts[entry.name]
        if len(labs) != expected:
            raise DataError(f"{files.path(entry.name)} holds {len(labs):,} records; the Hoda file of that name "
                            f"has {expected:,}", hint="replace it with the original file")
        images.append(normalise_hoda(imgs))
        labels.append(labs)
    return {"pool": (np.concatenate(images), np.concatenate(labels))}, notes
