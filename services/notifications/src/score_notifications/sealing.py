"""Webhook secrets encrypted at rest: a dump of the database alone does not reveal them.

Each secret is sealed with Fernet (AES-128-CBC and HMAC-SHA256, from `cryptography`) under a
key derived from `SCORE_NOTIFICATIONS_SECRET_KEY`; the key lives with the service's settings,
never in its database. A secret is opened only to sign a webhook, in memory.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

MINIMUM_KEY_LENGTH = 32
_CONTEXT = b"score-notifications/webhook-secrets/v1"


class SecretsUnreadable(Exception):
    """A sealed secret could not be opened: the key has changed, or the row was altered."""


class Sealer:
    def __init__(self, key: str) -> None:
        if len(key) < MINIMUM_KEY_LENGTH:
            raise ValueError(
                f"the notifications secret key must be at least {MINIMUM_KEY_LENGTH} characters"
            )
        # Any long enough text will do as the setting; Fernet wants 32 bytes, in base64.
        derived = hashlib.sha256(_CONTEXT + b"\x00" + key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except InvalidToken:
            raise SecretsUnreadable("a webhook secret cannot be opened with this key") from None
