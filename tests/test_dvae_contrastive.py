"""The discrete VAE's contrastive term: NT-Xent against hand computations, its options' validation, and a
short training run that logs it."""

import math

import pytest
import torch

from genlab.config import override
from genlab.data.augment import random_intensity, random_resized_crop
from genlab.data.batches import Batches
from genlab.data.datasets import ImageSet
from genlab.errors import ConfigError
from genlab.experiments.dvae import DVAEConfig
from genlab.nets.contrastive import nt_xent, projection_head
from genlab.nets.vq import build_dvae
from genlab.train.dvae import DVAETrainConfig, DVAETrainer


@pytest.mark.parametrize("batch, temperature", [(2, 0.5), (4, 0.2), (8, 1.0)])
def test_identical_orthogonal_views_give_one_positive_against_two_b_minus_two_negatives(batch, temperature):
    """Each anchor's positive has cosine 1 and its 2B - 2 negatives cosine 0:
    -log(e^(1/t) / (e^(1/t) + 2B - 2))."""
    views = 3.0 * torch.eye(16)[:batch]  # the scale must not matter: the rows are normalised
    expected = math.log(1 + (2 * batch - 2) * math.exp(-1 / temperature))
    assert nt_xent(views, views.clone(), temperature).item() == pytest.approx(expected, rel=1e-5)


def test_two_images_by_hand():
    """a = (e1, e2), b = (e1, (e1 + e2) / sqrt 2) at t = 1: the four anchors' cross-entropies written out."""
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    c = 1 / math.sqrt(2)
    # rows of the similarity over (a1, a2, b1, b2), self excluded; the positive first
    anchors = [(1.0, [0.0, c]),  # a1: positive b1 (cosine 1); negatives a2 (0), b2 (c)
               (c, [0.0, 0.0]),  # a2: positive b2 (c); negatives a1 (0), b1 (0)
               (1.0, [0.0, c]),  # b1: positive a1 (1); negatives a2 (0), b2 (c)
               (c, [c, c])]  # b2: positive a2 (c); negatives a1 (c), b1 (c)
    expected = sum(-pos + math.log(math.exp(pos) + sum(map(math.exp, neg))) for pos, neg in anchors) / 4
    assert nt_xent(a, b, 1.0).item() == pytest.approx(expected, rel=1e-6)


def test_swapping_the_views_or_reordering_the_images_leaves_the_loss_unchanged():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    perm = torch.randperm(6, generator=g)
    loss = nt_xent(a, b, 0.3)
    assert nt_xent(b, a, 0.3).item() == pytest.approx(loss.item(), rel=1e-6)
    assert nt_xent(a[perm], b[perm], 0.3).item() == pytest.approx(loss.item(), rel=1e-6)


def test_matching_views_score_lower_than_mismatched_ones():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(8, 32, generator=g)
    assert nt_xent(a, a + 0.1 * torch.randn(8, 32, generator=g), 0.5) < nt_xent(a, a.roll(1, 0), 0.5)


def test_projection_head_maps_features_to_its_width():
    assert projection_head(20, 7)(torch.zeros(3, 20)).shape == (3, 7)


def test_contrastive_options_are_validated():
    with pytest.raises(ConfigError, match="'train.contrastive_weight' must be >= 0"):
        override(DVAEConfig(), {"train.contrastive_weight": "-1"})
    with pytest.raises(ConfigError, match="'train.contrastive_temperature' must be > 0"):
        override(DVAEConfig(), {"train.contrastive_temperature": "0"})
    with pytest.raises(ConfigError, match="'train.contrastive_augment' must be one of"):
        override(DVAEConfig(), {"train.contrastive_augment": "blur"})
    with pytest.raises(ConfigError, match="train.contrastive_head .* the contrastive loss, which is off"):
        override(DVAEConfig(), {"train.contrastive_head": "64"})
    cfg = override(DVAEConfig(), {"train.contrastive_weight": "0.5", "train.contrastive_head": "64"})
    assert cfg.train.contrastive_head == 64


def _trainer(**options):
    g = torch.Generator().manual_seed(0)
    data = ImageSet("toy", "train", torch.randint(0, 256, (64, 1, 28, 28), generator=g, dtype=torch.uint8),
                    torch.zeros(64, dtype=torch.long), tuple("0123456789"))
    torch.manual_seed(0)
    model = build_dvae("vq", width=8, code_dim=4, num_codes=16, res_blocks=1)
    return DVAETrainer(model, Batches(data, 16, 0), data, DVAETrainConfig(**options), 20, torch.device("cpu"))


@pytest.mark.parametrize("head", [0, 32])
def test_contrastive_term_is_logged_finite_and_added_with_its_weight(head):
    trainer = _trainer(contrastive_weight=0.5, contrastive_head=head)
    records = [trainer.train_step(step) for step in range(4)]
    for metrics in records:
        assert torch.isfinite(metrics["contrastive"]) and metrics["contrastive"] > 0
        assert metrics["loss"].item() == pytest.approx((metrics["recon_mse"] + metrics["quant_loss"]
                                                        + 0.5 * metrics["contrastive"]).item(), rel=1e-5)
    assert ("head" in trainer.state_dict()) == bool(head)
    assert "contrastive" not in _trainer().train_step(0)


def test_the_head_learns_with_the_model():
    trainer = _trainer(contrastive_weight=1.0, contrastive_head=16)
    before = [p.clone() for p in trainer.head.parameters()]
    trainer.train_step(0)
    assert all(not torch.equal(p, q) for p, q in zip(before, trainer.head.parameters()))


def test_resized_crop_of_the_whole_image_is_the_identity_and_crops_stay_inside_the_image():
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    assert torch.allclose(random_resized_crop(x, (1.0, 1.0), (1.0, 1.0)), x, atol=1e-5)
    background = torch.full((64, 1, 28, 28), -1.0)  # grid_sample would read zeros outside the image
    assert torch.allclose(random_resized_crop(background, (0.3, 1.0), (0.5, 2.0)), background, atol=1e-5)
    crops = random_resized_crop(x[:1].expand(8, 1, 28, 28).contiguous())
    assert not torch.allclose(crops[0], crops[1])


def test_intensity_jitter_keeps_the_background_and_each_image_s_order_of_grey_levels():
    torch.manual_seed(0)
    x = torch.rand(256, 1, 28, 28) * 2 - 1
    x[:, :, :4] = -1.0  # background rows
    jittered = random_intensity(x)
    assert jittered.min() >= -1 and jittered.max() <= 1
    assert torch.equal(jittered[:, :, :4], x[:, :, :4])
    assert torch.allclose(random_intensity(x, gain=0.0, gamma=1.0), x, atol=1e-6)
    ink = x[:, 0, 4:].flatten(1)
    order = ink.argsort(1)
    assert (jittered[:, 0, 4:].flatten(1).gather(1, order).diff(dim=1) >= 0).all()  # monotone in each image
    ratio = (jittered[:, 0, 4:] + 1).mean((1, 2)) / (x[:, 0, 4:] + 1).mean((1, 2))
    assert ratio.min() < 0.8 and ratio.max() > 1.2  # images get darker and brighter
