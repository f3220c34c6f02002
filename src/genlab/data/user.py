"""A user's own images as a dataset: ``folder:PATH`` (ImageFolder layout) or ``npz:PATH`` (arrays).

The name of such a dataset is its source plus, after ``?``, how its images are fitted to one shape::

    folder:~/faces                      # every image the same size already; channels as found
    folder:~/faces?size=32&fit=crop     # resize the shorter side to 32, then centre-crop 32x32
    npz:digits.npz?size=28&channels=1&binarize=true

A folder whose sub-folders hold images is labelled (one class per sub-folder, sorted by name, as
torchvision's ImageFolder); a flat folder of images is unlabelled. An ``.npz`` file holds ``images``
(uint8, N x H x W or N x H x W x C) and optionally ``labels`` (integers; the classes are their values).

Fitting options: ``size`` (square side; unset: the images must share one size), ``fit`` (``resize``:
stretch to size x size; ``crop``: shorter side to size, then centre-crop; ``pad``: pad to a square
centred on black, then resize, keeping the aspect), ``channels`` (1 grey or 3 RGB; unset: 3 if any
image has colour, else 1) and ``binarize`` (threshold at 128, as Hoda's digits).

The whole name is the dataset's identity in configs and run directories; caches (the judge classifiers)
are named by :attr:`UserData.key`, the hash of the fitted images and labels, so the same images reached
by another path share a judge. Splits are 80/10/10 train/val/test, stratified by class when labelled.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image, UnidentifiedImageError

from genlab.errors import DataError

SCHEMES = ("folder", "npz")
FITS = ("resize", "crop", "pad")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
USER_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")
_HINT = "name a dataset as folder:PATH or npz:PATH, with options after ?, e.g. folder:~/faces?size=32&fit=crop"


def is_user(name: str) -> bool:
    return isinstance(name, str) and name.split(":", 1)[0] in SCHEMES and ":" in name


@dataclass(frozen=True)
class Source:
    """A parsed user dataset name."""

    name: str
    scheme: str
    path: Path
    size: int | None = None
    fit: str = "resize"
    channels: int | None = None
    binarize: bool = False


def parse(name: str) -> Source:
    """Read a ``folder:``/``npz:`` name; raises DataError on a bad option (does not read the data)."""
    scheme, _, rest = name.partition(":")
    if scheme not in SCHEMES or not rest:
        raise DataError(f"'{name}' is not a dataset name of the form folder:PATH or npz:PATH", hint=_HINT)
    path_text, _, query = rest.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = set(options) - {"size", "fit", "channels", "binarize"}
    if unknown:
        raise DataError(f"dataset '{name}': unknown option(s) {', '.join(sorted(unknown))}; options: size, fit, "
                        "channels, binarize", hint=_HINT)
    try:
        size = int(options["size"]) if "size" in options else None
        channels = int(options["channels"]) if "channels" in options else None
    except ValueError:
        raise DataError(f"dataset '{name}': size and channels must be whole numbers", hint=_HINT) from None
    if size is not None and size < 4:
        raise DataError(f"dataset '{name}': size must be at least 4; got {size}", hint=_HINT)
    if channels not in (None, 1, 3):
        raise DataError(f"dataset '{name}': channels must be 1 (grey) or 3 (RGB); got {channels}", hint=_HINT)
    fit = options.get("fit", "resize")
    if fit not in FITS:
        raise DataError(f"dataset '{name}': fit must be one of {', '.join(FITS)}; got '{fit}'", hint=_HINT)
    binarize = options.get("binarize", "false").lower()
    if binarize not in ("", "true", "false", "1", "0", "yes", "no"):
        raise DataError(f"dataset '{name}': binarize must be true or false; got '{binarize}'", hint=_HINT)
    return Source(name, scheme, Path(path_text).expanduser(), size, fit, channels,
                  binarize in ("", "true", "1", "yes"))


@dataclass(frozen=True)
class UserData:
    """A user dataset read and fitted: uint8 images (N, C, H, W), labels (N,) and classes (empty if none)."""

    source: Source
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    content_hash: str

    @property
    def labelled(self) -> bool:
        return bool(self.classes)

    @property
    def key(self) -> str:
        """The name of this data in caches: its kind and the first 16 hex digits of its content hash."""
        return f"user-{self.content_hash[:16]}"

    def split_indices(self, seed: int) -> dict[str, np.ndarray]:
        from genlab.data.splits import stratified_split
        return stratified_split(self.labels.numpy(), USER_FRACTIONS, seed)


def read(name: str) -> UserData:
    """Read and fit a user dataset (cached within a process while its files are unchanged)."""
    source = parse(name)
    return _read(source, _stamp(source))


def _stamp(source: Source) -> tuple:
    path = source.path
    if source.scheme == "npz":
        if not path.is_file():
            raise DataError(f"dataset '{source.name}': no file {path}", hint="give the path of an .npz file")
        stat = path.stat()
        return ((str(path), stat.st_size, stat.st_mtime_ns),)
    if not path.is_dir():
        raise DataError(f"dataset '{source.name}': no folder {path}",
                        hint="give a folder of images, or of one sub-folder of images per class")
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in _image_files(path))


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


@functools.lru_cache(maxsize=8)
def _read(source: Source, stamp: tuple) -> UserData:
    images, labels, classes = _read_npz(source) if source.scheme == "npz" else _read_folder(source)
    if source.binarize:
        images = torch.where(images >= 128, 255, 0).to(torch.uint8)
    digest = hashlib.sha256()
    digest.update(repr((tuple(images.shape), classes)).encode())
    digest.update(images.contiguous().numpy().tobytes())
    digest.update(labels.numpy().astype(np.int64).tobytes())
    return UserData(source, images.contiguous(), labels, classes, digest.hexdigest())


def _read_folder(source: Source) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    folder = source.path
    files = _image_files(folder)
    if not files:
        raise DataError(f"dataset '{source.name}': {folder} holds no PNG or JPEG images",
                        hint="put the images (.png, .jpg, .jpeg) in it, or in one sub-folder per class")
    top = [p for p in files if p.parent == folder]
    nested = [p for p in files if p.parent != folder]
    if top and nested:
        raise DataError(f"dataset '{source.name}': {folder} has images both at its top ({top[0].name}, ...) and in "
                        f"sub-folders ({nested[0].relative_to(folder)}, ...)",
                        hint="use one sub-folder per class (labelled) or a flat folder (unlabelled), not both")
    classes = tuple(sorted({p.relative_to(folder).parts[0] for p in nested}))
    labels = [classes.index(p.relative_to(folder).parts[0]) for p in nested] if nested else [0] * len(top)
    pictures = [_open(p, source) for p in files if not nested or p.parent != folder]
    colour = any(p.mode not in _GREY_MODES for p in pictures)
    channels = source.channels or (3 if colour else 1)
    tensors = [TF.pil_to_tensor(p.convert("RGB" if channels == 3 else "L")) for p in pictures]
    paths = nested or top
    return _fit_all(tensors, source, [str(p.relative_to(folder)) for p in paths]), \
        torch.tensor(labels, dtype=torch.long), classes


def _open(path: Path, source: Source) -> Image.Image:
    try:
        with Image.open(path) as picture:
            picture.load()
            return picture
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DataError(f"dataset '{source.name}': cannot read image {path}: {err}",
                        hint="replace or delete the file") from None


def _read_npz(source: Source) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    try:
        with np.load(source.path, allow_pickle=False) as arrays:
            contents = {k: arrays[k] for k in arrays.files}
    except (OSError, ValueError) as err:
        raise DataError(f"dataset '{source.name}': cannot read {source.path} as an .npz file: {err}",
                        hint="save it with numpy.savez(path, images=..., labels=...)") from None
    if "images" not in contents:
        raise DataError(f"dataset '{source.name}': {source.path} has no array named 'images' (it has "
                        f"{', '.join(contents) or 'none'})", hint="save it with numpy.savez(path, images=..., labels=...)")
    images = contents["images"]
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] not in (1, 3)):
        raise DataError(f"dataset '{source.name}': 'images' must be uint8 N x H x W or N x H x W x C (C 1 or 3); "
                        f"got {images.dtype} {images.shape}", hint="convert with images.astype(numpy.uint8)")
    if len(images) == 0:
        raise DataError(f"dataset '{source.name}': {source.path} holds no images", hint="save at least one image")
    x = torch.from_numpy(images if images.ndim == 4 else images[..., None]).permute(0, 3, 1, 2)
    channels = source.channels or x.shape[1]
    tensors = [_channels(img, channels) for img in x]
    classes: tuple[str, ...] = ()
    labels = torch.zeros(len(x), dtype=torch.long)
    if "labels" in contents:
        values = contents["labels"]
        if values.shape != (len(x),) or not np.issubdtype(values.dtype, np.integer):
            raise DataError(f"dataset '{source.name}': 'labels' must be {len(x)} integers, one per image; got "
                            f"{values.dtype} {values.shape}", hint="save labels as an integer array of length N")
        found = np.unique(values)
        classes = tuple(str(v) for v in found)
        labels = torch.from_numpy(np.searchsorted(found, values)).long()
    return _fit_all(tensors, source, [f"image {i}" for i in range(len(x))]), labels, classes


def _channels(image: torch.Tensor, channels: int) -> torch.Tensor:
    if image.shape[0] == channels:
        return image
    return image.expand(3, -1, -1) if channels == 3 else TF.rgb_to_grayscale(image)


def _fit_all(images: list[torch.Tensor], source: Source, names: list[str]) -> torch.Tensor:
    if source.size is None:
        sizes = {tuple(img.shape[1:]) for img in images}
        if len(sizes) > 1:
            first = tuple(images[0].shape[1:])
            other = next(i for i, img in enumerate(images) if tuple(img.shape[1:]) != first)
            raise DataError(f"dataset '{source.name}': images differ in size ({names[0]} is {first[0]}x{first[1]}, "
                            f"{names[other]} is {images[other].shape[1]}x{images[other].shape[2]}) and no size is set",
                            hint=f"add a size and a fit, e.g. {source.scheme}:{source.path}?size=32&fit=pad")
        return torch.stack(images)
    return torch.stack([fit_image(img, source.size, source.fit) for img in images])


def fit_image(image: torch.Tensor, size: int, fit: str) -> torch.Tensor:
    """One uint8 image (C, H, W) as size x size: stretched (resize), cropped after scaling its shorter side
    (crop), or padded to a square with black, centred, then scaled (pad)."""
    if fit == "crop":
        return TF.center_crop(TF.resize(image, size, antialias=True), [size, size])
    if fit == "pad":
        h, w = image.shape[1:]
        side = max(h, w)
        left, top = (side - w) // 2, (side - h) // 2
        image = TF.pad(image, [left, top, side - w - left, side - h - top], fill=0)
    return TF.resize(image, [size, size], antialias=True)


def describe(name: str) -> tuple[tuple[int, int, int], tuple[str, ...], dict[str, int], str]:
    """Shape, classes, split sizes and a note of a user dataset, for its spec."""
    data = read(name)
    counts = {split: len(idx) for split, idx in data.split_indices(0).items()}
    kind = f"{len(data.classes)} classes" if data.labelled else "unlabelled"
    note = (f"{data.source.scheme} {data.source.path}: {len(data.labels):,} images, {kind}, content hash "
            f"{data.content_hash[:16]}; split {'/'.join(str(int(f * 100)) for f in USER_FRACTIONS.values())} "
            f"(train/val/test){', stratified by class' if data.labelled else ''}")
    return tuple(data.images.shape[1:]), data.classes, counts, note
