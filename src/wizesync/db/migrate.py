"""Run alembic from code: `wizesync migrate`, the tests and `make run` all come through here."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory


@cache
def migrations_dir() -> Path:
    """The alembic scripts: the package `wizesync.migrations`, wherever it imports from (the
    repository's `migrations/` in an editable install, site-packages from a wheel)."""
    spec = importlib.util.find_spec("wizesync.migrations")
    if spec is None:
        raise RuntimeError("wizesync.migrations is not installed")
    if spec.origin is None:
        # A namespace package: a leftover src/wizesync/migrations/ (its __pycache__) from before
        # the scripts moved to the top, found ahead of the editable install's mapping.
        where = ", ".join(spec.submodule_search_locations or [])
        raise RuntimeError(f"wizesync.migrations is a folder without the scripts ({where})")
    return Path(spec.origin).resolve().parent


def alembic_config(database_url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if database_url:
        cfg.attributes["database_url"] = database_url
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade_head(database_url: str) -> None:
    """Blocking: alembic's env.py runs its own event loop; call it outside one, or in a thread."""
    command.upgrade(alembic_config(database_url), "head")
