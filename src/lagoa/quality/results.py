"""Validation results kept with the run: Great Expectations' JSON shape plus a static HTML page.

Results live in the lake's storage under ``quality/<run id>/<table>__<suite>.json`` (and
``.html``), so they travel with the data they judged.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Any

from lagoa.quality.validate import ValidationResult
from lagoa.storage import Storage

PREFIX = "quality"


def save_result(storage: Storage, result: ValidationResult) -> str:
    """Store the result's JSON and HTML page; returns the HTML page's path."""
    data = result.to_json()
    base = f"{PREFIX}/{result.run_id}/{_file_name(result.table, result.suite.name)}"
    storage.put_file(f"{base}.json", io.BytesIO(json.dumps(data, indent=2).encode()))
    storage.put_file(f"{base}.html", io.BytesIO(render_html(data).encode()))
    return str(storage.local_path(f"{base}.html"))


def _file_name(table: str, suite: str) -> str:
    return f"{table}__{suite}".replace("/", "_")


def run_ids(storage: Storage) -> list[str]:
    """Runs that stored results, oldest first: by the time their files were written (two runs
    can share a second, so the id alone does not order them)."""
    latest: dict[str, int] = {}
    for key in storage.list(PREFIX):
        if key.endswith(".json"):
            run = Path(key).parts[1]
            latest[run] = max(latest.get(run, 0), storage.local_path(key).stat().st_mtime_ns)
    return sorted(latest, key=lambda run: (latest[run], run))


def load_results(storage: Storage, run_id: str | None = None) -> tuple[str | None, list[dict[str, Any]]]:
    """The stored results of ``run_id`` (default: the latest run that has any)."""
    runs = run_ids(storage)
    if run_id is None:
        run_id = runs[-1] if runs else None
    if run_id is None:
        return None, []
    keys = [k for k in storage.list(f"{PREFIX}/{run_id}") if k.endswith(".json")]
    return run_id, [json.loads(storage.local_path(k).read_text()) for k in keys]


def summary_line(result: dict[str, Any]) -> str:
    """How an expectation went, in a few words."""
    body = result.get("result") or {}
    if "unexpected_count" in body and "element_count" in body:
        percent = body.get("unexpected_percent")
        shown = f" ({percent:.2f}%)" if isinstance(percent, int | float) else ""
        text = f"{body['unexpected_count']} of {body['element_count']} unexpected{shown}"
        sample = body.get("partial_unexpected_list") or []
        if sample:
            text += f"; e.g. {', '.join(map(str, sample[:3]))}"
        return text
    if "observed_value" in body and body["observed_value"] is not None:
        return f"observed {body['observed_value']}"
    if "unexpected_count" in body:
        return f"{body['unexpected_count']} unexpected value(s): {body.get('partial_unexpected_list')}"
    if "missing_count" in body:
        return f"{body['missing_count']} missing value(s): {body.get('partial_missing_list')}"
    return ""


def render_html(data: dict[str, Any]) -> str:
    """One self-contained page for one suite's result."""
    meta = data.get("meta", {})
    lagoa = meta.get("lagoa", {})
    stats = data.get("statistics", {})
    rows = []
    for item in data.get("results", []):
        config = item["expectation_config"]
        action = item.get("meta", {}).get("lagoa", {}).get("on_fail", "")
        state = "passed" if item["success"] else "failed"
        kwargs = {k: v for k, v in config["kwargs"].items() if k not in ("batch_id",)}
        rows.append(
            f'<tr class="{state}"><td>{state}</td><td>{html.escape(action)}</td>'
            f"<td><code>{html.escape(config['type'])}</code></td>"
            f"<td><code>{html.escape(json.dumps(kwargs))}</code></td>"
            f"<td>{html.escape(summary_line(item))}</td></tr>"
        )
    title = f"{data.get('suite_name')} on {lagoa.get('table')}"
    verdict = "passed" if data.get("success") else "failed"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-bottom: 1px solid #ddd; padding: .4rem .6rem; text-align: left; vertical-align: top; }}
tr.failed td:first-child {{ color: #b00020; font-weight: 600; }}
tr.passed td:first-child {{ color: #1b7f3b; }}
code {{ font-size: .85em; word-break: break-all; }}
</style></head><body>
<h1>{html.escape(title)}: {verdict}</h1>
<p>Run <code>{html.escape(str(meta.get("run_id", {}).get("run_name")))}</code> at
{html.escape(str(meta.get("validation_time")))}; {lagoa.get("rows")} rows;
{stats.get("successful_expectations")} of {stats.get("evaluated_expectations")} expectations passed;
suite file <code>{html.escape(str(lagoa.get("suite_file")))}</code>.</p>
<table><thead><tr><th>result</th><th>on fail</th><th>expectation</th><th>arguments</th><th>observed</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""
