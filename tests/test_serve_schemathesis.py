"""Property-based requests against a live ``lagoa serve``: schemathesis reads the server's own
OpenAPI document and sends requests built from it (valid ones, and ones breaking the schema) to
every operation; none may meet a server error, and every answer must match the document.

The POSTs carry the CSRF token the pages hold, so that they reach their handlers rather than the
CSRF check. (``schemathesis.pytest.from_fixture`` cannot run under pytest 9.2, whose nodes have no
``_nodeid`` any more: each operation's strategy is drawn from with Hypothesis directly.)
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.serve_project import build_project, server

OPERATIONS = [
    ("GET", "/api/overview"),
    ("GET", "/api/runs"),
    ("GET", "/api/runs/{run_id}"),
    ("GET", "/api/runs/{run_id}/attempts/{task}/{attempt}/log"),
    ("POST", "/api/runs/{run_id}/retry"),
    ("GET", "/api/tables"),
    ("GET", "/api/tables/{identifier}"),
    ("GET", "/api/tables/{identifier}/files"),
    ("GET", "/api/tables/{identifier}/preview"),
    ("GET", "/api/tables/{identifier}/quarantine"),
    ("GET", "/api/quality"),
    ("GET", "/api/quality/tables/{identifier}"),
    ("GET", "/api/lineage"),
    ("GET", "/api/lineage/columns/{identifier}"),
    ("POST", "/api/query"),
    ("POST", "/api/query.csv"),
    ("GET", "/api/docs"),
]
"""Every operation of the API (checked against the document by :func:`test_every_operation_is_run`)."""
UNCONSTRAINED = {
    ("GET", "/api/overview"),
    ("GET", "/api/tables"),
    ("GET", "/api/docs"),
    ("GET", "/api/runs/{run_id}"),
    ("POST", "/api/runs/{run_id}/retry"),
    ("GET", "/api/tables/{identifier}"),
    ("GET", "/api/lineage/columns/{identifier}"),
}
"""Operations without a parameter, or with only a string in the path (any string is one): no
request breaks their schema, so they are run with valid requests only."""
CASES = [(method, path, GenerationMode.POSITIVE) for method, path in OPERATIONS] + [
    (method, path, GenerationMode.NEGATIVE)
    for method, path in OPERATIONS
    if (method, path) not in UNCONSTRAINED
]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass(frozen=True)
class Live:
    url: str
    csrf: str
    schema: schemathesis.BaseSchema
    real: dict[str, list[Any]]
    """Path parameters naming what the project holds (its tables, runs, tasks): random strings
    name nothing, so half the requests are sent to these instead, reaching the readers."""


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as reply:
        return json.loads(reply.read())


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    built = build_project(tmp_path_factory.mktemp("schemathesis") / "project")
    with server(built.root) as url:
        with urllib.request.urlopen(f"{url}/", timeout=60) as page:
            found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.read().decode())
        assert found is not None, "the page has no csrf-token meta"
        runs = [built.daily_run, built.failed_run]
        tasks = {a["task"] for run in runs for a in _get(f"{url}/api/runs/{run}")["attempts"]}
        real = {
            "identifier": sorted(t["identifier"] for t in _get(f"{url}/api/tables")["tables"]),
            "run_id": runs,
            "task": sorted(tasks),
            "attempt": [1],
        }
        yield Live(url, found[1], schemathesis.openapi.from_url(f"{url}/api/openapi.json"), real)


def test_every_operation_is_run(live: Live) -> None:
    documented = []
    for result in live.schema.get_all_operations():
        assert isinstance(result, Ok), result
        documented.append((result.ok().method.upper(), result.ok().path))
    assert sorted(documented) == sorted(OPERATIONS)


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_operation(live: Live, method: str, path: str, mode: GenerationMode) -> None:
    operation = live.schema[path][method]

    real = dict(live.real)
    if path.endswith("/retry"):  # a retry of the failed run would change what the others read
        real["run_id"] = [live.real["run_id"][0]]

    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case[Any], data: st.DataObject) -> None:
        named: bool = data.draw(st.booleans(), label="real names")
        if named and case.path_parameters:
            for name in case.path_parameters:
                if name in real:
                    case.path_parameters[name] = data.draw(st.sampled_from(real[name]), label=name)
        case.call_and_validate(base_url=live.url, headers={"X-CSRF-Token": live.csrf}, checks=CHECKS)

    run()
