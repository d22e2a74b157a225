"""Reading ``lagoa.yml``: YAML, ``LAGOA_<SECTION>_<KEY>`` environment overrides, validation, and
errors that name the file, the key and the fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from lagoa.core.config.base import did_you_mean
from lagoa.core.config.env_file import load_env_file
from lagoa.core.config.project import ProjectConfig
from lagoa.core.config.sources import SOURCE_KINDS
from lagoa.core.errors import ConfigError

PROJECT_FILE = "lagoa.yml"
MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML forbids it; PyYAML
    would silently keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:  # `<<: *defaults` may be overridden key by key
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base loader says so
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key `{key}` is given twice (first at line {first + 1})", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _allowed_keys(path: list[str | int]) -> list[str]:
    """Keys valid at ``path`` (a validation error's location, source kind tag included), for "did
    you mean" hints."""
    model: type[BaseModel] = ProjectConfig
    parts = list(path)
    while parts:
        field = model.model_fields.get(str(parts.pop(0)))
        annotation = field.annotation if field else None
        if get_origin(annotation) is dict:  # sources / domains: skip the user-chosen name
            annotation = get_args(annotation)[1]
            parts = parts[1:]
            if parts and str(parts[0]) in SOURCE_KINDS:
                annotation = SOURCE_KINDS[str(parts.pop(0))]
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return [field.alias or name for name, field in model.model_fields.items()]


def _location(path: list[str | int]) -> list[str | int]:
    """The error's location as the user wrote it: without the source kind tag."""
    if len(path) > 2 and path[0] == "sources" and str(path[2]) in SOURCE_KINDS:
        return [*path[:2], *path[3:]]
    return path


def _format_validation_error(error: ValidationError, file: str) -> ConfigError:
    first = error.errors()[0]
    tagged = list(first["loc"])
    location = _location(tagged)
    key = ".".join(str(part) for part in location)
    if first["type"] == "extra_forbidden":
        bad = str(location[-1])
        suggestion = did_you_mean(bad, _allowed_keys(tagged[:-1]))
        return ConfigError(
            f"unknown key `{bad}`{suggestion}",
            file=file,
            key=key,
            hint="remove it or fix its spelling; `lagoa init` writes a documented example",
        )
    if first["type"] == "missing":
        return ConfigError("is required but missing", file=file, key=key, hint=f"add `{location[-1]}:`")
    explain = _EXPLAINED.get(first["type"])
    message = explain(first, location) if explain else first["msg"].removeprefix("Value error, ")
    return ConfigError(message, file=file, key=key)


def _unknown_choice(what: str, value: Any, expected: str) -> str:
    """ "unknown <what> `value`; expected one of: …", from pydantic's quoted list of choices."""
    choices = re.findall(r"'([^']*)'", expected)
    suggestion = did_you_mean(str(value), choices)
    return f"unknown {what} `{value}`{suggestion}; expected one of: {', '.join(choices)}"


def _unknown_tag(error: ErrorDetails, _location: list[str | int]) -> str:
    """A discriminated union's tag (a source's ``kind``); named after the discriminator function,
    ``source_kind()`` → "source kind"."""
    context = error.get("ctx", {})
    what = str(context.get("discriminator", "kind")).strip("'()").replace("_", " ")
    return _unknown_choice(what, context.get("tag"), str(context.get("expected_tags", "")))


def _unknown_literal(error: ErrorDetails, location: list[str | int]) -> str:
    what = next((str(part) for part in reversed(location) if isinstance(part, str)), "value")
    return _unknown_choice(what, error.get("input"), str(error.get("ctx", {}).get("expected", "")))


def _not_a_mapping(error: ErrorDetails, _location: list[str | int]) -> str:
    value = error.get("input")
    found = "it is empty" if value is None else f"not `{value}`"
    return f"must be a mapping of settings (`key: value` lines); {found}"


_EXPLAINED: dict[str, Callable[[ErrorDetails, list[str | int]], str]] = {
    "union_tag_invalid": _unknown_tag,
    "union_tag_not_found": _not_a_mapping,
    "literal_error": _unknown_literal,
    "model_type": _not_a_mapping,
    "dict_type": _not_a_mapping,
}
"""Pydantic errors told in the project file's terms, by error type; others keep pydantic's words."""


def _apply_environment(data: dict[str, Any]) -> dict[str, Any]:
    """Overlay ``LAGOA_<SECTION>_<KEY>`` environment variables on the file's settings."""
    for section, keys in (("storage", ("root",)), ("catalog", ("uri", "name")), ("state", ("uri",))):
        for key in keys:
            value = os.environ.get(f"LAGOA_{section.upper()}_{key.upper()}")
            if value:
                data.setdefault(section, {})
                if isinstance(data[section], dict):
                    data[section][key] = value
    if warehouse := os.environ.get("LAGOA_WAREHOUSE"):
        data["warehouse"] = warehouse
    return data


def load_config(path: Path) -> ProjectConfig:
    """Read and validate a project file; errors name the file, the key and the fix. The
    project's ``.env`` is read first (the process environment wins)."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "not found", file=file, hint="run `lagoa init <dir>` to create a project, or pass --project"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot be read ({exc.__class__.__name__}: {exc})", file=file) from None
    load_env_file(path.parent)  # before `${env:…}` settings are resolved
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: builds only plain data
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"is not valid YAML{where}: {problem}", file=file) from None
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping of settings (name:, sources:, …)", file=file)
    try:
        return ProjectConfig.model_validate(_apply_environment(data))
    except ValidationError as exc:
        raise _format_validation_error(exc, file) from None
