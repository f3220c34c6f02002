"""Kill/resume soak: SIGKILL an EBM and a JEM run at random moments, resume each time, compare the end.

    python benchmarks/kill_resume_soak.py [--kills 20] [--experiments ebm-mnist-cond jem-mnist]
        [--preset smoke] [--iterations 160] [--seed 0] [--work DIR] [--cache DIR] [--out FILE]

For each experiment (its --preset, run for --iterations with a checkpoint at every log step):
one uninterrupted reference run, then one run killed --kills times and resumed with `genlab resume`
after each kill. Half of the kills land at a random moment (mostly inside SGLD sampling, where the time
goes); the other half the moment a checkpoint's temporary file appears (a kill during the write). The
final summary.json (minus wall-clock fields) and the newest checkpoint's weights, optimiser state and
replay buffer must equal the reference's: exactly, or within 1e-6 for floats. Prints
"N kills survived, D differences" per experiment and writes JSON. The classifiers it needs (the judge and
JEM's starting point) are trained at the same preset in a private cache under --work, so no user cache is
touched; or --cache names a copy of a cache that already holds them, and that training is skipped.
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

from genlab.experiments.base import machine_info
from genlab.io import load_torch
from genlab.train.checkpoint import CheckpointStore

SETUP = (["classifier-mnist", "--seed", "0"], ["classifier-mnist", "--seed", "1", "--set", "model.norm=none"])


def genlab(args: list[str], env: dict[str, str], wait: bool = True) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "genlab.cli", *args, "--no-progress"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if wait and proc.wait() != 0:
        raise SystemExit(f"`genlab {' '.join(args)}` failed:\n{proc.stderr.read()}")
    return proc


def timeless(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if "second" not in k and "wall" not in k}


def tensors(state: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor in a nested checkpoint state, by its path (the RNG states included)."""
    if isinstance(state, torch.Tensor):
        return {prefix: state}
    items = state.items() if isinstance(state, dict) else enumerate(state) if isinstance(state, (list, tuple)) else []
    return {k: v for key, value in items for k, v in tensors(value, f"{prefix}/{key}").items()}


def differences(ref: Path, got: Path) -> tuple[list[str], int]:
    """What differs between the two runs' summaries and newest checkpoints, and how many tensors were compared."""
    found = []
    ref_summary, got_summary = (json.loads((p / "summary.json").read_text()) for p in (ref, got))
    a, b = timeless(ref_summary["metrics"]), timeless(got_summary["metrics"])
    found += [f"summary metric {k}: {a.get(k)} vs {b.get(k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    ref_ckpt, got_ckpt = (CheckpointStore(p / "checkpoints").paths()[0] for p in (ref, got))
    if ref_ckpt.name != got_ckpt.name:
        return found + [f"newest checkpoint {ref_ckpt.name} vs {got_ckpt.name}"], 0
    ta, tb = tensors(load_torch(ref_ckpt)["trainer"]), tensors(load_torch(got_ckpt)["trainer"])
    for key in sorted(set(ta) | set(tb)):
        x, y = ta.get(key), tb.get(key)
        if x is None or y is None or x.shape != y.shape:
            found.append(f"checkpoint tensor {key}: present or shaped differently")
        elif x.is_floating_point() and not torch.allclose(x, y, rtol=0, atol=1e-6):
            found.append(f"checkpoint tensor {key}: max difference {(x - y).abs().max().item():.3g}")
        elif not x.is_floating_point() and not torch.equal(x, y):
            found.append(f"checkpoint tensor {key}: differs")
    return found, len(ta)


def wait_for_checkpoint_write(folder: Path, proc: subprocess.Popen, timeout: float) -> None:
    """Return the moment a checkpoint temp file exists (or on timeout / process exit)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline and proc.poll() is None:
        if folder.exists() and any(p.name.endswith(".tmp") for p in folder.iterdir()):
            return
        time.sleep(0.0005)


def soak(experiment: str, args, env: dict[str, str], rng: random.Random) -> dict[str, Any]:
    sets = ["--set", f"train.iterations={args.iterations}", "--set", "log.every=4", "--set", "log.checkpoint_every=4",
            "--set", f"log.eval_every={args.iterations // 2}"]
    ref, killed = Path(args.work) / f"{experiment}-ref", Path(args.work) / f"{experiment}-killed"
    started = time.perf_counter()
    genlab(["run", experiment, "--preset", args.preset, "--seed", str(args.seed), *sets, "--run-dir", str(ref)], env)
    ref_s = time.perf_counter() - started
    kills, during_write, finished_early, attempt = 0, 0, 0, 0
    while kills < args.kills:
        first = not (killed / "config.json").exists()
        cmd = (["run", experiment, "--preset", args.preset, "--seed", str(args.seed), *sets, "--run-dir", str(killed)]
               if first else ["resume", str(killed)])
        proc = genlab(cmd, env, wait=False)
        if attempt % 2:
            wait_for_checkpoint_write(killed / "checkpoints", proc, timeout=ref_s)
            at_write = any(p.name.endswith(".tmp") for p in (killed / "checkpoints").glob("*"))
        else:
            # about ref_s / kills of progress per random kill on average, so every kill lands before the end
            time.sleep(rng.uniform(1.0, max(1.5, 2 * ref_s / args.kills)))
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
        kills += 1
        during_write += at_write
        print(f"  {experiment}: kill {kills} ({'during a checkpoint write' if at_write else 'at a random moment'})",
              flush=True)
    if not (killed / "summary.json").exists():
        genlab(["resume", str(killed)], env)
    found, compared = differences(ref, killed)
    print(f"{experiment}: {kills} kills survived ({during_write} during checkpoint writes), "
          f"{len(found)} differences ({compared} checkpoint tensors and the summary compared)" + "".join(f"\n    {d}" for d in found[:10]), flush=True)
    return {"experiment": experiment, "kills": kills, "kills_during_checkpoint_write": during_write,
            "runs_that_finished_before_the_kill": finished_early, "differences": found, "tensors_compared": compared,
            "reference_wall_s": round(ref_s, 1), "preset": args.preset, "iterations": args.iterations}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--experiments", nargs="+", default=["ebm-mnist-cond", "jem-mnist"])
    parser.add_argument("--preset", default="smoke", help="preset of every run (its iterations replaced by --iterations)")
    parser.add_argument("--iterations", type=int, default=160, help="training iterations of each run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="runs/benchmarks/soak", help="folder for the runs and the private cache")
    parser.add_argument("--cache", default=None, help="a filled classifier cache (default: train into WORK/cache)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "kill_resume_soak.json"))
    args = parser.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GENLAB_CACHE_DIR": str(Path(args.cache or Path(args.work) / "cache").resolve())}
    for setup in [] if args.cache else SETUP:
        genlab(["run", setup[0], "--preset", args.preset, *setup[1:], "--runs-dir", str(Path(args.work) / "setup")], env)
    rng = random.Random(args.seed)
    results = [soak(name, args, env, rng) for name in args.experiments]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": machine_info(torch.device("cpu")), "results": results}, indent=1))
    print(f"wrote {args.out}")
    if any(r["differences"] for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
