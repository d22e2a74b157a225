"""Transform and publish, wired together: dbt builds the domains' models in one invocation, and
the built models marked for publishing go to gold, each as a commit of the run."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from lagoa.core.config import PROJECT_FILE, did_you_mean
from lagoa.core.errors import ConfigError
from lagoa.orchestrate.graph import tagged_models

if TYPE_CHECKING:
    from lagoa.publish.dataset import DatasetResult
    from lagoa.publish.gold import PublishResult
    from lagoa.transform.runner import DbtRun
    from lagoa.workspace import StageContext, Workspace


def new_run_id(now: datetime) -> str:
    return f"run-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def short_run_id(run_id: str) -> str:
    """The part of a run id people type, as git's short hashes: its random suffix (``2e7d55`` of
    ``run-20240601T020000Z-2e7d55``); an id of another form stays whole. Every command accepts
    it (see ``Project.resolve_run``)."""
    head, _, suffix = run_id.rpartition("-")
    return suffix if head.startswith("run-") and len(suffix) >= 6 else run_id


def domain_selectors(workspace: Workspace, domains: list[str] | None) -> list[str] | None:
    """The dbt selectors of ``domains`` (``tag:<domain>`` unless set); None selects every model."""
    if not domains:
        return None
    known = workspace.config.domains
    unknown = [d for d in domains if d not in known]
    if unknown:
        raise ConfigError(
            f"no domain named `{unknown[0]}`{did_you_mean(unknown[0], known)}",
            file=str(workspace.root / PROJECT_FILE),
        )
    return [known[d].select or f"tag:{d}" for d in domains]


def selecting_nothing(workspace: Workspace, domains: list[str]) -> dict[str, str]:
    """The domains whose selector matches no model of dbt's last parse, with the selector: told
    for ``tag:``, ``path:`` and ``fqn:*`` selectors (the others only dbt resolves), and only once
    dbt has parsed the project (``lagoa run`` warns in any case)."""
    nodes = workspace.dbt_manifest_document().get("nodes", {})
    models = [n for n in nodes.values() if n.get("resource_type") == "model"]
    if not nodes:
        return {}
    found = {}
    for domain, selector in zip(domains, domain_selectors(workspace, domains) or [], strict=True):
        kind, _, value = selector.partition(":")
        if kind == "tag":
            matched = any(value in (m.get("tags") or []) for m in models)
        elif kind == "path":
            matched = any(str(m.get("original_file_path", "")).startswith(value.rstrip("/")) for m in models)
        elif selector == "fqn:*":
            matched = bool(models)
        else:
            continue
        if not matched:
            found[domain] = selector
    return found


def transform(
    context: StageContext, domains: list[str] | None = None, *, publish: bool = True, quiet: bool = False
) -> DbtRun:
    """Build the dbt models of ``domains`` (all models by default) in one dbt invocation, then
    publish those built that are marked for publishing (or, with ``publish=False``, only refresh
    the warehouse's views)."""
    from lagoa.publish.models import publishable
    from lagoa.transform.runner import build_all, check

    run = build_all(context, domain_selectors(context.workspace, domains), quiet=quiet)
    # A failed model skips its dependents (dbt's own rule); the models that did build are
    # published, so that one broken model does not hold back the others, and then the failure is
    # raised. A failed test publishes nothing: gold keeps the data that passed.
    built = {n.name for n in run.nodes if n.kind == "model" and n.status == "success"}
    tests_failed = any(n.kind == "test" for n in run.failures())
    if publish and not tests_failed:
        publish_models(context, sorted(built & set(publishable(context.workspace))))
    elif not publish:
        context.workspace.warehouse.refresh(context.lake)
    check(run)
    return run


def publish_models(
    context: StageContext, models: list[str] | None = None
) -> list[PublishResult | DatasetResult]:
    """Publish dbt models marked for publishing (all of them by default) to gold."""
    from lagoa.publish.dataset import publish_dataset
    from lagoa.publish.gold import publish
    from lagoa.publish.models import publishable

    marked = publishable(context.workspace)
    for model in models or []:
        if model not in marked:
            raise ConfigError(
                f"model `{model}` is not marked for publishing{did_you_mean(model, marked)}",
                hint="add it under `publish:` in lagoa.yml or set meta.lagoa.publish in its config",
            )
    chosen = sorted(marked) if models is None else models
    results: list[PublishResult | DatasetResult] = [
        publish_dataset(context, model, marked[model])
        if marked[model].format == "parquet"
        else publish(context, model, marked[model])
        for model in chosen
    ]
    context.workspace.warehouse.refresh(context.lake)
    return results


def published_models(workspace: Workspace, domain: str, built: list[str] | None) -> list[str]:
    """The models a domain's publish step publishes: those its transform built (or, for a retried
    run whose transform succeeded before, those it selects) that are marked for publishing."""
    from lagoa.publish.models import publishable
    from lagoa.transform.runner import selected_models

    marked = set(publishable(workspace))
    if built is not None:
        return sorted(set(built) & marked)
    if workspace.config.domains[domain].select is None and workspace.dbt_manifest.is_file():
        # Tagged with the domain's name: the manifest says which, without starting dbt.
        return sorted(set(tagged_models(workspace).get(domain, [])) & marked)
    selectors = domain_selectors(workspace, [domain]) or []
    return sorted(set(selected_models(workspace, selectors)) & marked)
