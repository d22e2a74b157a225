"""The project's lineage graph: sources → bronze → silver → dbt models → gold.

The graph is the project's own wiring, so it is complete before any run: lagoa.yml says which
source lands in which bronze and silver tables, dbt's manifest which tables and models each model
reads, and the publish settings which models reach gold. Tables in the lake that nothing names
any more are shown too, unlinked. Column lineage comes on demand from the lineage events runs
kept (``orchestrate/observe/lineage.py``).

A large graph is read around one node: :func:`focus` keeps the nodes up to N steps upstream and
downstream of it.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lagoa.core.config.sources import source_tables
from lagoa.core.names import QUARANTINE_SUFFIX
from lagoa.serve.layout import NODE_HEIGHT, NODE_WIDTH, draw

if TYPE_CHECKING:
    from lagoa.orchestrate.project import Project

KINDS = ("source", "bronze", "silver", "model", "gold", "table")


@dataclass
class Graph:
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    """By id: ``kind`` (one of KINDS), ``label``, ``table`` for the lake's tables, and
    ``relation`` (``main.<model>``) for dbt's models in the warehouse."""
    edges: set[tuple[str, str]] = field(default_factory=set)

    def add(self, node: str, kind: str, label: str, table: str | None = None) -> str:
        if node not in self.nodes:
            self.nodes[node] = {"id": node, "kind": kind, "label": label, "table": table}
        return node

    def link(self, a: str, b: str) -> None:
        if a != b:
            self.edges.add((a, b))


def _table_kind(identifier: str) -> str:
    namespace = identifier.split(".", 1)[0]
    return namespace if namespace in ("bronze", "silver", "gold") else "table"


def project_graph(project: Project, tables: list[str]) -> Graph:
    """The whole graph; ``tables`` are the lake's tables (from the catalog)."""
    workspace = project.workspace
    graph = Graph()
    for name, config in workspace.config.sources.items():
        source = graph.add(f"source:{name}", "source", f"{name} ({config.kind})")
        for bronze, entity in source_tables(name, config):
            b = graph.add(f"bronze.{bronze}", "bronze", f"bronze.{bronze}", f"bronze.{bronze}")
            s = graph.add(f"silver.{entity}", "silver", f"silver.{entity}", f"silver.{entity}")
            graph.link(source, b)
            graph.link(b, s)
    manifest = workspace.dbt_manifest_document()
    nodes: dict[str, Any] = manifest.get("nodes", {})
    sources: dict[str, Any] = manifest.get("sources", {})
    try:
        from lagoa.publish.models import publishable

        published = set(publishable(workspace))
    except Exception:  # a broken publish setting is the config's error, not the graph's
        published = set()
    for node in nodes.values():
        if node.get("resource_type") != "model":
            continue
        name = str(node.get("name"))
        model = graph.add(f"model:{name}", "model", name)
        graph.nodes[model]["relation"] = f"{node.get('schema') or 'main'}.{node.get('alias') or name}"
        for parent in node.get("depends_on", {}).get("nodes", []):
            if parent in sources:
                found = sources[parent]
                table = f"{found.get('schema')}.{found.get('identifier') or found.get('name')}"
                graph.link(graph.add(table, _table_kind(table), table, table), model)
            elif parent in nodes and nodes[parent].get("resource_type") == "model":
                graph.link(
                    graph.add(f"model:{nodes[parent]['name']}", "model", str(nodes[parent]["name"])), model
                )
        if name in published:
            graph.link(model, graph.add(f"gold.{name}", "gold", f"gold.{name}", f"gold.{name}"))
    for table in tables:
        if table.endswith(QUARANTINE_SUFFIX):
            base = table.removesuffix(QUARANTINE_SUFFIX)
            if base in graph.nodes:
                continue  # shown with its table
        if table not in graph.nodes:
            graph.add(table, _table_kind(table), table, table)
    return graph


def focus(graph: Graph, node: str, up: int, down: int) -> Graph:
    """The nodes within ``up`` steps upstream and ``down`` steps downstream of ``node``."""
    parents: dict[str, set[str]] = defaultdict(set)
    children: dict[str, set[str]] = defaultdict(set)
    for a, b in graph.edges:
        parents[b].add(a)
        children[a].add(b)
    kept = {node}
    for steps, links in ((up, parents), (down, children)):
        frontier = {node}
        for _ in range(steps):
            frontier = {n for f in frontier for n in links[f]} - kept
            kept |= frontier
            if not frontier:
                break
    return Graph(
        {n: graph.nodes[n] for n in kept if n in graph.nodes},
        {(a, b) for a, b in graph.edges if a in kept and b in kept},
    )


def drawn(graph: Graph, chosen: str | None = None) -> dict[str, Any]:
    """The graph with every node's place, as the API returns it and the page draws it."""
    drawing = draw(graph.nodes, sorted(graph.edges))
    return {
        "width": drawing.width,
        "height": drawing.height,
        "node_width": NODE_WIDTH,
        "node_height": NODE_HEIGHT,
        "focus": chosen,
        "nodes": [
            {**graph.nodes[n], "x": p.x, "y": p.y, "layer": p.layer} for n, p in sorted(drawing.nodes.items())
        ],
        "edges": [{"from": a, "to": b, "path": path} for a, b, path in drawing.edges],
    }


class ColumnLineage:
    """Column lineage of the lake's tables from the kept lineage events, read again only when
    the number of kept events changed."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._events: tuple[int, list[dict[str, Any]]] | None = None
        self._lock = threading.Lock()

    def of(self, table: str) -> dict[str, Any]:
        from lagoa.orchestrate.observe.lineage import KEPT, kept_events, lineage_of

        storage = self.project.storage
        with self._lock:
            count = len(storage.list(f"{KEPT}/"))
            if self._events is None or self._events[0] != count:
                self._events = (count, kept_events(self.project.workspace))
            events = self._events[1]
        found = lineage_of(events, table, upstream=True)
        via = None
        namespace, _, name = table.partition(".")
        if not found.columns and namespace == "gold":
            # A published table is its model's rows: its columns come from the model's.
            via = f"main.{name}"
            found = lineage_of(events, via, upstream=True)
        return {
            "table": table,
            "via": via if found.columns else None,
            "columns": {
                column: [{"table": t, "column": c} for t, c in inputs]
                for column, inputs in sorted(found.columns.items())
            },
            "events": len(events),
        }
