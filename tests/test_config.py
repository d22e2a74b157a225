from __future__ import annotations

from pathlib import Path

import pytest

from lagoa.core.config import load_config, redact, resolve_secrets
from lagoa.core.errors import ConfigError, SecretError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lagoa.yml"
    path.write_text(text)
    return path


def test_unknown_key_names_file_key_and_suggestion(tmp_path: Path) -> None:
    path = write(
        tmp_path, "name: x\nsources:\n  a:\n    format: csv\n    path: a.csv\n    primary_kye: [id]\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "sources.a.primary_kye" in message
    assert "did you mean `primary_key`" in message


def test_unknown_top_level_key_suggests(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean `sources`"):
        load_config(write(tmp_path, "name: x\nsource: {}\n"))


def test_bad_type_is_explained(tmp_path: Path) -> None:
    path = write(
        tmp_path, "name: x\nsources:\n  a:\n    format: csv\n    path: a.csv\n    columns: {id: integr}\n"
    )
    with pytest.raises(ConfigError, match=r"unknown type `integr`.*did you mean `int`"):
        load_config(path)


def test_bad_format_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sources\.a\.format"):
        load_config(write(tmp_path, "name: x\nsources:\n  a:\n    format: xls\n    path: a.csv\n"))


def test_domain_must_name_defined_sources(tmp_path: Path) -> None:
    text = "name: x\nsources:\n  orders:\n    format: csv\n    path: a.csv\ndomains:\n  d:\n    sources: [order]\n"
    with pytest.raises(ConfigError, match="did you mean `orders`"):
        load_config(write(tmp_path, text))


def test_missing_file_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "lagoa.yml")
    with pytest.raises(ConfigError, match="not valid YAML at line 3"):
        load_config(write(tmp_path, "name: x\nsources: [\n"))


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAGOA_CATALOG_URI", "sqlite:////tmp/other.db")
    assert load_config(write(tmp_path, "name: x\n")).catalog.uri == "sqlite:////tmp/other.db"


def test_secrets_resolve_at_use_and_redact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKEN_FOR_TEST", "s3cr3t-value")
    resolved = resolve_secrets("Bearer ${env:TOKEN_FOR_TEST}")
    assert resolved == "Bearer s3cr3t-value"
    assert "s3cr3t-value" not in redact(f"failed with {resolved}", ["s3cr3t-value"])
    with pytest.raises(SecretError) as info:
        resolve_secrets("${env:NOT_SET_ANYWHERE_42}")
    assert "NOT_SET_ANYWHERE_42" in str(info.value)
