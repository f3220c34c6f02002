"""The classifiers' networks at initialisation."""

import pytest
import torch

from genlab.nets.classifiers import build_classifier


@pytest.mark.parametrize("arch,channels,size", [("cnn", 1, 28), ("resnet9", 3, 32)])
def test_without_batch_norm_the_signal_keeps_its_scale_through_the_layers(arch, channels, size):
    """With PyTorch's default initialisation the features' scale fell far below the input's and the
    logits barely moved with the input, so training started on a plateau at chance."""
    torch.manual_seed(0)
    model = build_classifier(arch, channels, 10, 16, norm="none")
    x = torch.rand(256, channels, size, size) * 2 - 1
    with torch.no_grad():
        features = model.features(x)
        logits = model(x)
    ratio = float(features.pow(2).mean().sqrt() / x.pow(2).mean().sqrt())
    assert 0.5 < ratio < 20, ratio
    assert float(logits.std(0).mean()) > 0.005  # the logits tell inputs apart from the first step
