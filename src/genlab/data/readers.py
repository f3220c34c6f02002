"""Readers for the on-disk formats: IDX (MNIST, Fashion-MNIST), CIFAR-10 python batches, Hoda ``.cdb``.

Each returns numpy arrays: images as uint8 (N, C, H, W), labels as int64 (N,). Format errors raise
:class:`~genlab.errors.DataError` naming the file.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genlab.errors import DataError

IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801
HODA_HEADER_BYTES = 1024
HODA_SIZE = 28


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzipped) as a uint8 array of its declared shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise DataError(f"cannot read {path}: {err}", hint="delete it and download it again") from None
    if len(data) < 8:
        raise DataError(f"{path} is too short to be an IDX file ({len(data)} bytes)")
    magic = struct.unpack(">I", data[:4])[0]
    if magic not in (IDX_IMAGES, IDX_LABELS):
        raise DataError(f"{path} is not an IDX uint8 file (magic number {magic:#010x})")
    ndim = magic & 0xFF
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path} declares shape {shape} but holds {body.size} values; the file is truncated")
    return body.reshape(shape)


def read_idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{images_path} ({images.shape}) and {labels_path} ({labels.shape}) do not pair up")
    return images[:, None].copy(), labels.astype(np.int64)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR-10 python batch: (N, 3, 32, 32) uint8 images (planes R, G, B) and labels."""
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="latin1")
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise DataError(f"{path} is not a CIFAR-10 python batch ({type(err).__name__}: {err})",
                        hint="delete it and download it again") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DataError(f"{path}: unexpected CIFAR batch shapes data {data.shape}, labels {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels


@dataclass(frozen=True)
class CdbHeader:
    record_count: int
    class_counts: tuple[int, ...]
    height: int
    width: int
    binary: bool
    comment: str


def read_cdb_header(data: bytes, path: Path) -> CdbHeader:
    if len(data) < HODA_HEADER_BYTES:
        raise DataError(f"{path} is too short for a Hoda .cdb header ({len(data)} bytes)")
    _year, _month, _day, height, width, count = struct.unpack_from("<HBBBBI", data, 0)
    class_counts = struct.unpack_from("<128I", data, 10)
    image_type = data[10 + 512]
    comment = data[523:523 + 256].split(b"\0", 1)[0].decode("latin1")
    if image_type not in (0, 1) or sum(class_counts) != count:
        raise DataError(f"{path} does not have a valid Hoda .cdb header (image type {image_type}, "
                        f"{count} records declared, class counts summing to {sum(class_counts)})",
                        hint="the file is not a Hoda database or is damaged; download it again")
    return CdbHeader(count, tuple(class_counts), height, width, image_type == 0, comment)


def read_cdb(path: Path) -> tuple[list[np.ndarray], np.ndarray, CdbHeader]:
    """A Hoda ``.cdb`` database: a list of boolean images (ink = True), labels, and the header.

    Records are checked against the header: record count and per-class counts must agree.
    """
    data = Path(path).read_bytes()
    header = read_cdb_header(data, path)
    if not header.binary:
        raise DataError(f"{path} holds greyscale images; genlab reads the binary Hoda digit databases")
    images, labels = [], []
    pos = HODA_HEADER_BYTES
    try:
        while pos < len(data):
            if data[pos] != 0xFF:
                raise DataError(f"{path}: record {len(images)} at byte {pos} does not start with 0xFF; "
                                "the file is damaged")
            label = data[pos + 1]
            if header.width and header.height:
                width, height, pos = header.width, header.height, pos + 2
            else:
                width, height, pos = data[pos + 2], data[pos + 3], pos + 4
            (nbytes,) = struct.unpack_from("<H", data, pos)
            pos += 2
            runs = data[pos:pos + nbytes]
            if len(runs) != nbytes:
                raise DataError(f"{path}: record {len(images)} is cut short; the file is truncated")
            images.append(_decode_runs(runs, height, width, path, len(images)))
            labels.append(label)
            pos += nbytes
    except (IndexError, struct.error):
        raise DataError(f"{path}: record {len(images)} is cut short; the file is truncated") from None
    labels = np.asarray(labels, dtype=np.int64)
    counts = tuple(int(c) for c in np.bincount(labels, minlength=128))
    if len(images) != header.record_count or counts != header.class_counts:
        raise DataError(f"{path}: parsed {len(images)} records but the header declares "
                        f"{header.record_count}; the file is truncated or damaged",
                        hint="delete it and download it again")
    return images, labels, header


def _decode_runs(runs: bytes, height: int, width: int, path: Path, index: int) -> np.ndarray:
    """Run lengths per row, alternating background and ink, starting with background."""
    image = np.zeros((height, width), dtype=bool)
    p = 0
    for row in range(height):
        x, ink = 0, False
        while x < width:
            run = runs[p]
            p += 1
            if ink:
                image[row, x:x + run] = True
            x += run
            ink = not ink
        if x != width:
            raise DataError(f"{path}: record {index} row {row} runs cover {x} pixels, not the width {width}")
    if p != len(runs):
        raise DataError(f"{path}: record {index} has {len(runs) - p} unused bytes; the file is damaged")
    return image


def normalise_hoda(images: list[np.ndarray], size: int = HODA_SIZE) -> np.ndarray:
    """Pad each image to a square (centred, aspect kept), resize to ``size`` x ``size``, binarise.

    Returns uint8 (N, 1, size, size) with ink = 255. Images are grouped by padded size so each group
    is resized in one call.
    """
    out = np.zeros((len(images), 1, size, size), dtype=np.uint8)
    by_side: dict[int, list[int]] = {}
    for i, img in enumerate(images):
        by_side.setdefault(max(img.shape), []).append(i)
    for side, indices in by_side.items():
        squares = np.zeros((len(indices), 1, side, side), dtype=np.float32)
        for j, i in enumerate(indices):
            h, w = images[i].shape
            top, left = (side - h) // 2, (side - w) // 2
            squares[j, 0, top:top + h, left:left + w] = images[i]
        resized = F.interpolate(torch.from_numpy(squares), size=(size, size), mode="bilinear",
                                antialias=True, align_corners=False)
        out[indices] = ((resized > 0.5).to(torch.uint8) * 255).numpy()
    return out
