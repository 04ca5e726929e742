"""Tokens at rest: Fernet ciphertext under TOKEN_ENCRYPTION_KEY, with key rotation.

TOKEN_ENCRYPTION_KEY holds one or more Fernet keys, comma-separated, newest first. Every write
encrypts with the newest; reads try each key, so after adding a key in front, rows move to it on
their next write (a refresh, a re-install) and the old key can go once none uses it.
"""

from __future__ import annotations

import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

# DEV_TOKEN_KEY: development only, recognisable by its derivation; production requires
# TOKEN_ENCRYPTION_KEY in OAuth mode and refuses this one (Settings.production_problems).
from wizesync.config import DEV_TOKEN_KEY, ConfigError, Settings

log = logging.getLogger(__name__)


class TokenDecryptError(Exception):
    """Stored ciphertext no configured key can open (a key was removed too early)."""


class TokenCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ConfigError("TOKEN_ENCRYPTION_KEY is empty")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode()))
            except ValueError:
                # Never echo the key: say which one is wrong.
                raise ConfigError(
                    f"TOKEN_ENCRYPTION_KEY: key #{position} is not a Fernet key "
                    "(32 url-safe base64-encoded bytes; make one with "
                    "`python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'`)"
                ) from None
        self._newest = fernets[0]
        self._each = fernets
        self._all = MultiFernet(fernets)

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenCipher:
        if settings.token_encryption_key is None:
            if settings.is_production:
                raise ConfigError("TOKEN_ENCRYPTION_KEY is required to store GHL tokens")
            log.warning(
                "TOKEN_ENCRYPTION_KEY is not set: GHL tokens are encrypted with the "
                "DEVELOPMENT key; set a real key before storing real tokens"
            )
            return cls([DEV_TOKEN_KEY])
        raw = settings.token_encryption_key.get_secret_value()
        return cls([part.strip() for part in raw.split(",") if part.strip()])

    def encrypt(self, plaintext: str) -> str:
        return self._newest.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._all.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise TokenDecryptError(
                "a stored GHL token cannot be decrypted with any TOKEN_ENCRYPTION_KEY key "
                "(was the key it was written with removed?)"
            ) from None

    def key_number(self, ciphertext: str) -> int | None:
        """Which configured key (1 = the newest) opens `ciphertext`; None when none does."""
        for number, fernet in enumerate(self._each, start=1):
            try:
                fernet.decrypt(ciphertext.encode())
            except InvalidToken:
                continue
            return number
        return None

    def reencrypt(self, ciphertext: str) -> str:
        """The same plaintext under the newest key (Fernet's own rotation: its timestamp kept)."""
        try:
            return self._all.rotate(ciphertext.encode()).decode()
        except InvalidToken:
            raise TokenDecryptError(
                "a stored GHL token cannot be decrypted with any TOKEN_ENCRYPTION_KEY key"
            ) from None

    def is_current(self, ciphertext: str) -> bool:
        """True when the newest key wrote it (nothing to re-encrypt)."""
        try:
            self._newest.decrypt(ciphertext.encode())
        except InvalidToken:
            return False
        return True
