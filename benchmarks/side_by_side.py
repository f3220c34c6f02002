"""Two runs started together on one machine, compared at equal load: training speed and quality numbers.

    python benchmarks/side_by_side.py RUN_A RUN_B [--keys class_accuracy min_class_accuracy fid kid is]

Runs started at the same moment share the machine alike for as long as both are training; once the first
finishes, the other gets more of it, so their total minutes understate the faster one's lead. This reads
each run's metrics.jsonl and reports training iterations per second over that common window (up to the
last log step of the run that finished training first), their ratio, and the summaries' numbers and
sampler precision. Pair runs so: `python benchmarks/energy_models.py ... &` twice, one per setting.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def training_log(run: Path) -> list[tuple[int, float]]:
    """(step, wall seconds) of each training log line."""
    records = (json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip())
    return [(r["step"], r["wall_s"]) for r in records if r.get("split") == "train"]


def rate_until(log: list[tuple[int, float]], end_s: float) -> float:
    """Iterations per second up to the last log line at or before ``end_s``."""
    step, wall = max((s, w) for s, w in log if w <= end_s)
    return step / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs=2, type=Path)
    parser.add_argument("--keys", nargs="+", default=["class_accuracy", "min_class_accuracy", "fid", "kid", "is"])
    args = parser.parse_args()
    logs = [training_log(run) for run in args.runs]
    end = min(log[-1][1] for log in logs)
    rates = [rate_until(log, end) for log in logs]
    for run, rate in zip(args.runs, rates):
        summary = json.loads((run / "summary.json").read_text())
        numbers = ", ".join(f"{k} {summary['metrics'][k]:.4g}" for k in args.keys if k in summary["metrics"])
        chosen = (summary.get("sampler_precision") or {}).get("chosen", "-")
        print(f"{run}: {rate:.3f} it/s side by side (first {end:.0f} s), {summary['wall_time_s'] / 60:.1f} min in all, "
              f"sampler {chosen}; {numbers}")
    print(f"speed ratio (first / second) at equal load: {rates[0] / rates[1]:.2f}")


if __name__ == "__main__":
    main()
