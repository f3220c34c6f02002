"""The published CIFAR-10 numbers of the papers genlab's energy-based studies follow, to read beside genlab's.

What compares directly: test accuracy (same test split, same measure). What does not: the papers' FID and
IS are Inception numbers on 50,000 (IGEBM: 50,000 for IS) samples from networks trained for days on GPUs
(Wide-ResNet-28-10 for JEM and JEM++); genlab's headline FID is a domain FID in the features of the
dataset's own small classifier (eval.judge) on 1,000-10,000 samples from CPU-sized runs of minutes. The two
FIDs are on different scales and cannot be subtracted. Inception FID and IS of genlab's samples are computed
when torchmetrics, torch-fidelity and the Inception weights file are on the machine (eval.inception;
``genlab eval samples FILE --dataset cifar10 --inception``).

``confirmed`` names the numbers a second public source (a results aggregator listing the paper) agreed with
when this table was written; the others are as read in the paper's table and not checked again.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    model: str
    paper: str
    table: str
    accuracy: float | None  # CIFAR-10 test accuracy, fraction (None: not a classifier)
    inception_score: float | None
    inception_fid: float | None
    setting: str
    confirmed: tuple[str, ...]


PUBLISHED = (
    Published("IGEBM", "Du & Mordatch 2019, Implicit Generation and Generalization in Energy-Based Models",
              "table 1 (CIFAR-10, unconditional)", None, 6.02, 40.58,
              "ResNet energy, replay buffer, 60 SGLD steps; GPU training", ("inception_fid",)),
    Published("JEM", "Grathwohl et al. 2020, Your Classifier is Secretly an Energy Based Model (ICLR)",
              "table 1 (CIFAR-10 hybrid models)", 0.929, 8.76, 38.4,
              "Wide-ResNet-28-10, 20 SGLD steps, no batch norm; GPU days", ("accuracy", "inception_fid")),
    Published("JEM++ (M=20)", "Yang & Ji 2021, JEM++: Improved Techniques for Training JEM (ICCV)",
              "table 1 (CIFAR-10 hybrid models)", 0.941, None, 38.0,
              "Wide-ResNet-28-10 with batch norm, PYLD, Gaussian-mixture starts; GPU", ("accuracy", "inception_fid")),
)

COMPARABLE = ("Directly comparable: test accuracy on CIFAR-10's test split. Not comparable: the papers' Inception "
              "FID/IS against genlab's domain FID/IS (another feature space and scale, fewer samples), and the "
              "budgets (GPU days against CPU minutes).")

