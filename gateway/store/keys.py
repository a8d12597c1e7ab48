"""The Redis key layout, in one place.

Everything about one transfer lives in one shard, and every key of a shard carries the shard's hash tag
(``{s07}``), so the Lua script that commits a transition touches keys of one Redis Cluster slot only. The
shard of a new transfer comes from its idempotency scope, so a retried create lands in the same shard; the
transfer id carries the shard (``T07-…``) so every later call finds it without a lookup.

===============================  ==========  ==============================================================
key                              type        holds
===============================  ==========  ==============================================================
``sigw:{sNN}:tr:<id>``           string      ``<version>|<record>``: the transfer, its timeline and the records
                                             of the step requests that changed it (``codec.stored_to_bytes``)
``sigw:{sNN}:new:<digest>``      string      the record of the request that opened a transfer, by
                                             ``request_digest`` of its scope (expires after 30 days)
``sigw:{sNN}:idx:<region>``      sorted set  transfers leaving or entering a region (``<created ms>:<id>``)
``sigw:{sNN}:counts``            hash        transfers by ``<kind>|<state>`` (for metrics)
``sigw:{sNN}:due``               sorted set  open steps not yet reminded, by due date (``<id>|<step>``)
``sigw:{sNN}:quiet``             sorted set  open steps not yet renotified, by when they fall quiet (ms)
``sigw:{sNN}:outbox``            stream      committed messages waiting to be routed (consumer group ``route``)
``sigw:{q:<agency>}:<lane>``     stream      an agency's lane (``priority``/``ordinary``), group ``dispatch``
``sigw:dlq``                     stream      dead letters: undeliverable messages with their reason
``sigw:{sNN}:audit``             stream      the shard's hash-chained audit trail of every state change
``sigw:{ops}:audit``             stream      the operators' hash-chained audit trail (re-drive, closing a month)
``sigw:rl:<name>``               string      a failure counter with its window (``transfer:<id>``, ``portal:<p>``:
                                             failed status queries)
``sigw:changed:<id>``            channel     pub/sub: a transfer's new version, for its watchers
``sigw:format``                  string      the layout version of this database (``FORMAT``)
===============================  ==========  ==============================================================

Delivery is two stages. The commit script adds a message to its shard's outbox (same slot as the transfer);
the router moves it to the recipient agency's lane stream. Each agency's lanes are read by their own worker, so a
flooded or dead agency holds up no other, and the priority lane is always read first.
"""

from __future__ import annotations

import zlib

from gateway.domain.transfer import model

__all__ = [
    "CONSUMER_GROUP",
    "DEAD_LETTERS",
    "FORMAT",
    "FORMAT_KEY",
    "LANES",
    "OPERATOR_AUDIT",
    "OPERATOR_AUDIT_SEQ",
    "PREFIX",
    "ROUTE_GROUP",
    "agency_lane",
    "audit",
    "audit_seq",
    "changes",
    "clearing",
    "confirmations",
    "counts",
    "created_by",
    "due",
    "failures",
    "filing",
    "hospital_index",
    "message",
    "month_closed",
    "month_settlements",
    "national_file",
    "outbox",
    "person_filings",
    "person_number",
    "quiet",
    "region_filings",
    "region_index",
    "settlement",
    "shard_for",
    "sign_in",
    "stay",
    "transfer",
    "visit",
]

PREFIX = "sigw"
FORMAT_KEY = f"{PREFIX}:format"
FORMAT = "2"
"""The layout version; a gateway refuses a database of another one (see ``gateway.store.client.check_format``)."""
ROUTE_GROUP = "route"
CONSUMER_GROUP = "dispatch"
DEAD_LETTERS = f"{PREFIX}:dlq"
OPERATOR_AUDIT = f"{PREFIX}:{{ops}}:audit"
OPERATOR_AUDIT_SEQ = f"{PREFIX}:{{ops}}:audit:seq"
LANES = model.LANES


def shard_for(scope: str, shards: int) -> int:
    """A stable shard number for an idempotency scope."""
    return zlib.crc32(scope.encode()) % shards


def _tag(shard: int) -> str:
    return f"{PREFIX}:{{s{shard:02d}}}"


def transfer(shard: int, transfer_id: str) -> str:
    return f"{_tag(shard)}:tr:{transfer_id}"


def created_by(shard: int, digest: str) -> str:
    """The record of the request that opened a transfer (``digest``: ``request_digest`` of its scope)."""
    return f"{_tag(shard)}:new:{digest}"


def changes(transfer_id: str) -> str:
    """The pub/sub channel of a transfer's new versions."""
    return f"{PREFIX}:changed:{transfer_id}"


def region_index(shard: int, region: str) -> str:
    return f"{_tag(shard)}:idx:{region}"


def counts(shard: int) -> str:
    return f"{_tag(shard)}:counts"


def outbox(shard: int) -> str:
    return f"{_tag(shard)}:outbox"


def audit(shard: int) -> str:
    return f"{_tag(shard)}:audit"


def audit_seq(shard: int) -> str:
    return f"{_tag(shard)}:audit:seq"


def due(shard: int) -> str:
    return f"{_tag(shard)}:due"


def quiet(shard: int) -> str:
    """Open steps by when they fall quiet (ms): the sweeper sends the notice of one once more."""
    return f"{_tag(shard)}:quiet"


def failures(name: str) -> str:
    """A failure counter (rate limits of applicants' status queries); one key, no slot constraints."""
    return f"{PREFIX}:rl:{name}"


def agency_lane(agency: str, lane: str) -> str:
    """An agency's lane stream; ``agency`` is ``<region>:<agency slug>`` (a portal's: ``portal:<code>``). Both
    lanes share one slot."""
    return f"{PREFIX}:{{q:{agency}}}:{lane}"


# Non-local medical settlement. A settlement, its msgid record and its clearing contribution share the shard
# of its msgid; a person's filings share the shard of the person's keyed hash (never the ID number itself).
#
# ``sigw:{sNN}:st:<settlement id>``      string   ``<version>|<fingerprint>|<JSON>``: the settlement; its id derives
#                                                 from its msgid, so it is also the settle message's record
# ``sigw:{sNN}:msg:<msgid>``             string   what a cancelling (reversing) msgid did: fingerprint, settlement
# ``sigw:{sNN}:visit:<visit id>``        string   the hospital a stay (mdtrt_id) belongs to
# ``sigw:{sNN}:hsp:<hospital code>``     zset     the hospital's settlements by settlement time (reconciliation)
# ``sigw:{sNN}:mon:<YYYY-MM>``           set      settlements of a clearing month (recount)
# ``sigw:{sNN}:clr:<YYYY-MM>``           hash     running clearing totals, ``<insured>|<treating>|<figure>``
# ``sigw:{sNN}:closed:<YYYY-MM>``        string   present once the month is closed
# ``sigw:{sNN}:fl:<filing id>``          string   a filing (JSON)
# ``sigw:{sNN}:pfl:<person key>``        hash     a person's filings: id -> the filing without the ID number
# ``sigw:{sNN}:rfl:<insured region>``    zset     a region's filings by creation time
#
# The national interface (hospitals' HTTP JSON). A stay lives in the shard of its mdtrt_id, which derives from
# the msgid that opened it (so a retried 2201 finds it); its claim key above is in the same shard.
#
# ``sigw:{sNN}:stay:<mdtrt_id>``         string   ``<version>|<sealed JSON>``: the stay, its fee details and the
#                                                 claims of its settlements (``codec.visit_to_bytes``)
# ``sigw:{sNN}:psn:<psn_no>``            string   the person a 1101 answer named (sealed), for 30 days
# ``sigw:{sNN}:sign:<sign_no>``          string   a sign-in (9001): hospital and operator, until 9002 or a day
# ``sigw:{sNN}:cnfm:<hospital>``         hash     the hospital's confirmations of months' clearing details (3261)
# ``sigw:{sNN}:file:<file_qury_no>``     hash     a file uploaded (9101) or made for download (3202): hospital,
#                                                 name, content; kept ``FILE_TTL_S``


def settlement(shard: int, settlement_id: str) -> str:
    return f"{_tag(shard)}:st:{settlement_id}"


def message(shard: int, msgid: str) -> str:
    return f"{_tag(shard)}:msg:{msgid}"


def visit(shard: int, visit_id: str) -> str:
    return f"{_tag(shard)}:visit:{visit_id}"


def hospital_index(shard: int, hospital: str) -> str:
    return f"{_tag(shard)}:hsp:{hospital}"


def month_settlements(shard: int, month: str) -> str:
    return f"{_tag(shard)}:mon:{month}"


def clearing(shard: int, month: str) -> str:
    return f"{_tag(shard)}:clr:{month}"


def month_closed(shard: int, month: str) -> str:
    return f"{_tag(shard)}:closed:{month}"


def stay(shard: int, visit_id: str) -> str:
    return f"{_tag(shard)}:stay:{visit_id}"


def person_number(shard: int, psn_no: str) -> str:
    return f"{_tag(shard)}:psn:{psn_no}"


def sign_in(shard: int, sign_no: str) -> str:
    return f"{_tag(shard)}:sign:{sign_no}"


def confirmations(shard: int, hospital: str) -> str:
    return f"{_tag(shard)}:cnfm:{hospital}"


def national_file(shard: int, file_number: str) -> str:
    return f"{_tag(shard)}:file:{file_number}"


def filing(shard: int, filing_id: str) -> str:
    return f"{_tag(shard)}:fl:{filing_id}"


def person_filings(shard: int, person_key: str) -> str:
    return f"{_tag(shard)}:pfl:{person_key}"


def region_filings(shard: int, region: str) -> str:
    return f"{_tag(shard)}:rfl:{region}"
