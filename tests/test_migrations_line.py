"""The migrations form one line: parallel branches each adding a revision must be re-chained."""

from __future__ import annotations

import re

from alembic.script import ScriptDirectory

from wizesync.db.migrate import alembic_config, migrations_dir


def test_the_revisions_have_one_head_and_unique_ids() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1, f"several heads: {script.get_heads()}"
    ids = [
        re.search(r'^revision: str = "(\w+)"', path.read_text(), re.M).group(1)  # type: ignore[union-attr]
        for path in (migrations_dir() / "versions").glob("*.py")
    ]
    assert len(ids) == len(set(ids)), f"a revision id is used twice: {sorted(ids)}"


def test_file_names_sort_in_revision_order() -> None:
    """Date-named files: reading them by name is reading the history in order."""
    script = ScriptDirectory.from_config(alembic_config())
    by_history = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    by_name = [
        path.name.split("-", 1)[1].split("_", 1)[0]
        for path in sorted((migrations_dir() / "versions").glob("*.py"))
    ]
    assert by_name == by_history
