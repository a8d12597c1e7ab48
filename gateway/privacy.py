"""Keyed hashes of personal identifiers, so lookups by ID number never put the number itself in a key."""

from __future__ import annotations

import hashlib
import hmac

# Development default; deployments set SIGW_LOOKUP_KEY (issue: personal data at rest).
DEV_LOOKUP_KEY = b"sigw-development-lookup-key"


class PersonKeys:
    def __init__(self, secret: bytes = DEV_LOOKUP_KEY) -> None:
        self._secret = secret

    def of(self, id_number: str) -> str:
        """A stable, keyed, non-reversible key for a person (32 hex characters)."""
        return hmac.new(self._secret, id_number.encode(), hashlib.sha256).hexdigest()[:32]
