"""The gateway's identifiers, in one place: their shapes, how they are made, and the shard they name.

=========================  ==============================  ================================================
id                         shape                           made from
=========================  ==============================  ================================================
transfer                   ``T05-20260302-8F3A2C1D``       shard, the Shanghai date, 4 random bytes
settlement (``setl_id``)   ``S05-1a2b3c4d5e6f7a8b``        shard and a digest of the msgid (so a retried
                                                           settlement gets the same id at the gateway and the
                                                           agency)
filing                     ``F05-20260302-8F3A2C1D``       shard, the Shanghai date, 4 random bytes
national msgid (报文ID)    ``H44030000001202603020830``    the hospital: institution code (12) +
                           ``0001``                        ``yyyyMMddHHmmss`` + 4-digit sequence
=========================  ==============================  ================================================

The two digits after the letter are the Redis shard the object lives in (see ``gateway.store.keys``), so every
later call finds it without a lookup; :func:`shard_of` is the one parser of them.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import datetime

from gateway.domain.calendar import SHANGHAI

__all__ = [
    "FILING_ID",
    "HOSPITAL_CODE",
    "SETTLEMENT_ID",
    "TRANSACTION",
    "TRANSFER_ID",
    "VISIT_ID",
    "msgid_time",
    "new_filing_id",
    "new_message_id",
    "new_transfer_id",
    "scoped_msgid",
    "settlement_id",
    "shard_of",
    "unscoped_msgid",
    "visit_id",
]

TRANSFER_ID = re.compile(r"T[0-9]{2}-[0-9]{8}-[0-9A-F]{8}")
SETTLEMENT_ID = re.compile(r"S[0-9]{2}-[0-9a-f]{16}")
VISIT_ID = re.compile(r"M[0-9]{2}-[0-9a-f]{16}")
FILING_ID = re.compile(r"F[0-9]{2}-[0-9]{8}-[0-9A-F]{8}")
HOSPITAL_CODE = re.compile(r"[A-Z][0-9A-Z]{11}")
"""定点医药机构编号 (fixmedins_code), e.g. ``H44030000001``."""
TRANSACTION = re.compile(r"[0-9A-Za-z]{1,10}")
"""A national transaction number (infno), e.g. ``2207``."""
_MSGID = re.compile(r"([A-Z][0-9A-Z]{11})([0-9]{14})([0-9]{4})")


def shard_of(identifier: str) -> int:
    """The shard a transfer, settlement or filing id names (``T07-…`` is shard 7); -1 if it names none."""
    if len(identifier) > 4 and identifier[0] in "TSFM" and identifier[1:3].isdigit() and identifier[3] == "-":
        return int(identifier[1:3])
    return -1


def _dated(letter: str, shard: int, now: datetime) -> str:
    return f"{letter}{shard:02d}-{now.astimezone(SHANGHAI):%Y%m%d}-{secrets.token_hex(4).upper()}"


def new_transfer_id(shard: int, now: datetime) -> str:
    return _dated("T", shard, now)


def new_filing_id(shard: int, now: datetime) -> str:
    return _dated("F", shard, now)


def settlement_id(shard: int, msgid: str) -> str:
    """Deterministic from the msgid: a retried settlement gets the same id at the gateway and the agency."""
    return f"S{shard:02d}-{hashlib.sha256(msgid.encode()).hexdigest()[:16]}"


def visit_id(shard: int, msgid: str) -> str:
    """A stay's id (mdtrt_id) from the scoped msgid of the message that opened it: ``M03-1a2b3c4d5e6f7a8b``."""
    return f"M{shard:02d}-{hashlib.sha256(msgid.encode()).hexdigest()[:16]}"


def scoped_msgid(hospital_code: str, msgid: str) -> str:
    """A national msgid as sigw keys it: as sent when it starts with the hospital's code (the national shape),
    else prefixed with it, so two hospitals' msgids of other shapes never collide."""
    return msgid if msgid.startswith(hospital_code) else f"{hospital_code}-{msgid}"


def new_message_id() -> str:
    """A random id for a message (or a request the CLI makes): a UUID in its hyphenated form, whose groups of at
    most 12 characters never run into 18 digits, so it is never refused as holding an ID number, nor masked."""
    return str(uuid.uuid4())


def unscoped_msgid(hospital_code: str, scoped: str) -> str:
    """The msgid as the hospital sent it (the inverse of :func:`scoped_msgid`)."""
    return scoped.removeprefix(f"{hospital_code}-")


def msgid_time(msgid: str) -> datetime | None:
    """The time a national msgid names (Asia/Shanghai), or None when it is not one (or names a year outside
    2000-2100)."""
    match = _MSGID.fullmatch(msgid)
    if not match:
        return None
    try:
        when = datetime.strptime(match.group(2), "%Y%m%d%H%M%S").replace(tzinfo=SHANGHAI)
    except ValueError:
        return None
    return when if 2000 <= when.year <= 2100 else None
