"""The named losses of the energy-based families against values computed by hand."""

import math

import pytest
import torch

from genlab.train.ebm import contrastive_divergence_loss, sampler_kl_loss
from genlab.train.jem import jem_loss


def test_contrastive_divergence_loss_by_hand():
    # cd = mean(1, 3) - mean(2, 6) = 2 - 4 = -2; L2 = mean(1, 9) + mean(4, 36) = 5 + 20 = 25
    loss, cd = contrastive_divergence_loss(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 6.0]), alpha=0.5)
    assert cd.item() == pytest.approx(-2.0)
    assert loss.item() == pytest.approx(-2.0 + 0.5 * 25)


def test_contrastive_divergence_gradient_lowers_data_and_raises_sample_energy():
    e_pos = torch.tensor([0.0, 0.0], requires_grad=True)
    e_neg = torch.tensor([0.0, 0.0], requires_grad=True)
    contrastive_divergence_loss(e_pos, e_neg, alpha=0.0)[0].backward()
    assert torch.equal(e_pos.grad, torch.full((2,), 0.5)) and torch.equal(e_neg.grad, torch.full((2,), -0.5))


class _Quadratic(torch.nn.Module):
    """E(x) = a/2 |x|^2 per image: one Langevin step moves x to (1 - drift a) x."""

    def __init__(self, a: float):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(a))

    def forward(self, x):
        return 0.5 * self.a * x.flatten(1).pow(2).sum(1)


def test_sampler_kl_loss_by_hand_reaches_the_parameters_only_through_the_step():
    # loss = mean a/2 |(1 - d a) x|^2 with the outer a frozen: value a0/2 (1 - d a0)^2 mean|x|^2, gradient
    # -a0 d (1 - d a0) mean|x|^2 (the frozen energy alone would add (1 - d a0)^2/2 mean|x|^2).
    model, drift = _Quadratic(0.5), 0.4
    x = torch.tensor([[1.0, 2.0], [0.0, -2.0]]).view(2, 1, 1, 2)
    squared = (5.0 + 4.0) / 2
    loss = sampler_kl_loss(model, x, drift)
    assert loss.item() == pytest.approx(0.25 * 0.8 ** 2 * squared)
    loss.backward()
    assert model.a.grad.item() == pytest.approx(-0.5 * 0.4 * 0.8 * squared)
    assert not x.requires_grad


def test_jem_loss_by_hand():
    # softmax([0, ln 3])[1] = 3/4 and softmax([ln 3, 0])[1] = 1/4: ce = (ln 4/3 + ln 4) / 2
    logits = torch.tensor([[0.0, math.log(3)], [math.log(3), 0.0]])
    labels = torch.tensor([1, 1])
    loss, ce, gen = jem_loss(logits, labels, torch.tensor([1.0, 2.0]), torch.tensor([4.0, 5.0]),
                             ce_weight=2.0, gen_weight=0.5)
    expected_ce = (math.log(4 / 3) + math.log(4)) / 2
    assert ce.item() == pytest.approx(expected_ce)
    assert gen.item() == pytest.approx(1.5 - 4.5)
    assert loss.item() == pytest.approx(2.0 * expected_ce + 0.5 * -3.0)
