"""Trained classifiers, cached by dataset and config hash.

They are the independent judges and feature extractors of sample-quality metrics, and the pretrained
classifiers JEM starts from. A classifier run stores its final weights here when it completes:
``$GENLAB_CACHE_DIR/classifiers/<dataset>/<config hash>/`` (default ``~/.cache/genlab``) holds
``model.pt`` (architecture and weights) and ``info.json`` (test accuracy, run directory, config).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from genlab.data.files import cache_dir
from genlab.errors import GenlabError
from genlab.nets.classifiers import build_classifier
from genlab.io import load_torch, save_torch, write_json


def root() -> Path:
    return cache_dir() / "classifiers"


def store(dataset: str, config_hash: str, model: torch.nn.Module, arch: dict[str, Any], info: dict[str, Any]) -> Path:
    folder = root() / dataset / config_hash
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_torch({"arch": arch, "state_dict": state}, folder / "model.pt")
    write_json(folder / "info.json", {"dataset": dataset, "config_hash": config_hash, "arch": arch, **info})
    return folder


def entries(dataset: str) -> list[dict[str, Any]]:
    """Info of every cached classifier of a dataset, best test accuracy first."""
    found = []
    for info_path in sorted((root() / dataset).glob("*/info.json")):
        if (info_path.parent / "model.pt").is_file():
            try:
                found.append({**json.loads(info_path.read_text()), "folder": str(info_path.parent)})
            except json.JSONDecodeError:
                continue
    return sorted(found, key=lambda e: -e.get("test_accuracy", 0.0))


def find(dataset: str, config_hash: str | None = None, seed: int | None = None,
         arch: dict[str, Any] | None = None) -> dict[str, Any]:
    """The best cached classifier (by test accuracy) matching a config hash, a seed and architecture fields.

    Without a hash or seed, seed-0 classifiers are preferred: they are the judges, while other seeds serve
    as the pretrained starting points of JEM, so that a judge never scores samples of its own weights.
    """
    candidates = [e for e in entries(dataset) if config_hash in (None, e["config_hash"])
                  and seed in (None, e.get("seed")) and all(e["arch"].get(k) == v for k, v in (arch or {}).items())]
    if config_hash is None and seed is None:
        candidates = [e for e in candidates if e.get("seed") == 0] or candidates
    if not candidates:
        wanted = ", ".join(f"{k} {v}" for k, v in [("config hash", config_hash), ("seed", seed), *(arch or {}).items()]
                           if v is not None)
        extra = f" --seed {seed}" if seed is not None else ""
        extra += "".join(f" --set model.{k}={v}" for k, v in (arch or {}).items())
        raise GenlabError(f"no trained {dataset} classifier{' with ' + wanted if wanted else ''} in {root() / dataset}",
                          hint=f"train one with `genlab run classifier-{dataset} --preset quick{extra}`")
    return candidates[0]


def load_classifier(dataset: str, config_hash: str | None = None, device: torch.device | str = "cpu",
                    seed: int | None = None, arch: dict[str, Any] | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A cached classifier (see :func:`find`), in eval mode."""
    info = find(dataset, config_hash, seed, arch)
    state = load_torch(Path(info["folder"]) / "model.pt", map_location="cpu")
    model = build_classifier(**state["arch"])
    model.load_state_dict(state["state_dict"])
    return model.to(device).eval(), info
