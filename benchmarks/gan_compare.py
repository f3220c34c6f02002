"""GAN vs WGAN vs WGAN-GP on Hoda at an equal wall-clock budget over seeds, plus WGAN's clip sweep.

    python benchmarks/gan_compare.py --budget 600 --seeds 0 1 2 [--models ...] [--conditional gan-hoda] [--plain ...]
                                     [--clips 0.001 0.01 0.1] [--clip-seeds 0] [--clip-budget 300]
                                     [--fid-threshold 10] [--preset quick] [--set KEY=VALUE ...] [--out FILE]
                                     [--add-runs RUN_DIR ...]

Every run is a normal genlab run under --runs-dir (its report, grids and samples stay there). With
--budget B > 0 each run trains until B seconds of its loop (training and evaluations) are spent; with
--budget 0 the presets run as they are (to check the quick presets' wall times). The models named by
--conditional also run class-conditionally (with labels, beyond the assignment), those named by --plain
also without the presets' mixture prior (``model.clusters=0``: a generator from noise alone). "The best
of them" is the run with the highest confident share (the conditional target: >= 0.9, with class coverage
>= 0.95); the unconditional targets judge the best of GAN, WGAN and WGAN-GP (>= 0.85 and >= 0.95) and
WGAN-GP (>= 0.80) by their means over seeds. Prints Markdown tables (mean and sample std over seeds, test
split, the Hoda classifier as judge) and writes them as JSON with the per-run numbers, the machine and its
load average (timings from a shared machine are inflated).
--add-runs puts finished runs into the unconditional comparison as they are: seeds run by other processes
side by side (one thread each) are read into one table with ``--models --conditional --clips --add-runs ...``.
Needs the cached Hoda judge: `genlab run classifier-hoda --preset quick`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from genlab.config import parse_assignments
from genlab.devices import resolve_device
from genlab.eval.targets import (GAN_CLASS_COVERAGE, GAN_CONFIDENT_SHARE, GAN_UNCONDITIONAL_CLASS_COVERAGE,
                                 GAN_UNCONDITIONAL_CONFIDENT_SHARE, WGANGP_CONFIDENT_SHARE)
from genlab.experiments.base import machine_info
from genlab.experiments.runner import start_run

MODELS = ("gan-hoda", "wgan-hoda", "wgangp-hoda")
UNLIMITED_STEPS = 10**7  # with a time budget the budget ends training, not the step count


def time_to_fid(curve: list[list[float]], threshold: float) -> float | None:
    """Wall seconds at the first evaluation whose validation FID is at or below ``threshold``."""
    return next((wall for _, wall, fid in curve if fid <= threshold), None)


def last_train_record(run: Path) -> dict[str, Any]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return next((r for r in reversed(records) if r.get("split") == "train"), {})


def run_one(model: str, seed: int, args, extra: dict[str, str], tag: str, budget: float) -> dict[str, Any]:
    sets = {**parse_assignments(args.set), **extra}
    if budget:
        sets.update({"train.steps": str(UNLIMITED_STEPS), "train.time_budget_s": str(budget)})
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    run = start_run(model, args.preset, sets, seed=seed, device=args.device, runs_dir=args.runs_dir, progress=False)
    row = run_row(run.path, args.fid_threshold, tag, extra)
    row.update(total_wall_s=time.perf_counter() - started, load_average_1min=[load_before, os.getloadavg()[0]])
    return row


def run_row(run: Path, fid_threshold: float, tag: str | None = None, extra: dict[str, str] | None = None
            ) -> dict[str, Any]:
    """A finished run's numbers as a row of the tables (tag: its experiment's name unless given); its time to
    a validation FID of ``fid_threshold``."""
    summary = json.loads((run / "summary.json").read_text())
    m = summary["metrics"]
    last = last_train_record(run)
    row = {"model": summary["experiment"], "tag": tag or summary["experiment"],
           "seed": json.loads((run / "config.json").read_text())["config"]["seed"], "sets": extra or {},
           "run_dir": str(run), "steps": summary["steps_done"], "train_wall_s": summary["wall_time_s"],
           "total_wall_s": None, "load_average_1min": None,
           "time_to_fid_s": time_to_fid(m["val_fid_curve"], fid_threshold),
           **{k: v for k, v in m.items() if isinstance(v, (int, float))},
           "test_class_histogram": m["test_class_histogram"],
           "last_layer_grads": [last[k] for k in sorted(last) if k.startswith("d_grad_layer")]}
    print(f"{row['tag']} seed {row['seed']}: test FID {row['test_fid']:.2f}, confident "
          f"{row['test_confident_share']:.3f}, coverage {row['test_class_coverage']:.3f}, {row['steps']} steps in "
          f"{row['train_wall_s']:.0f} s", flush=True)
    return row


def _stat(rows: list[dict[str, Any]], key: str, digits: int = 3) -> str:
    values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def comparison_table(rows: list[dict[str, Any]], threshold: float) -> str:
    head = ("| model | seeds | steps | test FID | test KID | IS | class coverage | confident share | precision | "
            f"recall | best val FID | time to val FID <= {threshold:g} (s) | W-estimate/FID Spearman |")
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for tag in dict.fromkeys(r["tag"] for r in rows):
        group = [r for r in rows if r["tag"] == tag]
        reached = [r["time_to_fid_s"] for r in group if r["time_to_fid_s"] is not None]
        ttf = f"{statistics.mean(reached):.0f} ({len(reached)}/{len(group)} reached)" if reached else \
            f"not reached (0/{len(group)})"
        lines.append(f"| {tag} | {len(group)} | {_stat(group, 'steps', 0)} | {_stat(group, 'test_fid', 2)} | "
                     f"{_stat(group, 'test_kid', 4)} | {_stat(group, 'test_is', 2)} | "
                     f"{_stat(group, 'test_class_coverage')} | {_stat(group, 'test_confident_share')} | "
                     f"{_stat(group, 'test_precision')} | {_stat(group, 'test_recall')} | "
                     f"{_stat(group, 'best_val_fid', 2)} | {ttf} | {_stat(group, 'wasserstein_fid_spearman', 2)} |")
    return "\n".join(lines)


def per_seed_table(rows: list[dict[str, Any]]) -> tuple[str, bool | None]:
    """WGAN-GP's test FID against WGAN-clip's, seed by seed; whether GP is lower on every seed."""
    by = {(r["model"], r["seed"]): r for r in rows if r["tag"] in ("wgan-hoda", "wgangp-hoda")}
    seeds = sorted({s for m, s in by if (("wgan-hoda", s) in by and ("wgangp-hoda", s) in by)})
    lines = ["| seed | WGAN (clip) test FID | WGAN-GP test FID | WGAN-GP lower |", "| --- | --- | --- | --- |"]
    wins = []
    for s in seeds:
        clip, gp = by[("wgan-hoda", s)]["test_fid"], by[("wgangp-hoda", s)]["test_fid"]
        wins.append(gp < clip)
        lines.append(f"| {s} | {clip:.2f} | {gp:.2f} | {'yes' if gp < clip else 'no'} |")
    return "\n".join(lines), (all(wins) if wins else None)


def clip_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| c | seeds | test FID | confident share | weights at +-c | critic weight std | "
             "critic grad norm per layer (input -> output) | last W estimate |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for tag in dict.fromkeys(r["tag"] for r in rows):
        group = [r for r in rows if r["tag"] == tag]
        layers = " / ".join(f"{statistics.mean(g):.3g}" for g in zip(*(r["last_layer_grads"] for r in group)))
        lines.append(f"| {group[0]['sets']['train.clip']} | {len(group)} | {_stat(group, 'test_fid', 2)} | "
                     f"{_stat(group, 'test_confident_share')} | {_stat(group, 'last_clipped_fraction')} | "
                     f"{_stat(group, 'critic_weight_std', 4)} | {layers} | "
                     f"{statistics.mean(r['last_wasserstein'] for r in group):.3g} |")
    return "\n".join(lines)


def unconditional_targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The unconditional targets, each model judged by its mean over seeds: the best of GAN, WGAN and WGAN-GP
    by confident share against GAN_UNCONDITIONAL_*, and WGAN-GP against WGANGP_CONFIDENT_SHARE."""
    means = {model: {key: statistics.mean(r[key] for r in rows if r["tag"] == model)
                     for key in ("test_confident_share", "test_class_coverage")}
             for model in MODELS if any(r["tag"] == model for r in rows)}
    if not means:
        return {}
    best = max(means, key=lambda m: means[m]["test_confident_share"])
    out = {"unconditional_best_model": best, "unconditional_best_mean": means[best],
           "unconditional_best_meets_quality":
               GAN_UNCONDITIONAL_CONFIDENT_SHARE.met_by(means[best]["test_confident_share"])
               and GAN_UNCONDITIONAL_CLASS_COVERAGE.met_by(means[best]["test_class_coverage"])}
    if "wgangp-hoda" in means:
        out["wgangp_meets_quality"] = WGANGP_CONFIDENT_SHARE.met_by(means["wgangp-hoda"]["test_confident_share"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=600.0, help="seconds of training per run (0: the preset's steps)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS,
                        help="models of the unconditional comparison (none: only --conditional and the sweep)")
    parser.add_argument("--clips", type=float, nargs="*", default=[0.001, 0.01, 0.1],
                        help="WGAN clip values of the sweep (none: no sweep)")
    parser.add_argument("--clip-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--clip-budget", type=float, default=None, help="seconds per sweep run (default: --budget)")
    parser.add_argument("--conditional", nargs="*", default=["gan-hoda"], choices=MODELS,
                        help="models also run class-conditionally (model.conditional=true)")
    parser.add_argument("--plain", nargs="*", default=[], choices=MODELS,
                        help="models also run without the mixture prior (model.clusters=0)")
    parser.add_argument("--fid-threshold", type=float, default=10.0, help="for 'time to a fixed FID' (val split)")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every run")
    parser.add_argument("--add-runs", nargs="*", default=[], metavar="RUN_DIR",
                        help="finished runs to add to the unconditional comparison as they are (for example seeds "
                             "run by other processes at the same time)")
    parser.add_argument("--runs-dir", default="runs/benchmarks/gan")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None, help="JSON output (default: benchmarks/results/gan_compare-<preset>.json)")
    args = parser.parse_args()

    load_before = os.getloadavg()
    clip_budget = args.budget if args.clip_budget is None else args.clip_budget
    rows = [run_one(model, seed, args, {}, model, args.budget) for seed in args.seeds for model in args.models]
    rows += [run_row(Path(run), args.fid_threshold) for run in args.add_runs]
    rows.sort(key=lambda r: (MODELS.index(r["model"]) if r["model"] in MODELS else len(MODELS), r["seed"]))
    rows += [run_one(model, seed, args, {"model.conditional": "true", "model.clusters": "0"},
                     f"{model} (conditional)", args.budget) for seed in args.seeds for model in args.conditional]
    rows += [run_one(model, seed, args, {"model.clusters": "0"}, f"{model} (plain)", args.budget)
             for seed in args.seeds for model in args.plain]
    sweep = [run_one("wgan-hoda", seed, args, {"train.clip": str(c)}, f"wgan c={c:g}", clip_budget)
             for c in args.clips for seed in args.clip_seeds]
    load_after = os.getloadavg()

    budget = f"{args.budget:g} s of training each" if args.budget else f"the {args.preset} preset's steps"
    tables = {"comparison": comparison_table(rows, args.fid_threshold)}
    tables["per_seed"], gp_wins = per_seed_table(rows)
    if sweep:
        tables["clip_sweep"] = clip_table(sweep)
    best = max(rows, key=lambda r: (r["test_confident_share"], -r["test_fid"]))  # "the best of them" by the target
    targets = {"best_model": best["tag"], "best_seed": best["seed"],
               "best_confident_share": best["test_confident_share"], "best_class_coverage": best["test_class_coverage"],
               "best_meets_quality": GAN_CONFIDENT_SHARE.met_by(best["test_confident_share"])
               and GAN_CLASS_COVERAGE.met_by(best["test_class_coverage"]),
               "wgangp_below_wgan_every_seed": gp_wins,
               **unconditional_targets(rows),
               "max_train_wall_s": max(r["train_wall_s"] for r in rows)}

    print(f"\n## Equal budget: {budget}, preset {args.preset}, seeds {args.seeds}\n\n{tables['comparison']}")
    print(f"\n{tables['per_seed']}")
    if sweep:
        print(f"\n## WGAN clip sweep (seeds {args.clip_seeds})\n\n{tables['clip_sweep']}")
    print(f"\ntargets: {json.dumps(targets)}")
    print(f"load average before/after: {load_before} / {load_after} (a shared machine inflates every timing)")

    out = Path(args.out or Path(__file__).parent / "results" / f"gan_compare-{args.preset}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"budget_s": args.budget, "preset": args.preset, "seeds": args.seeds,
                               "sets": args.set, "fid_threshold": args.fid_threshold,
                               "machine": machine_info(resolve_device(args.device)),
                               "load_average_before_after": [load_before, load_after], "targets": targets,
                               "tables": tables, "runs": rows, "clip_sweep": sweep}, indent=2) + "\n")
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
