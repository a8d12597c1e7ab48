"""The national interface's state in Redis: stays (``sigw:{sNN}:stay:<mdtrt_id>``, written with a version check
by ``stay.lua``), the persons 1101 named, sign-ins, the hospitals' confirmations of clearing details and their
files (9101 / 3202 / 9102). See ``gateway.store.keys`` for the layout."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

import orjson
import redis.asyncio as aioredis

from gateway.app.ports import NationalFile
from gateway.domain import idnumber, ids
from gateway.domain.errors import PermissionDenied
from gateway.domain.settlement.visit import InsuredPerson, Visit
from gateway.security.crypto import FieldCipher
from gateway.store import codec, keys, scripts
from gateway.store.client import redis_errors, text

__all__ = ["PERSON_TTL_S", "SIGN_IN_TTL_S", "VisitStore"]

PERSON_TTL_S = 30 * 86400
"""How long a person named by 1101 is kept for the messages that carry its psn_no."""
SIGN_IN_TTL_S = 86400
"""A sign-in (9001) holds for a day unless signed out before."""


class VisitStore:
    def __init__(self, client: aioredis.Redis, shards: int, cipher: FieldCipher) -> None:
        self.client = client
        self.shards = shards
        self.cipher = cipher
        self._write = scripts.script(client, "stay.lua")

    def visit_id_for(self, msgid: str) -> str:
        """The mdtrt_id a stay opened by ``msgid`` gets (so a retried 2201/2401 finds its stay)."""
        return ids.visit_id(keys.shard_for(msgid, self.shards), msgid)

    def _keys(self, visit_id: str) -> list[str]:
        shard = ids.shard_of(visit_id)
        return [keys.stay(shard, visit_id), keys.visit(shard, visit_id)]

    async def create(self, visit: Visit) -> Visit | None:
        """Write a new stay; the stay already under its id (a retried opening), if there is one."""
        async with redis_errors():
            result = await self._write(
                keys=self._keys(visit.visit_id),
                args=["0", codec.visit_to_bytes(visit, self.cipher), visit.hospital_code],
            )
        outcome = text(result[0])
        if outcome == "EXISTS":
            return codec.visit_from_bytes(cast(bytes, result[1]), self.cipher, visit.visit_id)
        if outcome == "TAKEN":
            raise PermissionDenied(reason="VISIT_OF_ANOTHER_HOSPITAL", message="this mdtrt_id is another hospital's")
        return None

    async def save(self, visit: Visit) -> bool:
        """Write ``visit`` (its version one above the stored one); False when the stay changed meanwhile."""
        async with redis_errors():
            result = await self._write(
                keys=self._keys(visit.visit_id),
                args=[str(visit.version - 1), codec.visit_to_bytes(visit, self.cipher), visit.hospital_code],
            )
        return text(result[0]) == "OK"

    async def load(self, visit_id: str) -> Visit | None:
        shard = ids.shard_of(visit_id)
        if not 0 <= shard < self.shards:
            return None
        async with redis_errors():
            raw = await self.client.get(keys.stay(shard, visit_id))
        return codec.visit_from_bytes(cast(bytes, raw), self.cipher, visit_id) if raw else None

    def _person_key(self, psn_no: str) -> str:
        return keys.person_number(keys.shard_for(psn_no, self.shards), psn_no)

    async def remember_person(self, person: InsuredPerson) -> None:
        async with redis_errors():
            await self.client.set(
                self._person_key(person.person_number), codec.person_to_text(person, self.cipher), ex=PERSON_TTL_S
            )

    async def person(self, psn_no: str) -> InsuredPerson | None:
        async with redis_errors():
            raw = await self.client.get(self._person_key(psn_no))
        return codec.person_from_text(cast(bytes, raw), self.cipher, psn_no) if raw else None

    def _sign_key(self, sign_no: str) -> str:
        return keys.sign_in(keys.shard_for(sign_no, self.shards), sign_no)

    async def sign_in(self, sign_no: str, hospital: str, operator: str, at: datetime) -> None:
        doc = orjson.dumps([hospital, idnumber.scrub(operator), at.isoformat()])
        async with redis_errors():
            await self.client.set(self._sign_key(sign_no), doc, ex=SIGN_IN_TTL_S)

    async def signed_in(self, sign_no: str) -> str | None:
        """The hospital a live sign-in belongs to."""
        async with redis_errors():
            raw = await self.client.get(self._sign_key(sign_no))
        return str(orjson.loads(cast(bytes, raw))[0]) if raw else None

    async def sign_out(self, sign_no: str) -> None:
        async with redis_errors():
            await self.client.delete(self._sign_key(sign_no))

    def _confirm_key(self, hospital: str) -> str:
        return keys.confirmations(keys.shard_for(hospital, self.shards), hospital)

    async def confirm(self, hospital: str, flags: dict[str, str]) -> None:
        """Record the hospital's confirmation flag of each settlement (setl_id -> cnfm_flag)."""
        if flags:
            async with redis_errors():
                await self.client.hset(self._confirm_key(hospital), mapping=flags)  # type: ignore[arg-type]

    async def confirmations(self, hospital: str, settlement_ids: list[str]) -> dict[str, str]:
        if not settlement_ids:
            return {}
        async with redis_errors():
            found = await self.client.hmget(self._confirm_key(hospital), settlement_ids)
        return {sid: text(flag) for sid, flag in zip(settlement_ids, found, strict=True) if flag is not None}

    def _file_key(self, file_number: str) -> str:
        return keys.national_file(keys.shard_for(file_number, self.shards), file_number)

    async def put_file(self, file: NationalFile, kept: timedelta) -> None:
        """Keep ``file`` for ``kept`` (files hold psn_no and amounts, never an ID number or a name); Redis's
        own clock counts it down."""
        key = self._file_key(file.file_number)
        mapping = {
            "hospital": file.hospital_code, "name": file.name, "expires": file.expires.isoformat(),
            "content": file.content,
        }  # fmt: skip
        async with redis_errors(), self.client.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
            pipe.expire(key, kept)
            await pipe.execute()

    async def file(self, file_number: str) -> NationalFile | None:
        async with redis_errors():
            found = await self.client.hmget(self._file_key(file_number), ["hospital", "name", "expires", "content"])
        hospital, name, expires, content = found
        if hospital is None or name is None or expires is None or content is None:
            return None
        return NationalFile(
            file_number, text(hospital), text(name), cast(bytes, content), datetime.fromisoformat(text(expires))
        )
