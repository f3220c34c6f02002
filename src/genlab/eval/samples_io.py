"""Saved samples: the ``.npz`` genlab writes, and the files a user may bring.

genlab writes ``samples/<name>.npz`` with ``images`` (uint8, N x C x H x W) and, for class-conditional
samples, ``labels``. :func:`load_samples` also reads a ``.pt``/``.pth`` tensor (or a dict with
``images``/``labels``), a ``.npy`` array, and a folder of PNGs, each either one image or a grid as
torchvision's ``make_grid`` writes it (padding 2; an all-black cell, the grid's filler, is skipped).
Float arrays are taken to be in [-1, 1]; uint8 arrays in [0, 255]; H x W x C arrays are transposed.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision.utils as vutils
from PIL import Image

from genlab.errors import GenlabError

GRID_PADDING = 2


def save_samples(path: Path, images: torch.Tensor, labels: torch.Tensor | None = None) -> Path:
    """Write float images in [-1, 1] (or uint8) as uint8 in an ``.npz``."""
    if images.dtype != torch.uint8:
        images = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    arrays = {"images": images.cpu().numpy()}
    if labels is not None:
        arrays["labels"] = labels.cpu().numpy().astype(np.int64)
    np.savez_compressed(path, **arrays)
    return path


def save_sample_set(folder: Path, tag: str, images: torch.Tensor, labels: torch.Tensor | None,
                    settings: dict[str, Any]) -> Path:
    """`genlab sample`'s output: ``sample_<time>_<tag>.npz``, a PNG grid of the first 100 and the settings."""
    name = f"sample_{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}_{tag}"
    out = save_samples(folder / f"{name}.npz", images, labels)
    vutils.save_image(images[:100].cpu(), folder / f"{name}.png", nrow=10, normalize=True, value_range=(-1, 1))
    (folder / f"{name}.json").write_text(json.dumps(settings, indent=2))
    return out


def load_samples(path: str | Path, shape: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Samples as float images in [-1, 1] of the given (C, H, W), and labels if the file has them."""
    path = Path(path)
    if not path.exists():
        raise GenlabError(f"samples file {path} does not exist")
    labels = None
    try:
        if path.is_dir():
            images = _from_png_folder(path, shape)
        elif path.suffix == ".npz":
            with np.load(path) as data:
                key = "images" if "images" in data else (data.files[0] if data.files else None)
                if key is None:
                    raise GenlabError(f"{path} holds no arrays")
                images = data[key]
                labels = data["labels"] if "labels" in data else None
        elif path.suffix == ".npy":
            images = np.load(path)
        elif path.suffix in (".pt", ".pth"):
            obj = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(obj, dict):
                images, labels = obj.get("images"), obj.get("labels")
            else:
                images = obj
            if images is None:
                raise GenlabError(f"{path} is a dict without an 'images' entry")
        else:
            raise GenlabError(f"cannot read samples from {path}", hint="use .npz, .npy, .pt or a folder of PNGs")
    except GenlabError:
        raise
    except Exception as err:  # the readers raise many types for damaged files
        raise GenlabError(f"cannot read samples from {path}: {str(err).splitlines()[0]}") from None
    images = _to_float(torch.as_tensor(np.asarray(images)), shape, path)
    if labels is not None:
        labels = torch.as_tensor(np.asarray(labels)).long()
        if len(labels) != len(images):
            raise GenlabError(f"{path}: {len(labels)} labels for {len(images)} images")
    return images, labels


def _to_float(images: torch.Tensor, shape: tuple[int, int, int], path: Path) -> torch.Tensor:
    c, h, w = shape
    if images.ndim == 3 and c == 1:
        images = images[:, None]
    if images.ndim == 4 and images.shape[1:] != (c, h, w) and images.shape[1:] == (h, w, c):
        images = images.permute(0, 3, 1, 2)
    if images.ndim != 4 or tuple(images.shape[1:]) != (c, h, w):
        raise GenlabError(f"samples in {path} have shape {tuple(images.shape)}, but this dataset's images are "
                          f"{c}x{h}x{w}", hint=f"save an array of shape (N, {c}, {h}, {w})")
    if images.dtype == torch.uint8:
        return images.float() / 127.5 - 1
    images = images.float()
    if images.min() < -1.01 or images.max() > 1.01:
        raise GenlabError(f"float samples in {path} range over [{images.min():.3g}, {images.max():.3g}]; "
                          "genlab expects [-1, 1]", hint="save uint8 images in [0, 255], or floats in [-1, 1]")
    return images.clamp(-1, 1)


def _from_png_folder(folder: Path, shape: tuple[int, int, int]) -> np.ndarray:
    c, h, w = shape
    cells = []
    pngs = sorted(folder.glob("*.png"))
    if not pngs:
        raise GenlabError(f"{folder} has no PNG files")
    for png in pngs:
        image = np.asarray(Image.open(png).convert("L" if c == 1 else "RGB"))
        image = image[..., None] if image.ndim == 2 else image
        if image.shape[:2] == (h, w):
            cells.append(image)
            continue
        rows, cols = ((image.shape[0] - GRID_PADDING) / (h + GRID_PADDING),
                      (image.shape[1] - GRID_PADDING) / (w + GRID_PADDING))
        if not (rows.is_integer() and cols.is_integer()):
            raise GenlabError(f"{png} is {image.shape[0]}x{image.shape[1]}: neither one {h}x{w} image nor a grid "
                              f"of them with padding {GRID_PADDING}")
        for r in range(int(rows)):
            for q in range(int(cols)):
                top, left = GRID_PADDING + r * (h + GRID_PADDING), GRID_PADDING + q * (w + GRID_PADDING)
                cell = image[top:top + h, left:left + w]
                if cell.any():
                    cells.append(cell)
    return np.stack(cells).transpose(0, 3, 1, 2).astype(np.uint8)
