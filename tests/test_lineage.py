"""OpenLineage events of a real retail run, received by an HTTP server on loopback and validated
against the official JSON schemas (vendored in ``openlineage_spec/``, resolved locally)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from lagoa.core.time import Interval
from lagoa.orchestrate.executor import Event
from lagoa.orchestrate.graph import project_graph
from lagoa.orchestrate.observe.lineage import Lineage, kept_events, lineage_of, run_uuid
from lagoa.orchestrate.project import Project
from lagoa.transform.column_lineage import InputField, models_lineage
from tests.conftest import copy_example

DAY = Interval(datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 2, tzinfo=UTC))
SPEC = Path(__file__).parent / "openlineage_spec"
EVENT_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
TOKEN = "ol-t0ken/very+secret"


@dataclass
class Received:
    authorization: str | None
    event: dict[str, Any]
    body: str


class _Collector(BaseHTTPRequestHandler):
    received: list[Received]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.received.append(Received(self.headers.get("Authorization"), json.loads(body), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class RetailRun:
    project: Project
    run_id: str
    attempts: int
    received: list[Received]


@pytest.fixture(scope="module")
def retail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RetailRun]:
    received: list[Received] = []
    handler = type("Handler", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    folder = copy_example("retail_lakehouse", tmp_path_factory.mktemp("lineage") / "retail")
    with (folder / "lagoa.yml").open("a", encoding="utf-8") as file:
        file.write(
            "\nobserve:\n  lineage:\n    transport: http\n"
            f"    url: http://127.0.0.1:{server.server_port}\n"
            "    api_key: ${env:LINEAGE_TOKEN}\n    namespace: retail\n"
        )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LINEAGE_TOKEN", TOKEN)
        project = Project.load(folder)
        result = project.run(["daily"], interval=DAY)
    server.shutdown()
    server.server_close()
    assert result.succeeded
    attempts = sum(o.attempts for o in result.outcomes.values())
    yield RetailRun(project, result.run_id, attempts, received)


def _registry() -> Registry[Any]:
    schemas = [
        json.loads(p.read_text()) for p in [SPEC / "OpenLineage.json", *sorted(SPEC.glob("facets/*.json"))]
    ]
    return Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas)


def _facets(event: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from event["run"].get("facets", {}).items()
    yield from event["job"].get("facets", {}).items()
    for dataset in event.get("inputs", []) + event.get("outputs", []):
        for kind in ("facets", "inputFacets", "outputFacets"):
            yield from dataset.get(kind, {}).items()


def _validate(event: dict[str, Any], registry: Registry[Any]) -> None:
    """The event against the event schema, and each facet against the facet schema its
    ``_schemaURL`` names (which must be one of the vendored ones: nothing is fetched)."""
    Draft202012Validator({"$ref": EVENT_SCHEMA}, registry=registry).validate(event)
    for key, facet in _facets(event):
        document = facet["_schemaURL"].split("#")[0]
        root = registry.contents(document)  # raises when not vendored
        assert key in root["properties"], f"facet `{key}` is not what {document} describes"
        Draft202012Validator(root, registry=registry).validate({key: facet})


def test_every_event_validates_against_the_openlineage_schemas(retail: RetailRun) -> None:
    registry = _registry()
    assert len(retail.received) > 10
    for received in retail.received:
        _validate(received.event, registry)
    facets = {key for r in retail.received for key, _ in _facets(r.event)}
    assert {"parent", "nominalTime", "jobType", "schema", "outputStatistics", "columnLineage"} <= facets


def test_a_failed_attempt_carries_its_error_and_validates(retail: RetailRun) -> None:
    from openlineage.client.serde import Serde

    workspace = retail.project.workspace
    graph = project_graph(workspace, ["orders"])
    lineage = Lineage(workspace, graph, "daily", retail.run_id, DAY.pair, client=None)
    built = lineage.build(Event("task_failed", retail.run_id, "validate_orders", 2, error="boom"))
    assert built is not None
    event = json.loads(Serde.to_json(built))
    _validate(event, _registry())
    assert event["eventType"] == "FAIL"
    assert event["run"]["facets"]["errorMessage"]["message"] == "boom"
    assert event["run"]["runId"] == run_uuid(retail.run_id, "validate_orders", 2)


def test_events_arrive_in_order_with_one_parent_run(retail: RetailRun) -> None:
    events = [r.event for r in retail.received]
    parent = run_uuid(retail.run_id)
    assert (events[0]["job"]["name"], events[0]["eventType"]) == ("daily", "START")
    assert (events[-1]["job"]["name"], events[-1]["eventType"], events[-1]["run"]["runId"]) == (
        "daily",
        "COMPLETE",
        parent,
    )
    tasks = events[1:-1]
    assert tasks
    seen: dict[str, list[str]] = {}
    for event in tasks:
        assert event["job"]["namespace"] == "retail"
        assert event["job"]["name"].startswith("daily.")
        assert event["run"]["facets"]["parent"]["run"]["runId"] == parent
        job = event["run"]["facets"]["parent"]["job"]
        assert (job["namespace"], job["name"]) == ("retail", "daily")
        assert event["run"]["facets"]["nominalTime"]["nominalStartTime"].startswith("2024-06-01T00:00")
        seen.setdefault(event["run"]["runId"], []).append(event["eventType"])
    assert all(states == ["START", "COMPLETE"] for states in seen.values()), seen
    assert len(seen) == retail.attempts  # not one attempt's events lost
    names = {e["job"]["name"] for e in tasks}
    assert {"daily.ingest_orders", "daily.validate_orders", "daily.transform_orders"} <= names


def test_datasets_are_named_by_storage_and_count_the_rows_written(retail: RetailRun) -> None:
    completed = {
        r.event["job"]["name"]: r.event for r in retail.received if r.event["eventType"] == "COMPLETE"
    }
    validate = completed["daily.validate_orders"]
    lake = Path(retail.project.workspace.storage.warehouse)
    outputs = {o["name"]: o for o in validate["outputs"]}
    silver = outputs[str((lake / "silver" / "erp_orders").resolve())]
    assert silver["namespace"] == "file"
    table = retail.project.workspace.lake.table("silver.erp_orders")
    assert table is not None
    assert [f["name"] for f in silver["facets"]["schema"]["fields"]] == [
        f.name for f in table.schema().fields
    ]
    rows = retail.project.query("select count(*) from silver.erp_orders")[1][0][0]
    assert silver["outputFacets"]["outputStatistics"]["rowCount"] == rows
    inputs = {i["name"] for i in validate["inputs"]}
    assert str((lake / "bronze" / "erp_orders").resolve()) in inputs


def test_validation_results_are_the_bronze_inputs_quality_assertions(retail: RetailRun) -> None:
    from lagoa.quality.results import load_results

    _, results = load_results(retail.project.workspace.storage, retail.run_id)
    stored = {
        (f"{r.suite}#{e.expectation.index} {e.expectation.label}", e.success)
        for r in results
        if r.table == "silver.erp_orders"
        for e in r.results
    }
    assert stored and any(not success for _, success in stored)  # the example's orders break a rule
    completed = {
        r.event["job"]["name"]: r.event for r in retail.received if r.event["eventType"] == "COMPLETE"
    }
    lake = Path(retail.project.workspace.storage.warehouse)
    inputs = {i["name"]: i for i in completed["daily.validate_orders"]["inputs"]}
    bronze = inputs[str((lake / "bronze" / "erp_orders").resolve())]
    assertions = bronze["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert {(a["name"], a["success"]) for a in assertions} == stored
    assert all(
        a["assertion"].startswith("expect_") and a["severity"] in ("warn", "drop", "error")
        for a in assertions
    )
    started = [
        r.event
        for r in retail.received
        if r.event["job"]["name"] == "daily.validate_orders" and r.event["eventType"] == "START"
    ]
    assert started and all("inputFacets" not in i or not i["inputFacets"] for i in started[0]["inputs"])


def test_the_api_key_is_sent_as_a_bearer_token_and_in_no_event(retail: RetailRun) -> None:
    assert {r.authorization for r in retail.received} == {f"Bearer {TOKEN}"}
    assert not [r for r in retail.received if TOKEN in r.body]


def _column_inputs(event: dict[str, Any], dataset: str, column: str) -> set[tuple[str, str, str]]:
    output = next(o for o in event["outputs"] if o["name"] == dataset)
    fields = output["facets"]["columnLineage"]["fields"][column]["inputFields"]
    return {(f["name"], f["field"], f["transformations"][0]["type"]) for f in fields}


def test_column_lineage_of_a_dbt_model_names_its_source_columns(retail: RetailRun) -> None:
    transform = next(
        r.event
        for r in retail.received
        if r.event["eventType"] == "COMPLETE" and r.event["job"]["name"] == "daily.transform_orders"
    )
    fct = "main.fct_daily_store_metrics"
    # revenue is sum(revenue) of the orders CTE, itself `select *` of stg_erp_orders
    assert _column_inputs(transform, fct, "revenue") == {("main.stg_erp_orders", "revenue", "DIRECT")}
    # orders is count(*): no column read, the rows of stg_erp_orders counted per (dt, store_id)
    assert _column_inputs(transform, fct, "orders") == {
        ("main.stg_erp_orders", "dt", "INDIRECT"),
        ("main.stg_erp_orders", "store_id", "INDIRECT"),
    }
    silver = str(Path(retail.project.workspace.storage.warehouse, "silver", "erp_orders").resolve())
    assert _column_inputs(transform, "main.stg_erp_orders", "revenue") == {
        (silver, "quantity", "DIRECT"),
        (silver, "unit_price", "DIRECT"),
    }


def test_select_star_expands_from_the_schemas_and_upstream_models() -> None:
    tables = {"silver": {"orders": ["id", "amount"]}}
    found = models_lineage(
        [
            ("stg", 'select *, amount * 2 as doubled from "warehouse"."silver"."orders"'),
            ("fct", 'select * exclude (amount) from "warehouse"."main"."stg"'),
        ],
        tables,
    )
    assert found["stg"].columns == ("id", "amount", "doubled")
    assert found["fct"].columns == ("id", "doubled")
    assert found["fct"].fields["id"] == (InputField("main.stg", "id", "DIRECT", "IDENTITY"),)
    assert found["stg"].fields["doubled"] == (
        InputField("silver.orders", "amount", "DIRECT", "TRANSFORMATION"),
    )


def test_kept_events_give_the_graph_without_a_lineage_server(retail: RetailRun) -> None:
    kept = kept_events(retail.project.workspace)
    assert [e["eventType"] for e in kept] == [r.event["eventType"] for r in retail.received]
    up = lineage_of(kept, "gold.fct_daily_store_metrics")
    assert {
        ("main.fct_daily_store_metrics", "daily.publish_orders", "gold.fct_daily_store_metrics"),
        ("silver.erp_orders", "daily.transform_orders", "main.stg_erp_orders"),
        ("bronze.erp_orders", "daily.validate_orders", "silver.erp_orders"),
        ("erp_orders", "daily.ingest_orders", "bronze.erp_orders"),
    } <= set(up.edges)
    assert "silver.products" not in {e[0] for e in lineage_of(kept, "main.stg_erp_orders").edges}
    down = lineage_of(kept, "silver.erp_orders", upstream=False)
    assert {e[2] for e in down.edges} >= {"main.stg_erp_orders", "gold.fct_daily_store_metrics"}
    assert "bronze.erp_orders" not in {e[2] for e in down.edges}
    model = lineage_of(kept, "main.fct_daily_store_metrics")
    assert model.columns["revenue"] == (("main.stg_erp_orders", "revenue"),)


def test_lagoa_lineage_prints_the_graph_and_column_lineage(retail: RetailRun) -> None:
    from click.testing import CliRunner

    from lagoa.cli import main

    folder = str(retail.project.workspace.root)
    runner = CliRunner()
    shown = runner.invoke(main, ["lineage", "gold.fct_daily_store_metrics", "--project", folder, "--json"])
    assert shown.exit_code == 0, shown.output
    edges = {(e["from"], e["job"], e["to"]) for e in json.loads(shown.output)}
    assert ("bronze.erp_orders", "daily.validate_orders", "silver.erp_orders") in edges
    down = runner.invoke(main, ["lineage", "silver.crm_leads", "--downstream", "--project", folder, "--json"])
    assert {e["to"] for e in json.loads(down.output)} == {
        "main.stg_crm_leads",
        "main.fct_daily_store_metrics",
        "gold.fct_daily_store_metrics",
    }
    columns = runner.invoke(
        main, ["lineage", "main.fct_daily_store_metrics", "--columns", "--project", folder, "--json"]
    )
    rows = json.loads(columns.output)
    assert {(r["from table"], r["from column"]) for r in rows if r["column"] == "revenue"} == {
        ("main.stg_erp_orders", "revenue")
    }
