"""A trained domain classifier used as a judge: its penultimate features and class probabilities.

Inception weights cannot be fetched on machines without internet, so genlab's sample-quality numbers
(domain FID, KID, IS, precision/recall, class metrics) are computed with the dataset's own classifier
from the classifier cache. Every table says which judge produced it (``Judge.description``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from genlab import judges
from genlab.data.registry import get_spec
from genlab.nets.classifiers import build_classifier


@dataclass
class Embedding:
    features: torch.Tensor  # float64 (N, D)
    probs: torch.Tensor  # float64 (N, classes)


class Judge:
    def __init__(self, model: torch.nn.Module, info: dict[str, Any], device: torch.device | str = "cpu"):
        self.model = model.to(device).eval()
        self.info = info
        self.device = torch.device(device)

    @classmethod
    def load(cls, dataset: str, device: torch.device | str = "cpu", config_hash: str | None = None) -> "Judge":
        """The dataset's cached classifier; for a user's unlabelled images, :meth:`label_free`."""
        spec = get_spec(dataset)
        if not spec.classes:
            return cls.label_free(dataset, spec.image_shape[0], device)
        model, info = judges.load_classifier(dataset, config_hash, device, role="judge")
        return cls(model, info, device)

    @classmethod
    def label_free(cls, dataset: str, channels: int, device: torch.device | str = "cpu") -> "Judge":
        """For images without labels no classifier can be trained: features of a small CNN with fixed random
        weights (seed 0) stand in, so Frechet distance, KID and precision/recall can still compare samples
        with the data. Its class probabilities are NaN: class metrics (IS, coverage) do not apply."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = build_classifier("cnn", channels, 1, 16)
        return cls(model, {"dataset": dataset, "config_hash": "random-features", "label_free": True}, device)

    @property
    def description(self) -> str:
        if self.info.get("label_free"):
            return (f"domain metrics on the features of a randomly initialised small CNN (seed 0): "
                    f"{self.info['dataset']} has no labels to train a judge on; class metrics do not apply")
        return (f"domain metrics on the features of genlab's {self.info['dataset']} classifier "
                f"{self.info['config_hash']} ({judges.preset_of(self.info) or 'preset unknown'} preset, seed "
                f"{self.info.get('seed')}, test accuracy {self.info.get('test_accuracy', float('nan')):.2%}), "
                "not Inception")

    @torch.no_grad()
    def embed(self, images: torch.Tensor, batch_size: int = 500) -> Embedding:
        """Features and probabilities of float images in [-1, 1] (or uint8 images)."""
        feats, probs = [], []
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size].to(self.device)
            if x.dtype == torch.uint8:
                x = x.float() / 127.5 - 1
            f = self.model.features(x.float())
            feats.append(f.double().cpu())
            p = torch.softmax(self.model.logits(f).double(), 1).cpu()
            probs.append(p.fill_(float("nan")) if self.info.get("label_free") else p)
        return Embedding(torch.cat(feats), torch.cat(probs))
