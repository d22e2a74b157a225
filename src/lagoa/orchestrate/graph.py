"""The task graph of a project: per domain ``ingest_<d>`` → ``validate_<d>`` → ``transform_<d>`` →
``publish_<d>``, with each transform also waiting for the domains whose tables its dbt models
read (from the dbt manifest, when there is one).

Tasks are plain data (name, step, domain, upstream names), so exporting the graph to another
scheduler is a translation of this structure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from lagoa.core.config import did_you_mean, source_tables
from lagoa.core.errors import ConfigError

if TYPE_CHECKING:
    from lagoa.workspace import Workspace

Step = Literal["ingest", "validate", "transform", "publish"]
STEPS: tuple[Step, ...] = ("ingest", "validate", "transform", "publish")


@dataclass(frozen=True)
class Task:
    name: str
    step: Step
    domain: str
    upstream: tuple[str, ...] = ()


@dataclass
class Graph:
    tasks: dict[str, Task] = field(default_factory=dict)

    def add(self, task: Task) -> None:
        self.tasks[task.name] = task

    def order(self) -> list[Task]:
        """Tasks in an order where every task follows its upstream ones (stable by name)."""
        done: set[str] = set()
        ordered: list[Task] = []
        pending = sorted(self.tasks)
        while pending:
            ready = [name for name in pending if set(self.tasks[name].upstream) <= done]
            if not ready:
                raise ConfigError(f"the task graph has a cycle among {', '.join(pending)}")
            for name in ready:
                ordered.append(self.tasks[name])
                done.add(name)
            pending = [name for name in pending if name not in done]
        return ordered

    def downstream(self, name: str) -> set[str]:
        """Every task that depends on ``name``, directly or not."""
        found: set[str] = set()
        frontier = {name}
        while frontier:
            nxt = {t.name for t in self.tasks.values() if set(t.upstream) & frontier} - found
            found |= nxt
            frontier = nxt
        return found

    def text(self) -> str:
        lines = []
        for task in self.order():
            after = f"  ← {', '.join(task.upstream)}" if task.upstream else ""
            lines.append(f"{task.name}{after}")
        return "\n".join(lines)

    def dot(self) -> str:
        lines = ["digraph lagoa {", "  rankdir=LR;"]
        for task in self.order():
            lines.append(f'  "{task.name}";')
            lines += [f'  "{up}" -> "{task.name}";' for up in task.upstream]
        lines.append("}")
        return "\n".join(lines)


def project_graph(workspace: Workspace, domains: list[str] | None = None) -> Graph:
    """The graph of ``domains`` (all of the project's by default)."""
    known = workspace.config.domains
    chosen = domains or list(known)
    for domain in chosen:
        if domain not in known:
            raise ConfigError(f"no domain named `{domain}`{did_you_mean(domain, known)}")
    has_dbt = (workspace.root / workspace.config.dbt.project / "dbt_project.yml").is_file()
    sources, models = _domains_read(workspace) if has_dbt else ({}, {})
    graph = Graph()
    for domain in chosen:
        graph.add(Task(f"ingest_{domain}", "ingest", domain))
        graph.add(Task(f"validate_{domain}", "validate", domain, (f"ingest_{domain}",)))
        if not has_dbt:
            continue
        upstream = {f"validate_{domain}"}
        upstream |= {f"validate_{d}" for d in sources.get(domain, set()) if d in chosen}
        upstream |= {f"transform_{d}" for d in models.get(domain, set()) if d in chosen and d != domain}
        graph.add(Task(f"transform_{domain}", "transform", domain, tuple(sorted(upstream))))
        graph.add(Task(f"publish_{domain}", "publish", domain, (f"transform_{domain}",)))
    return graph


def _domains_read(workspace: Workspace) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """For each domain: the domains whose tables its dbt models read through sources, and the
    domains whose models they ``ref``. Reads dbt's manifest, parsing the project first when
    there is none yet (a domain's models are those tagged with its name)."""
    manifest = workspace.dbt_manifest
    if not manifest.is_file():
        from lagoa.transform.profiles import dbt_project_dir
        from lagoa.transform.runner import parsed_manifest
        from lagoa.transform.sources import write_sources

        write_sources(workspace, dbt_project_dir(workspace))
        parsed_manifest(workspace)  # kept: the run's first build uses it
    nodes = workspace.dbt_manifest_document().get("nodes", {})
    entity_domain: dict[str, str] = {}
    for domain, config in workspace.config.domains.items():
        for source in config.sources:
            for _, entity in source_tables(source, workspace.config.sources[source]):
                entity_domain[entity] = domain
    sources: dict[str, set[str]] = {}
    models: dict[str, set[str]] = {}
    for node in nodes.values():
        if node.get("resource_type") != "model":
            continue
        for domain in set(node.get("tags") or []) & set(workspace.config.domains):
            for parent in node.get("depends_on", {}).get("nodes", []):
                if parent.startswith("source."):
                    table = parent.rsplit(".", 1)[-1]
                    if table in entity_domain:
                        sources.setdefault(domain, set()).add(entity_domain[table])
                elif parent in nodes:
                    owners = set(nodes[parent].get("tags") or []) & set(workspace.config.domains)
                    models.setdefault(domain, set()).update(owners)
    return sources, models


def tagged_models(workspace: Workspace) -> dict[str, list[str]]:
    """The dbt models tagged with each domain's name (what a domain selects unless it sets
    ``select``), sorted, from the manifest; empty before dbt has parsed the project."""
    nodes = workspace.dbt_manifest_document().get("nodes", {})
    found: dict[str, list[str]] = {}
    for node in nodes.values():
        if node.get("resource_type") == "model":
            for domain in set(node.get("tags") or []) & set(workspace.config.domains):
                found.setdefault(domain, []).append(str(node["name"]))
    return {domain: sorted(models) for domain, models in found.items()}
