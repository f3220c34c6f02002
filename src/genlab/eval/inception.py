"""Standard Inception FID and IS, for when the Inception weights are on this machine.

genlab's main numbers use domain judges (see ``genlab.eval.judge``), because Inception weights cannot be
downloaded without internet. This option computes the standard numbers through torchmetrics and
torch-fidelity, but only when both packages and the weights file are already here; otherwise it says
exactly what is missing. It never falls back to anything else under the Inception name.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from genlab.errors import GenlabError

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{WEIGHTS_FILE}"


def weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def missing() -> list[str]:
    """What is missing for Inception metrics, one item per problem (empty when all is there)."""
    problems = [f"the Python package {name} (pip install {name})" for name in ("torchmetrics", "torch-fidelity")
                if importlib.util.find_spec(name.replace("-", "_")) is None]
    if not weights_path().is_file():
        problems.append(f"the weights file {weights_path()} (download {WEIGHTS_URL} there)")
    return problems


def _as_rgb_uint8(images: torch.Tensor) -> torch.Tensor:
    if images.dtype != torch.uint8:
        images = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


@torch.no_grad()
def inception_scores(real: torch.Tensor, fake: torch.Tensor, batch_size: int = 200) -> dict[str, float]:
    """Inception FID of ``fake`` against ``real`` and Inception IS of ``fake`` (images in [-1, 1] or uint8)."""
    problems = missing()
    if problems:
        raise GenlabError("Inception FID/IS need " + "; ".join(problems),
                          hint="or leave out --inception: the domain metrics need nothing from outside")
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.inception import InceptionScore

    fid, score = FrechetInceptionDistance(feature=2048), InceptionScore()
    for images, is_real in ((real, True), (fake, False)):
        for start in range(0, len(images), batch_size):
            batch = _as_rgb_uint8(images[start:start + batch_size])
            fid.update(batch, real=is_real)
            if not is_real:
                score.update(batch)
    is_mean, is_std = score.compute()
    return {"inception_fid": float(fid.compute()), "inception_is": float(is_mean), "inception_is_std": float(is_std)}
