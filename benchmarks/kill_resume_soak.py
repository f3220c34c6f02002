"""Kill/resume soak: SIGKILL runs of each family at random moments, resume each time, compare the end.

    python benchmarks/kill_resume_soak.py [--kills 10] [--experiments ebm-mnist-cond jem-mnist jempp-mnist
        wgangp-hoda dvae-mnist] [--preset quick] [--seed 0] [--work DIR] [--cache DIR] [--out FILE]

For each experiment, shortened by its row of SHORTEN (a few minutes at the quick preset, a checkpoint every
few steps): one uninterrupted reference run, then one run killed --kills times and resumed with `genlab
resume` after each kill. Half of the kills land at a random moment; the other half, after a random wait,
the moment a checkpoint's temporary file appears in any of the run's checkpoint folders (a kill during the
write). The waits count from the end of the run's start-up (measured on the reference: until its first
checkpoint) and give it about 3/4 of 1/kills of the reference's run each, so the kills spread over most
of the run. Each kill is labelled with the phase it hit: the last checkpoint folder the run has made, or "after"
it once that folder holds the reference's last checkpoint (a final evaluation; for the discrete VAE the
code study after the autoencoder).

The end must equal the reference's: summary.json exactly, less its wall-clock fields (comparable_summary),
and the newest checkpoint of every checkpoint folder (PHASES: the run's own; for the discrete VAE also the
autoencoder's and the two classifiers' phase folders, so every phase is compared, the code study through
its numbers in the summary): every tensor (weights, optimiser state, replay buffer, RNG states) within 1e-6
and every other value of the trainer state (a GAN's best step and FID, counters, the sampler precision's
decision) equal. Prints "N kills survived, D differences" per experiment and writes JSON. The classifiers
the runs need (judges, JEM's start) come from --cache, a COPY of a cache holding them (runs that would have
to train one stop instead); without --cache they are trained at --preset into a private cache under --work.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from genlab.eval.schema import METRICS
from genlab.experiments.base import machine_info
from genlab.experiments.sampling_study import CELL_COLUMNS
from genlab.io import load_torch
from genlab.train.checkpoint import CheckpointStore

SETUP = (["classifier-mnist", "--seed", "0"], ["classifier-mnist", "--seed", "1"],
         ["classifier-mnist", "--seed", "1", "--set", "model.norm=none"], ["classifier-hoda", "--seed", "0"])

# What shortens each experiment's quick run to a few minutes on one thread, with checkpoints every few steps
# so that kills land inside every phase. The discrete VAE also uses a fifth of MNIST: its code study is not
# checkpointed (a kill restarts it) and takes two minutes on all 60,000 images.
_EVERY_4 = {"log.every": 4, "log.checkpoint_every": 4}
SHORTEN: dict[str, dict[str, Any]] = {
    "ebm-mnist-cond": {"train.iterations": 300, **_EVERY_4, "log.eval_every": 150},
    "jem-mnist": {"train.iterations": 300, **_EVERY_4, "log.eval_every": 150},
    "jempp-mnist": {"train.iterations": 300, **_EVERY_4, "log.eval_every": 100},
    "wgangp-hoda": {"train.steps": 400, "log.every": 10, "log.checkpoint_every": 10, "log.eval_every": 100,
                    "eval.final_samples": 2000},
    "dvae-mnist": {"data.train_limit": 12000, "train.epochs": 1.5, "cluster.autoencoder_epochs": 1.5,
                   "classifier.epochs": 1.5, "log.every": 10, "log.checkpoint_every": 10, "log.eval_every": 50},
}
# Each experiment's checkpoint folders, relative to its run directory, in the order the run fills them.
PHASES: dict[str, tuple[str, ...]] = {
    "dvae-mnist": ("checkpoints", "autoencoder/checkpoints", "classifier_true_labels/checkpoints",
                   "classifier_pseudo_labels/checkpoints"),
}
TOLERANCE = 1e-6


def phases(experiment: str) -> tuple[str, ...]:
    return PHASES.get(experiment, ("checkpoints",))


def genlab(args: list[str], env: dict[str, str], wait: bool = True) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "genlab.cli", *args, "--no-progress"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if wait and proc.wait() != 0:
        raise SystemExit(f"`genlab {' '.join(args)}` failed:\n{proc.stderr.read()}")
    return proc


# Summary fields that read the clock or the machine, not the run's numbers.
WALL_CLOCK = {"wall_time_s", "finished_at", "started_at", "seconds", "machine"}
# Columns of list-valued metrics that are wall times: those whose schema unit names "wall s" ("[step, wall s,
# FID] per evaluation"), and the sampling study's seconds per sample.
WALL_COLUMNS = {**{key: metric.unit[1:metric.unit.find("]")].split(", ").index("wall s")
                   for key, metric in METRICS.items() if metric.unit.startswith("[") and "wall s" in metric.unit},
                "sampling_cells": CELL_COLUMNS.index("seconds_per_sample")}


def timeless(metrics: dict[str, Any]) -> dict[str, Any]:
    """Summary metrics without wall-clock readings: the keys in seconds and the wall-time columns."""
    kept = {}
    for key, value in metrics.items():
        if "second" in key or "wall" in key:
            continue
        if key in WALL_COLUMNS and isinstance(value, list):
            value = [[x for i, x in enumerate(row) if i != WALL_COLUMNS[key]] for row in value]
        kept[key] = value
    return kept


def comparable_summary(path: Path, root: Path) -> dict[str, Any]:
    """A run's summary.json as two runs of the same config must agree on it: ``root``'s path replaced by ROOT,
    without wall-clock fields (WALL_CLOCK, timeless metrics, notes that give seconds), and of the sampler's
    precision only the decision (whether it was measured in this process or read from the cache is not)."""
    summary = json.loads(path.read_text().replace(str(root.resolve()), "ROOT"))
    summary = {k: v for k, v in summary.items() if k not in WALL_CLOCK}
    summary["metrics"] = timeless(summary.get("metrics", {}))
    summary["notes"] = [note for note in summary.get("notes", []) if "second" not in note]
    if summary.get("sampler_precision"):
        summary["sampler_precision"] = summary["sampler_precision"]["chosen"]
    return summary


def comparable_trainer(checkpoint: Path) -> dict[str, Any]:
    """A checkpoint's trainer state; of the sampler precision only the decision, as in the summary."""
    state = load_torch(checkpoint)["trainer"]
    if state.get("sampler_precision"):
        state["sampler_precision"] = state["sampler_precision"]["chosen"]
    return state


def leaves(state: Any, prefix: str = "") -> dict[str, Any]:
    """Every tensor and plain value in a nested checkpoint state, by its path (the RNG states included)."""
    if isinstance(state, dict):
        items = state.items()
    elif isinstance(state, (list, tuple)):
        items = enumerate(state)
    else:
        return {prefix: state}
    return {k: v for key, value in items for k, v in leaves(value, f"{prefix}/{key}").items()}


def value_differences(a: dict[str, Any], b: dict[str, Any], where: str) -> list[str]:
    found = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key, "(absent)"), b.get(key, "(absent)")
        if isinstance(x, torch.Tensor) != isinstance(y, torch.Tensor):
            found.append(f"{where} {key}: a tensor in one run only")
        elif isinstance(x, torch.Tensor):
            if x.shape != y.shape:
                found.append(f"{where} tensor {key}: shape {tuple(x.shape)} vs {tuple(y.shape)}")
            elif x.is_floating_point() and not torch.allclose(x, y, rtol=0, atol=TOLERANCE, equal_nan=True):
                found.append(f"{where} tensor {key}: max difference {(x - y).abs().max().item():.3g}")
            elif not x.is_floating_point() and not torch.equal(x, y):
                found.append(f"{where} tensor {key}: differs")
        elif x != y and not (x != x and y != y):  # NaN equals NaN here (an unset best FID, say)
            found.append(f"{where} {key}: {x!r} vs {y!r}")
    return found


def differences(ref: Path, got: Path, experiment: str) -> tuple[list[str], int, int]:
    """What differs between the two runs' summaries and the newest checkpoint of each checkpoint folder;
    how many tensors and how many other values of the checkpoints were compared."""
    ref_summary, got_summary = (leaves(comparable_summary(p / "summary.json", p)) for p in (ref, got))
    found = value_differences(ref_summary, got_summary, "summary")
    tensors = others = 0
    for folder in phases(experiment):
        ref_ckpt, got_ckpt = (CheckpointStore(p / folder).paths()[0] for p in (ref, got))
        if ref_ckpt.name != got_ckpt.name:
            found.append(f"{folder}: newest checkpoint {ref_ckpt.name} vs {got_ckpt.name}")
            continue
        a, b = (leaves(comparable_trainer(p)) for p in (ref_ckpt, got_ckpt))
        found += value_differences(a, b, f"{folder}/{ref_ckpt.name}")
        tensors += sum(isinstance(v, torch.Tensor) for v in a.values())
        others += sum(not isinstance(v, torch.Tensor) for v in a.values())
    return found, tensors, others


def writing_checkpoint(folders: list[Path], proc: subprocess.Popen) -> bool:
    """Whether the process is writing a checkpoint: its own temp file (named with its pid) exists."""
    mine = f".{proc.pid}.tmp"
    return any(p.name.endswith(mine) for folder in folders if folder.exists() for p in folder.iterdir())


def wait_for_checkpoint_write(folders: list[Path], proc: subprocess.Popen, timeout: float) -> None:
    """Return the moment the process's checkpoint temp file exists in any of the folders (or on timeout /
    process exit)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline and proc.poll() is None and not writing_checkpoint(folders, proc):
        time.sleep(0.0005)


def phase_at(run: Path, ref: Path, experiment: str) -> str:
    """The phase a run is in: the last checkpoint folder it has made, "after" it once that folder's newest
    checkpoint is the reference's last."""
    folder = next(f for f in reversed(phases(experiment)) if (run / f).exists() or f == phases(experiment)[0])
    name = folder.removesuffix("checkpoints").strip("/") or "training"
    written = CheckpointStore(run / folder).paths()
    return f"after {name}" if written and written[0].name == CheckpointStore(ref / folder).paths()[0].name else name


def first_checkpoint_after(proc: subprocess.Popen, folder: Path) -> float:
    """Seconds from the process's start until its first checkpoint appears: what a (re)started run spends
    before it trains (imports, data, networks); then waits for the process to end."""
    started = time.perf_counter()
    while proc.poll() is None and not (folder.exists() and any(folder.glob("step_*.pt"))):
        time.sleep(0.01)
    startup = time.perf_counter() - started
    if proc.wait() != 0:
        raise SystemExit(f"`genlab {' '.join(proc.args[3:])}` failed:\n{proc.stderr.read()}")
    return startup


def soak(experiment: str, args, env: dict[str, str], rng: random.Random) -> dict[str, Any]:
    shortening = SHORTEN[experiment]
    sets = [arg for key, value in shortening.items() for arg in ("--set", f"{key}={value}")]
    start = ["run", experiment, "--preset", args.preset, "--seed", str(args.seed), *sets, "--no-prerequisites"]
    ref, killed = Path(args.work) / f"{experiment}-ref", Path(args.work) / f"{experiment}-killed"
    started = time.perf_counter()
    startup = first_checkpoint_after(genlab([*start, "--run-dir", str(ref)], env, wait=False), ref / "checkpoints")
    ref_s = time.perf_counter() - started
    # The kills are paced so that each lets the run progress about 3/4 of 1/kills of the reference on average
    # (after its start-up): they land in every phase and the last of them still before the end (at the full
    # 1/kills, a JEM++ run ended after 7 of 10 kills).
    pace = 0.75 * (ref_s - startup) / args.kills
    folders = [killed / folder for folder in phases(experiment)]
    kills, during_write, finished_early, attempt, by_phase = 0, 0, 0, 0, {}
    while kills < args.kills:
        cmd = [*start, "--run-dir", str(killed)] if not (killed / "config.json").exists() else ["resume", str(killed)]
        proc = genlab(cmd, env, wait=False)
        if attempt % 2:
            time.sleep(startup + rng.uniform(0, pace))
            wait_for_checkpoint_write(folders, proc, timeout=ref_s)
            at_write = writing_checkpoint(folders, proc)
        else:
            time.sleep(startup + rng.uniform(0.25 * pace, 1.75 * pace))
            at_write = False
        attempt += 1
        if proc.poll() is not None:
            if proc.returncode != 0:
                raise SystemExit(f"`genlab {' '.join(cmd)}` failed:\n{proc.stderr.read()}")
            finished_early += 1
            if (killed / "summary.json").exists():
                break
            continue
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        phase = phase_at(killed, ref, experiment)
        kills += 1
        during_write += at_write
        by_phase[phase] = by_phase.get(phase, 0) + 1
        print(f"  {experiment}: kill {kills} in {phase} "
              f"({'during a checkpoint write' if at_write else 'at a random moment'})", flush=True)
    if not (killed / "summary.json").exists():
        genlab(["resume", str(killed)], env)
    found, tensors, others = differences(ref, killed, experiment)
    print(f"{experiment}: {kills} kills survived ({during_write} during checkpoint writes), {len(found)} "
          f"differences (the summary, {tensors} checkpoint tensors and {others} other checkpoint values compared)"
          + "".join(f"\n    {d}" for d in found[:10]), flush=True)
    return {"experiment": experiment, "preset": args.preset, "shortened_by": shortening, "kills": kills,
            "kills_during_checkpoint_write": during_write, "kills_by_phase": by_phase,
            "runs_that_finished_before_the_kill": finished_early, "differences": found,
            "checkpoint_folders_compared": list(phases(experiment)), "tensors_compared": tensors,
            "other_checkpoint_values_compared": others, "reference_wall_s": round(ref_s, 1),
            "start_up_s": round(startup, 1), "pace_s": round(pace, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--experiments", nargs="+", default=list(SHORTEN), choices=list(SHORTEN))
    parser.add_argument("--preset", default="quick", help="preset of every run (shortened by SHORTEN)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="runs/benchmarks/soak", help="folder for the runs and the private cache")
    parser.add_argument("--cache", default=None, help="a copy of a cache that holds the classifiers the runs need "
                                                      "(default: train them into WORK/cache)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "kill_resume_soak.json"))
    args = parser.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GENLAB_CACHE_DIR": str(Path(args.cache or Path(args.work) / "cache").resolve())}
    for setup in [] if args.cache else SETUP:
        genlab(["run", setup[0], "--preset", args.preset, *setup[1:], "--runs-dir", str(Path(args.work) / "setup")],
               env)
    rng = random.Random(args.seed)
    results = [soak(name, args, env, rng) for name in args.experiments]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": machine_info(torch.device("cpu")), "command": sys.argv,
                                          "results": results}, indent=1))
    print(f"wrote {args.out}")
    if any(r["differences"] for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
