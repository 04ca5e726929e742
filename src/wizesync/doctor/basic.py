"""`wizesync doctor`: each check says what it found, in words an operator can act on."""

from __future__ import annotations

from wizesync.config import Settings

Check = tuple[bool, str, str]


async def run_checks(settings: Settings) -> list[Check]:
    from wizesync.doctor.integrations import ghl_checks, wizehire_check

    results: list[Check] = []
    results.append(_environment(settings))
    database = await _database(settings)
    results.extend(database)
    results.extend(_webhook_keys(settings))
    results.extend(await ghl_checks(settings, database_ok=all(ok for ok, _, _ in database)))
    results.append(await wizehire_check(settings))
    from wizesync.flows.refunds.doctor_checks import refund_gateway_checks

    results.extend(await refund_gateway_checks(settings))
    return results


def _environment(settings: Settings) -> Check:
    if settings.is_production:
        return True, "environment", "production (all required secrets present)"
    return (
        True,
        "environment",
        (f"{settings.wizesync_env}: development secrets and the sandbox GHL key are accepted"),
    )


async def _database(settings: Settings) -> list[Check]:
    from sqlalchemy.engine import make_url

    from wizesync.db import schema_repo
    from wizesync.db.engine import create_engine
    from wizesync.db.migrate import head_revision

    shown = make_url(settings.database_url).render_as_string(hide_password=True)
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            await schema_repo.ping(conn)
            current = await schema_repo.current_revision(conn)
    except Exception as exc:
        return [(False, "database", f"cannot connect to {shown}: {type(exc).__name__}: {exc}")]
    finally:
        await engine.dispose()
    head = head_revision()
    out: list[Check] = [(True, "database", f"connected to {shown}")]
    if current is None:
        out.append((False, "migrations", "the database has no schema yet: run `wizesync migrate`"))
    elif current != head:
        out.append(
            (
                False,
                "migrations",
                f"database at {current}, code expects {head}: run `wizesync migrate`",
            )
        )
    else:
        out.append((True, "migrations", f"at head ({head})"))
    return out


def _webhook_keys(settings: Settings) -> list[Check]:
    from standardwebhooks.webhooks import Webhook

    from wizesync.config import ConfigError
    from wizesync.inbox.signatures import load_ed25519, load_rsa

    out: list[Check] = []
    secrets = settings.wizehire_webhook_secrets
    try:
        for secret in secrets:
            Webhook(secret)
        out.append(
            (
                bool(secrets),
                "wizehire webhook secret",
                f"{len(secrets)} secret(s) usable" if secrets else "none configured",
            )
        )
    except Exception as exc:
        out.append(
            (
                False,
                "wizehire webhook secret",
                f"WIZEHIRE_WEBHOOK_SECRET is not a valid whsec_ secret: {exc}",
            )
        )
    try:
        load_ed25519(settings.ghl_public_key_pem)
        out.append((True, "ghl webhook key", "Ed25519 public key loads"))
    except (ValueError, ConfigError) as exc:
        out.append((False, "ghl webhook key", f"GHL_WEBHOOK_PUBLIC_KEY does not load: {exc}"))
    if settings.ghl_webhook_rsa_public_key:
        try:
            pem = settings.ghl_rsa_public_key_pem
            load_rsa(pem or "")
            out.append((True, "ghl legacy RSA key", "loads; X-WH-Signature is accepted"))
        except (ValueError, ConfigError) as exc:
            out.append(
                (False, "ghl legacy RSA key", f"GHL_WEBHOOK_RSA_PUBLIC_KEY does not load: {exc}")
            )
    return out
