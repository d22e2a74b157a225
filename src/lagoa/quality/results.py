"""Validation results kept with the run: Great Expectations' JSON shape plus a static HTML page.

Results live in the lake's storage under ``quality/<run id>/<table>__<suite>.json`` (and
``.html``), so they travel with the data they judged.
"""

from __future__ import annotations

import html
import json
from collections.abc import Collection

from lagoa.quality.outcome import ExpectationResult, ValidationResult, ge_document, jsonable, read_document
from lagoa.storage import Storage

PREFIX = "quality"


def save_result(storage: Storage, result: ValidationResult) -> str:
    """Store the result's JSON and HTML page; returns the HTML page's path."""
    base = f"{PREFIX}/{result.run_id}/{_file_name(result.table, result.suite)}"
    storage.put_bytes(f"{base}.json", json.dumps(ge_document(result), indent=2).encode())
    storage.put_bytes(f"{base}.html", render_html(result).encode())
    return storage.location(f"{base}.html")


def _file_name(table: str, suite: str) -> str:
    return f"{table}__{suite}".replace("/", "_")


def run_ids(storage: Storage) -> list[str]:
    """Runs that stored results, oldest first: by the time their files were written (two runs
    can share a second, so the id alone does not order them)."""
    latest: dict[str, float] = {}
    for location, modified in storage.files_under(storage.location(PREFIX)):
        if location.endswith(".json"):
            run = location.rsplit("/", 2)[-2]
            latest[run] = max(latest.get(run, 0.0), modified)
    return sorted(latest, key=lambda run: (latest[run], run))


def load_results(
    storage: Storage,
    run_id: str | None = None,
    known: Collection[str] | None = None,
    table: str | None = None,
) -> tuple[str | None, list[ValidationResult]]:
    """The stored results of ``run_id`` (default: the latest run that has any). ``known``: the
    runs with results, when the caller has listed them (:func:`run_ids`, oldest first), so that
    reading many runs' results lists the storage once; ``table``: only that table's results."""
    runs = list(known) if known is not None else run_ids(storage)
    if run_id is None:
        run_id = runs[-1] if runs else None
    if run_id is None:
        return None, []
    if run_id not in runs:  # only a stored run's folder is read, never a path made of the id
        return run_id, []
    keys = [k for k in storage.list(f"{PREFIX}/{run_id}") if k.endswith(".json")]
    if table is not None:
        keys = [k for k in keys if k.rsplit("/", 1)[-1].startswith(_file_name(table, ""))]
    return run_id, [read_document(json.loads(storage.read_bytes(k) or b"{}")) for k in keys]


def summary_line(result: ExpectationResult) -> str:
    """How an expectation went, in a few words (its values shown as the stored document has them)."""
    if result.unexpected_count is not None and result.element_count is not None:
        percent = result.unexpected_percent
        shown = f" ({percent:.2f}%)" if isinstance(percent, int | float) else ""
        text = f"{result.unexpected_count} of {result.element_count} unexpected{shown}"
        sample = jsonable(result.partial_unexpected_list or ())
        if sample:
            text += f"; e.g. {', '.join(map(str, sample[:3]))}"
        return text
    observed = jsonable(result.observed_value)
    if result.observed and observed is not None:
        return f"observed {observed}"
    if result.unexpected_count is not None:
        return f"{result.unexpected_count} unexpected value(s): {jsonable(result.partial_unexpected_list)}"
    if result.missing_count is not None:
        return f"{result.missing_count} missing value(s): {jsonable(result.partial_missing_list)}"
    return ""


def render_html(result: ValidationResult) -> str:
    """One self-contained page for one suite's result."""
    stats = result.statistics
    rows = []
    for item in result.results:
        e = item.expectation
        state = "passed" if item.success else "failed"
        kwargs = {k: v for k, v in jsonable(e.kwargs).items() if k not in ("batch_id",)}
        rows.append(
            f'<tr class="{state}"><td>{state}</td><td>{html.escape(e.action)}</td>'
            f"<td><code>{html.escape(e.type)}</code></td>"
            f"<td><code>{html.escape(json.dumps(kwargs))}</code></td>"
            f"<td>{html.escape(summary_line(item))}</td></tr>"
        )
    title = f"{result.suite} on {result.table}"
    verdict = "passed" if result.success else "failed"
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
<p>Run <code>{html.escape(str(result.run_id))}</code> at
{html.escape(result.validated_at.isoformat())}; {result.rows} rows;
{stats.successful_expectations} of {stats.evaluated_expectations} expectations passed;
suite file <code>{html.escape(str(result.suite_file))}</code>.</p>
<table><thead><tr><th>result</th><th>on fail</th><th>expectation</th><th>arguments</th><th>observed</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""
