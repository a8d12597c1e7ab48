"""Page tokens (AIP-158): opaque, and good only for the request they continue.

A token is the next page's cursor encrypted (AES-GCM, the data key of ``FieldCipher``) with the caller and the
filters as associated data: it cannot be read, forged or edited, and with another caller or other filters it
does not open (``INVALID_ARGUMENT`` ``INVALID_PAGE_TOKEN``). The page size may change between pages. Tokens stay
good across the API processes and restarts, as long as the key file does.
"""

from __future__ import annotations

from gateway.domain.errors import FieldViolation, invalid
from gateway.security.crypto import FieldCipher

__all__ = ["PageTokens"]


class PageTokens:
    def __init__(self, cipher: FieldCipher) -> None:
        self.cipher = cipher

    def issue(self, cursor: str | None, scope: str) -> str:
        """The token of the page after ``cursor`` ("" when there is none) for the request ``scope``."""
        return self.cipher.encrypt(cursor, context=f"page:{scope}") if cursor else ""

    def cursor(self, token: str, scope: str) -> str | None:
        """The cursor ``token`` carries (None for the first page); refused when it is not a token this request's
        scope was given."""
        if not token:
            return None
        try:
            return self.cipher.decrypt(token, context=f"page:{scope}")
        except ValueError:
            raise invalid(
                [FieldViolation("page_token", "not a token from the previous page of this same request")],
                reason="INVALID_PAGE_TOKEN",
            ) from None
