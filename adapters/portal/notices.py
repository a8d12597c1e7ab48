"""The notices a portal received (``NotifyService``), kept durably in SQLite so a repeat of a message id is taken
once and the status page can show them. The mobile number is kept masked: in production the portal would hand
the full one to its SMS sender and forget it (out of scope here)."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway._gen.sigw.v1 import portal_pb2
from gateway.domain import mobile

__all__ = ["NoticeBook", "ReceivedNotice"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notices (
    message_id    TEXT PRIMARY KEY,
    transfer_id   TEXT NOT NULL,
    addressee     INTEGER NOT NULL,
    mobile_masked TEXT NOT NULL,
    employer_name TEXT NOT NULL,
    text          TEXT NOT NULL,
    sent_us       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS notices_by_transfer ON notices (transfer_id, sent_us);
"""


_OF_TRANSFER = "SELECT * FROM notices WHERE transfer_id = ? ORDER BY sent_us, addressee, message_id"


@dataclass(frozen=True)
class ReceivedNotice:
    message_id: str
    transfer_id: str
    addressee: int
    """``portal_pb2.Addressee``: the person or the employer."""
    mobile_masked: str
    employer_name: str
    text: str
    time: datetime


class NoticeBook:
    """One SQLite file; every write commits before the gateway is told the notice was taken."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = asyncio.Lock()

    async def take(self, message_id: str, notice: portal_pb2.ResultNotice) -> bool:
        """Keep a notice; False when this message id was taken before (a repeat delivery)."""
        row = (
            message_id,
            notice.transfer_id,
            int(notice.addressee),
            mobile.mask(notice.mobile) if notice.mobile else "",
            notice.employer_name,
            notice.text,
            notice.time.seconds * 1_000_000 + notice.time.nanos // 1000,
        )
        async with self._lock:
            cursor = await asyncio.to_thread(
                self._db.execute, "INSERT OR IGNORE INTO notices VALUES (?, ?, ?, ?, ?, ?, ?)", row
            )
        return cursor.rowcount == 1

    async def of_transfer(self, transfer_id: str) -> list[ReceivedNotice]:
        async with self._lock:
            rows = await asyncio.to_thread(lambda: self._db.execute(_OF_TRANSFER, (transfer_id,)).fetchall())
        return [
            ReceivedNotice(mid, tid, who, masked, employer, text, datetime.fromtimestamp(us / 1e6, UTC))
            for mid, tid, who, masked, employer, text, us in rows
        ]

    def close(self) -> None:
        self._db.close()
