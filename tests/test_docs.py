"""The README and the CLI agree."""

from pathlib import Path

from click.testing import CliRunner

from lagoa.cli import main

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_every_command_is_documented_in_the_readme() -> None:
    for name, command in main.commands.items():
        assert f"`lagoa {name}" in README, f"README lacks `lagoa {name}`"
        help_text = CliRunner().invoke(main, [name, "--help"]).output
        assert "--help" in help_text and (command.help or "").split("\n")[0][:30] in help_text


def test_readme_documents_every_source_key() -> None:
    from lagoa.core.config import FileSource, HttpSource, PostgresSource, PythonSource

    for kind in (FileSource, HttpSource, PythonSource, PostgresSource):
        for name, field in kind.model_fields.items():
            key = field.alias or name
            assert f"    {key}:" in README, f"README's lagoa.yml example lacks `{key}` ({kind.__name__})"
