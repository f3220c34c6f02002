"""What each dataset is: its files, where they come from, their checksums, counts, shapes and classes.

A data root holds one folder per dataset (``mnist/``, ``fashion_mnist/``, ``cifar10/cifar-10-batches-py/``,
``hoda/``). Every file lists the digests it is accepted with: the official one where the publisher gives
one, and for files of the offline mirror that were rebuilt (same records, different bytes) the mirror's
digest, labelled as such.
"""

from __future__ import annotations

from dataclasses import dataclass

from genlab.data.user import describe, is_user, parse, read
from genlab.errors import ConfigError, DataError


@dataclass(frozen=True)
class Digest:
    algorithm: str  # "md5" or "sha256"
    hexdigest: str
    source: str = "official"


@dataclass(frozen=True)
class DataFile:
    name: str
    digests: tuple[Digest, ...]
    required: bool = True
    # True when no published digest exists for the original file: a copy matching no known digest is
    # accepted if its reader's structural checks (header counts against records) pass.
    structure_verified: bool = False


@dataclass(frozen=True)
class Download:
    """One file to fetch; ``extract`` archives are unpacked into the data root's dataset folder parent."""

    urls: tuple[str, ...]
    filename: str
    digest: Digest | None
    extract: bool = False


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    folder: str
    files: tuple[DataFile, ...]
    downloads: tuple[Download, ...]
    image_shape: tuple[int, int, int]
    classes: tuple[str, ...]
    counts: dict[str, int]
    notes: str = ""

    def file(self, name: str) -> DataFile:
        return next(f for f in self.files if f.name == name)


def _md5(hexdigest: str) -> tuple[Digest, ...]:
    return (Digest("md5", hexdigest),)


def _idx_dataset(name: str, title: str, urls: tuple[str, ...], md5s: dict[str, str], classes: tuple[str, ...],
                 notes: str) -> DatasetSpec:
    files = tuple(DataFile(fname, _md5(md5)) for fname, md5 in md5s.items())
    downloads = tuple(Download(tuple(u + fname for u in urls), fname, Digest("md5", md5)) for fname, md5 in md5s.items())
    return DatasetSpec(name, title, name, files, downloads, (1, 28, 28), classes,
                       {"train": 60000, "test": 10000}, notes)


MNIST = _idx_dataset(
    "mnist", "MNIST handwritten digits",
    ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
     "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
     "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
     "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
    tuple(str(d) for d in range(10)),
    "LeCun, Cortes, Burges. 60,000 train / 10,000 test, 28x28 grey.",
)

FASHION_MNIST = _idx_dataset(
    "fashion_mnist", "Fashion-MNIST",
    ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
     "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
     "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
     "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
    ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"),
    "Xiao, Rasul, Vollgraf (Zalando). 60,000 train / 10,000 test, 28x28 grey.",
)

_MIRROR = "offline mirror rebuild: official records, different pickle bytes"
_CIFAR_BATCHES = {
    "batches.meta": ("5ff9c542aee3614f3951f8cda6e48888", None),
    "data_batch_1": ("c99cafc152244af753f735de768cd75f",
                     "07ad0bee67a21e72375a8fc253ac18c3c3bfe708d306583361a873b0b1466c63"),
    "data_batch_2": ("d4bba439e000b95fd0a9bffe97cbabec",
                     "7c8724879ac8d0ae0fde1201ba42da9fb6c1b03c5776575ce43123bbcbf6fbbc"),
    "data_batch_3": ("54ebc095f3ab1f0389bbae665268c751",
                     "194332a39cf0d72b35147e396867a32e3c6347f021a6e3e4995291642b3a3f69"),
    "data_batch_4": ("634d18415352ddfa80567beed471001a",
                     "53a79d5e9f4c5071a6ccd67245d1554f4cc4788a292eb9e035e0f39d3430eb96"),
    "data_batch_5": ("482c414d41f54cd18b22e5b47cb7c3cb",
                     "f4af0f1bca664cc477accd44cef64211bc365aeb08c649cfab584674e04a0d27"),
}


def _cifar_file(name: str, md5: str, mirror_sha256: str | None) -> DataFile:
    digests = _md5(md5) + ((Digest("sha256", mirror_sha256, _MIRROR),) if mirror_sha256 else ())
    return DataFile(name, digests)


CIFAR10 = DatasetSpec(
    "cifar10", "CIFAR-10", "cifar10/cifar-10-batches-py",
    tuple(_cifar_file(n, md5, sha) for n, (md5, sha) in _CIFAR_BATCHES.items()) + (
        DataFile("test_batch", _md5("40351d587109b95175f43aff81a1287e"), required=False),
        DataFile("test_batch_first1000",
                 (Digest("sha256", "166118fd63f52a62692ebfbbd1905644cd2c9edd44bf9cc8824e4e79be882147",
                         "offline mirror: the first 1,000 images of the official test_batch"),),
                 required=False),
    ),
    (Download(("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",), "cifar-10-python.tar.gz",
              Digest("md5", "c58f30108f718f92721af3b95e74349a"), extract=True),),
    (3, 32, 32),
    ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    {"train": 50000, "test": 10000},
    "Krizhevsky 2009. 50,000 train / 10,000 test, 32x32 colour. Where only `test_batch_first1000` is "
    "present (the offline mirror), the test split is those 1,000 images and every test figure says so.",
)

_HODA_URL = "https://github.com/amir-saniyan/HodaDatasetReader/raw/master/DigitDB/"
_HODA_FILES = {
    "Train 60000.cdb": ("ed1816d647f23e3bb0108eb911e2b2cb04b273d861098e31b52897b2bf4fc0d2",
                        "offline mirror: original records, rebuilt header", True),
    "Test 20000.cdb": ("f947c38071c886677ec212fe5000863fafae0b4ed349d97d51c33abe3c8e2b07", "original file", True),
    "RemainingSamples.cdb": ("11c9b0661b8de5f743b1b01ac76b4de19b238062d6da3500b5d6128fb1989e3d",
                             "original file", False),
}

HODA = DatasetSpec(
    "hoda", "Hoda Persian handwritten digits", "hoda",
    tuple(DataFile(n, (Digest("sha256", sha, src),), required=req, structure_verified=(n == "Train 60000.cdb"))
          for n, (sha, src, req) in _HODA_FILES.items()),
    tuple(Download((_HODA_URL + n.replace(" ", "%20"),), n,
                   None if n == "Train 60000.cdb" else Digest("sha256", sha, src))
          for n, (sha, src, _) in _HODA_FILES.items()),
    (1, 28, 28),
    ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9"),
    {"Train 60000.cdb": 60000, "Test 20000.cdb": 20000, "RemainingSamples.cdb": 22352},
    "Khosravi & Kabir 2007, research and non-commercial use. Binary images of varying size, padded to "
    "square (aspect kept), resized to 28x28 and binarised. All files present are pooled and split 85/10/5 "
    "(train/val/test), stratified by class with a fixed split seed.",
)

DATASETS: dict[str, DatasetSpec] = {d.name: d for d in (MNIST, FASHION_MNIST, CIFAR10, HODA)}


def get_spec(name: str) -> DatasetSpec:
    """A built-in dataset's spec, or the description of a user's ``folder:``/``npz:`` dataset (read to know it)."""
    if is_user(name):
        shape, classes, counts, note = describe(name)
        return DatasetSpec(name, f"your images ({name})", name, (), (), shape, classes, counts, note)
    if name not in DATASETS:
        raise DataError(f"unknown dataset '{name}'; known datasets: {', '.join(DATASETS)}, or your images as "
                        "folder:PATH or npz:PATH", hint="run `genlab data list`")
    return DATASETS[name]


def cache_key(name: str) -> str:
    """The folder name of a dataset in caches: a built-in's name, a user dataset's content hash."""
    return read(name).key if is_user(name) else name


def check_name(name: str, key: str, builtins: tuple[str, ...]) -> None:
    """Config check of a dataset field: one of ``builtins`` or a well-formed user dataset name."""
    if is_user(name):
        parse(name)
        return
    if name not in builtins:
        raise ConfigError(f"config key '{key}' must be one of {', '.join(map(repr, builtins))}, or your images as "
                          f"folder:PATH or npz:PATH; got {name!r}",
                          hint=f"set it with --set {key}=mnist, or --set {key}=folder:PATH")
