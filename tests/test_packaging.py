"""The wheel `pip install .` builds, as the image builds it (Dockerfile): it carries the alembic
scripts of the top-level `migrations/` as `wizesync.migrations`, and `wizesync migrate` from it,
with no checkout beside it, builds the schema on both databases."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.databases import (
    create_postgres_database,
    drop_postgres_database,
    postgres_required,
)
from tests.test_production_image import copied
from wizesync.db.engine import create_engine
from wizesync.db.migrate import head_revision, migrations_dir
from wizesync.db.schema_repo import current_revision

ROOT = Path(__file__).parents[1]
SCRIPTS = ROOT / "migrations"
VERSIONS = "wizesync/migrations/versions/"


def run(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
    return done


def image_context(into: Path) -> Path:
    """What the Dockerfile's production stage copies into /app, and nothing else (no tests, no
    alembic.ini: a script the wheel needs and the image does not copy fails here)."""
    for source in copied("production"):
        target = into / source
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / source).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(ROOT / source, target, ignore=ignore)
        else:
            shutil.copy(ROOT / source, target)
    return into


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    context = image_context(tmp_path_factory.mktemp("app"))
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", out, context)
    return next(out.glob("wizesync-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel alone in a folder of its own; the dependencies stay those of this environment."""
    site = tmp_path_factory.mktemp("site")
    run(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", site, wheel)
    return site


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, never migrated."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    url, reason = create_postgres_database()
    if url is None:
        if postgres_required():
            pytest.fail(f"WIZESYNC_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason or "PostgreSQL not available")
    yield url
    drop_postgres_database(url)


@pytest.mark.slow
def test_the_wheel_holds_every_package_of_the_product(wheel: Path) -> None:
    """setup.py finds the packages: a new one under src/wizesync is in the image without a list."""
    names = set(zipfile.ZipFile(wheel).namelist())
    src = ROOT / "src"
    for init in (src / "wizesync").rglob("__init__.py"):
        assert init.relative_to(src).as_posix() in names


def test_alembic_and_wizesync_migrate_read_the_same_scripts() -> None:
    """`alembic` from the repository (alembic.ini) and the installed package: one `migrations/`."""
    location = Config(str(ROOT / "alembic.ini")).get_main_option("script_location")
    assert location is not None
    assert (ROOT / location).resolve() == migrations_dir() == SCRIPTS.resolve()


@pytest.mark.slow
def test_the_wheel_carries_every_migration(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for script in ("__init__.py", "env.py", "script.py.mako"):
        assert f"wizesync/migrations/{script}" in names
    shipped = sorted(n.removeprefix(VERSIONS) for n in names if n.startswith(VERSIONS))
    assert shipped == sorted(p.name for p in (SCRIPTS / "versions").glob("*.py"))


@pytest.mark.slow
def test_the_installed_wheel_reads_its_own_scripts(installed: Path, tmp_path: Path) -> None:
    """Not the checkout's `migrations/`, which this environment's editable install maps."""
    where = run(
        sys.executable,
        "-c",
        "from wizesync.db.migrate import migrations_dir; print(migrations_dir())",
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(installed)},
    )
    assert Path(where.stdout.strip()) == installed.resolve() / "wizesync" / "migrations"


@pytest.mark.slow
async def test_wizesync_migrate_from_the_wheel_builds_the_schema(
    installed: Path, fresh_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(installed), "DATABASE_URL": fresh_url}
    run(installed / "bin" / "wizesync", "migrate", cwd=tmp_path, env=env)
    engine: AsyncEngine = create_engine(fresh_url)
    try:
        async with engine.connect() as conn:
            assert await current_revision(conn) == head_revision()
    finally:
        await engine.dispose()
