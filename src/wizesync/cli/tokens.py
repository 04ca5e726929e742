"""`wizesync tokens reencrypt`: every stored GHL token rewritten under the newest key.

TOKEN_ENCRYPTION_KEY rotation (docs/SECURITY.md): put the new key first, run this, then drop the
old key once the report says no token uses it. Each row is rewritten in its own transaction with
the row locked, so a token refresh running at the same time never loses its write; the report
counts which key (1 = the newest) each token was under before.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync.cli.common import console, err
from wizesync.config import ConfigError, Settings

tokens_app = typer.Typer(help="GHL tokens at rest", no_args_is_help=True)


@dataclass
class ReencryptReport:
    # key number (1 = newest) -> tokens found under it before the run
    keys_in_use: Counter[int] = field(default_factory=Counter)
    rewritten: int = 0
    unreadable: list[int] = field(default_factory=list)  # installation row ids

    def lines(self, key_count: int) -> list[str]:
        found = sum(self.keys_in_use.values()) + len(self.unreadable)
        out = [f"{found} stored token(s) in {key_count} configured key(s)"]
        for number in range(1, key_count + 1):
            label = " (newest)" if number == 1 else ""
            out.append(f"key #{number}{label}: {self.keys_in_use.get(number, 0)} token(s) before")
        out.append(f"rewritten under key #1: {self.rewritten}")
        if self.unreadable:
            out.append(
                f"no configured key opens the tokens of installation row(s) "
                f"{', '.join(map(str, self.unreadable))}: those locations need a re-install"
            )
        if key_count > 1 and not self.unreadable:
            older = ", ".join(f"#{n}" for n in range(2, key_count + 1))
            out.append(
                f"every token is under key #1 now: key(s) {older} can be removed from "
                "TOKEN_ENCRYPTION_KEY"
            )
        return out


async def reencrypt_all(
    sessionmaker: async_sessionmaker[AsyncSession], cipher: Any
) -> ReencryptReport:
    from wizesync.db import install_repo

    report = ReencryptReport()
    async with sessionmaker() as session:
        row_ids = await install_repo.installation_ids_with_tokens(session)
    for row_id in row_ids:
        async with sessionmaker.begin() as session:
            row = await install_repo.lock_installation_by_id(session, row_id)
            if row is None:
                continue
            ciphertexts = [row.access_token_enc, row.refresh_token_enc]
            numbers = [cipher.key_number(c) if c else None for c in ciphertexts]
            if any(c and n is None for c, n in zip(ciphertexts, numbers, strict=True)):
                report.unreadable.append(row_id)
                continue
            report.keys_in_use.update(n for n in numbers if n is not None)
            if all(n in (None, 1) for n in numbers):
                continue
            rewritten = [
                cipher.reencrypt(c) if c and n != 1 else c
                for c, n in zip(ciphertexts, numbers, strict=True)
            ]
            await install_repo.replace_ciphertexts(session, row_id, *rewritten)
            report.rewritten += sum(1 for n in numbers if n not in (None, 1))
    return report


def _settings() -> Settings:
    from pydantic import ValidationError

    from wizesync.config import load_settings

    try:
        return load_settings()
    except (ValidationError, ConfigError) as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


@tokens_app.command("reencrypt")
def reencrypt() -> None:
    """Rewrite every stored GHL token under the newest TOKEN_ENCRYPTION_KEY key and report which
    keys were in use (exit 1 when some token opens with no configured key)."""
    from wizesync.db.engine import create_engine, create_sessionmaker
    from wizesync.ghl.crypto import TokenCipher

    settings = _settings()
    try:
        cipher = TokenCipher.from_settings(settings)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    key_count = (
        len(settings.token_encryption_key.get_secret_value().split(","))
        if settings.token_encryption_key
        else 1
    )

    async def run() -> ReencryptReport:
        engine = create_engine(settings.database_url)
        try:
            return await reencrypt_all(create_sessionmaker(engine), cipher)
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    for line in report.lines(key_count):
        console.print(line, highlight=False)
    if report.unreadable:
        raise typer.Exit(1)
