"""Checkpoints: written atomically, read with ``weights_only=True``, the newest good one found on resume.

A checkpoint is a dict of tensors and plain values: ``meta`` (experiment, config hash, step), ``trainer``
(models, optimisers, sampler state such as a replay buffer), ``loop`` (step, pending metrics, wall
time) and ``rng`` (every random state). A corrupt or truncated newest file is skipped with a warning
naming it, and the previous one is used.
"""

from __future__ import annotations

import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genlab.errors import CheckpointError
from genlab.io import load_torch, save_torch

_NAME = re.compile(r"^step_(\d{8})\.pt$")


class CheckpointStore:
    """Numbered checkpoints in one folder, keeping the newest ``keep``."""

    def __init__(self, folder: Path, keep: int = 3):
        self.folder = Path(folder)
        self.keep = keep

    def paths(self) -> list[Path]:
        """Checkpoint files, newest first."""
        found = [p for p in self.folder.glob("step_*.pt") if _NAME.match(p.name)]
        return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)), reverse=True)

    def save(self, step: int, state: dict[str, Any]) -> Path:
        """Write the checkpoint of ``step``; then delete the oldest beyond ``keep`` and the temp files of
        writes a kill cut short (one process writes a run at a time, so any other is a dead one's)."""
        path = self.folder / f"step_{step:08d}.pt"
        save_torch(state, path)
        for old in [*self.paths()[self.keep:], *self.folder.glob(".step_*.pt.*.tmp")]:
            old.unlink(missing_ok=True)
        return path

    def latest(self, expected_meta: dict[str, Any], map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
        """The newest readable checkpoint; unreadable ones are skipped with a warning.

        A readable checkpoint of another experiment or config is an error, not something to skip.
        """
        for path in self.paths():
            try:
                state = load_torch(path, map_location)
            except CheckpointError as err:
                warnings.warn(f"skipping checkpoint {path}: {err.message}; trying the previous one", stacklevel=2)
                continue
            check_meta(state, expected_meta, path)
            return state
        return None


def check_meta(state: dict[str, Any], expected: dict[str, Any], path: Path) -> None:
    meta = state.get("meta")
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} is not a genlab checkpoint (no 'meta' entry)")
    if meta.get("experiment") != expected["experiment"]:
        raise CheckpointError(f"{path} belongs to experiment '{meta.get('experiment')}', "
                              f"not '{expected['experiment']}'", hint="resume the run that wrote it")
    if meta.get("config_hash") != expected["config_hash"]:
        raise CheckpointError(f"{path} was written with another config (hash {meta.get('config_hash')}, "
                              f"config.json now hashes to {expected['config_hash']}); config.json was changed",
                              hint="restore the original config.json, or start a new run with the new settings")


def capture_rng() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    random.setstate(_as_tuple(state["python"]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _as_tuple(value: Any) -> Any:
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value
