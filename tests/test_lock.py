"""The hash-pinned locks cover what pyproject.toml asks for, each pin with its hashes, and every
install path (make, CI, the image) installs from them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)")


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pins(lock: Path) -> dict[str, str]:
    text = lock.read_text()
    pins = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = PIN.match(block)
        if match:
            assert "--hash=sha256:" in block, f"{match.group(1)} has no hash in {lock.name}"
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


@pytest.mark.parametrize(
    ("lock", "extras"), [("requirements.lock", ["dev"]), ("requirements-runtime.lock", [])]
)
def test_every_declared_dependency_is_pinned_with_hashes(lock: str, extras: list[str]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    pins = _pins(ROOT / lock)
    missing = sorted({_name(r) for r in wanted} - set(pins))
    assert not missing, f"{lock} lacks {missing}: run `make lock`"


def test_every_install_path_uses_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet --require-hashes -r requirements.lock" in makefile
    assert "pip install --quiet --no-deps -e ." in makefile
    assert re.search(r"^lock:", makefile, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make install" in ci and "make audit" in ci
