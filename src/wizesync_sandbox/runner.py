"""`wizesync sandbox`: serve both fakes on one port and say how to point a service at them."""

from __future__ import annotations

import sys

from wizesync_sandbox.defaults import DEFAULT_LOCATION_ID, service_env
from wizesync_sandbox.settings import SandboxConfig


def run(
    *,
    host: str,
    port: int,
    service_url: str | None,
    wizehire_secret: str | None,
    webhooks: str,
    seed: bool,
) -> None:
    import uvicorn

    from wizesync_sandbox.server import create_sandbox_app

    config = SandboxConfig(service_url=service_url or None, webhooks=webhooks)  # type: ignore[arg-type]
    if wizehire_secret:
        config.wizehire_secret = wizehire_secret
    app = create_sandbox_app(config, seed=seed)
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    lines = [
        "wizesync sandbox: fake GHL + fake Wizehire (DEVELOPMENT ONLY: its signing key is public)",
        f"  fake GHL        {base}/ghl",
        f"  fake Wizehire   {base}/wizehire",
        f"  control plane   {base}/_sandbox/state   (docs: {base}/docs)",
        f"  webhooks        {webhooks} -> {service_url or '(no service URL)'}",
    ]
    if seed:
        lines.append(f"  seeded location {DEFAULT_LOCATION_ID} (PIT mode: any bearer token)")
        lines.append("  point a development service at it with:")
        # Multi-line values (the PEM key) as a double-quoted .env value with `\n` escapes.
        lines += [
            f"    {key}={value}"
            if "\n" not in value
            else f'    {key}="{value.strip()}"'.replace("\n", "\\n")
            for key, value in service_env(base).items()
        ]
    print("\n".join(lines), file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
