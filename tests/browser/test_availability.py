"""Without a browser the browser tests skip, except in CI, where they must fail."""

from __future__ import annotations

import pytest

from tests.browser.conftest import _unavailable


def test_no_browser_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Chromium"):
        _unavailable("no Chromium here")


def test_no_browser_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="must run in CI: no Chromium"):
        _unavailable("no Chromium here")
