import json

import numpy as np
import pytest
import torch
import torchvision.utils as vutils

from genlab import judges
from genlab.cli import main
from genlab.errors import GenlabError
from genlab.eval.samples_io import load_samples, save_samples
from conftest import needs_data


def test_npz_round_trip_keeps_images_and_labels(tmp_path):
    images = torch.rand(12, 1, 28, 28) * 2 - 1
    labels = torch.arange(12) % 10
    got, got_labels = load_samples(save_samples(tmp_path / "s.npz", images, labels), (1, 28, 28))
    assert torch.allclose(got, images, atol=1 / 127.5) and torch.equal(got_labels, labels)


def test_png_grid_folder_is_cut_into_cells(tmp_path):
    images = torch.rand(13, 3, 32, 32) * 2 - 1
    images = ((images + 1) * 127.5).round() / 127.5 - 1  # exactly representable in 8 bits
    folder = tmp_path / "grids"
    folder.mkdir()
    vutils.save_image(vutils.make_grid(images, nrow=5, normalize=True, value_range=(-1, 1)), folder / "g.png")
    got, labels = load_samples(folder, (3, 32, 32))
    assert labels is None and got.shape == (13, 3, 32, 32)
    assert torch.allclose(got, images, atol=1.5 / 127.5)


def test_wrong_shape_is_one_clear_error(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 3, 32, 32), np.uint8))
    with pytest.raises(GenlabError, match=r"have shape \(4, 3, 32, 32\), but this dataset's images are 1x28x28"):
        load_samples(tmp_path / "x.npy", (1, 28, 28))


def test_float_samples_out_of_range(tmp_path):
    np.save(tmp_path / "x.npy", np.full((4, 1, 28, 28), 3.0, np.float32))
    with pytest.raises(GenlabError, match=r"range over \[3, 3\]; genlab expects \[-1, 1\]"):
        load_samples(tmp_path / "x.npy", (1, 28, 28))


def test_eval_samples_cli_wrong_shape(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((4, 3, 32, 32), np.uint8))
    assert main(["eval", "samples", str(tmp_path / "x.npy"), "--dataset", "mnist"]) == 2
    assert "but this dataset's images are 1x28x28" in capsys.readouterr().err


@needs_data("mnist")
def test_scores_order_real_noisy_and_uniform_and_land_in_the_run_summary(tmp_path, capsys):
    from genlab.data import load
    from genlab.eval.score import score_samples

    run = tmp_path / "run"
    assert main(["run", "classifier-mnist", "--preset", "smoke", "--set", "train.epochs=8", "--run-dir", str(run),
                 "--no-progress"]) == 0
    train = load("mnist", "train").images[:1000].float() / 127.5 - 1
    g = torch.Generator().manual_seed(0)
    noisy = (train + 0.6 * torch.randn(train.shape, generator=g)).clamp(-1, 1)
    uniform = torch.rand(1000, 1, 28, 28, generator=g) * 2 - 1
    with judges.serving("smoke"):  # the smoke judge may score only for smoke runs
        scores = {name: score_samples(x, "mnist", reference_limit=1000)
                  for name, x in [("train", train), ("noisy", noisy), ("uniform", uniform)]}
    assert scores["train"]["fid"] < scores["noisy"]["fid"] < scores["uniform"]["fid"]
    assert scores["train"]["kid"] < scores["noisy"]["kid"] < scores["uniform"]["kid"]
    assert "not Inception" in scores["train"]["judge"]

    save_samples(run / "samples" / "final.npz", train[:300], load("mnist", "train").labels[:300])
    capsys.readouterr()
    assert main(["eval", "run", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    final = summary["eval"]["final"]
    assert final["samples"] == 300 and len(final["per_class_accuracy"]) == 10
    per_label = torch.bincount(load("mnist", "train").labels[:300], minlength=10).tolist()
    assert final["class_accuracy"] == pytest.approx(
        sum(acc * n for acc, n in zip(final["per_class_accuracy"], per_label)) / 300)
    assert final["class_accuracy"] > 0.5  # real images with their true labels, read by a trained judge
    assert summary["status"] == "complete"


def test_inception_option_names_what_is_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    save_samples(tmp_path / "s.npz", torch.zeros(4, 1, 28, 28))
    assert main(["eval", "samples", str(tmp_path / "s.npz"), "--dataset", "mnist", "--inception"]) == 2
    err = capsys.readouterr().err
    assert "Inception FID/IS need" in err and "weights-inception-2015-12-05-6726825d.pth" in err
    assert str(tmp_path / "hub" / "checkpoints") in err
