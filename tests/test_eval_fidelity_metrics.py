"""Density/coverage, per-class scores, the label-free feature space, memorisation and CAS on inputs with a
known answer."""

import json
import math

import pytest
import torch
from conftest import needs_data

from genlab.eval.cas import classification_accuracy_score, epochs_for
from genlab.eval.memorisation import memorisation, train_neighbours
from genlab.eval.per_class import per_class_scores
from genlab.eval.quality import density_coverage, fid
from genlab.eval.randnet import randnet_features


def test_density_and_coverage_on_a_line_by_hand():
    """Real points 0..6, k = 2: the ball radii are 2 at the ends and 1 inside. A sample at 0.5 lies in the
    balls of 0 (radius 2) and 1 (radius 1) only: density 2 / (1 * 2) = 1, coverage 2 of 7."""
    real = torch.arange(7.0)[:, None]
    assert density_coverage(real, torch.tensor([[0.5]]), k=2) == pytest.approx((1.0, 2 / 7))
    assert density_coverage(real, torch.tensor([[10.0]]), k=2) == (0.0, 0.0)


def test_density_of_the_real_points_themselves_is_k_plus_one_over_k():
    """Each real point's ball holds itself and its k neighbours: N (k + 1) hits over N samples and k."""
    real = torch.randn(300, 4, generator=torch.Generator().manual_seed(0))
    density, coverage = density_coverage(real, real, k=5)
    assert density == pytest.approx(6 / 5) and coverage == 1.0


def _clusters(per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(10, 8, generator=torch.Generator().manual_seed(99)) * 6
    labels = torch.arange(10).repeat_interleave(per_class)
    return centres[labels] + torch.randn(len(labels), 8, generator=g), labels


def test_one_good_image_per_class_scores_badly_within_classes():
    real, real_labels = _clusters(200, 0)
    good, good_labels = _clusters(100, 1)
    collapsed = real[torch.arange(10) * 200].repeat_interleave(100, 0)  # one real image per class, repeated
    good_scores = per_class_scores(real, real_labels, good, good_labels, 10)
    collapsed_scores = per_class_scores(real, real_labels, collapsed, good_labels, 10)
    assert good_scores["intra_fid"] < 1.0 and good_scores["intra_coverage"] > 0.8
    # each class: covariance 0 against identity in 8 dimensions, so FID >= trace(I) = 8
    assert collapsed_scores["intra_fid"] > 8 and collapsed_scores["intra_coverage"] < 0.05


def test_a_class_without_samples_has_no_fid_and_no_coverage():
    real, real_labels = _clusters(50, 0)
    fake, fake_labels = _clusters(20, 1)
    keep = fake_labels != 3
    scores = per_class_scores(real, real_labels, fake[keep], fake_labels[keep], 10)
    assert math.isnan(scores["per_class_fid"][3]) and scores["per_class_coverage"][3] == 0.0
    assert scores["intra_coverage"] == pytest.approx(sum(scores["per_class_coverage"]) / 10)
    assert scores["intra_fid"] == pytest.approx(sum(v for v in scores["per_class_fid"] if not math.isnan(v)) / 9)


def test_random_network_features_are_fixed_and_see_noise():
    torch.manual_seed(123)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(400, 1, 28, 28, generator=g).round() * 2 - 1
    first = randnet_features(images[:200])
    torch.manual_seed(456)  # the global seed does not change the network
    assert torch.equal(first, randnet_features(images[:200])) and first.shape == (200, 224)
    other = randnet_features(images[200:])
    noisy = randnet_features((images[200:] + 0.6 * torch.randn(images[200:].shape, generator=g)).clamp(-1, 1))
    assert fid(first, noisy) > 10 * fid(first, other)


def _neighbours(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    train, calibration, held_out = (torch.randn(n, 1, 8, 8, generator=g).tanh() for n in (2000, 500, 500))
    features = lambda x: x.flatten(1)[:, :16].double()  # noqa: E731 (a stand-in for the judge's features)
    return train, held_out, features, train_neighbours(train, features(train), calibration, features(calibration))


def test_copies_of_training_images_are_flagged_and_new_images_are_not():
    train, held_out, features, reference = _neighbours()
    copies = memorisation(train[:300], features(train[:300]), reference)
    assert copies["memorised_share"] == 1.0 and copies["memorised_share_features"] == 1.0
    assert copies["train_distance_ratio"] == pytest.approx(0.0, abs=1e-3)
    assert copies["pairs"][0][0] == pytest.approx(0.0, abs=1e-3) and copies["pairs"][0][1] == copies["pairs"][0][2]
    new = memorisation(held_out, features(held_out), reference)
    assert new["memorised_share"] < 0.04 and new["memorised_share_features"] < 0.04  # the rule's base rate is 0.01
    assert new["train_distance_ratio"] == pytest.approx(1.0, abs=0.05)
    assert new["memorisation_train_images"] == 2000


def _bars(labels: torch.Tensor, seed: int) -> torch.Tensor:
    """Class c: a bright horizontal bar at rows 2c..2c+2 of a noisy 28x28 image."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(len(labels), 1, 28, 28, generator=g) * 0.6 - 1
    for i, c in enumerate(labels.tolist()):
        images[i, 0, 2 * c + 4:2 * c + 6] = 1
    return images


def test_cas_is_high_for_informative_samples_and_chance_for_shuffled_labels():
    labels = torch.arange(600) % 10
    train, test = _bars(labels, 0), _bars(labels[:300], 1)
    good = classification_accuracy_score(_bars(labels, 2), labels, train, labels, test, labels[:300], 10, epochs=3,
                                         min_steps=0)
    assert good["cas"] > 0.8 and good["cas_real"] > 0.8 and good["cas_images"] == 600
    shuffled = labels[torch.randperm(600, generator=torch.Generator().manual_seed(0))]
    bad = classification_accuracy_score(_bars(labels, 2), shuffled, train, labels, test, labels[:300], 10, epochs=3,
                                        min_steps=0)
    assert bad["cas"] < 0.3


def test_a_small_sample_set_gets_enough_steps_to_learn_from():
    """500 samples at batch 32 are 16 steps an epoch: 2 epochs would leave the classifier near chance, so
    training runs 19 epochs (304 steps, the first count at or above 300); 10,000 images keep their 2 epochs.
    60 bar images (2 steps an epoch) learnt for one epoch are at chance, for 30 (60 steps) well above it."""
    assert epochs_for(500, 2) == 19 and epochs_for(10_000, 2) == 2 and epochs_for(33, 1) == 300
    labels, test_labels = torch.arange(60) % 10, torch.arange(300) % 10
    train, test = _bars(labels, 0), _bars(test_labels, 1)
    def score(min_steps):
        return classification_accuracy_score(_bars(labels, 2), labels, train, labels, test, test_labels, 10, epochs=1,
                                             min_steps=min_steps)
    few, enough = score(0), score(60)
    assert few["cas_epochs"] == 1 and few["cas_real"] < 0.3
    assert enough["cas_epochs"] == 30 and enough["cas"] > 0.8 and enough["cas_real"] > 0.8


@needs_data("mnist")
def test_eval_samples_flags_copies_not_test_images_and_writes_every_metric(tmp_path, capsys):
    from genlab import judges
    from genlab.cli import main
    from genlab.data import load
    from genlab.eval.memorisation import subset
    from genlab.eval.samples_io import save_samples

    assert main(["run", "classifier-mnist", "--preset", "smoke", "--run-dir", str(tmp_path / "judge"),
                 "--no-progress"]) == 0
    train, test = load("mnist", "train"), load("mnist", "test")
    searched = subset(len(train))[:300]  # copies of training images that memorisation searches
    save_samples(tmp_path / "copies.npz", train.images[searched], train.labels[searched])
    save_samples(tmp_path / "real.npz", test.images[-300:])  # not among the threshold's first 2,000
    capsys.readouterr()
    with judges.serving("smoke"):  # the smoke judge may score only for smoke runs
        for name in ("copies", "real"):
            assert main(["eval", "samples", str(tmp_path / f"{name}.npz"), "--dataset", "mnist"]) == 0
    assert "memorised_share: 1\n" in capsys.readouterr().out
    copies = json.loads((tmp_path / "copies_scores.json").read_text())
    real = json.loads((tmp_path / "real_scores.json").read_text())
    assert copies["memorised_share"] == 1.0 and copies["train_distance_ratio"] < 0.01  # float32 rounding
    assert real["memorised_share"] < 0.04 and 0.8 < real["train_distance_ratio"] < 1.2
    assert {"density", "coverage", "intra_fid", "randnet_fid", "cas", "cas_real"} <= set(copies)
    assert "cas" not in real and len(real["per_class_fid"]) == 10
