"""`genlab`: the command line.

Errors a user can fix print one line and a hint (exit code 2); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings

from genlab import __version__
from genlab.errors import GenlabError


def _cmd_list(args) -> int:
    from genlab.experiments.registry import EXPERIMENTS

    width = max(len(n) for n in EXPERIMENTS)
    for name, exp in EXPERIMENTS.items():
        print(f"{name:<{width}}  {exp.family:<10}  presets: {', '.join(exp.presets)}  -  {exp.summary}")
    return 0


def _cmd_show(args) -> int:
    from genlab.config import describe, flatten, to_dict
    from genlab.experiments.registry import get_experiment

    exp = get_experiment(args.experiment)
    values = flatten(to_dict(exp.config(args.preset)))
    print(f"{exp.name} ({exp.summary}), preset '{args.preset}':")
    for key, _default, help_text in describe(exp.config_type):
        print(f"  {key} = {values[key]!r}" + (f"    # {help_text}" if help_text else ""))
    return 0


def _cmd_run(args) -> int:
    from genlab.config import parse_assignments
    from genlab.experiments.runner import start_run
    from genlab.report.html import build_report

    if args.experiment == "pipeline":
        return _run_pipeline(args)
    if args.seeds != 1 or args.only or args.skip or args.jobs != 1 or args.launcher != "local" or _slurm_given(args):
        from genlab.errors import ConfigError

        raise ConfigError("--seeds, --only, --skip, --jobs and the launcher options belong to `genlab run pipeline`",
                          hint="for one experiment use --seed N")

    run = start_run(args.experiment, args.preset, parse_assignments(args.set), args.seed, args.device,
                    args.runs_dir, args.run_dir, args.data_dir, progress=not args.no_progress,
                    prerequisites=not args.no_prerequisites)
    _finished(run, build_report)
    return 0


def _run_pipeline(args) -> int:
    from genlab.experiments.pipeline import run_pipeline
    from genlab.report.index import build_index

    if args.set or args.seed is not None or args.run_dir:
        from genlab.errors import ConfigError

        raise ConfigError("--set, --seed and --run-dir do not apply to the pipeline",
                          hint="use --preset, --seeds N, --only STUDY.. or --skip STUDY..")
    run_pipeline(args.preset, args.seeds, args.only, args.skip, args.runs_dir, args.device, args.data_dir,
                 progress=not args.no_progress, build_index=build_index, jobs=args.jobs, slurm=_slurm_options(args))
    return 0


_SLURM_FLAGS = {"slurm_config": "--slurm-config", "partition": "--partition", "account": "--account",
                "cpus_per_job": "--cpus-per-job", "gpus_per_job": "--gpus-per-job"}


def _slurm_given(args) -> list[str]:
    return [flag for name, flag in _SLURM_FLAGS.items() if getattr(args, name) is not None]


def _slurm_options(args):
    """The Slurm launcher's options (None for the local launcher), after checking the flags belong to it."""
    from genlab.errors import ConfigError

    if args.launcher == "local":
        if _slurm_given(args):
            raise ConfigError(f"{', '.join(_slurm_given(args))} belong to --launcher slurm")
        return None
    if args.jobs != 1:
        raise ConfigError("--jobs belongs to the local launcher", hint="with --launcher slurm, Slurm runs the jobs "
                                                                      "as its queue allows")
    from genlab.experiments.launchers import slurm_options

    return slurm_options(args.slurm_config, partition=args.partition, account=args.account,
                         cpus_per_job=args.cpus_per_job, gpus_per_job=args.gpus_per_job)


def _cmd_resume(args) -> int:
    from genlab.experiments.runner import resume_run
    from genlab.report.html import build_report

    run = resume_run(args.run_dir, args.device, args.data_dir, progress=not args.no_progress)
    _finished(run, build_report)
    return 0


def _finished(run, build_report) -> None:
    """Build the report and print the numbers: once, by rank 0 under torchrun."""
    if _worker_rank():
        return
    report = build_report(run.path)
    summary = run.read_summary() or {}
    scalars = {k: v for k, v in summary.get("metrics", {}).items() if isinstance(v, (int, float))}
    print(f"run complete: {run.path}")
    for key, value in scalars.items():
        print(f"  {key}: {value:.4g}" if isinstance(value, float) else f"  {key}: {value}")
    print(f"report: {report}")


def _cmd_sample(args) -> int:
    from genlab.devices import resolve_device
    from genlab.errors import GenlabError
    from genlab.experiments.registry import get_experiment
    from genlab.train.run_dir import RunDir

    run = RunDir.open(args.run_dir)
    experiment = get_experiment(run.read_config()["experiment"])
    if experiment.sample is None:
        raise GenlabError(f"experiment '{experiment.name}' has no sampler", hint="sample runs of generative models")
    out = experiment.sample(run.path, n=args.n, label=args.label, steps=args.steps, init=args.init,
                            device=resolve_device(args.device))
    print(f"samples: {out} (and a .png grid beside it)")
    return 0


def _cmd_report(args) -> int:
    from pathlib import Path

    from genlab.report.html import build_report
    from genlab.report.index import build_index
    from genlab.train.run_dir import RunDir

    if (Path(args.run_dir) / "pipeline.json").exists():
        print(build_index(args.run_dir))
    else:
        print(build_report(RunDir.open(args.run_dir).path))
    return 0


def _cmd_data_list(args) -> int:
    from genlab.data.files import candidate_roots
    from genlab.data.registry import DATASETS

    for spec in DATASETS.values():
        counts = ", ".join(f"{k} {v:,}" for k, v in spec.counts.items())
        print(f"{spec.name:<14} {spec.title}; {'x'.join(map(str, spec.image_shape))}; {counts}")
    print("data roots searched, in order:")
    for root, why in candidate_roots(args.data_dir):
        print(f"  {root}  ({why}{', exists' if root.is_dir() else ''})")
    return 0


def _cmd_data_check(args) -> int:
    from genlab.data.check import check
    from genlab.data.registry import DATASETS

    for name in [args.name] if args.name else list(DATASETS):
        print("\n".join(check(name, args.data_dir)))
    return 0


def _print_scores(title: str, scores: dict) -> None:
    print(title)
    for key, value in scores.items():
        if isinstance(value, float):
            print(f"  {key}: {value:.4g}")
        elif not isinstance(value, list):
            print(f"  {key}: {value}")


def _cmd_eval_samples(args) -> int:
    from pathlib import Path

    from genlab.eval.runs import record_scores, run_of, score_file

    from genlab.devices import resolve_device

    path = Path(args.file)
    run = run_of(path)
    with _judging(run):
        scores = score_file(path, args.dataset, args.split, resolve_device(args.device), args.data_dir,
                            args.inception)
    _print_scores(f"{path} against {args.dataset}/{args.split}:", scores)
    if run is not None:
        record_scores(run, path.stem, scores)
        print(f"written to {run / 'summary.json'}")
    else:
        from genlab.io import write_json

        out = path / "scores.json" if path.is_dir() else path.with_name(f"{path.stem}_scores.json")
        write_json(out, scores)
        print(f"written to {out}")
    return 0


def _cmd_eval_run(args) -> int:
    from genlab.devices import resolve_device
    from genlab.eval.runs import rescore_run
    from genlab.train.run_dir import RunDir

    run = RunDir.open(args.run_dir)
    with _judging(run.path):
        rescored = rescore_run(run.path, resolve_device(args.device), args.data_dir)
    for name, scores in rescored.items():
        _print_scores(f"{name}:", scores)
    print(f"written to {run.summary_path}")
    return 0


def _judging(run):
    """Scoring a run's samples: its judge must be fit for the run's preset (a smoke run may use a smoke
    judge); samples from elsewhere get a judge fit for any run."""
    import contextlib

    from genlab import judges
    from genlab.train.run_dir import RunDir

    preset = RunDir.open(run).read_config().get("preset") if run is not None else None
    return judges.serving(preset) if preset else contextlib.nullcontext()


def _cmd_speed(args) -> int:
    from genlab.config import parse_assignments
    from genlab.sampling.precision import cache_path
    from genlab.speed import cached_decisions, measure_experiment

    if args.speed_command == "measure":
        decision = measure_experiment(args.experiment, args.preset, parse_assignments(args.set), args.device)
        print(f"{args.experiment} ({args.preset}): {decision['description']}")
        return 0
    entries = cached_decisions()
    print(f"{len(entries)} sampler decision(s) in {cache_path()}")
    for key, entry in entries.items():
        print(f"  {entry['chosen']:<20} {entry['network']} input {entry['input']}  [{key}]")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genlab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"genlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("list", help="list experiments and their presets")
    p.set_defaults(func=_cmd_list)

    p = commands.add_parser("show", help="show an experiment's config keys, values and help")
    p.add_argument("experiment")
    p.add_argument("--preset", default="quick")
    p.set_defaults(func=_cmd_show)

    p = commands.add_parser("run", help="run an experiment in a new run directory, or `run pipeline` for all studies")
    p.add_argument("experiment", help="an experiment from `genlab list`, or `pipeline`")
    p.add_argument("--preset", default="quick", help="smoke (seconds), quick (CPU minutes) or full (GPU)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--runs-dir", default="runs", help="parent of new run directories (default: runs)")
    p.add_argument("--run-dir", default=None, help="exact directory for this run (must not exist or be empty)")
    p.add_argument("--no-prerequisites", action="store_true",
                   help="stop if a classifier the run needs (its judge, JEM's start) is not cached, instead of "
                        "training it first")
    p.add_argument("--seeds", type=int, default=1, help="pipeline: repeat each study over seeds 0..N-1")
    p.add_argument("--only", nargs="+", default=None, metavar="STUDY",
                   help="pipeline: run only these studies (classifiers, ebm, jem, dvae, gan) or stages "
                        "(e.g. jem-mnist, gan-hoda-conditional)")
    p.add_argument("--skip", nargs="+", default=None, metavar="STUDY",
                   help="pipeline: skip these studies or stages")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="pipeline: run up to N studies at once, each in its own process with 1/N of the CPU threads")
    p.add_argument("--launcher", choices=("local", "slurm"), default="local",
                   help="pipeline: run the jobs here (default) or submit each one to Slurm (needs submitit)")
    p.add_argument("--slurm-config", default=None, metavar="FILE",
                   help="pipeline, slurm: a JSON or TOML file of Slurm options (partition, account, cpus_per_job, "
                        "gpus_per_job, mem_gb, time_factor, min_minutes, time_minutes, sbatch, setup)")
    p.add_argument("--partition", default=None, help="pipeline, slurm: the partition to submit to")
    p.add_argument("--account", default=None, help="pipeline, slurm: the account to charge")
    p.add_argument("--cpus-per-job", type=int, default=None, metavar="N", help="pipeline, slurm: CPUs of each job "
                                                                               "(default 2)")
    p.add_argument("--gpus-per-job", type=int, default=None, metavar="N",
                   help="pipeline, slurm: GPUs of each job; with 2 or more, the run is started under torchrun")
    _add_runtime(p)
    p.set_defaults(func=_cmd_run)

    p = commands.add_parser("resume", help="continue a stopped or killed run from its newest good checkpoint")
    p.add_argument("run_dir")
    _add_runtime(p)
    p.set_defaults(func=_cmd_resume)

    p = commands.add_parser("sample", help="draw samples from a trained generative run (grid + .npz)")
    p.add_argument("run_dir")
    p.add_argument("--n", type=int, default=100, help="number of samples")
    p.add_argument("--label", type=int, default=None, help="class to sample (conditional models)")
    p.add_argument("--steps", type=int, default=None, help="chain length (default: as in training)")
    p.add_argument("--init", choices=("buffer", "noise"), default="buffer",
                   help="chain starts: the saved replay buffer (if any), or fresh chains from the run's own "
                        "starts (uniform noise, or the Gaussians fitted to the training images of a run trained "
                        "from them)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_cmd_sample)

    p = commands.add_parser("report", help="(re)build a run's report.html, or a pipeline folder's index.html")
    p.add_argument("run_dir", help="a run directory, or a pipeline folder (runs/pipeline-<preset>)")
    p.set_defaults(func=_cmd_report)

    evaluate = commands.add_parser("eval", help="score samples with the dataset's judge classifier").add_subparsers(
        dest="eval_command", required=True, metavar="EVAL_COMMAND")
    p = evaluate.add_parser("samples", help="score a .npz/.npy/.pt file or a folder of PNGs of samples")
    p.add_argument("file")
    p.add_argument("--dataset", required=True, help="mnist, fashion_mnist, cifar10 or hoda")
    p.add_argument("--split", default="test", help="reference split (default: test)")
    p.add_argument("--inception", action="store_true",
                   help="also standard Inception FID/IS (needs torch-fidelity and its weights on this machine)")
    _add_runtime(p)
    p.set_defaults(func=_cmd_eval_samples)
    p = evaluate.add_parser("run", help="re-score a run's saved samples (samples/*.npz) into its summary.json")
    p.add_argument("run_dir")
    _add_runtime(p)
    p.set_defaults(func=_cmd_eval_run)

    speed = commands.add_parser("speed", help="the sampler's precision and layout, chosen by measurement "
                                "(sampler.precision=auto)").add_subparsers(dest="speed_command", required=True,
                                                                             metavar="SPEED_COMMAND")
    speed.add_parser("show", help="the decisions cached on this machine").set_defaults(func=_cmd_speed)
    p = speed.add_parser("measure", help="measure an EBM experiment's sampler again and cache the decision")
    p.add_argument("experiment")
    p.add_argument("--preset", default="quick")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_cmd_speed)

    data = commands.add_parser("data", help="datasets: list them, verify them").add_subparsers(
        dest="data_command", required=True, metavar="DATA_COMMAND")
    p = data.add_parser("list", help="known datasets and the data roots searched")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=_cmd_data_list)
    p = data.add_parser("check", help="verify checksums and print counts per split and class")
    p.add_argument("name", nargs="?", default=None)
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=_cmd_data_check)
    return parser


def _add_runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--data-dir", default=None, help="data root (default: $GENLAB_DATA_DIR, then the usual places)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"genlab: warning: {message}", file=sys.stderr)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.debug:
        warnings.showwarning = _show_warning
    # SIGTERM (`kill`, `timeout`, a job scheduler) stops genlab as Ctrl-C does: a training loop checkpoints
    # and stops (it handles both signals itself), the pipeline passes the stop on to its job processes,
    # which run in sessions of their own and would otherwise go on training unseen.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return args.func(args)
    except GenlabError as err:
        if _worker_rank():
            return 2  # rank 0 prints the message
        if args.debug:
            raise
        from genlab.train.loop import RunInterrupted

        print(f"genlab: {'stopped' if isinstance(err, RunInterrupted) else 'error'}: {err.message}", file=sys.stderr)
        if err.hint:
            print(f"  hint: {err.hint}", file=sys.stderr)
        return 130 if isinstance(err, RunInterrupted) else 2
    except KeyboardInterrupt:
        print("genlab: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        if "genlab.distributed" in sys.modules:  # loaded by a run: leave the process group cleanly
            sys.modules["genlab.distributed"].shutdown()


def _worker_rank() -> int:
    """This process's rank under torchrun (0 outside it), read without importing torch."""
    return int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0


if __name__ == "__main__":
    sys.exit(main())
