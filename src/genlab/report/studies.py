"""What each study's section of the pipeline report shows: its question, table columns, figures and the
paragraph that answers the question from the measured numbers.

A study's runs arrive grouped by stage (an experiment variant), each a list of run summaries over seeds.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable

from genlab.data.registry import DATASETS
from genlab.eval import targets as t
from genlab.eval.papers import COMPARABLE, PUBLISHED
from genlab.eval.quality import best_first
from genlab.eval.targets import verdict

Runs = dict[str, list[dict[str, Any]]]  # stage name -> summaries of its complete runs (one per seed)


def metric(summary: dict[str, Any], key: str) -> Any:
    """A run summary's metric ``key`` (a key declared in genlab.eval.schema), None if the run lacks it."""
    return summary.get("metrics", {}).get(key)


def values(runs: list[dict[str, Any]], key: str) -> list[float]:
    out = []
    for summary in runs:
        value = metric(summary, key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out.append(float(value))
    return out


def mean(runs: list[dict[str, Any]], key: str) -> float | None:
    found = values(runs, key)
    return statistics.mean(found) if found else None


def minutes(runs: list[dict[str, Any]]) -> float:
    """Mean wall time of the runs, in minutes."""
    return statistics.mean(r.get("wall_time_s", 0.0) for r in runs) / 60


def spread(runs: list[dict[str, Any]], key: str, digits: int = 3) -> str:
    """'mean +- std (n=k)' over seeds (the mean to ``digits`` significant digits, the standard deviation to
    two; '(n=k)' alone when every seed gave the same value), or 'mean' for one seed, or '-'."""
    found = values(runs, key)
    if not found:
        return "-"
    text = f"{statistics.mean(found):.{digits}g}"
    if len(found) > 1:
        std = statistics.stdev(found)
        text += (f" &plusmn; {std:.2g}" if std > 0 else "") + f" (n={len(found)})"
    return text


@dataclass(frozen=True)
class Study:
    title: str
    question: str
    columns: tuple[tuple[str, str], ...]
    figures: tuple[str, ...] = ()  # paths inside a run directory, shown for the first seed of each stage
    discuss: Callable[[Runs], list[str]] = field(default=lambda runs: [])


def _discuss_classifiers(runs: Runs) -> list[str]:
    lines = []
    for dataset, target in t.CLASSIFIER_ACCURACY.items():
        stage = f"classifier-{dataset}"
        acc = mean(runs.get(stage, []), "test_accuracy")
        if acc is not None:
            lines.append(f"{stage}: test accuracy {acc:.2%} (target {target.threshold:.0%}: "
                         f"{verdict((target, acc))}) in {minutes(runs[stage]):.1f} min of training.")
    starts = t.JEM_START_ACCURACY
    checked = []
    for stage, rs in runs.items():
        dataset, acc = stage.removeprefix("classifier-").split("-")[0], mean(rs, "test_accuracy")
        if "-seed1" in stage and dataset in starts and acc is not None:
            checked.append(f"{stage} {acc:.2%} ({verdict((starts[dataset], acc))})")
    if checked:
        lines.append(f"JEM's starting points (at least {starts['mnist'].threshold:.0%} on MNIST and "
                     f"{starts['cifar10'].threshold:.0%} on CIFAR-10): " + ", ".join(checked) + ".")
    return lines


def _twin_lines(runs: Runs, judge_key: str, free_key: str) -> list[str]:
    """Does the label-free FID (a fixed random network's features) rank the stages of each dataset as the
    judge's FID does?"""
    by_dataset: dict[str, Runs] = {}
    for name, rs in runs.items():
        dataset = next((part for part in name.split("-") if part in DATASETS), "")
        by_dataset.setdefault(dataset, {})[name] = rs
    return [line for group in by_dataset.values() for line in _twin_line(group, judge_key, free_key)]


def _twin_line(runs: Runs, judge_key: str, free_key: str) -> list[str]:
    both = {name: (mean(rs, judge_key), mean(rs, free_key)) for name, rs in runs.items()}
    both = {name: pair for name, pair in both.items() if None not in pair}
    if len(both) < 2:
        return []
    by_judge = sorted(both, key=lambda n: both[n][0])
    by_free = sorted(both, key=lambda n: both[n][1])
    pairs = ", ".join(f"{n} {both[n][0]:.3g} / {both[n][1]:.3g}" for n in by_judge)
    if by_judge == by_free:
        return [f"Judge FID and label-free FID (random-network features) rank the runs alike ({pairs})."]
    return [f"Judge FID and label-free FID disagree on the order: judge {' < '.join(by_judge)}, label-free "
            f"{' < '.join(by_free)} ({pairs}); the judge's features ignore what the label does not need, so read "
            "both."]


def _memorisation_lines(runs: Runs, key: str) -> list[str]:
    """Stages whose samples sit closer to a training image than 99% of real test images do, more often than
    the 1% base rate of new images (a share above 5% is flagged)."""
    shares = {name: mean(rs, key) for name, rs in runs.items()}
    shares = {name: v for name, v in shares.items() if v is not None}
    if not shares:
        return []
    flagged = [name for name, v in shares.items() if v > 0.05]
    return ["Memorisation (share of samples nearer a training image than 99% of test images; about 0.01 for new "
            "images, 1 for copies): " + ", ".join(f"{n} {v:.3f}" for n, v in shares.items())
            + (f"; above 0.05, look at figures/memorisation.png: {', '.join(flagged)}." if flagged else ".")]


def _cas_lines(runs: Runs) -> list[str]:
    """Classification Accuracy Score beside the same classifier trained on as many real images."""
    parts = [f"{name} {spread(rs, 'cas')} (real images {spread(rs, 'cas_real')})"
             for name, rs in runs.items() if values(rs, "cas")]
    return ["Classification Accuracy Score (a fresh classifier trained on the conditional samples only, tested on "
            "real test images): " + "; ".join(parts) + "."] if parts else []


def _paper_lines(models: tuple[str, ...], genlab_accuracy: dict[str, float | None] | None = None) -> list[str]:
    """The papers' CIFAR-10 numbers (eval.papers), and genlab's CIFAR-10 test accuracy where it has one."""
    rows = []
    for p in PUBLISHED:
        if p.model.split(" ")[0] in models:
            numbers = [f"{label} {value}" for label, value in (
                ("accuracy", f"{p.accuracy:.1%}" if p.accuracy is not None else None),
                ("Inception score", p.inception_score), ("Inception FID", p.inception_fid)) if value is not None]
            rows.append(f"{p.model} ({p.paper}, {p.table}): {', '.join(numbers)}")
    ours = [f"{name} {value:.1%}" for name, value in (genlab_accuracy or {}).items() if value is not None]
    return ["Published CIFAR-10 numbers: " + "; ".join(rows) + "."
            + (f" genlab's CIFAR-10 test accuracy: {', '.join(ours)}." if ours else "") + " " + COMPARABLE]


def _discuss_ebm(runs: Runs) -> list[str]:
    lines = []
    noise, decay, buffer = (runs.get(f"ebm-cifar10-{v}", []) for v in ("noise", "buffer-decay", "buffer"))
    fid_noise, fid_decay, fid_buffer = mean(noise, "fid"), mean(decay, "fid"), mean(buffer, "fid")
    if fid_noise is not None and fid_decay is not None:
        change = (fid_noise - fid_decay) / fid_noise
        lines.append(
            f"Sample quality: at the same budget, buffer-decay reaches domain FID {spread(decay, 'fid')} against "
            f"noise-init's {spread(noise, 'fid')} ({100 * change:.0f}% lower; the target is "
            f"{t.EBM_FID_REDUCTION.threshold:.0%} lower: {verdict((t.EBM_FID_REDUCTION, change))})"
            + (f"; the replay buffer alone gives {spread(buffer, 'fid')}." if fid_buffer is not None else "."))
    spikes = {k: mean(v, "grad_norm_spikes") for k, v in runs.items() if k.startswith("ebm-cifar10")}
    events = {k: mean(v, "divergence_events") for k, v in runs.items() if k.startswith("ebm-cifar10")}
    if any(v is not None for v in [*spikes.values(), *events.values()]):
        lines.append("Stability: gradient-norm spikes (log intervals above 10x the median) per run: "
                     + ", ".join(f"{k.removeprefix('ebm-cifar10-')} {v:.1f}" for k, v in spikes.items() if v is not None)
                     + "; divergence events: "
                     + ", ".join(f"{k.removeprefix('ebm-cifar10-')} {v:.1f}" for k, v in events.items() if v is not None)
                     + ".")
    lines += _convergence_lines({k.removeprefix("ebm-cifar10-"): v for k, v in runs.items()
                                 if k.startswith("ebm-cifar10")})
    lines += _start_lines(runs)
    lines += sampling_study_lines(runs.get("ebm-cifar10-sampling-study", []))
    cond = runs.get("ebm-mnist-cond", [])
    acc = mean(cond, "class_accuracy")
    if acc is not None:
        worst = mean(cond, "min_class_accuracy")
        wall = minutes(cond)
        overall, worst_digit, within = t.EBM_COND_ACCURACY, t.EBM_COND_WORST_DIGIT, t.EBM_COND_MINUTES
        lines.append(f"Conditional MNIST: the independent MNIST classifier gives {acc:.1%} of label-fixed samples "
                     f"their intended digit (worst digit {spread(cond, 'min_class_accuracy')}; targets "
                     f"{overall.threshold:.0%} and {worst_digit.threshold:.0%}: "
                     f"{verdict((overall, acc), (worst_digit, worst or 0.0))}), after {wall:.1f} min "
                     f"of training (within {within.threshold:g}: {verdict((within, wall))}; the time depends on the "
                     f"host and on the runs beside it).")
        lines += _energy_gap_lines(cond)
    return lines + _twin_lines(runs, "fid", "randnet_fid") + _memorisation_lines(runs, "memorised_share") \
        + _cas_lines(runs) + _paper_lines(("IGEBM",))


def _start_lines(runs: Runs) -> list[str]:
    """Runs whose chains start from informative draws, against what those draws score on their own."""
    lines = []
    for name, found in runs.items():
        if mean(found, "start_fid") is None:
            continue
        lines.append(f"{name}: its chains start from draws of Gaussians fitted to the training images, which "
                     f"alone score domain FID {spread(found, 'start_fid')} and label-free FID "
                     f"{spread(found, 'start_randnet_fid')}; after the chains: {spread(found, 'fid')} and "
                     f"{spread(found, 'randnet_fid')}. Only the difference is the energy's doing.")
    return lines


def _fid(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _sampling_cells(runs: list[dict[str, Any]]) -> dict[tuple, tuple[float, float, float, float]]:
    """The sampling study's cells (form, eps, T, schedule, start) -> (domain FID, energy minus the data's, seconds
    per sample, label-free FID), each the mean over the seeds that ran the cell. Rows of summaries written before
    the label-free column have a NaN there."""
    found: dict[tuple, list[tuple[float, float, float, float]]] = {}
    for summary in runs:
        data = metric(summary, "sampling_energy_data")
        for form, eps, steps, schedule, start, fid, energy, seconds, *free in metric(summary, "sampling_cells") or []:
            found.setdefault((form, eps, steps, schedule, start), []).append(
                (fid, energy - data, seconds, free[0] if free else math.nan))
    return {cell: tuple(statistics.mean(column) for column in zip(*got)) for cell, got in found.items()}


def _cell_text(cell: tuple) -> str:
    form, eps, steps, schedule, start = cell
    return f"{form} {'eps' if form == 'coupled' else 'step'} {eps:g}, T={steps}, {schedule} schedule, {start} start"


def _fids(scores: tuple) -> str:
    """A cell's domain FID, then its label-free FID where recorded ("domain / label-free")."""
    return _fid(scores[0]) if math.isnan(scores[3]) else f"{_fid(scores[0])} / {_fid(scores[3])}"


def sampling_study_lines(runs: list[dict[str, Any]]) -> list[str]:
    """The sampling study: the best setting by the study's rule (eval.quality.best_first) and what sets it apart
    (the other form, start and schedules at their best, chain length along the best setting, the energy its
    samples reach), and the best cells."""
    cells = _sampling_cells(runs)
    if not cells:
        return []
    order = best_first(list(cells), lambda c: cells[c][0], lambda c: cells[c][3])
    best = order[0]
    fid, gap, seconds, free = cells[best]
    labelled = not math.isnan(free)

    def best_where(position: int, value: Any) -> str:
        return f"{value} {_fids(cells[next(c for c in order if c[position] == value)])}"

    forms, starts, schedules = ({c[i] for c in cells} for i in (0, 4, 3))
    along = sorted((c for c in cells if (c[0], c[1], c[3], c[4]) == (best[0], best[1], best[3], best[4])),
                   key=lambda c: c[2])
    nearest = min(cells, key=lambda c: abs(cells[c][1]))
    per_seed = runs[0].get("metrics", {}).get("sampling_samples_per_cell")
    by_form = "Best by form (domain / label-free FID): " if labelled else "Best FID by form: "
    chosen = (f"label-free FID {_fid(free)}: the lowest mean of its ranks by domain and by label-free FID among "
              "all settings, as the judge's features alone can be fooled by saturated samples that the label-free "
              "space sees" if labelled else "chosen by domain FID alone: these runs recorded no label-free FID")
    lines = [f"Sampling study ({len(cells)} settings of the sampler on the trained ebm-cifar10-buffer energy, "
             f"{per_seed} chains each, {len(runs)} seed(s)): the best setting is <strong>{_cell_text(best)}</strong>, "
             f"domain FID {_fid(fid)}, {chosen}; its samples' mean energy is {gap:+.3g} from the test images', "
             f"{1000 * seconds:.3g} ms per sample. {by_form}"
             + ", ".join(best_where(0, v) for v in sorted(forms)) + "; by start: "
             + ", ".join(best_where(4, v) for v in sorted(starts)) + "; by schedule: "
             + ", ".join(best_where(3, v) for v in sorted(schedules)) + "; along T at the best setting: "
             + ", ".join(f"T={c[2]} {_fids(cells[c])}" for c in along) + "."]
    reasons = [_length_reason(along, cells, order)]
    if len(forms) > 1:
        rival = next(c for c in order if c[0] != best[0])
        coupled = best if best[0] == "coupled" else rival
        reasons.append(f"the best {rival[0]} setting ({_cell_text(rival)}) ranks below it ({_fids(cells[rival])}); "
                       f"the coupled update at eps {coupled[1]:g} moves the chain {coupled[1] ** 2 / 2:.2g} per unit "
                       f"of gradient under noise {coupled[1]:g} per step, the decoupled one sets its step and noise "
                       "apart")
    if nearest == best:
        reasons.append("its samples also come closest to the data's energy")
    else:
        reasons.append(f"the samples nearest the data's energy come from {_cell_text(nearest)} "
                       f"({cells[nearest][1]:+.3g}, FID {_fids(cells[nearest])}): reaching the data's energy "
                       f"level is not enough, the chains must also land in the data's modes")
    why = "Why: " + "; ".join(reasons)
    lines.append(why + ". Heat maps below; the table has the ten best settings (all of them: each run's "
                       "sampling_table.csv).")
    head = "".join(f"<th>{h}</th>" for h in ("setting", "domain FID", "label-free FID", "energy - data", "ms / sample"))
    rows = "".join(f'<tr><td class="key">{_cell_text(c)}</td><td>{_fid(cells[c][0])}</td>'
                   f"<td>{'-' if math.isnan(cells[c][3]) else _fid(cells[c][3])}</td><td>{cells[c][1]:+.3g}</td>"
                   f"<td>{1000 * cells[c][2]:.3g}</td></tr>" for c in order[:10])
    return lines + [f"<table><tr>{head}</tr>{rows}</table>"]


def _length_reason(along: list[tuple], cells: dict[tuple, tuple[float, float, float, float]],
                   order: list[tuple]) -> str:
    """What chain length does at the best setting, from its FIDs and energy gap along T (``order``: every cell,
    best first)."""
    best = next(c for c in order if c in along)
    if len(along) == 1:
        return f"one chain length (T={best[2]}) was tried"
    if best == along[-1]:
        return (f"it ranks best at the longest chains (T={best[2]}): longer chains might help, at "
                f"{1000 * cells[best][2]:.3g} ms per sample")
    last = along[-1]
    return (f"it ranks best at T={best[2]} (FID {_fids(cells[best])}, the samples' energy {cells[best][1]:+.3g} "
            f"from the data's) and lower at T={last[2]} ({_fids(cells[last])}, {cells[last][1]:+.3g})")


def _per_class_means(runs: list[dict[str, Any]], key: str) -> list[float] | None:
    """The per-class list ``key`` averaged over the seeds that have it."""
    lists = [found for r in runs if isinstance(found := metric(r, key), list)]
    return [statistics.mean(column) for column in zip(*lists)] if lists else None


def _energy_gap_lines(cond: list[dict[str, Any]]) -> list[str]:
    """Per digit, how far the samples' energy sits above the test digits' (a gap that ran away marks a
    digit whose chains no longer reach the data's well)."""
    samples = _per_class_means(cond, "per_class_energy_samples")
    data = _per_class_means(cond, "per_class_energy_data")
    accuracy = _per_class_means(cond, "per_class_accuracy")
    if samples is None or data is None or accuracy is None:
        return []
    gaps = [s - d for s, d in zip(samples, data)]
    worst = min(range(len(accuracy)), key=accuracy.__getitem__)
    largest_other = max(abs(g) for c, g in enumerate(gaps) if c != worst)
    ran_away = gaps[worst] > 3 * max(largest_other, 1.0)
    return ["Energy of samples minus energy of test digits, E(x, y) per digit (mean over seeds): "
            + ", ".join(f"{c}: {g:+.1f}" for c, g in enumerate(gaps))
            + f". The digit with the fewest correct samples ({worst}, {accuracy[worst]:.0%}) has a gap of "
            f"{gaps[worst]:+.1f}, the others at most {largest_other:.1f}"
            + (": its chains stall far above its data's well, so contrastive divergence keeps widening the gap "
               "instead of moving the samples (a sampling failure)." if ran_away else ".")]


def _times_to_fid(runs: Runs, threshold: float, curve_key: str) -> str:
    """'name M min (k/n seeds)' per model: mean minutes to the FID threshold over the seeds that reached it."""
    parts = []
    for name, rs in runs.items():
        got = [t for t in (time_to_fid(r, threshold, curve_key) for r in rs) if t is not None]
        parts.append(f"{name} {statistics.mean(got) / 60:.1f} min ({len(got)}/{len(rs)} seeds)" if got
                     else f"{name} never")
    return ", ".join(parts)


def _convergence_lines(variants: Runs) -> list[str]:
    """Convergence speed of the CIFAR-10 variants: minutes until the FID evaluated during training first
    reached a level every variant can be held to (a multiple of the best FID any variant evaluated)."""
    best = min((fid for rs in variants.values() for r in rs for _, _, fid in metric(r, "fid_curve") or []),
               default=math.inf)
    if not math.isfinite(best):
        return []
    level = t.CONVERGENCE_LEVEL["ebm"]
    return [f"Convergence speed: training time until the evaluated FID first fell to {level * best:.3g} ({level:g}x "
            f"the best FID any variant reached): " + _times_to_fid(variants, level * best, "fid_curve") + "."]


def _discuss_jem(runs: Runs) -> list[str]:
    lines = []
    jem, jempp = runs.get("jem-mnist", []), runs.get("jempp-mnist", [])
    if jem and jempp:
        lines.append(
            f"Accuracy kept: JEM {spread(jem, 'test_accuracy', 4)}, JEM++ {spread(jempp, 'test_accuracy', 4)} "
            f"(the classifiers they started from: {spread(jem, 'classifier_test_accuracy', 4)} and "
            f"{spread(jempp, 'classifier_test_accuracy', 4)}).")
        lines.append(
            f"Sample quality: domain FID of buffer samples JEM {spread(jem, 'fid')}, JEM++ {spread(jempp, 'fid')}, "
            f"with {spread(jem, 'sgld_steps_per_iteration')} vs {spread(jempp, 'sgld_steps_per_iteration')} "
            f"full-network SGLD steps per iteration; class-conditional samples judged correct "
            f"{spread(jem, 'conditional_accuracy')} vs {spread(jempp, 'conditional_accuracy')}.")
        lines.append(
            f"Calibration: ECE JEM {spread(jem, 'ece')} (its classifier {spread(jem, 'classifier_ece')}; "
            f"{_calibration_verdict(jem)}), JEM++ {spread(jempp, 'ece')} (its classifier "
            f"{spread(jempp, 'classifier_ece')}; {_calibration_verdict(jempp)}). OOD AUROC (MNIST vs "
            f"Fashion-MNIST, score -E(x)): JEM {spread(jem, 'ood_auroc_energy')}, JEM++ "
            f"{spread(jempp, 'ood_auroc_energy')}.")
        lines.append(
            f"Stability and cost: divergence events JEM {sum(values(jem, 'divergence_events')):.0f}, JEM++ "
            f"{sum(values(jempp, 'divergence_events')):.0f}; seconds per 1,000 iterations JEM "
            f"{spread(jem, 'seconds_per_1000_iterations')}, JEM++ {spread(jempp, 'seconds_per_1000_iterations')}.")
        lines += _jempp_targets(jem, jempp)
    lines += _cifar_lines(runs.get("jem-cifar10", []), runs.get("jempp-cifar10", []))
    ablations = {k: v for k, v in runs.items() if k.startswith("jempp-mnist-")}
    if ablations and jempp:
        lines.append("Ablations (JEM++ with one change undone): "
                     + "; ".join(f"{k.removeprefix('jempp-mnist-')}: FID {spread(v, 'fid')}, conditional accuracy "
                                 f"{spread(v, 'conditional_accuracy')}, test accuracy {spread(v, 'test_accuracy', 4)}"
                                 for k, v in ablations.items()) + ".")
    cifar = {name: mean(runs.get(stage, []), "test_accuracy") for name, stage in
             (("JEM", "jem-cifar10"), ("JEM++", "jempp-cifar10"))}
    return lines + _twin_lines(runs, "fid", "randnet_fid") + _memorisation_lines(runs, "memorised_share") \
        + _cas_lines(runs) + _paper_lines(("JEM", "JEM++"), cifar)


def _calibration_verdict(runs: list[dict[str, Any]]) -> str:
    """The calibration target: the run's test ECE not more than a set margin above that of the classifier it
    started from."""
    ece, start = mean(runs, "ece"), mean(runs, "classifier_ece")
    if ece is None or start is None:
        return "no verdict"
    target = t.JEM_CALIBRATION
    return f"{ece - start:+.3f}, target at most +{target.threshold:g}: {verdict((target, ece - start))}"


def _jempp_targets(jem: list[dict[str, Any]], jempp: list[dict[str, Any]]) -> list[str]:
    """JEM++'s own targets (accuracy, conditional samples, time) and its paper's claims against JEM: JEM's
    FID or better with at most half its SGLD steps, and no more divergences."""
    lines = []
    acc, cond = mean(jempp, "test_accuracy"), mean(jempp, "conditional_accuracy")
    wall = minutes(jempp)
    if acc is not None and cond is not None:
        accuracy, conditional, within = t.JEMPP_ACCURACY, t.JEMPP_CONDITIONAL, t.JEMPP_MINUTES
        lines.append(f"JEM++ targets: test accuracy {spread(jempp, 'test_accuracy', 4)} (at least "
                     f"{accuracy.threshold:g}: {verdict((accuracy, acc))}), class-conditional samples judged correct "
                     f"{spread(jempp, 'conditional_accuracy')} (at least {conditional.threshold:g}: "
                     f"{verdict((conditional, cond))}), {wall:.1f} min of training (within {within.threshold:g}: "
                     f"{verdict((within, wall))}).")
    fid_jem, fid_pp = mean(jem, "fid"), mean(jempp, "fid")
    steps_jem, steps_pp = mean(jem, "sgld_steps_per_iteration"), mean(jempp, "sgld_steps_per_iteration")
    if None in (fid_jem, fid_pp, steps_jem, steps_pp):
        return lines
    div_jem, div_pp = sum(values(jem, "divergence_events")), sum(values(jempp, "divergence_events"))
    quality = verdict((t.JEMPP_FID_OVER_JEM, fid_pp - fid_jem), (t.JEMPP_STEP_SHARE, steps_pp / steps_jem))
    return lines + [
        f"JEM++ against its claims: FID {fid_pp:.3g} vs JEM's {fid_jem:.3g} with {steps_pp / steps_jem:.0%} of "
        f"JEM's SGLD steps per iteration (JEM's quality with at most {t.JEMPP_STEP_SHARE.threshold:.0%} of the "
        f"steps: {quality}); divergence events {div_pp:.0f} vs {div_jem:.0f} "
        f"({'no more than JEM' if t.JEMPP_DIVERGENCES_OVER_JEM.met_by(div_pp - div_jem) else 'more than JEM'})."]


def _cifar_lines(jem: list[dict[str, Any]], jempp: list[dict[str, Any]]) -> list[str]:
    """The CIFAR-10 quick runs: a CPU demonstration of the same comparison."""
    parts = [f"{name} test accuracy {spread(rs, 'test_accuracy')} (its classifier "
             f"{spread(rs, 'classifier_test_accuracy')}), domain FID {spread(rs, 'fid')}, class-conditional samples "
             f"judged correct {spread(rs, 'conditional_accuracy')}, OOD AUROC (CIFAR-10 vs MNIST) "
             f"{spread(rs, 'ood_auroc_energy')}" for name, rs in (("JEM", jem), ("JEM++", jempp)) if rs]
    return [f"CIFAR-10 (quick preset, a CPU demonstration): {'; '.join(parts)}."] if parts else []


def _discuss_dvae(runs: Runs) -> list[str]:
    lines = []
    for stage, rs in runs.items():
        dataset = stage.removeprefix("dvae-")
        codes, pixels = mean(rs, "cluster_hungarian_accuracy"), mean(rs, "pixels_plain_hungarian_accuracy")
        if codes is None or pixels is None:
            continue
        embedded = mean(rs, "pixels_embedded_hungarian_accuracy")
        line = (f"{dataset}: clustering the codes gives Hungarian accuracy {spread(rs, 'cluster_hungarian_accuracy')} "
                f"at K=10 (NMI {spread(rs, 'cluster_nmi')}, ARI {spread(rs, 'cluster_ari')}) against raw-pixel KMeans "
                f"{spread(rs, 'pixels_plain_hungarian_accuracy')} and plain KMeans on the codes "
                f"{spread(rs, 'codes_plain_hungarian_accuracy')}")
        if embedded is not None:
            line += (f"; the same embedding on pixels reaches {spread(rs, 'pixels_embedded_hungarian_accuracy')}, so "
                     + (f"the codes add {codes - embedded:.3f} over pixels" if codes - embedded >= 0.01 else
                        "the embedding, more than the discrete codes, makes the images clusterable"))
        autoencoder = mean(rs, "ae_embedded_hungarian_accuracy")
        if autoencoder is not None:
            line += (f"; a continuous autoencoder of equal size, same pipeline, "
                     f"{spread(rs, 'ae_embedded_hungarian_accuracy')}")
            if embedded is not None and codes - embedded >= 0.01 and abs(codes - autoencoder) < 0.01:
                line += ", as good as the codes: the network's form, not the quantisation, makes the difference"
        lines.append(line + ".")
        true, pseudo = mean(rs, "true_label_classifier_accuracy"), mean(rs, "pseudo_label_classifier_accuracy")
        if true is not None and pseudo is not None:
            lines.append(f"{dataset}: a classifier trained on the pseudo-labels scores {pseudo:.1%} on the true test "
                         f"labels, {100 * (true - pseudo):.1f} points below the same classifier on true labels "
                         f"({true:.1%}); reconstructions reach {spread(rs, 'test_psnr')} dB PSNR.")
    return lines


def time_to_fid(summary: dict[str, Any], threshold: float, curve_key: str = "val_fid_curve") -> float | None:
    """Wall seconds of training until the evaluated FID (a ``[step, wall_s, fid]`` curve) first fell to
    ``threshold`` (None: never)."""
    curve = metric(summary, curve_key) or []
    return next((wall for _, wall, fid in curve if fid <= threshold), None)


def fid_rebound(summary: dict[str, Any], curve_key: str = "val_fid_curve") -> float | None:
    """The largest rise of the evaluated FID above its best so far, as a fraction of that best (0: it never
    got worse): a training run that learns and then loses what it learnt (oscillation, collapse) shows here,
    where the kept best generator hides it. None without two evaluations."""
    fids = [fid for _, _, fid in metric(summary, curve_key) or []]
    if len(fids) < 2:
        return None
    best, worst = fids[0], 0.0
    for fid in fids[1:]:
        worst = max(worst, fid / best - 1)
        best = min(best, fid)
    return worst


def _gan_stability_line(present: Runs) -> list[str]:
    parts = []
    for name, rs in present.items():
        rebounds = [r for r in (fid_rebound(run) for run in rs) if r is not None]
        if rebounds:
            late = sum(metric(run, "best_step") == (metric(run, "val_fid_curve") or [[None]])[-1][0] for run in rs)
            parts.append(f"{name} {statistics.mean(rebounds):+.0%} (worst seed {max(rebounds):+.0%}; best generator "
                         f"at the last evaluation on {late} of {len(rs)} seeds)")
    if not parts:
        return []
    return ["Stability: the largest rise of validation FID above its best so far during training, mean over seeds "
            "(0%: it never got worse; a best generator at the last evaluation means training was still improving "
            "when it stopped): " + "; ".join(parts) + "."]


def _discuss_gan(runs: Runs) -> list[str]:
    lines = []
    names = {"gan-hoda": "GAN", "wgan-hoda": "WGAN (clip)", "wgangp-hoda": "WGAN-GP",
             "gan-hoda-conditional": "conditional GAN"}
    present = {names[k]: v for k, v in runs.items() if k in names and v}
    if not present:
        return lines
    walls = {name: minutes(rs) for name, rs in present.items()}
    mixtures = {n: rs for n, rs in present.items() if values(rs, "train_cluster_purity")}
    if mixtures:
        clusters = {len(metric(r, "train_cluster_shares")) for rs in mixtures.values() for r in rs}
        lines.append(f"{', '.join(mixtures)} draw from a mixture prior of {' or '.join(map(str, sorted(clusters)))} "
                     "clusters of the training images found by KMeans without labels (self-conditioned GAN, Liu et "
                     "al. 2020): a sample's cluster is drawn with the cluster's share of the training set, and no "
                     "label reaches training. Read against the labels afterwards, the clusters' purity is "
                     + ", ".join(f"{n} {spread(rs, 'train_cluster_purity')}" for n, rs in mixtures.items()) + ".")
    lines.append("Realism on the test split (Hoda classifier as judge; budget per model "
                 + ", ".join(f"{n} {w:.1f} min" for n, w in walls.items()) + "): "
                 + "; ".join(f"{n}: FID {spread(rs, 'test_fid')}, confident share {spread(rs, 'test_confident_share')}, "
                             f"class coverage {spread(rs, 'test_class_coverage')}" for n, rs in present.items()) + ".")
    unconditional = {n: rs for n, rs in present.items() if n != "conditional GAN"}
    targets = (("Best unconditional model", unconditional, t.GAN_UNCONDITIONAL_CONFIDENT_SHARE,
                t.GAN_UNCONDITIONAL_CLASS_COVERAGE),
               ("The conditional GAN", {k: v for k, v in present.items() if k == "conditional GAN"},
                t.GAN_CONFIDENT_SHARE, t.GAN_CLASS_COVERAGE))
    for title, group, confident, covered in targets:
        if not group:
            continue
        best = max(group, key=lambda n: mean(group[n], "test_confident_share") or 0.0)
        share, coverage = mean(group[best], "test_confident_share"), mean(group[best], "test_class_coverage")
        if share is not None and coverage is not None:
            lines.append(f"{title} by confident share: {best} ({share:.1%} of samples with judge probability above "
                         f"0.9, class coverage {coverage:.3f}; targets {confident.threshold:.0%} and "
                         f"{covered.threshold:g}: {verdict((confident, share), (covered, coverage))}).")
    gp_share = mean(present.get("WGAN-GP", []), "test_confident_share")
    if gp_share is not None:
        target = t.WGANGP_CONFIDENT_SHARE
        lines.append(f"WGAN-GP: {gp_share:.1%} of samples confidently classified (target {target.threshold:.0%}: "
                     f"{verdict((target, gp_share))}).")
    wgan, gp = present.get("WGAN (clip)", []), present.get("WGAN-GP", [])
    if wgan and gp:
        pairs = {r.get("seed"): metric(r, "test_fid") for r in wgan}
        wins = [metric(gp_run, "test_fid") < pairs[gp_run.get("seed")] for gp_run in gp
                if pairs.get(gp_run.get("seed")) is not None]
        lines.append(f"WGAN-GP against weight clipping: test FID below WGAN's on {sum(wins)} of {len(wins)} seeds "
                     f"({spread(gp, 'test_fid')} vs {spread(wgan, 'test_fid')}). The clipped critic ends with "
                     f"{spread(wgan, 'last_clipped_fraction')} of its weights at +-c and weight std "
                     f"{spread(wgan, 'critic_weight_std')} (WGAN-GP's critic: {spread(gp, 'critic_weight_std')}).")
    tracking = {n: spread(rs, "wasserstein_fid_spearman") for n, rs in present.items() if values(rs, "wasserstein_fid_spearman")}
    if tracking:
        lines.append("Does the critic's Wasserstein estimate track quality? Spearman correlation with validation FID "
                     "over training: " + ", ".join(f"{n} {v}" for n, v in tracking.items())
                     + " (near 1: the estimate falls as the samples improve).")
    lines += _gan_stability_line(present)
    level = t.CONVERGENCE_LEVEL["gan"]
    threshold = level * min(mean(rs, "best_val_fid") or math.inf for rs in present.values())
    if math.isfinite(threshold):
        lines.append(f"Convergence: time to a validation FID of {threshold:.3g} ({level:g}x the best model's final "
                     f"best): " + _times_to_fid(present, threshold, "val_fid_curve") + ".")
    return lines + _twin_lines(present, "test_fid", "test_randnet_fid") \
        + _memorisation_lines(present, "test_memorised_share") + _cas_lines(present)


STUDIES: dict[str, Study] = {
    "classifiers": Study(
        "Classifiers: the judges",
        "How accurate are the classifiers that judge every sample and start JEM?",
        (("test_accuracy", "test accuracy"), ("val_accuracy", "val accuracy"), ("test_images", "test images"),
         ("steps", "steps"), ("parameters", "parameters")),
        ("figures/confusion.png",), _discuss_classifiers),
    "ebm": Study(
        "Energy-based models (Du & Mordatch 2019)",
        "How do noise starts, a replay buffer and a decaying step size compare in stability, convergence "
        "speed and sample quality; does label-fixed sampling of a conditional MNIST energy give the right digits?",
        (("fid", "domain FID"), ("kid", "KID"), ("is", "IS"), ("precision", "precision"), ("recall", "recall"),
         ("diversity", "diversity"), ("class_coverage", "class coverage"), ("class_accuracy", "class accuracy"),
         ("min_class_accuracy", "worst class"), ("grad_norm_spikes", "grad spikes"),
         ("divergence_events", "divergences"), ("density", "density"), ("coverage", "coverage"),
         ("intra_fid", "intra-class FID"), ("randnet_fid", "label-free FID"), ("memorised_share", "memorised"),
         ("cas", "CAS"), ("cas_real", "CAS real")),
        ("samples/final.png", "figures/grids_over_training.png", "figures/sampling.png", "figures/curves.png",
         "figures/memorisation.png", "figures/sampling_fid.png", "figures/sampling_randnet_fid.png",
         "figures/sampling_energy_gap.png", "figures/sampling_corners.png"),
        _discuss_ebm),
    "jem": Study(
        "JEM and JEM++",
        "Does reading a classifier as an energy model keep its accuracy, and what do JEM++'s changes buy in "
        "sample quality, stability and cost?",
        (("test_accuracy", "test acc"), ("ece", "ECE"), ("fid", "domain FID"), ("is", "IS"),
         ("conditional_accuracy", "cond. sample acc"), ("ood_auroc_energy", "OOD AUROC (-E)"),
         ("ood_auroc_max_softmax", "OOD AUROC (max p)"), ("sgld_steps_per_iteration", "SGLD steps/it"),
         ("seconds_per_1000_iterations", "s / 1000 it"), ("divergence_events", "divergences"),
         ("coverage", "coverage"), ("randnet_fid", "label-free FID"), ("conditional_intra_fid", "cond. intra FID"),
         ("memorised_share", "memorised"), ("cas", "CAS"), ("cas_real", "CAS real")),
        ("samples/conditional.png", "figures/reliability.png", "figures/curves.png", "figures/memorisation.png"),
        _discuss_jem),
    "dvae": Study(
        "Discrete VAE: pseudo-labels from its codes",
        "How good are pseudo-labels from clustering a discrete VAE's codes, compared with raw pixels and with "
        "true labels?",
        (("cluster_hungarian_accuracy", "codes: Hungarian acc"), ("cluster_nmi", "NMI"), ("cluster_ari", "ARI"),
         ("codes_plain_hungarian_accuracy", "codes, plain KMeans"), ("pixels_plain_hungarian_accuracy", "pixels, KMeans"),
         ("pixels_embedded_hungarian_accuracy", "pixels, embedded"), ("ae_embedded_hungarian_accuracy", "AE, embedded"),
         ("pseudo_label_classifier_accuracy", "pseudo-label clf"), ("true_label_classifier_accuracy", "true-label clf"),
         ("test_psnr", "PSNR (dB)"), ("test_perplexity", "perplexity")),
        ("figures/clustering_accuracy.png", "figures/silhouette_vs_k.png", "figures/tsne.png",
         "figures/cluster_labels.png", "figures/confusion_true_labels.png", "figures/confusion_pseudo_labels.png",
         "samples/reconstructions.png"), _discuss_dvae),
    "gan": Study(
        "GAN, WGAN and WGAN-GP on Hoda digits",
        "Which of the three gives the most realistic digits on held-out data, which trains most stably and "
        "fastest, and does the gradient penalty fix weight clipping's problems?",
        (("test_fid", "test FID"), ("test_kid", "KID"), ("test_is", "IS"), ("test_class_coverage", "class coverage"),
         ("test_confident_share", "confident share"), ("test_precision", "precision"), ("test_recall", "recall"),
         ("best_val_fid", "best val FID"), ("wasserstein_fid_spearman", "W/FID Spearman"),
         ("last_clipped_fraction", "clipped share"), ("critic_weight_std", "critic weight std"),
         ("test_density", "density"), ("test_coverage", "coverage"), ("test_intra_fid", "intra-class FID"),
         ("test_randnet_fid", "label-free FID"), ("test_memorised_share", "memorised"), ("cas", "CAS"),
         ("cas_real", "CAS real"), ("train_cluster_purity", "cluster purity")),
        ("figures/grids_over_training.png", "figures/curves.png", "figures/wasserstein_vs_fid.png",
         "figures/critic_weights.png", "figures/critic_layer_gradients.png", "figures/class_histogram.png",
         "figures/memorisation.png"),
        _discuss_gan),
}


def study(name: str) -> Study:
    """The section spec of a study; studies without one get a plain table of their scalar metrics."""
    return STUDIES.get(name) or Study(name, "", ())
