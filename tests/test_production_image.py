"""The production image holds the product alone, checked without a Docker engine: the
Dockerfile's default (last) stage copies `src/wizesync` and never `src/wizesync_sandbox`, the
wheel built from exactly what it copies has no sandbox module, and a `wizesync` without the
sandbox package serves and says in words that `dev` and `sandbox` are not installed."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def stages() -> dict[str, list[str]]:
    """The Dockerfile's stages by name, in order, each its instruction lines."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if line.startswith("FROM "):
            name = line.split(" AS ")[-1] if " AS " in line else f"stage{len(found)}"
            current = found.setdefault(name, [])
        if line and not line.startswith("#"):
            current.append(line)
    return found


def copied(stage: str) -> list[str]:
    """What the stage and the stages it is built FROM copy from the build context."""
    lines = stages()[stage]
    parent = lines[0].split()[1]
    inherited = copied(parent) if parent in stages() else []
    return inherited + [
        source for line in lines if line.startswith("COPY ") for source in line.split()[1:-1]
    ]


def test_the_default_target_is_production_and_copies_no_sandbox() -> None:
    assert list(stages())[-1] == "production"  # `docker build .` builds the last stage
    sources = copied("production")
    assert "src/wizesync" in sources
    assert not [s for s in sources if s in ("src", "src/", ".") or "sandbox" in s], sources
    assert any('! python -c "import wizesync_sandbox"' in line for line in stages()["production"])


def test_the_development_target_holds_the_sandbox_too() -> None:
    assert "src" in copied("development")


@pytest.mark.slow
@pytest.mark.parametrize("target", ["production", "development"])
def test_only_the_development_images_wheel_has_the_sandbox(tmp_path: Path, target: str) -> None:
    context = tmp_path / "context"
    for source in copied(target):
        if source.endswith(".lock"):
            continue  # dependencies: installed before the package
        copy = context / source
        copy.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / source).is_dir():
            subprocess.run(["cp", "-r", str(ROOT / source), str(copy)], check=True)
        else:
            copy.write_bytes((ROOT / source).read_bytes())
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), "."],
        cwd=context,
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("wizesync-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "wizesync/app.py" in names and "wizesync/devmode.py" in names
    sandbox = [n for n in names if n.startswith("wizesync_sandbox/")]
    if target == "production":
        assert not sandbox
    else:
        assert "wizesync_sandbox/dev.py" in sandbox and "wizesync_sandbox/cli.py" in sandbox


# A `wizesync` as the production image has it: the sandbox package cannot be imported.
WITHOUT_SANDBOX = """
import sys
from importlib.abc import MetaPathFinder

class NoSandbox(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "wizesync_sandbox":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoSandbox())
sys.argv = ["wizesync", *sys.argv[1:]]
if sys.argv[1:] == ["--import-app"]:
    import wizesync.app, wizesync.cli
    wizesync.app.create_app()
    print("imported")
else:
    from wizesync.cli import main
    main()
"""


def without_sandbox(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_SANDBOX, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "WIZESYNC_ENV": "development"},
        cwd=ROOT,
    )


def test_the_product_runs_without_the_sandbox_package() -> None:
    result = without_sandbox("--import-app")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"


@pytest.mark.parametrize("command", ["dev", "sandbox"])
def test_the_development_commands_say_they_are_not_installed(command: str) -> None:
    result = without_sandbox(command, "--port", "8123")
    assert result.returncode == 2, result.stdout + result.stderr
    words = " ".join(result.stderr.split())
    assert f"`wizesync {command}` is not installed here" in words
    assert "Traceback" not in result.stderr
    listed = without_sandbox("--help")
    assert command in listed.stdout and "not installed here" in listed.stdout
