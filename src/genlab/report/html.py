"""A self-contained HTML page for one run, built from its directory alone.

Images are embedded as base64 PNGs and the page loads nothing from elsewhere, so it can be zipped,
mailed and opened offline.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from genlab.errors import RunError
from genlab.io import read_json, write_atomic
from genlab.report.figures import curves_figure, plt

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th { background: #f4f4f4; } td.key, th.key { text-align: left; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figure img { max-width: 100%; max-height: 420px; border: 1px solid #eee; } figcaption { font-size: 0.85em; color: #555; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.4em 0.8em; margin: 0.4em 0; }
.meta { color: #555; }
"""


def _png(path_or_fig) -> str:
    if isinstance(path_or_fig, Path):
        data = path_or_fig.read_bytes()
    else:
        buf = io.BytesIO()
        path_or_fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        plt.close(path_or_fig)
        data = buf.getvalue()
    return "data:image/png;base64," + base64.b64encode(data).decode()


def _figure(src: str, caption: str) -> str:
    return f'<figure><img src="{src}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}</figcaption></figure>'


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(rows: list[tuple[str, Any]], head: tuple[str, str] = ("metric", "value")) -> str:
    body = "".join(f'<tr><td class="key">{html.escape(k)}</td><td>{_fmt(v)}</td></tr>' for k, v in rows)
    return f'<table><tr><th class="key">{head[0]}</th><th>{head[1]}</th></tr>{body}</table>'


def _per_class_table(name: str, values: list[float], classes: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in classes)
    cells = "".join(f"<td>{_fmt(v)}</td>" for v in values)
    return f'<table><tr><th class="key">{html.escape(name)}</th>{head}</tr><tr><td class="key">value</td>{cells}</tr></table>'


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{prefix}{key}."))
        else:
            rows.append((prefix + key, value))
    return rows


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    records = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def _classifier_rows(summary: dict[str, Any]) -> list[tuple[str, Any]]:
    """The judge (and a starting classifier) that served the run, and where its data came from."""
    rows = []
    for role, title in (("judge", "judge"), ("start_classifier", "starting classifier")):
        who = summary.get(role)
        if who:
            rows.append((title, f"{who.get('dataset')} classifier {who.get('config_hash')} ({who.get('preset')} "
                                f"preset, seed {who.get('seed')})"))
            rows.append((f"{title}: test accuracy", who.get("test_accuracy")))
    for dataset, found in (summary.get("data_root") or {}).items():
        rows.append((f"data: {dataset}", f"{found.get('root')} ({found.get('found_by')})"))
    return rows


def run_report(run_path: str | Path) -> str:
    """The HTML of one run's report."""
    run = Path(run_path)
    config = read_json(run / "config.json")
    summary_path = run / "summary.json"
    summary = read_json(summary_path) if summary_path.exists() else {}
    records = _read_metrics(run / "metrics.jsonl")
    metrics = summary.get("metrics", {})
    classes = summary.get("classes") or [str(i) for i in range(10)]
    title = f"{config['experiment']} ({config.get('preset', '?')}, seed {config['config'].get('seed', '?')})"

    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="meta">{html.escape(str(run.resolve()))} &middot; status: '
             f'{html.escape(summary.get("status", "incomplete (no summary.json yet)"))}</p>']
    parts += [f'<div class="note">{html.escape(n)}</div>' for n in summary.get("notes", [])]

    scalars = [(k, v) for k, v in _flatten(metrics) if not isinstance(v, list)]
    if scalars:
        parts += ["<h2>Results</h2>", _table(scalars)]
    served = _classifier_rows(summary)
    if served:
        parts += ["<h2>Judge and data</h2>", _table(served, head=("what", "which"))]
    for key, value in metrics.items():
        if isinstance(value, list) and value and not isinstance(value[0], list) and len(value) == len(classes):
            parts.append(_per_class_table(key, value, classes))

    figures = []
    curves = curves_figure(records)
    if curves is not None:
        figures.append(_figure(_png(curves), "training and evaluation curves (metrics.jsonl)"))
    for png in sorted((run / "figures").glob("*.png")):
        figures.append(_figure(_png(png), png.stem.replace("_", " ")))
    for png in sorted((run / "samples").glob("*.png"))[-6:]:
        figures.append(_figure(_png(png), "samples: " + png.stem.replace("_", " ")))
    if figures:
        parts += ["<h2>Figures</h2>", *figures]

    events = [r for r in records if "event" in r]
    if events:
        parts += ["<h2>Events</h2>", _table([(f"step {e['step']}: {e['event']}",
                                              ", ".join(f"{k}={v}" for k, v in e.items() if k not in ("step", "event")))
                                             for e in events], head=("event", "details"))]
    run_facts = [("wall time (s)", summary.get("wall_time_s", "")), ("device", summary.get("machine", {}).get("device", "")),
                 *[(f"machine.{k}", v) for k, v in summary.get("machine", {}).items() if k != "device"],
                 *([("sampler precision", summary["sampler_precision"]["description"])]
                   if summary.get("sampler_precision") else []),
                 ("genlab", config.get("genlab_version", ""))]
    parts += ["<h2>Run</h2>", _table(run_facts, head=("fact", "value")),
              "<h2>Config</h2>", _table(_flatten(config["config"]), head=("key", "value"))]
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n")


def build_report(run_path: str | Path) -> Path:
    """Write ``report.html`` into the run directory and return its path."""
    run = Path(run_path)
    out = run / "report.html"
    try:
        write_atomic(out, run_report(run))
    except OSError as err:
        raise RunError(f"could not write {out}: {err.strerror or err}; the run's numbers (summary.json, "
                       "metrics.jsonl, checkpoints) are kept",
                       hint=f"free disk space, then rebuild the report with `genlab report {run}`") from None
    return out
