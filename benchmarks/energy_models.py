"""Run EBM and JEM experiments over seeds; print each one's table with spread, check the issues' targets, write JSON.

    python benchmarks/energy_models.py --experiments ebm-mnist-cond --seeds 0 1 2
    python benchmarks/energy_models.py --experiments jem-mnist jempp-mnist --seeds 0 1 2
    python benchmarks/energy_models.py --experiments ebm-cifar10-noise ebm-cifar10-buffer ebm-cifar10-buffer-decay
    python benchmarks/energy_models.py --experiments ebm-cifar10-gaussian --preset long --seeds 0 1 2

Each run is a normal genlab run under --runs-dir (with its report); an earlier run of the same
experiment, preset, seed and overrides found there is reused if it completed or was stopped by the
divergence guard (a diverged run is a result: it is counted and kept out of the means). Minutes are the run's own wall time
(training, evaluation, final sampling). Targets are checked on the means over seeds, for the quick and long
presets without overrides.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when OpenMP starts: before torch is imported

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from genlab.config import parse_assignments, to_dict  # noqa: E402
from genlab.errors import DivergenceError  # noqa: E402
from genlab.eval import targets as t  # noqa: E402
from genlab.eval.targets import verdict  # noqa: E402
from genlab.experiments.base import machine_info  # noqa: E402
from genlab.experiments.registry import get_experiment  # noqa: E402
from genlab.experiments.runner import start_run  # noqa: E402
from genlab.train.run_dir import RunDir  # noqa: E402

COLUMNS = {
    "ebm": ["fid", "kid", "is", "randnet_fid", "recall", "coverage", "start_fid", "start_randnet_fid",
            "start_recall", "start_coverage", "class_accuracy", "min_class_accuracy", "diversity",
            "divergence_events", "grad_norm_spikes", "minutes"],
    "jem": ["test_accuracy", "classifier_test_accuracy", "ece", "classifier_ece", "fid", "kid", "is",
            "conditional_accuracy", "min_class_accuracy", "ood_auroc_energy", "ood_auroc_max_softmax",
            "sgld_steps_per_iteration", "seconds_per_1000_iterations", "divergence_events", "minutes"],
}


def spread(values: list[float], digits: int = 3) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return (f"{statistics.mean(values):.{digits}f} +- {statistics.stdev(values):.{digits}f} "
            f"({min(values):.{digits}f}-{max(values):.{digits}f})")


def earlier_run(runs_dir: Path, experiment: str, preset: str, seed: int, sets: dict) -> RunDir | None:
    """An earlier run with the same experiment, preset, seed and config that completed or diverged."""
    wanted = to_dict(get_experiment(experiment).config(preset, sets, seed))
    for config_path in sorted((runs_dir / experiment).glob("*/config.json")):
        run = RunDir(config_path.parent)
        stored = run.read_config()
        if stored.get("preset") != preset or stored["config"] != wanted:
            continue
        summary = run.read_summary()
        if (summary and summary.get("status") == "complete") or divergence(run):
            return run
    return None


def divergence(run: RunDir) -> str | None:
    """The divergence that stopped a run, if one did."""
    events = [r for r in run.read_metrics() if r.get("event") == "divergence"]
    return f"step {events[-1]['step']}: {events[-1]['problem']}" if events else None


def targets(rows: dict[str, list[dict]], preset: str = "quick") -> list[str]:
    """Means over the runs that finished (a diverged run has only its divergence event)."""
    finished = {name: [r for r in runs if "diverged" not in r] for name, runs in rows.items()}
    rows = {name: runs for name, runs in finished.items() if runs} | {
        f"{name}:all": runs for name, runs in rows.items()}
    mean = lambda name, key: statistics.mean(r[key] for r in rows[name])  # noqa: E731
    checks = []  # (text, the (target, value) pairs it checks)
    long = "ebm-cifar10-gaussian"
    if preset == "long":
        if long in rows:
            fid, wall = mean(long, "fid"), max(r["minutes"] for r in rows[long])
            runs, diverged = len(rows[f"{long}:all"]), len(rows[f"{long}:all"]) - len(rows[long])
            checks.append((f"{long} long: domain FID <= {t.EBM_CIFAR_LONG_FID.threshold:g} ({fid:.1f}; its starts "
                           f"alone {mean(long, 'start_fid'):.1f}), {diverged} of {runs} runs diverged",
                           [(t.EBM_CIFAR_LONG_FID, fid if not diverged else float("inf"))]))
            checks.append((f"{long} long: within {t.EBM_CIFAR_LONG_MINUTES.threshold:g} min (slowest run: "
                           f"{wall:.1f})", [(t.EBM_CIFAR_LONG_MINUTES, wall)]))
        return [f"{verdict(*pairs)}: {text}" for text, pairs in checks]
    if "ebm-mnist-cond" in rows:
        accuracy, worst, wall = (mean("ebm-mnist-cond", key) for key in ("class_accuracy", "min_class_accuracy",
                                                                         "minutes"))
        checks += [(f"ebm-mnist-cond: class accuracy of samples >= {t.EBM_COND_ACCURACY.threshold:.2f} "
                    f"({accuracy:.3f})", [(t.EBM_COND_ACCURACY, accuracy)]),
                   (f"ebm-mnist-cond: every digit >= {t.EBM_COND_WORST_DIGIT.threshold:.2f} (worst, mean over seeds: "
                    f"{worst:.3f})", [(t.EBM_COND_WORST_DIGIT, worst)]),
                   (f"ebm-mnist-cond: within {t.EBM_COND_MINUTES.threshold:g} min ({wall:.1f})",
                    [(t.EBM_COND_MINUTES, wall)])]
    if {"ebm-cifar10-noise", "ebm-cifar10-buffer-decay"} <= rows.keys():
        noise, decay = mean("ebm-cifar10-noise", "fid"), mean("ebm-cifar10-buffer-decay", "fid")
        reduction = (noise - decay) / noise
        checks.append((f"ebm-cifar10: buffer-decay FID {decay:.1f} at least {t.EBM_FID_REDUCTION.threshold:.0%} below "
                       f"noise-init {noise:.1f} ({reduction:.0%} lower)", [(t.EBM_FID_REDUCTION, reduction)]))
    if "jempp-mnist" in rows:
        accuracy, conditional, wall = (mean("jempp-mnist", key) for key in ("test_accuracy", "conditional_accuracy",
                                                                            "minutes"))
        checks += [(f"jempp-mnist: test accuracy >= {t.JEMPP_ACCURACY.threshold:.3f} ({accuracy:.4f})",
                    [(t.JEMPP_ACCURACY, accuracy)]),
                   (f"jempp-mnist: class-conditional sample accuracy >= {t.JEMPP_CONDITIONAL.threshold:.2f} "
                    f"({conditional:.3f})", [(t.JEMPP_CONDITIONAL, conditional)]),
                   (f"jempp-mnist: within {t.JEMPP_MINUTES.threshold:g} min ({wall:.1f})", [(t.JEMPP_MINUTES, wall)])]
    events = lambda name: sum(r["divergence_events"] for r in rows[f"{name}:all"])  # noqa: E731
    if {"jem-mnist", "jempp-mnist"} <= rows.keys():
        steps = mean("jempp-mnist", "sgld_steps_per_iteration") / mean("jem-mnist", "sgld_steps_per_iteration")
        fid_jem, fid_pp = mean("jem-mnist", "fid"), mean("jempp-mnist", "fid")
        checks.append((f"JEM++ FID {fid_pp:.2f} <= JEM's {fid_jem:.2f} with {steps:.2f}x its SGLD steps "
                       f"(<= {t.JEMPP_STEP_SHARE.threshold:g})",
                       [(t.JEMPP_FID_OVER_JEM, fid_pp - fid_jem), (t.JEMPP_STEP_SHARE, steps)]))
    if {"jem-mnist:all", "jempp-mnist:all"} <= rows.keys():
        checks.append((f"JEM++ divergence events {events('jempp-mnist')} <= JEM's {events('jem-mnist')}",
                       [(t.JEMPP_DIVERGENCES_OVER_JEM, events("jempp-mnist") - events("jem-mnist"))]))
    for name in ("jem-mnist", "jempp-mnist"):
        if name in rows:
            gap = mean(name, "ece") - mean(name, "classifier_ece")
            checks.append((f"{name}: ECE {mean(name, 'ece'):.4f} not worse than the classifier's "
                           f"{mean(name, 'classifier_ece'):.4f} by more than {t.JEM_CALIBRATION.threshold:g}",
                           [(t.JEM_CALIBRATION, gap)]))
    return [f"{verdict(*pairs)}: {text}" for text, pairs in checks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", nargs="+", required=True)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--runs-dir", default="runs/benchmarks")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None, help="JSON output (default: benchmarks/results/energy_models-...)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sets = parse_assignments(args.sets)

    rows: dict[str, list[dict]] = {}
    for name in args.experiments:
        family = get_experiment(name).family
        for seed in args.seeds:
            try:
                run = earlier_run(Path(args.runs_dir), name, args.preset, seed, sets) or start_run(
                    name, args.preset, sets, seed=seed, device=args.device, runs_dir=args.runs_dir, progress=False)
                stopped = divergence(run) if run.read_summary() is None else None
            except DivergenceError as err:
                stopped = err.message
            if stopped:  # a result too: counted, kept out of the means
                rows.setdefault(name, []).append({"experiment": name, "seed": seed, "diverged": stopped,
                                                  "divergence_events": 1})
                print(f"{name} seed {seed}: diverged: {stopped}", flush=True)
                continue
            summary = run.read_summary()
            metrics = {**summary["metrics"], "minutes": summary["wall_time_s"] / 60}
            row = {"experiment": name, "seed": seed, "run_dir": str(run.path), "machine": summary["machine"],
                   **{key: metrics.get(key) for key in COLUMNS[family]},
                   "per_class_accuracy": metrics.get("per_class_accuracy")}
            rows.setdefault(name, []).append(row)
            print(f"{name} seed {seed}: " + ", ".join(f"{k} {row[k]:.4g}" for k in COLUMNS[family]
                                                        if isinstance(row[k], (int, float))), flush=True)

    lines = []
    for name, runs in rows.items():
        family = get_experiment(name).family
        lines += ["", f"### {name} ({args.preset}, {len(runs)} seed(s): mean +- sd (min-max))", "",
                  "| metric | value |", "| --- | --- |"]
        done = [r for r in runs if "diverged" not in r]
        lines += [f"| {key} | {spread([r[key] for r in done])} |" for key in COLUMNS[family]
                  if done and all(isinstance(r[key], (int, float)) for r in done)]
        lines += [f"| diverged (seed {r['seed']}) | {r['diverged']} |" for r in runs if "diverged" in r]
    if args.preset in ("quick", "long") and not sets:
        lines += [""] + [f"- {check}" for check in targets(rows, args.preset)]
    print("\n".join(lines))
    tag = "-".join(args.experiments) if len(args.experiments) < 3 else args.experiments[0] + "-etc"
    out = Path(args.out or Path(__file__).parent / "results" / f"energy_models-{tag}-{args.preset}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"preset": args.preset, "sets": sets, "threads": torch.get_num_threads(),
                               "machine": machine_info(torch.device("cpu")), "results": rows, "table": lines},
                              indent=2) + "\n")
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
