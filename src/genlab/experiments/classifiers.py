"""`classifier-<dataset>`: the supervised classifiers that judge samples and start JEM."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from genlab import judges
from genlab.config import param, section
from genlab.data.augment import AUGMENTATIONS
from genlab.data.datasets import splits_of
from genlab.data.registry import check_name, get_spec
from genlab.eval.classification import evaluate_classifier
from genlab.experiments.base import Experiment, RunContext
from genlab.nets.classifiers import build_classifier
from genlab.report.figures import confusion_figure
from genlab.train.classifier import ClassifierModelConfig, ClassifierTrainConfig, ClassifierTrainer
from genlab.train.guard import DivergenceGuard, GuardConfig
from genlab.train.loop import LogConfig


@dataclass
class ClassifierDataConfig:
    dataset: str = param("mnist", "dataset to classify: mnist, fashion_mnist, cifar10, hoda, or labelled "
                                    "folder:PATH / npz:PATH")
    split_seed: int = param(0, "seed of Hoda's 85/10/5 split (fixed so every model sees the same held-out set)")
    train_limit: int = param(0, "use only the first N training images (0: all)", ge=0)
    eval_limit: int = param(0, "use only the first N evaluation images (0: all)", ge=0)

    def check(self) -> None:
        check_name(self.dataset, "data.dataset", ("mnist", "fashion_mnist", "cifar10", "hoda"))


@dataclass
class ClassifierConfig:
    seed: int = param(0, "seeds weights, batch order and augmentation")
    data: ClassifierDataConfig = section(ClassifierDataConfig)
    model: ClassifierModelConfig = section(ClassifierModelConfig)
    train: ClassifierTrainConfig = section(ClassifierTrainConfig)
    log: LogConfig = section(LogConfig)
    guard: GuardConfig = section(GuardConfig)


def run_classifier(ctx: RunContext) -> dict[str, Any]:
    cfg: ClassifierConfig = ctx.config
    spec = get_spec(cfg.data.dataset)
    ctx.classes = spec.classes
    has_val = "val" in splits_of(cfg.data.dataset)
    load = lambda split, limit: ctx.load_data(cfg.data.dataset, split, limit, cfg.data.split_seed)  # noqa: E731
    train_set = load("train", cfg.data.train_limit)
    eval_set = load("val" if has_val else "test", cfg.data.eval_limit)
    test_set = load("test", cfg.data.eval_limit)

    arch = {"arch": cfg.model.arch, "in_channels": spec.image_shape[0], "num_classes": len(spec.classes),
            "width": cfg.model.width, "norm": cfg.model.norm}
    model = build_classifier(**arch)
    batches = ctx.batches(train_set, cfg.train.batch_size, cfg.seed)
    total = math.ceil(cfg.train.epochs * batches.steps_per_epoch)
    trainer = ClassifierTrainer(model, batches, eval_set, cfg.train, AUGMENTATIONS[cfg.train.augment], total,
                                ctx.device)
    ctx.train(trainer, total, DivergenceGuard(cfg.guard, finite=("loss",)))

    test = evaluate_classifier(model, test_set, ctx.device, cfg.train.channels_last)
    metrics = {"test_accuracy": test["accuracy"], "test_loss": test["loss"]}
    if has_val:
        metrics["val_accuracy"] = evaluate_classifier(model, eval_set, ctx.device, cfg.train.channels_last)["accuracy"]
    metrics.update({"train_images": len(train_set), "test_images": len(test_set), "steps": total,
                    "parameters": sum(p.numel() for p in model.parameters()),
                    "per_class_accuracy": test["per_class_accuracy"], "confusion": test["confusion"]})
    ctx.save_figure(confusion_figure(test["confusion"], spec.classes,
                                     f"{cfg.data.dataset} test: accuracy {test['accuracy']:.4f}"), "confusion")
    judges.store(cfg.data.dataset, ctx.config_hash, model, arch,
                 {"test_accuracy": test["accuracy"], "test_images": len(test_set), "seed": cfg.seed,
                  "preset": ctx.run.read_config().get("preset"), "run_dir": str(ctx.run.path.resolve()), "notes": ctx.notes})
    return metrics


def _smoke(**extra: Any) -> dict[str, Any]:
    return {"data.train_limit": 1024, "data.eval_limit": 256, "train.epochs": 4,
            "train.batch_size": 64, "model.width": 8, "log.every": 16, "log.checkpoint_every": 32,
            "log.eval_every": 32, **extra}


def _classifier(dataset: str, summary: str, smoke: dict[str, Any], quick: dict[str, Any],
                full: dict[str, Any]) -> Experiment:
    return Experiment(f"classifier-{dataset}", "classifier", summary, ClassifierConfig, run_classifier,
                      presets={"smoke": smoke, "quick": quick, "full": full}, base={"data.dataset": dataset})


_LOG_QUICK = {"log.every": 50, "log.checkpoint_every": 500}
CLASSIFIER_EXPERIMENTS = (
    _classifier("mnist", "small CNN on MNIST", smoke=_smoke(),
                quick={"model.width": 16, "train.epochs": 4, **_LOG_QUICK, "log.eval_every": 470},
                full={"model.width": 32, "train.epochs": 15, "log.eval_every": 470}),
    _classifier("fashion_mnist", "small CNN on Fashion-MNIST", smoke=_smoke(),
                quick={"model.width": 32, "train.epochs": 6, "train.augment": "none", **_LOG_QUICK,
                       "log.eval_every": 470},
                full={"model.width": 64, "train.epochs": 30, "train.augment": "none", "log.eval_every": 470}),
    _classifier("hoda", "small CNN on Hoda Persian digits", smoke=_smoke(),
                quick={"model.width": 16, "train.epochs": 3, **_LOG_QUICK, "log.eval_every": 500},
                full={"model.width": 32, "train.epochs": 15, "log.eval_every": 1000}),
    _classifier("cifar10", "ResNet-9 on CIFAR-10",
                smoke=_smoke(**{"model.arch": "resnet9", "train.augment": "crop_flip"}),
                quick={"model.arch": "resnet9", "model.width": 16, "train.epochs": 15, "train.batch_size": 256,
                       "train.lr": 0.2, "train.augment": "crop_flip", "train.label_smoothing": 0.2,
                       "log.every": 39, "log.checkpoint_every": 390, "log.eval_every": 195},
                full={"model.arch": "resnet9", "model.width": 64, "train.epochs": 24, "train.batch_size": 512,
                      "train.lr": 0.4, "train.augment": "crop_flip", "train.label_smoothing": 0.2,
                      "log.every": 49, "log.checkpoint_every": 490, "log.eval_every": 490}),
)
