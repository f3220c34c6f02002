"""Proximal Langevin with reused first-layer gradients (PYLD), as in JEM++ (Yang & Ji 2021) and its code.

Each of M outer steps takes one full gradient of the energy, which also yields p, the gradient with
respect to the output of the network's first layer, and moves x by ``step_size`` along -grad E. Then N
cheap inner steps follow the first-layer linearisation of the energy, H(x) = <first_layer(x), p> (the
YOPO trick, Zhang et al. 2019): each needs a forward and backward pass through the first layer only.
Every inner move is proximal: the gradient is clamped to [-bound, bound] per pixel before scaling by
``inner_step``, so no pixel moves more than ``inner_step * bound`` per inner step. Noise of standard
deviation ``noise`` is added once per outer step, after its inner steps; the JEM++ code adds none by default
(``noise=0``); genlab keeps the option.

``autocast`` and ``grad_clip`` act as in :func:`~genlab.sampling.langevin.langevin`: the network's passes (the
full one and the first layer's) run in that precision while the chain stays float32, and each entry of the
outer gradient is clamped to [-grad_clip, grad_clip].
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from genlab.nets.modes import frozen
from genlab.sampling.langevin import Chain, Energy


def proximal_langevin(energy: Energy, first_layer: nn.Module, x0: torch.Tensor, outer_steps: int, inner_steps: int,
                      step_size: float, inner_step: float, bound: float, noise: float = 0.0,
                      clamp: tuple[float, float] | None = (-1.0, 1.0), freeze: nn.Module | None = None,
                      autocast: torch.dtype | None = None, grad_clip: float | None = None) -> Chain:
    """M = ``outer_steps`` full-gradient steps, each followed by N = ``inner_steps`` first-layer steps."""
    captured: dict[str, torch.Tensor] = {}
    handle = first_layer.register_forward_hook(lambda module, inputs, output: captured.__setitem__("out", output))
    x = x0.detach().clone()
    trace = torch.empty(outer_steps, device=x.device)
    precision = (torch.autocast(x.device.type, dtype=autocast) if autocast is not None
                 else contextlib.nullcontext())
    try:
        with frozen(freeze if freeze is not None else energy), torch.enable_grad():
            for t in range(outer_steps):
                x.requires_grad_(True)
                with precision:
                    e = energy(x).float()
                grad, p = torch.autograd.grad(e.sum(), [x, captured["out"]])
                trace[t] = e.detach().mean()
                if grad_clip is not None:
                    grad = grad.clamp(-grad_clip, grad_clip)
                x = x.detach() - step_size * grad
                if clamp is not None:
                    x.clamp_(*clamp)
                p = p.detach()
                for _ in range(inner_steps):
                    x.requires_grad_(True)
                    with precision:
                        linearised = (first_layer(x) * p).float().sum()
                    (inner_grad,) = torch.autograd.grad(linearised, x)
                    x = x.detach() - inner_step * inner_grad.clamp(-bound, bound)
                    if clamp is not None:
                        x.clamp_(*clamp)
                if noise:
                    x.add_(torch.randn_like(x), alpha=noise)
    finally:
        handle.remove()
    return Chain(x, trace)
