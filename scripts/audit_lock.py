"""Audit requirements.lock with pip-audit; offline-capable, so CI never hangs on a service.

Exit 1 when a locked package has a known vulnerability. When pip-audit's vulnerability database
cannot be fetched (no network, the service down, or it knows none of the locked releases), say
so and exit 0: the audit is skipped, not failed, and the message names what was not audited.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        command = [
            sys.executable,
            "-m",
            "pip_audit",
            "-r",
            str(LOCK),
            "--require-hashes",
            "--disable-pip",
            "--progress-spinner",
            "off",
            "--timeout",
            "20",
            "-f",
            "json",
            "-o",
            str(report),
        ]
        try:
            run = subprocess.run(  # noqa: S603
                command,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except subprocess.TimeoutExpired:
            print("pip-audit: SKIPPED, the vulnerability database did not answer in 300 s")
            return 0
        if not report.exists():
            last = (run.stderr.strip().splitlines() or ["no output"])[-1]
            if "ConnectionError" in run.stderr or "Failed to resolve" in run.stderr:
                print(f"pip-audit: SKIPPED, the vulnerability database is unreachable ({last})")
                return 0
            print(f"pip-audit failed: {last}")
            return run.returncode or 1
        dependencies = json.loads(report.read_text())["dependencies"]
    vulnerable = [d for d in dependencies if d.get("vulns")]
    skipped = [d for d in dependencies if d.get("skip_reason")]
    for dep in vulnerable:
        ids = ", ".join(
            v["id"]
            + (f" (fixed in {', '.join(v['fix_versions'])})" if v.get("fix_versions") else "")
            for v in dep["vulns"]
        )
        print(f"VULNERABLE {dep['name']} {dep['version']}: {ids}")
    audited = len(dependencies) - len(skipped)
    if skipped and not audited:
        print(
            f"pip-audit: SKIPPED, the vulnerability database knows none of the "
            f"{len(skipped)} locked releases (offline, or a mirror newer than it)"
        )
        return 0
    if skipped:
        names = ", ".join(f"{d['name']} {d.get('version', '')}".strip() for d in skipped)
        print(f"pip-audit: not audited (unknown to the database): {names}")
    print(f"pip-audit: {audited} locked package(s) audited, {len(vulnerable)} vulnerable")
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
