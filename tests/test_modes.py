"""evaluating(): eval mode for the duration, every module's own training flag back afterwards."""

import pytest
from torch import nn

from genlab.nets.modes import evaluating


def _flags(module):
    return [m.training for m in module.modules()]


def test_a_network_with_parts_in_different_modes_comes_back_exactly():
    net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.BatchNorm1d(2), nn.Dropout()), nn.Linear(2, 1))
    net.train()
    net[1][0].eval()  # e.g. batch norm frozen while the rest trains
    before = _flags(net)
    assert before == [True, True, True, False, True, True]
    with evaluating(net):
        assert not any(_flags(net))
    assert _flags(net) == before


def test_several_modules_are_restored_after_an_exception():
    a, b = nn.Linear(1, 1).train(), nn.Dropout().eval()
    with pytest.raises(RuntimeError), evaluating(a, b):
        assert not a.training and not b.training
        raise RuntimeError
    assert a.training and not b.training
