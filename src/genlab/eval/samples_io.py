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

from genlab.errors import DataError, GenlabError

GRID_PADDING = 2
SAVE_HINT = "save an array of images (N, C, H, W) as uint8 in [0, 255] or floats in [-1, 1], e.g. np.savez(f, images=x)"


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


def load_samples(path: str | Path, shape: tuple[int, int, int],
                 classes: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Samples as float images in [-1, 1] of the given (C, H, W), and labels if the file has them (each in
    [0, ``classes``) when ``classes`` is given). Anything else is one DataError saying what is wrong."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"samples file {path} does not exist")
    labels = None
    try:
        if path.is_dir():
            images = _from_png_folder(path, shape)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                images = data[_images_key(path, data.files)]
                labels = data["labels"] if "labels" in data.files else None
        elif path.suffix == ".npy":
            images = np.load(path, allow_pickle=False)
        elif path.suffix in (".pt", ".pth"):
            obj = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(obj, dict):
                images, labels = obj.get("images"), obj.get("labels")
                if images is None:
                    raise DataError(f"{path} is a dict without an 'images' entry (it has: "
                                    f"{', '.join(map(str, obj)) or 'nothing'})", hint=SAVE_HINT)
            else:
                images = obj
        else:
            raise DataError(f"cannot read samples from {path}", hint="use .npz, .npy, .pt or a folder of PNGs")
    except GenlabError:
        raise
    except Exception as err:  # the readers raise many types for damaged files
        raise DataError(f"cannot read samples from {path}: {str(err).splitlines()[0]}",
                        hint="the file is damaged or not what its suffix says; " + SAVE_HINT) from None
    images = _to_float(_numeric(images, path, "images"), shape, path)
    if labels is not None:
        labels = _labels(_numeric(labels, path, "labels"), len(images), classes, path)
    return images, labels


def _images_key(path: Path, keys: list[str]) -> str:
    """The array of images in an .npz: 'images', else its only array (np.savez(f, x) names it arr_0)."""
    if "images" in keys:
        return "images"
    arrays = [k for k in keys if k != "labels"]
    if len(arrays) == 1:
        return arrays[0]
    raise DataError(f"{path} has no array of images: " + (f"it holds {', '.join(keys)}, none named 'images'"
                                                          if arrays else "it holds " + (", ".join(keys) or "no arrays")),
                    hint=SAVE_HINT)


def _numeric(value: Any, path: Path, what: str) -> torch.Tensor:
    """An array of real numbers as a tensor; strings, objects, booleans and complex numbers are refused."""
    array = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if array.dtype.kind not in "uif":
        raise DataError(f"the {what} in {path} are not numbers (array of dtype {array.dtype})", hint=SAVE_HINT)
    return torch.as_tensor(array)


def _labels(labels: torch.Tensor, count: int, classes: int | None, path: Path) -> torch.Tensor:
    if labels.ndim != 1 or len(labels) != count:
        raise DataError(f"{path}: labels of shape {tuple(labels.shape)} for {count} images",
                        hint="save one integer label per image, shape (N,)")
    if labels.is_floating_point() and not torch.equal(labels, labels.round()):
        raise DataError(f"{path}: labels are not whole numbers", hint="save integer class indices")
    labels = labels.long()
    if classes is not None and count and (labels.min() < 0 or labels.max() >= classes):
        raise DataError(f"{path}: labels range over [{int(labels.min())}, {int(labels.max())}], but this dataset "
                        f"has classes 0..{classes - 1}", hint="save class indices of the dataset's classes")
    return labels


def _to_float(images: torch.Tensor, shape: tuple[int, int, int], path: Path) -> torch.Tensor:
    c, h, w = shape
    if images.ndim == 3 and c == 1:
        images = images[:, None]
    if images.ndim == 4 and images.shape[1:] != (c, h, w) and images.shape[1:] == (h, w, c):
        images = images.permute(0, 3, 1, 2)
    if images.ndim != 4 or tuple(images.shape[1:]) != (c, h, w):
        raise DataError(f"samples in {path} have shape {tuple(images.shape)}, but this dataset's images are "
                        f"{c}x{h}x{w}", hint=f"save an array of shape (N, {c}, {h}, {w})")
    if len(images) == 0:
        raise DataError(f"{path} holds no images (an array of shape {tuple(images.shape)})",
                        hint="save at least one image; the metrics need a few hundred")
    if images.dtype == torch.uint8:
        return images.float() / 127.5 - 1
    if not images.is_floating_point():  # other integer types: the 0..255 of uint8
        if images.min() < 0 or images.max() > 255:
            raise DataError(f"integer samples in {path} range over [{int(images.min())}, {int(images.max())}]; "
                            "integer images must lie in [0, 255]", hint=SAVE_HINT)
        return images.float() / 127.5 - 1
    images = images.float()
    bad = int((~torch.isfinite(images)).sum())
    if bad:
        raise DataError(f"{path} holds {bad:,} non-finite values (NaN or infinity) among its samples",
                        hint="the model that made them may have diverged; save finite images")
    if images.min() < -1.01 or images.max() > 1.01:
        raise DataError(f"float samples in {path} range over [{images.min():.3g}, {images.max():.3g}]; "
                        "genlab expects [-1, 1]", hint="save uint8 images in [0, 255], or floats in [-1, 1]")
    return images.clamp(-1, 1)


def _from_png_folder(folder: Path, shape: tuple[int, int, int]) -> np.ndarray:
    c, h, w = shape
    cells = []
    pngs = sorted(folder.glob("*.png"))
    if not pngs:
        raise DataError(f"{folder} has no PNG files", hint="pass a folder of .png images, or a .npz/.npy/.pt file")
    for png in pngs:
        try:
            with Image.open(png) as opened:
                image = np.asarray(opened.convert("L" if c == 1 else "RGB"))
        except (OSError, ValueError) as err:
            raise DataError(f"{png} is not a readable PNG image ({str(err).splitlines()[0]})",
                            hint="delete or replace it") from None
        image = image[..., None] if image.ndim == 2 else image
        if image.shape[:2] == (h, w):
            cells.append(image)
            continue
        rows, cols = ((image.shape[0] - GRID_PADDING) / (h + GRID_PADDING),
                      (image.shape[1] - GRID_PADDING) / (w + GRID_PADDING))
        if not (rows.is_integer() and cols.is_integer()):
            raise DataError(f"{png} is {image.shape[0]}x{image.shape[1]}: neither one {h}x{w} image nor a grid "
                              f"of them with padding {GRID_PADDING}")
        for r in range(int(rows)):
            for q in range(int(cols)):
                top, left = GRID_PADDING + r * (h + GRID_PADDING), GRID_PADDING + q * (w + GRID_PADDING)
                cell = image[top:top + h, left:left + w]
                if cell.any():
                    cells.append(cell)
    if not cells:
        raise DataError(f"the PNGs in {folder} hold only black grid cells, no images",
                        hint="an all-black cell is read as a grid's filler; save the images themselves")
    return np.stack(cells).transpose(0, 3, 1, 2).astype(np.uint8)
