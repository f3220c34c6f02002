"""Killed-pipeline soak: SIGKILL `genlab run pipeline` at random moments, run it again, compare the end.

    python benchmarks/kill_pipeline_soak.py [--kills 10] [--preset smoke] [--jobs 1] [--seed 0] [--work DIR]
        [--out FILE]

One uninterrupted pipeline, then one killed --kills times at random moments and started again with the same
command after each kill. A kill takes the pipeline's whole process group and every process it started (job
processes with --jobs above 1 run in sessions of their own), as a crash of the machine would. The end must
equal the uninterrupted pipeline's: its pipeline.json (the state the index is built from: every job's study,
stage, seed, run directory and status), an index.html, and the summary.json of every run under the runs
folder, all with the runs folder's own path taken out and without wall-clock fields (times, seconds, which
invocation ran or reused a job, the machine). Each pipeline trains its own classifiers into a private cache;
the killed pipeline's cache starts with the sampler-precision decisions the reference measured, since an
`auto` sampler precision is chosen by timing and could otherwise differ between the two.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from genlab.experiments.base import machine_info
from kill_resume_soak import comparable_summary, leaves, value_differences  # beside this script

# Fields of a job record in pipeline.json that tell when and by which invocation it ran.
JOB_CLOCK = {"started_at", "seconds", "reused", "log"}
PROGRESS = re.compile(r"^\[(\d+)/(\d+)\] \w+: (\S+)")


def start(args, runs: Path, cache: Path, log: Path) -> subprocess.Popen:
    """The pipeline in a session of its own (so it and its process group can be killed together)."""
    env = {**os.environ, "GENLAB_CACHE_DIR": str(cache.resolve())}
    with open(log, "a") as sink:
        return subprocess.Popen([sys.executable, "-m", "genlab.cli", "run", "pipeline", "--preset", args.preset,
                                 "--jobs", str(args.jobs), "--runs-dir", str(runs), "--no-progress"],
                                env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)


def descendants(pid: int) -> list[int]:
    """Every process started by ``pid``, directly or not (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def kill(proc: subprocess.Popen) -> None:
    doomed = descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def last_job(log: Path) -> str:
    """The job the pipeline was on, from its last progress line."""
    lines = [m for line in log.read_text(errors="replace").splitlines() if (m := PROGRESS.match(line))]
    return f"job {lines[-1][1]}/{lines[-1][2]} ({lines[-1][3]})" if lines else "before the first job"


def pipeline_state(runs: Path, folder: str) -> dict[str, Any]:
    """pipeline.json with the runs folder's path replaced by ROOT, without wall-clock fields and without which
    invocation ran or reused each job."""
    state = json.loads((runs / folder / "pipeline.json").read_text().replace(str(runs.resolve()), "ROOT"))
    state.pop("wall_time_s", None)
    state["jobs"] = {key: {k: v for k, v in job.items() if k not in JOB_CLOCK} for key, job in state["jobs"].items()}
    return state


def summaries(runs: Path) -> dict[str, Path]:
    return {str(p.relative_to(runs)): p for p in sorted(runs.glob("**/summary.json"))}


def compare(a: Any, b: Any, where: str) -> list[str]:
    return value_differences(leaves(a), leaves(b), where)


def differences(ref: Path, got: Path, folder: str) -> tuple[list[str], int]:
    """What differs between the two pipelines' index state and run summaries; how many summaries were compared."""
    found = compare(pipeline_state(ref, folder), pipeline_state(got, folder), "pipeline.json")
    found += [f"{folder}/index.html missing" for runs in (ref, got) if not (runs / folder / "index.html").exists()]
    a, b = summaries(ref), summaries(got)
    found += [f"{name}: in one pipeline only" for name in sorted(set(a) ^ set(b))]
    for name in sorted(set(a) & set(b)):
        found += compare(comparable_summary(a[name], ref), comparable_summary(b[name], got), name)
    return found, len(set(a) & set(b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--jobs", type=int, default=1, help="the pipeline's --jobs")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill moments")
    parser.add_argument("--work", default="runs/benchmarks/pipeline-soak", help="folder for both pipelines")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "kill_pipeline_soak.json"))
    args = parser.parse_args()
    work = Path(args.work).resolve()
    if work.exists():
        shutil.rmtree(work)
    ref, killed = work / "ref", work / "killed"
    folder = f"pipeline-{args.preset}"
    for cache in (ref, killed):
        (cache / "cache").mkdir(parents=True)
    started = time.perf_counter()
    if start(args, ref / "runs", ref / "cache", ref / "log.txt").wait() != 0:
        raise SystemExit(f"the reference pipeline failed:\n{(ref / 'log.txt').read_text()[-3000:]}")
    ref_s = time.perf_counter() - started
    precision = ref / "cache" / "sampler_precision.json"
    if precision.exists():
        shutil.copy(precision, killed / "cache" / precision.name)

    rng = random.Random(args.seed)
    kills, finished_early, moments = 0, 0, []
    log = killed / "log.txt"
    while kills < args.kills:
        proc = start(args, killed / "runs", killed / "cache", log)
        time.sleep(rng.uniform(1.0, max(1.5, 2 * ref_s / args.kills)))
        if proc.poll() is not None:
            finished_early += 1
            if proc.returncode != 0:
                raise SystemExit(f"a rerun of the killed pipeline failed:\n{log.read_text()[-3000:]}")
            break
        kill(proc)
        kills += 1
        moments.append(last_job(log))
        print(f"  pipeline: kill {kills} in {moments[-1]}", flush=True)
        with open(log, "a") as sink:
            sink.write("--- killed ---\n")
    if not finished_early and start(args, killed / "runs", killed / "cache", log).wait() != 0:
        raise SystemExit(f"the last rerun of the killed pipeline failed:\n{log.read_text()[-3000:]}")
    found, compared = differences(ref / "runs", killed / "runs", folder)
    print(f"pipeline --preset {args.preset}: {kills} kills survived, {len(found)} differences (pipeline.json, "
          f"index.html and {compared} run summaries compared)" + "".join(f"\n    {d}" for d in found[:10]), flush=True)
    result = {"preset": args.preset, "jobs": args.jobs, "kills": kills, "killed_in": moments,
              "runs_that_finished_before_the_kill": finished_early, "differences": found,
              "summaries_compared": compared, "reference_wall_s": round(ref_s, 1)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": machine_info(torch.device("cpu")), "command": sys.argv,
                                          "result": result}, indent=1))
    print(f"wrote {args.out}")
    if found:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
