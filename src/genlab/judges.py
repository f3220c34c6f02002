"""Trained classifiers, cached by dataset and config hash.

They are the independent judges and feature extractors of sample-quality metrics, and the pretrained
classifiers JEM starts from. A classifier run stores its final weights here when it completes:
``$GENLAB_CACHE_DIR/classifiers/<dataset>/<config hash>/`` (default ``~/.cache/genlab``; a user's dataset
is named by its content hash, ``user-<hash>``) holds
``model.pt`` (architecture and weights) and ``info.json`` (test accuracy, preset, seed, run directory).

A classifier must be fit for the run it serves: for any run but a smoke one it must meet its dataset's
accuracy bar and not be a smoke classifier (whose numbers mean nothing); a smoke run may use any. The
run's preset is set with :func:`serving`; outside it (scoring a user's samples) the strict rule holds.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterator

import torch

from genlab.data.files import cache_dir
from genlab.data.registry import cache_key, get_spec
from genlab.data.user import is_user
from genlab.errors import ConfigError, GenlabError
from genlab.eval.targets import CLASSIFIER_ACCURACY, JEM_START_ACCURACY
from genlab.nets.classifiers import build_classifier
from genlab.io import load_torch, save_torch, write_json


# Test accuracy a judge must reach on its dataset (the classifier study's targets), and that JEM asks of the
# classifier it starts from.
JUDGE_BARS = {dataset: target.threshold for dataset, target in CLASSIFIER_ACCURACY.items()}
START_BARS = {dataset: target.threshold for dataset, target in JEM_START_ACCURACY.items()}
BARS = {"judge": JUDGE_BARS, "start_classifier": START_BARS}  # by the role a classifier plays in a run
SMOKE = "smoke"

_serving: ContextVar[tuple[str, dict[str, dict[str, Any]]] | None] = ContextVar("serving", default=None)


@contextmanager
def serving(preset: str) -> Iterator[dict[str, dict[str, Any]]]:
    """While a run of ``preset`` runs, the classifiers it loads must be fit for it. Yields the identity of
    each one loaded, by role (``judge``, ``start_classifier``), for the run's summary."""
    used: dict[str, dict[str, Any]] = {}
    token = _serving.set((preset, used))
    try:
        yield used
    finally:
        _serving.reset(token)


def identity(entry: dict[str, Any]) -> dict[str, Any]:
    """What names a cached classifier in a summary or report."""
    return {"dataset": entry.get("dataset"), "config_hash": entry.get("config_hash"), "preset": preset_of(entry),
            "seed": entry.get("seed"), "test_accuracy": entry.get("test_accuracy")}


def preset_of(entry: dict[str, Any]) -> str | None:
    """The preset a cached classifier was trained with (older caches: read from its run's config.json)."""
    if entry.get("preset"):
        return entry["preset"]
    try:
        return json.loads((Path(entry.get("run_dir", "")) / "config.json").read_text()).get("preset")
    except (OSError, ValueError, AttributeError):
        return None


def fit(entry: dict[str, Any], role: str, preset: str | None) -> bool:
    """Whether a cached classifier may serve a run of ``preset`` (None: not a run) in ``role``."""
    if preset == SMOKE:
        return True
    bar = BARS[role].get(entry.get("dataset"), 0.0)
    return preset_of(entry) != SMOKE and (entry.get("test_accuracy") or 0.0) >= bar


def root() -> Path:
    return cache_dir() / "classifiers"


def folder_of(dataset: str) -> Path:
    return root() / cache_key(dataset)


def classifier_experiment(dataset: str) -> str:
    """The experiment that trains a dataset's classifier: its own, or for a user's images the small CNN of
    MNIST (grey) or the ResNet-9 of CIFAR-10 (colour), run with ``data.dataset`` set to them."""
    if not is_user(dataset):
        return f"classifier-{dataset}"
    return "classifier-mnist" if get_spec(dataset).image_shape[0] == 1 else "classifier-cifar10"


def train_command(dataset: str, preset: str = "quick", seed: int | None = None,
                  arch: dict[str, Any] | None = None) -> str:
    """The command that trains the classifier :func:`find` looks for."""
    extra = f" --seed {seed}" if seed is not None else ""
    extra += "".join(f" --set model.{k}={v}" for k, v in (arch or {}).items())
    extra += f" --set 'data.dataset={dataset}'" if is_user(dataset) else ""
    return f"genlab run {classifier_experiment(dataset)} --preset {preset}{extra}"


def store(dataset: str, config_hash: str, model: torch.nn.Module, arch: dict[str, Any], info: dict[str, Any]) -> Path:
    folder = folder_of(dataset) / config_hash
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_torch({"arch": arch, "state_dict": state}, folder / "model.pt")
    write_json(folder / "info.json", {"dataset": dataset, "config_hash": config_hash, "arch": arch, **info})
    return folder


def entries(dataset: str) -> list[dict[str, Any]]:
    """Info of every cached classifier of a dataset, best test accuracy first."""
    found = []
    for info_path in sorted(folder_of(dataset).glob("*/info.json")):
        if (info_path.parent / "model.pt").is_file():
            try:
                found.append({**json.loads(info_path.read_text()), "folder": str(info_path.parent)})
            except json.JSONDecodeError:
                continue
    return sorted(found, key=lambda e: -e.get("test_accuracy", 0.0))


def find(dataset: str, config_hash: str | None = None, seed: int | None = None,
         arch: dict[str, Any] | None = None, role: str = "judge") -> dict[str, Any]:
    """The best cached classifier (by test accuracy) matching a config hash, a seed and architecture fields,
    fit for the run being served (see :func:`serving`) in ``role``.

    Without a hash or seed, seed-0 classifiers are preferred: they are the judges, while other seeds serve
    as the pretrained starting points of JEM, so that a judge never scores samples of its own weights.
    """
    if role not in BARS:
        raise ConfigError(f"unknown classifier role '{role}'; roles: {', '.join(BARS)}")
    serving_preset = (_serving.get() or (None, {}))[0]
    matching = [e for e in entries(dataset) if config_hash in (None, e["config_hash"])
                and seed in (None, e.get("seed")) and all(e["arch"].get(k) == v for k, v in (arch or {}).items())]
    candidates = [e for e in matching if fit(e, role, serving_preset)]
    if config_hash is None and seed is None:
        candidates = [e for e in candidates if e.get("seed") == 0] or candidates
    if not candidates:
        wanted = ", ".join(f"{k} {v}" for k, v in [("config hash", config_hash), ("seed", seed), *(arch or {}).items()]
                           if v is not None)
        hint = f"train one with `{train_command(dataset, 'quick', seed, arch)}`"
        what = f"{dataset} classifier{' with ' + wanted if wanted else ''}"
        if not matching:
            raise GenlabError(f"no trained {what} in {folder_of(dataset)}", hint=hint)
        bar = BARS[role].get(dataset, 0.0)
        unfit = "; ".join(f"{e['config_hash']} ({preset_of(e) or 'preset unknown'}, test accuracy "
                          f"{e.get('test_accuracy') or 0:.2%})" for e in matching)
        raise GenlabError(f"no {what} in {folder_of(dataset)} is fit to serve as the {role.replace('_', ' ')} of "
                          f"{'a ' + serving_preset + ' run' if serving_preset else 'these samples'}: it needs "
                          + (f"test accuracy of at least {bar:.0%} and " if bar else "")
                          + f"a preset other than smoke; cached: {unfit}",
                          hint=hint)
    return candidates[0]


def load_classifier(dataset: str, config_hash: str | None = None, device: torch.device | str = "cpu",
                    seed: int | None = None, arch: dict[str, Any] | None = None,
                    role: str = "start_classifier") -> tuple[torch.nn.Module, dict[str, Any]]:
    """A cached classifier (see :func:`find`) for ``role`` (``start_classifier``: the classifier a model
    such as JEM starts from; ``judge``: see ``genlab.eval.judge``), in eval mode."""
    info = find(dataset, config_hash, seed, arch, role)
    served = _serving.get()
    if served is not None:
        served[1].setdefault(role, identity(info))
    state = load_torch(Path(info["folder"]) / "model.pt", map_location="cpu")
    model = build_classifier(**state["arch"])
    model.load_state_dict(state["state_dict"])
    return model.to(device).eval(), info
