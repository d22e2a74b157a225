"""Which dbt models publish to gold, and how: lagoa.yml's ``publish:`` or the model's meta."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from lagoa.core.config import PublishSettings
from lagoa.core.errors import ConfigError

if TYPE_CHECKING:
    from lagoa.workspace import Workspace


def publishable(workspace: Workspace) -> dict[str, PublishSettings]:
    """Models to publish, by name; lagoa.yml's settings win over a model's meta."""
    found: dict[str, PublishSettings] = {}
    nodes: dict[str, Any] = workspace.dbt_manifest_document().get("nodes", {})
    if nodes:
        for node in nodes.values():
            if node.get("resource_type") != "model":
                continue
            meta = (node.get("config") or {}).get("meta") or node.get("meta") or {}
            settings = (meta.get("lagoa") or {}).get("publish")
            if settings is None:
                continue
            try:
                found[node["name"]] = PublishSettings.model_validate(
                    settings if isinstance(settings, dict) else {}
                )
            except ValidationError as exc:
                problem = exc.errors()[0]
                raise ConfigError(
                    f"meta.lagoa.publish of model `{node['name']}`: {problem['msg']}",
                    file=node.get("original_file_path"),
                    key=".".join(str(p) for p in problem["loc"]),
                ) from None
    found.update(workspace.config.publish)
    return found
