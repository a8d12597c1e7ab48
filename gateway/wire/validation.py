"""Request validation for every servicer: field violations collected and raised together (every bad field at
once), and AIP-155's payload fingerprint."""

from __future__ import annotations

import hashlib
import re
from datetime import date

from google.protobuf.message import Message

from gateway._gen.sigw.v1 import common_pb2
from gateway.domain import idnumber, ids
from gateway.domain.errors import FieldViolation, invalid
from gateway.domain.money import MAX_AMOUNT_FEN

__all__ = ["MAX_NAME", "MAX_NOTE", "Violations", "fingerprint", "valid_stream_id"]

MAX_NOTE = 500
MAX_NAME = 64
_REQUEST_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
_REGION = re.compile(r"[0-9]{6}")
_STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
_UINT64 = 2**64 - 1


def valid_stream_id(text: str) -> bool:
    """A Redis stream entry id ``<ms>-<seq>``, each part within 64 bits, and not the largest possible id."""
    match = _STREAM_ID.fullmatch(text)
    if match is None:
        return False
    return all(int(part) <= _UINT64 for part in match.groups()) and text != f"{_UINT64}-{_UINT64}"


def fingerprint(request: Message, *id_path: str) -> str:
    """The payload of a request without its idempotency key (``request_id``, or the field at ``id_path``), as a
    digest (128 bits of SHA-256, 32 hex digits): AIP-155's same-payload comparison."""
    copy = type(request)()
    copy.CopyFrom(request)
    *parents, name = id_path or ("request_id",)
    holder = copy
    for parent in parents:
        holder = getattr(holder, parent)
    holder.ClearField(name)
    payload = type(request).__name__.encode() + copy.SerializeToString(deterministic=True)
    return hashlib.sha256(payload).hexdigest()[:32]


class Violations:
    """Collects field violations and raises them together."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def text(self, field: str, value: str, *, limit: int, required: bool = False) -> None:
        if required and not value.strip():
            self.add(field, "required")
        elif len(value) > limit:
            self.add(field, f"at most {limit} characters")

    def identifier(self, field: str, value: str) -> None:
        """An identifier is kept in the clear (and in key names): it must not hold an ID number."""
        if idnumber.contains(value):
            self.add(field, "must not contain an ID number (identifiers are kept in the clear)")

    def request_id(self, value: str) -> None:
        if not _REQUEST_ID.fullmatch(value):
            self.add("request_id", "required: 1-64 characters of A-Z a-z 0-9 _ . : -")
        else:
            self.identifier("request_id", value)

    def transfer_id(self, value: str, field: str = "transfer_id") -> None:
        if not ids.TRANSFER_ID.fullmatch(value):
            self.add(field, "not a transfer id (like T03-20260302-8F3A2C1D)")

    def region(self, field: str, value: str) -> None:
        if not _REGION.fullmatch(value):
            self.add(field, "must be a 6-digit region code")

    def amount(self, field: str, value: int) -> None:
        if value < 0:
            self.add(field, "must not be negative")
        elif value > MAX_AMOUNT_FEN:
            self.add(field, f"more than {MAX_AMOUNT_FEN} fen is not a plausible amount")

    def date(self, field: str, d: common_pb2.Date, *, required: bool = True) -> date | None:
        """A calendar date; None (with a violation when required) when unset."""
        if not (d.year or d.month or d.day):
            if required:
                self.add(field, "required")
            return None
        if not 1900 <= d.year <= 2100:
            self.add(field, "year must be 1900-2100")
            return None
        try:
            return date(d.year, d.month, d.day)
        except ValueError:
            self.add(field, "not a real date")
            return None

    def raise_if_any(self, reason: str = "INVALID_ARGUMENT") -> None:
        if self.items:
            raise invalid(self.items, reason=reason)
