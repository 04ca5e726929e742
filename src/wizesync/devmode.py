"""Development against the sandbox: the little the product knows of it.

The sandbox (fake GHL, fake Wizehire, fake gateways) is another package, `wizesync_sandbox`,
installed for development only; it imports wizesync, never the reverse. `wizesync dev` (what
`make run` runs) composes the service with it when `plan()` says nothing could talk to GHL
otherwise. What the product itself needs to know is here: that rule (so `doctor`, `trigger` and
the CLI's hints can say what such a service does), where the sandbox is served, the fixed ids it
seeds (the samples name them), and its GHL webhook signing key.

The key is DEVELOPMENT ONLY: its private half is in this repository, so anyone can sign with it.
A service trusts it only beside the configured key while `wizesync dev` runs the sandbox in the
same process, or when an operator configures it outright as `GHL_WEBHOOK_PUBLIC_KEY` (a separate
`wizesync sandbox` process); the production guard refuses it (`is_sandbox_key`), because a forged
UNINSTALL signed with it would drop a location's tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from wizesync.config import DEV_WIZEHIRE_API_URL, Settings

MOUNT_PATH = "/sandbox"  # where `wizesync dev` serves the sandbox on the service
DEFAULT_LOCATION_ID = "SandboxLocation00001"
# The app id its INSTALL/UNINSTALL webhooks name when no OAuth client id is configured.
SANDBOX_APP_ID = "sandbox-app"
# Any token works for the default location (PIT mode); this one is just a readable suggestion.
DEFAULT_PRIVATE_TOKEN = "sandbox-private-integration-token"  # noqa: S105

SANDBOX_GHL_PRIVATE_KEY_PEM = """-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIEHh+jhhjYrCqNxbyJgOk1xs5gSXvq52ptS1omKTUxJm
-----END PRIVATE KEY-----
"""

SANDBOX_GHL_PUBLIC_KEY_PEM = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAgGRoQCYdJmmJCdXbv8YPDp+aGwzgA4GLebQMONqd+GY=
-----END PUBLIC KEY-----
"""


def is_sandbox_key(pem: str) -> bool:
    """Whether `pem` is the sandbox's public key (whitespace aside)."""
    return "".join(pem.split()) == "".join(SANDBOX_GHL_PUBLIC_KEY_PEM.split())


@dataclass(frozen=True)
class DevSandboxPlan:
    wizehire: bool  # Wizehire is unconfigured too: its calls go to the sandbox's fake


def plan(settings: Settings) -> DevSandboxPlan | None:
    """Whether `wizesync dev` runs this configuration against the sandbox, and for what; None =
    never: only in development with no GHL credentials and GHL_API_URL left at GHL's own."""
    if settings.wizesync_env != "development":
        return None
    if settings.ghl_client_id or settings.ghl_private_token is not None:
        return None
    if settings.ghl_api_url != Settings.model_fields["ghl_api_url"].default:
        return None  # pointed somewhere on purpose (e.g. a `wizesync sandbox` process)
    unconfigured_wizehire = (
        settings.wizehire_api_url == DEV_WIZEHIRE_API_URL
        and settings.wizehire_api_key is None
        and not (
            settings.wizehire_token_url
            or settings.wizehire_client_id
            or settings.wizehire_client_secret
        )
    )
    return DevSandboxPlan(wizehire=unconfigured_wizehire)
