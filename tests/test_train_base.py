"""ModelTrainer's learning-rate helper and its answer to a rollback."""

import pytest
import torch

from genlab.train.base import ModelTrainer, set_lr


class _Trainer(ModelTrainer):
    def __init__(self):
        self.model = torch.nn.Linear(2, 1)
        self.optimizer = torch.optim.SGD([{"params": [self.model.weight]}, {"params": [self.model.bias]}], lr=1.0)


def _lrs(trainer):
    return [group["lr"] for group in trainer.optimizer.param_groups]


def test_schedule_lr_sets_every_group_to_the_warmed_up_cosine_rate():
    trainer = _Trainer()
    assert trainer.schedule_lr(0, 0.1, 10, warmup=4) == pytest.approx(0.025)  # 0.1 * 1/4 of the warm-up
    assert _lrs(trainer) == [pytest.approx(0.025)] * 2
    assert trainer.schedule_lr(5, 0.1, 10, decay="cosine") == pytest.approx(0.05)  # halfway down the cosine
    assert trainer.schedule_lr(7, 0.1, 10) == pytest.approx(0.1)


def test_soften_halves_the_rate_now_and_at_later_steps():
    trainer = _Trainer()
    set_lr(trainer.optimizer, 0.2)
    assert trainer.soften(1) == "learning rate scaled by 0.5"
    assert _lrs(trainer) == [pytest.approx(0.1)] * 2
    assert trainer.schedule_lr(3, 0.2, 10) == pytest.approx(0.1)
    state = trainer.state_dict()
    assert list(state) == ["model", "optimizer", "lr_scale"]
    fresh = _Trainer()
    fresh.load_state_dict(state)
    assert fresh.lr_scale == 0.5 and _lrs(fresh) == [pytest.approx(0.1)] * 2
