"""Personal data at rest (Art. 49): AES-256-GCM field encryption with key ids, and keyed lookup hashes.

An encrypted field is one text token::

    v1:<key id>:<base64url nonce>:<base64url ciphertext and tag>

The key id lets keys rotate: ``FieldCipher`` encrypts with its ``active`` key and decrypts with any key it
knows, so old tokens stay readable after a new key becomes active. Every encryption takes a ``context`` (the
record id and field name, say) that is bound to the ciphertext as AES-GCM associated data: a token copied to
another record or field no longer decrypts.

Encrypted fields cannot be searched, so records are found by ``lookup_hash``: an HMAC-SHA256 under a key
derived (HKDF) from a separate lookup key, which does not change when data keys rotate. Callers normalise
values (upper-case the check character of an ID number, say) before hashing.

A key file holds all of it::

    # sigw field keys
    active=k2
    lookup=<base64 of at least 32 bytes>
    k1=<base64 of 32 bytes>
    k2=<base64 of 32 bytes>

No message raised here contains key material or plaintext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "KEY_BYTES",
    "LOOKUP_HEX_CHARS",
    "MIN_LOOKUP_KEY_BYTES",
    "NONCE_BYTES",
    "TAG_BYTES",
    "VERSION",
    "FieldCipher",
    "generate_key_file",
    "load_keys",
]

VERSION = "v1"
KEY_BYTES = 32
"""AES-256: every data key is 32 bytes."""
MIN_LOOKUP_KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
LOOKUP_HEX_CHARS = 32

_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_RESERVED = frozenset({"active", "lookup"})
_AAD_PREFIX = b"sigw field v1\x00"
_LOOKUP_INFO = b"sigw lookup hash v1"
_AUDIT_INFO = b"sigw audit mac v1"
AUDIT_MAC_HEX_CHARS = 32


class FieldCipher:
    """Encrypts and decrypts personal-data fields; computes lookup hashes. Holds keys: never log it."""

    __slots__ = ("_active", "_aeads", "_audit", "_lookup")

    def __init__(self, keys: Mapping[str, bytes], active: str, *, lookup_key: bytes) -> None:
        if not keys:
            raise ValueError("no data keys given")
        for key_id, key in keys.items():
            _check_key_id(key_id)
            if len(key) != KEY_BYTES:
                raise ValueError(f"data key {key_id!r} must be {KEY_BYTES} bytes")
        if active not in keys:
            raise ValueError(f"the active key {active!r} is not among the data keys")
        if len(lookup_key) < MIN_LOOKUP_KEY_BYTES:
            raise ValueError(f"the lookup key must be at least {MIN_LOOKUP_KEY_BYTES} bytes")
        self._aeads = {key_id: AESGCM(bytes(key)) for key_id, key in keys.items()}
        self._active = active
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_LOOKUP_INFO)
        self._lookup = hkdf.derive(bytes(lookup_key))
        audit = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_AUDIT_INFO)
        self._audit = audit.derive(bytes(lookup_key))

    @classmethod
    def from_key_file(cls, text: str) -> FieldCipher:
        """A cipher with the keys of a key file (see ``load_keys``)."""
        keys, active, lookup_key = load_keys(text)
        return cls(keys, active, lookup_key=lookup_key)

    @property
    def active_key_id(self) -> str:
        return self._active

    def __repr__(self) -> str:
        return f"FieldCipher(key_ids={sorted(self._aeads)!r}, active={self._active!r})"

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """``plaintext`` encrypted with the active key, bound to ``context``; a fresh random nonce every time."""
        data = _utf8(plaintext, "plaintext")
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aeads[self._active].encrypt(nonce, data, _aad(self._active, context))
        return f"{VERSION}:{self._active}:{_b64(nonce)}:{_b64(sealed)}"

    def decrypt(self, token: str, *, context: str) -> str:
        """The plaintext of ``token``; ``ValueError`` if it is malformed, tampered with, encrypted under a key
        this cipher does not know, or bound to another context."""
        parts = token.split(":")
        if len(parts) != 4 or parts[0] != VERSION:
            raise ValueError("not a v1 encrypted field")
        key_id, nonce_text, sealed_text = parts[1:]
        if not _KEY_ID.fullmatch(key_id):
            raise ValueError("malformed key id in encrypted field")
        aead = self._aeads.get(key_id)
        if aead is None:
            raise ValueError(f"encrypted field uses unknown key id {key_id!r}")
        nonce, sealed = _unb64(nonce_text), _unb64(sealed_text)
        if len(nonce) != NONCE_BYTES or len(sealed) < TAG_BYTES:
            raise ValueError("malformed encrypted field")
        try:
            data = aead.decrypt(nonce, sealed, _aad(key_id, context))
        except InvalidTag:
            raise ValueError("encrypted field does not authenticate (tampered, or wrong key or context)") from None
        return data.decode("utf-8")

    def audit_mac(self, text: str) -> str:
        """A MAC of an audit entry's content (32 hex characters), with a key derived from the lookup key: Redis
        never holds it, so an entry appended or rewritten by anyone but a gateway does not verify."""
        return hmac.new(self._audit, _utf8(text, "audit entry"), hashlib.sha256).hexdigest()[:AUDIT_MAC_HEX_CHARS]

    def lookup_hash(self, value: str) -> str:
        """A keyed, stable, non-reversible hash of ``value`` for lookups (32 hex characters).

        Depends on the lookup key only, so it survives data-key rotation.
        """
        digest = hmac.new(self._lookup, _utf8(value, "value"), hashlib.sha256).hexdigest()
        return digest[:LOOKUP_HEX_CHARS]


def load_keys(text: str) -> tuple[dict[str, bytes], str, bytes]:
    """Parse a key file into ``(data keys by id, active key id, lookup key)``.

    Lines are ``active=<id>``, ``lookup=<base64>`` and ``<id>=<base64 of 32 bytes>``; blank lines and
    ``#`` comments are ignored. ``ValueError`` names the offending line by number only: nothing read from the
    file is echoed, in case a key was pasted in the wrong place.
    """
    keys: dict[str, bytes] = {}
    active: str | None = None
    lookup: bytes | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, value = line.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise ValueError(f"key file line {number}: expected name=value")
        if name == "active":
            if active is not None:
                raise ValueError(f"key file line {number}: 'active' given twice")
            _check_key_id(value, where=f"key file line {number}: ")
            active = value
        elif name == "lookup":
            if lookup is not None:
                raise ValueError(f"key file line {number}: 'lookup' given twice")
            lookup = _key_b64(value, number, "the lookup key")
            if len(lookup) < MIN_LOOKUP_KEY_BYTES:
                raise ValueError(
                    f"key file line {number}: the lookup key must be at least {MIN_LOOKUP_KEY_BYTES} bytes"
                )
        else:
            _check_key_id(name, where=f"key file line {number}: ")
            if name in keys:
                raise ValueError(f"key file line {number}: this key id is given twice")
            key = _key_b64(value, number, "the data key")
            if len(key) != KEY_BYTES:
                raise ValueError(f"key file line {number}: a data key must be {KEY_BYTES} bytes, not {len(key)}")
            keys[name] = key
    if not keys:
        raise ValueError("key file has no data keys")
    if active is None:
        raise ValueError("key file has no 'active=<key id>' line")
    if active not in keys:
        raise ValueError("key file: the active key id has no key line")
    if lookup is None:
        raise ValueError("key file has no 'lookup=<base64>' line")
    return keys, active, lookup


def generate_key_file() -> str:
    """The text of a new key file: one random data key ``k1`` (active) and a random lookup key."""
    data_key = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")
    lookup_key = base64.b64encode(secrets.token_bytes(MIN_LOOKUP_KEY_BYTES)).decode("ascii")
    return (
        "# sigw field-encryption keys (personal data at rest). Keep secret; never commit.\n"
        "# To rotate: add k2=<base64 of 32 bytes>, set active=k2, keep k1 until every field is re-encrypted.\n"
        "# Never change the lookup key: lookup hashes of stored records depend on it.\n"
        "active=k1\n"
        f"lookup={lookup_key}\n"
        f"k1={data_key}\n"
    )


def _check_key_id(key_id: str, where: str = "") -> None:
    if not _KEY_ID.fullmatch(key_id) or key_id in _RESERVED:
        raise ValueError(f"{where}a key id is 1 to 32 letters, digits, '_', '.' or '-', and not 'active' or 'lookup'")


def _key_b64(value: str, number: int, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"key file line {number}: {what} is not valid base64") from None


def _aad(key_id: str, context: str) -> bytes:
    if not context:
        raise ValueError("an encryption context is required (the record and field the value belongs to)")
    return _AAD_PREFIX + key_id.encode("ascii") + b"\x00" + _utf8(context, "context")


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # The exception's own message quotes the offending character: never let it out.
        raise ValueError(f"the {what} is not valid Unicode text") from None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("malformed encrypted field")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("malformed encrypted field") from None
    if _b64(data) != text:  # unused trailing bits set: one value, several spellings; accept only the canonical one
        raise ValueError("malformed encrypted field")
    return data
