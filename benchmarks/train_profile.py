"""Where a quick EBM or JEM training run spends its time: sampler, optimiser step, and everything else.

    python benchmarks/train_profile.py --experiment ebm-mnist-cond --iterations 200
    python benchmarks/train_profile.py --experiment jempp-mnist --iterations 200
    python benchmarks/train_profile.py --experiment ebm-mnist-cond --set model.pool_edges=keep

Runs the experiment's quick preset (with fewer iterations) under cProfile and splits the training
loop's wall time into: the Langevin sampler (SGLD or proximal), the update (the rest of each training
step: the data batch, the loss's forward and backward pass, the optimiser step), periodic evaluation,
checkpoints, and the rest (metric bookkeeping, logging, Python overhead). The evaluation share depends on
the preset's log.eval_every; --iterations keeps the preset's intervals. Prints the table, writes JSON.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when OpenMP starts: before torch is imported

import argparse  # noqa: E402
import cProfile  # noqa: E402
import json  # noqa: E402
import pstats  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from genlab.config import parse_assignments  # noqa: E402
from genlab.experiments.base import machine_info  # noqa: E402
from genlab.experiments.runner import start_run  # noqa: E402

# (file suffix, function name) -> part of the loop it belongs to
PARTS = {
    ("genlab/sampling/langevin.py", "langevin"): "sampler",
    ("genlab/sampling/proximal.py", "proximal_langevin"): "sampler",
    ("genlab/train/ebm.py", "train_step"): "train step",
    ("genlab/train/jem.py", "train_step"): "train step",
    ("genlab/train/loop.py", "run_loop"): "training loop",
    ("genlab/train/ebm.py", "evaluate"): "evaluation",
    ("genlab/train/jem.py", "evaluate"): "evaluation",
    ("genlab/train/checkpoint.py", "save"): "checkpoints",
}


def cumulative_seconds(stats: pstats.Stats) -> dict[str, float]:
    totals: dict[str, float] = {}
    for (filename, _line, function), (_cc, _nc, _tt, cumulative, _callers) in stats.stats.items():
        for (suffix, name), part in PARTS.items():
            if function == name and filename.endswith(suffix):
                totals[part] = totals.get(part, 0.0) + cumulative
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="ebm-mnist-cond")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting of the quick preset, as with `genlab run --set`")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sets = {**parse_assignments(args.sets), "train.iterations": args.iterations}
    profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory() as runs:
        profiler.enable()
        start_run(args.experiment, "quick", sets, runs_dir=runs, progress=False)
        profiler.disable()
    parts = cumulative_seconds(pstats.Stats(profiler))
    loop, step = parts["training loop"], parts["train step"]
    rows = {"sampler": parts["sampler"],
            "update (batch, loss forward and backward, optimiser step)": step - parts["sampler"],
            "evaluation": parts.get("evaluation", 0.0), "checkpoints": parts.get("checkpoints", 0.0)}
    rows["logging, metrics, Python loop"] = loop - sum(rows.values())
    work = step
    print(f"{args.experiment}, quick preset, {args.iterations} iterations, {torch.get_num_threads()} thread(s): "
          f"training loop {loop:.1f} s")
    for part, seconds in rows.items():
        print(f"  {part:58s} {seconds:8.1f} s  {seconds / loop:6.1%}")
    print(f"  sampler + update: {work / loop:.1%} of the loop")
    out = Path(args.out or Path(__file__).parent / "results" / f"train_profile-{args.experiment}.json")
    out.write_text(json.dumps({"experiment": args.experiment, "iterations": args.iterations, "sets": sets,
                               "threads": torch.get_num_threads(), "machine": machine_info(torch.device("cpu")),
                               "loop_seconds": loop, "parts_seconds": rows, "model_work_share": work / loop},
                              indent=2) + "\n")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
