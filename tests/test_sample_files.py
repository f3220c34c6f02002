"""`genlab eval samples` on files that are not images: one clear error (exit code 2), never a traceback."""

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.cli import main
from genlab.errors import DataError
from genlab.eval.samples_io import load_samples

MNIST = (1, 28, 28)


def _eval(path, capsys) -> str:
    assert main(["eval", "samples", str(path), "--dataset", "mnist"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "hint:" in err
    return err


@pytest.mark.parametrize("name, write, message", [
    ("nan.npy", lambda p: np.save(p, np.full((4, 1, 28, 28), np.nan, np.float32)),
     "holds 3,136 non-finite values"),
    ("inf.npz", lambda p: np.savez(p, images=np.full((2, 1, 28, 28), np.inf)), "holds 1,568 non-finite values"),
    ("text.npy", lambda p: np.save(p, np.array([["a"] * 28] * 28)), "are not numbers (array of dtype <U1)"),
    ("bool.npy", lambda p: np.save(p, np.ones((4, 1, 28, 28), bool)), "are not numbers (array of dtype bool)"),
    ("empty.npy", lambda p: np.save(p, np.zeros((0, 1, 28, 28), np.uint8)), "holds no images"),
    ("rank.npy", lambda p: np.save(p, np.zeros((28, 28), np.uint8)), "have shape (28, 28)"),
    ("shape.npy", lambda p: np.save(p, np.zeros((4, 3, 32, 32), np.uint8)), "this dataset's images are 1x28x28"),
    ("float.npy", lambda p: np.save(p, np.full((4, 1, 28, 28), 255.0)), "range over [255, 255]"),
    ("int.npy", lambda p: np.save(p, np.full((4, 1, 28, 28), 300, np.int64)), "range over [300, 300]"),
    ("labels.npz", lambda p: np.savez(p, labels=np.arange(4), codes=np.zeros(3), extra=np.zeros(3)),
     "has no array of images: it holds labels, codes, extra"),
    ("nothing.npz", lambda p: np.savez(p), "it holds no arrays"),
    ("objects.npz", lambda p: np.savez(p, images=np.array([{"a": 1}], dtype=object)), "cannot read samples"),
    ("damaged.npz", lambda p: p.write_bytes(b"PK\x03\x04 not a zip"), "cannot read samples"),
    ("bad_labels.npz", lambda p: np.savez(p, images=np.zeros((4, 1, 28, 28), np.uint8), labels=np.arange(4) + 8),
     "labels range over [8, 11], but this dataset has classes 0..9"),
    ("few_labels.npz", lambda p: np.savez(p, images=np.zeros((4, 1, 28, 28), np.uint8), labels=np.arange(3)),
     "labels of shape (3,) for 4 images"),
    ("dict.pt", lambda p: torch.save({"x": torch.zeros(2)}, p), "a dict without an 'images' entry (it has: x)"),
    ("nan.pt", lambda p: torch.save(torch.full((2, 1, 28, 28), float("nan")), p), "non-finite values"),
    ("text.txt", lambda p: p.write_text("hello"), "cannot read samples from"),
])
def test_bad_sample_file_is_one_clear_error(tmp_path, capsys, name, write, message):
    path = tmp_path / name
    write(path)
    assert message in _eval(path, capsys)


def test_png_folders_without_images_or_with_a_damaged_png(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "has no PNG files" in _eval(empty, capsys)
    black = tmp_path / "black"
    black.mkdir()
    Image.fromarray(np.zeros((62, 62), np.uint8)).save(black / "grid.png")  # a 2x2 grid of black cells
    assert "hold only black grid cells" in _eval(black, capsys)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "a.png").write_bytes(b"\x89PNG not really")
    assert "a.png is not a readable PNG image" in _eval(damaged, capsys)


def test_integer_images_in_0_255_read_as_uint8_ones(tmp_path):
    images = np.arange(4 * 28 * 28).reshape(4, 1, 28, 28) % 256
    np.save(tmp_path / "int.npy", images.astype(np.int64))
    np.save(tmp_path / "uint8.npy", images.astype(np.uint8))
    got, _ = load_samples(tmp_path / "int.npy", MNIST)
    want, _ = load_samples(tmp_path / "uint8.npy", MNIST)
    assert torch.equal(got, want) and got.min() == -1 and got.max() == 1


def test_float_labels_must_be_whole(tmp_path):
    np.savez(tmp_path / "s.npz", images=np.zeros((2, 1, 28, 28), np.uint8), labels=np.array([0.5, 1.0]))
    with pytest.raises(DataError, match="labels are not whole numbers"):
        load_samples(tmp_path / "s.npz", MNIST, classes=10)
