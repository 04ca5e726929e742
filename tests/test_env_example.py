"""`.env.example` names every variable wizesync reads, each with a comment: each `Settings` field
and each command option read from the environment, no more; its active example values are valid
settings."""

from __future__ import annotations

import re
from pathlib import Path

from wizesync.config import Settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / ".env.example"
SRC = ROOT / "src"  # both packages: the sandbox adds the development commands
# `NAME=value`, active or commented out (`# NAME=value`).
ASSIGNMENT = re.compile(r"^(#\s?)?([A-Z][A-Z0-9_]*)=(.*)$")


def example_lines() -> list[tuple[bool, str, str]]:
    """(active, name, value) for every assignment in `.env.example`."""
    return [(active, name, value) for active, name, value, _ in _assignments()]


def _assignments() -> list[tuple[bool, str, str, str]]:
    """(active, name, value, its comment) for every assignment in `.env.example`. Its comment is
    the nearest comment above it in its paragraph, so assignments listed under one share it."""
    found, comment = [], ""
    for raw in EXAMPLE.read_text().splitlines():
        line = raw.strip()
        match = ASSIGNMENT.match(line)
        if match:
            found.append((match.group(1) is None, match.group(2), match.group(3), comment))
        elif line.startswith("#"):
            comment = line.lstrip("# ")
        elif not line:
            comment = ""
    return found


def settings_variables() -> set[str]:
    """The environment names of the settings (no prefix, case-insensitive: the field, upper)."""
    assert not Settings.model_config.get("env_prefix")
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias or field.alias
        names.add(str(alias or name).upper())
    return names


def command_variables() -> set[str]:
    """Variables the `wizesync` commands' options read (`envvar=`, product or sandbox)."""
    names: set[str] = set()
    for path in SRC.rglob("*.py"):
        names.update(re.findall(r"envvar=\"([A-Z][A-Z0-9_]*)\"", path.read_text()))
    return names


def test_env_example_lists_every_setting_and_command_variable() -> None:
    listed = {name for _, name, _ in example_lines()}
    expected = settings_variables() | command_variables()

    assert sorted(expected - listed) == [], "add these to .env.example, with a comment"
    assert sorted(listed - expected) == [], "wizesync reads none of these: drop them"


def test_env_example_explains_each_variable() -> None:
    bare = [name for _, name, _, comment in _assignments() if not comment.strip()]
    assert bare == [], "give these a comment in .env.example"


def test_env_example_names_each_variable_once() -> None:
    names = [name for _, name, _ in example_lines()]
    assert sorted({n for n in names if names.count(n) > 1}) == []


def test_env_example_active_values_are_valid_settings() -> None:
    active = {name.lower(): value for on, name, value in example_lines() if on}
    active.pop("wizesync_env", None)  # production would refuse the file's unset secrets

    settings = Settings(_env_file=None, wizesync_env="development", **active)  # type: ignore[call-arg]

    for name, value in active.items():
        assert str(getattr(settings, name)).split() == value.split(), name
