"""A user's own images as a dataset: folder:PATH (labelled or flat) and npz:PATH, their fitting, splits and
errors, and smoke runs of the EBM, GAN and discrete VAE studies on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab import judges
from genlab.data import get_spec, load
from genlab.data.user import fit_image, parse, read
from genlab.errors import ConfigError, DataError
from genlab.experiments.registry import get_experiment
from genlab.experiments.runner import start_run

CLASSES = ("bar", "box", "column")


def digit_like(kind: int, rng: np.random.Generator, side: int = 28) -> np.ndarray:
    """A grey image of one of three shapes on faint noise: easy to tell apart, even by a smoke classifier."""
    x = rng.integers(0, 40, (side, side)).astype(np.uint8)
    lo, hi = side // 5, side - side // 5
    mid = slice(side // 2 - 2, side // 2 + 2)
    if kind == 0:
        x[mid, lo:hi] = 255
    elif kind == 1:
        x[lo:hi, lo:hi] = 200
    else:
        x[lo:hi, mid] = 255
    return x


def write_folder(root: Path, per_class: int = 40, labelled: bool = True, seed: int = 0) -> Path:
    """PNG files in ImageFolder layout (one sub-folder per class) or flat (unlabelled)."""
    rng = np.random.default_rng(seed)
    for i in range(per_class * len(CLASSES)):
        kind = i % len(CLASSES)
        folder = root / CLASSES[kind] if labelled else root
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(digit_like(kind, rng)).save(folder / f"{i:04d}.png")
    return root


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("own")
    rng = np.random.default_rng(1)
    x = np.stack([digit_like(i % 3, rng) for i in range(90)])
    np.savez(root / "shapes.npz", images=x, labels=np.array([5, 7, 9] * 30))
    return {"labelled": f"folder:{write_folder(root / 'labelled')}",
            "flat": f"folder:{write_folder(root / 'flat', per_class=20, labelled=False)}",
            "npz": f"npz:{root / 'shapes.npz'}"}


def test_a_labelled_folder_is_a_dataset_with_its_subfolders_as_classes(images):
    spec = get_spec(images["labelled"])
    assert spec.classes == CLASSES and spec.image_shape == (1, 28, 28)
    assert spec.counts == {"train": 96, "val": 12, "test": 12}  # 80/10/10 of 120
    test = load(images["labelled"], "test")
    assert test.class_counts() == [4, 4, 4]  # stratified: 10% of each class's 40
    assert test.images.dtype == torch.uint8 and test.shape == (1, 28, 28)


def test_data_check_describes_a_user_dataset(images):
    from genlab.data.check import check
    lines = check(images["labelled"])
    assert "120 images, 3 classes" in lines[0]
    assert lines[1].split() == ["train", "96", "images", "1x28x28", "per", "class", "bar:32", "box:32", "column:32"]


def test_splits_are_seeded_disjoint_and_cover_the_data(images):
    name = images["labelled"]
    seen = {split: {tuple(x.flatten().tolist()) for x in load(name, split, split_seed=3).images}
            for split in ("train", "val", "test")}
    assert sum(map(len, seen.values())) == 120 and not seen["train"] & seen["test"]
    assert torch.equal(load(name, "val", split_seed=3).images, load(name, "val", split_seed=3).images)
    assert not torch.equal(load(name, "val", split_seed=3).images, load(name, "val", split_seed=4).images)


def test_a_flat_folder_is_unlabelled_and_an_npz_file_has_its_label_values_as_classes(images):
    assert get_spec(images["flat"]).classes == ()
    assert get_spec(images["npz"]).classes == ("5", "7", "9")
    assert sorted(set(read(images["npz"]).labels.tolist())) == [0, 1, 2]


def test_options_in_the_name_fit_the_images(images):
    spec = get_spec(images["flat"] + "?size=16&channels=3&fit=crop")
    assert spec.image_shape == (3, 16, 16)
    binary = read(images["npz"] + "?binarize=true").images
    assert set(binary.unique().tolist()) == {0, 255}
    assert parse("npz:x.npz?size=32&fit=pad").size == 32
    with pytest.raises(DataError, match="unknown option"):
        parse("folder:x?colour=1")
    with pytest.raises(DataError, match="fit must be one of"):
        parse("folder:x?size=8&fit=zoom")


def test_fit_pad_centres_the_image_on_a_black_square():
    image = torch.full((1, 2, 4), 255, dtype=torch.uint8)
    padded = fit_image(image, 4, "pad")
    assert padded[0, 0].tolist() == [0, 0, 0, 0] and padded[0, 3].tolist() == [0, 0, 0, 0]
    assert padded[0, 1:3].tolist() == [[255] * 4, [255] * 4]
    assert fit_image(torch.zeros(1, 6, 8, dtype=torch.uint8), 4, "crop").shape == (1, 4, 4)


def test_the_content_hash_names_the_data_wherever_it_lies(images, tmp_path):
    copy = write_folder(tmp_path / "copy")
    assert read(f"folder:{copy}").key == read(images["labelled"]).key
    assert read(images["labelled"] + "?size=24").key != read(images["labelled"]).key


def test_the_dataset_field_takes_user_data_and_names_the_forms_otherwise():
    cfg = get_experiment("gan-hoda").config("smoke", {"data.dataset": "npz:/some/file.npz?size=28"})
    assert cfg.data.dataset == "npz:/some/file.npz?size=28"
    with pytest.raises(ConfigError, match="folder:PATH or npz:PATH"):
        get_experiment("gan-hoda").config("smoke", {"data.dataset": "mnist"})


@pytest.mark.parametrize("problem", ["empty", "missing", "mixed sizes", "unreadable", "top and nested"])
def test_a_bad_folder_is_one_clear_error(problem, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    if problem == "mixed sizes":
        Image.fromarray(digit_like(0, rng, 28)).save(folder / "a.png")
        Image.fromarray(digit_like(0, rng, 32)).save(folder / "b.png")
    if problem == "unreadable":
        Image.fromarray(digit_like(0, rng)).save(folder / "a.png")
        (folder / "b.png").write_bytes(b"not a png")
    if problem == "top and nested":
        write_folder(folder, per_class=1)
        Image.fromarray(digit_like(0, rng)).save(folder / "loose.png")
    name = f"folder:{folder / 'nowhere' if problem == 'missing' else folder}"
    expected = {"empty": "holds no PNG or JPEG", "missing": "no folder", "mixed sizes": "differ in size",
                "unreadable": "cannot read image .*b.png", "top and nested": "both at its top"}[problem]
    with pytest.raises(DataError, match=expected) as err:
        get_spec(name)
    assert err.value.hint
    if problem == "mixed sizes":
        assert get_spec(name + "?size=28&fit=pad").image_shape == (1, 28, 28)


def test_a_conditional_study_on_unlabelled_or_one_class_images_is_one_clear_error(images, tmp_path):
    one_class = tmp_path / "one"
    write_folder(one_class, per_class=4)
    for extra in CLASSES[1:]:
        for f in (one_class / extra).iterdir():
            f.unlink()
        (one_class / extra).rmdir()
    for name, found in ((images["flat"], "has no labels"), (f"folder:{one_class}", "one class only")):
        with pytest.raises(DataError, match=found):
            start_run("ebm-mnist-cond", "smoke", {"data.dataset": name}, runs_dir=tmp_path / "runs")
    with pytest.raises(DataError, match="side 28"):
        start_run("gan-hoda", "smoke", {"data.dataset": images["flat"] + "?size=16"}, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_without_prerequisites_a_missing_judge_stops_with_the_command(images, tmp_path):
    with pytest.raises(Exception, match="no trained folder:.* classifier") as err:
        start_run("ebm-mnist-cond", "smoke", {"data.dataset": images["labelled"]}, runs_dir=tmp_path,
                  progress=False, prerequisites=False)
    assert "genlab run classifier-mnist --preset quick --set 'data.dataset=folder:" in err.value.hint


@pytest.mark.slow
def test_smoke_ebms_train_on_a_flat_folder_and_on_a_labelled_one_making_its_judge(images, tmp_path, one_thread,
                                                                                    capsys):
    flat = start_run("ebm-cifar10-buffer", "smoke", {"data.dataset": images["flat"]}, runs_dir=tmp_path,
                     progress=False)
    summary = flat.read_summary()
    assert summary["status"] == "complete" and np.isfinite(summary["metrics"]["fid"])
    assert any("randomly initialised" in note for note in summary["notes"])
    assert list((flat.path / "splits").glob("user-*_seed0.npz"))

    cond = start_run("ebm-mnist-cond", "smoke", {"data.dataset": images["labelled"]}, runs_dir=tmp_path,
                     progress=False)
    assert "needs a folder:" in capsys.readouterr().err
    summary = cond.read_summary()
    assert len(summary["metrics"]["per_class_accuracy"]) == 3
    cached = judges.entries(images["labelled"])
    assert [e["seed"] for e in cached] == [0] and summary["judge"]["config_hash"] == cached[0]["config_hash"]
    assert Path(cached[0]["folder"]).parent.name == read(images["labelled"]).key


@pytest.mark.slow
def test_a_smoke_gan_trains_on_an_npz_file_and_a_discrete_vae_on_a_labelled_folder(images, tmp_path, one_thread):
    gan = start_run("gan-hoda", "smoke", {"data.dataset": images["npz"] + "?binarize=true"}, runs_dir=tmp_path,
                    progress=False)
    assert gan.read_summary()["status"] == "complete"
    assert len(gan.read_summary()["metrics"]["test_class_histogram"]) == 3
    dvae = start_run("dvae-mnist", "smoke", {"data.dataset": images["labelled"], "train.batch_size": 16,
                                             "classifier.batch_size": 16}, runs_dir=tmp_path, progress=False)
    metrics = dvae.read_summary()["metrics"]
    assert metrics["train_images"] == 96 and 0 <= metrics["true_label_classifier_accuracy"] <= 1
