"""The pipeline's index page: one section per study with its table (spread over seeds), figures, the
paragraph answering its question, failures, and links to every run's own report."""

from __future__ import annotations

import html
import json
import os
import platform
from pathlib import Path
from typing import Any

from genlab.report.html import STYLE, _figure, _png, build_report
from genlab.report.studies import Runs, spread, study


def _load(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "summary.json"
    return json.loads(path.read_text()) if path.exists() else None


def _section(name: str, jobs: list[dict[str, Any]], folder: Path) -> str:
    spec = study(name)
    runs: Runs = {}
    for job in jobs:
        summary = _load(Path(job["run_dir"])) if job.get("status") == "complete" else None
        runs.setdefault(job["stage"], [])
        if summary:
            runs[job["stage"]].append(summary)
    columns = spec.columns or tuple((k, k) for k in sorted({k for rs in runs.values() for r in rs
                                                            for k, v in r.get("metrics", {}).items()
                                                            if isinstance(v, (int, float))})[:10])
    parts = [f'<h2 id="{html.escape(name)}">{html.escape(spec.title)}</h2>']
    if spec.question:
        parts.append(f"<p><em>{html.escape(spec.question)}</em></p>")
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in columns)
    rows = []
    for stage, summaries in runs.items():
        cells = "".join(f"<td>{spread(summaries, key)}</td>" for key, _ in columns)
        wall = sum(s.get("wall_time_s", 0.0) for s in summaries) / max(1, len(summaries))
        rows.append(f'<tr><td class="key">{html.escape(stage)}</td><td>{len(summaries)}</td>{cells}'
                    f"<td>{wall / 60:.1f}</td></tr>")
    parts.append(f'<table><tr><th class="key">run</th><th>seeds</th>{head}<th>train min</th></tr>{"".join(rows)}</table>')
    notes = sorted({n for rs in runs.values() for r in rs for n in r.get("notes", [])})
    parts += [f'<div class="note">{html.escape(n)}</div>' for n in notes]
    lines = spec.discuss(runs)
    if lines:
        parts.append("<h3>What the numbers say</h3>" + "".join(f"<p>{html.escape(line)}</p>" for line in lines))
    failed = [j for j in jobs if j.get("status") != "complete"]
    for job in failed:
        parts.append(f'<div class="note"><strong>{html.escape(job["stage"])} (seed {job["seed"]}) '
                     f'{html.escape(job.get("status", "not run"))}:</strong> {html.escape(job.get("error", ""))}</div>')
    figures = []
    for stage, summaries in runs.items():
        first = next((Path(j["run_dir"]) for j in jobs if j["stage"] == stage and j.get("status") == "complete"), None)
        for rel in spec.figures if first else ():
            if (first / rel).exists():
                figures.append(_figure(_png(first / rel), f"{stage}: {rel}"))
    if figures:
        parts.append("<h3>Figures (first seed)</h3>" + "".join(figures))
    links = [f'<a href="{html.escape(os.path.relpath(Path(j["run_dir"]) / "report.html", folder))}">'
             f'{html.escape(j["stage"])} seed {j["seed"]}</a>' for j in jobs if j.get("status") == "complete"]
    if links:
        parts.append("<p>Run reports: " + " &middot; ".join(links) + "</p>")
    return "".join(parts)


def build_index(folder: str | Path) -> Path:
    """Write ``index.html`` for a pipeline folder (and refresh each complete run's own report)."""
    folder = Path(folder)
    state = json.loads((folder / "pipeline.json").read_text())
    by_study: dict[str, list[dict[str, Any]]] = {}
    for job in state["jobs"].values():
        by_study.setdefault(job["study"], []).append(job)
        if job.get("status") == "complete":
            build_report(job["run_dir"])
    done = sum(j.get("status") == "complete" for j in state["jobs"].values())
    title = f"genlab pipeline ({state['preset']}, {state['seeds']} seed(s))"
    toc = " &middot; ".join(f'<a href="#{html.escape(s)}">{html.escape(study(s).title)}</a>' for s in by_study)
    body = [f"<h1>{html.escape(title)}</h1>",
            f'<p class="meta">{done} of {len(state["jobs"])} runs complete; the last pipeline command '
            f'took {state.get("wall_time_s", 0) / 60:.0f} min with {state.get("jobs_at_once", 1)} run(s) at once; '
            f'machine: {html.escape(platform.platform())}, '
            f"{os.cpu_count()} CPU(s). Sample-quality numbers are domain metrics on genlab's own classifiers "
            "(see each table's notes), not Inception.</p>",
            f"<p>{toc}</p>"]
    body += [_section(name, jobs, folder) for name, jobs in by_study.items()]
    out = folder / "index.html"
    out.write_text(f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
                   f"</title><style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")
    return out
