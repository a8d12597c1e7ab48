"""Transfers in every state an applicant can find theirs in, driven through the gateway's real gRPC API by the
agencies' own calls (the simulated agencies stay passive): for the portal's integration and browser tests."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from adapters.portal.server import PortalServer
from gateway._gen.sigw.v1 import common_pb2, transfer_pb2
from tests.conftest import Demo, as_
from tests.helpers import person_id

S = transfer_pb2
TARGET = as_("agency:310000:hrss")
SOURCE = as_("agency:110000:hrss")
WOMAN_55 = "110105197005100022"
"""Aged 50+ in 2026 and moving across provinces with her hukou at the source: a temporary account (66号 Art. 5)."""
MOBILE, EMPLOYER_MOBILE = "13812345678", "13987654321"
EMPLOYER = "上海某某科技有限公司"

STATES = ("submitted", "contact_sent", "funds_sent", "completed", "rejected", "cancelled", "temporary_account")


def kept(portal: PortalServer) -> int:
    """Notices in the portal's file, read as another process would."""
    with sqlite3.connect(portal.settings.data_dir / "notices.sqlite3") as db:
        return int(db.execute("SELECT count(*) FROM notices").fetchone()[0])


@dataclass(frozen=True)
class Case:
    transfer_id: str
    id_number: str


def creation(state: str, sequence: int, portal: str = "") -> S.CreateTransferRequest:
    """The request that opens ``transfer_in``'s transfer."""
    temporary = state == "temporary_account"
    return S.CreateTransferRequest(
        request_id=f"portal-{state}-{sequence}",
        kind=S.TRANSFER_KIND_EMPLOYEE_PENSION if temporary else S.TRANSFER_KIND_UNEMPLOYMENT,
        source_region="110000",
        target_region="310000",
        person=common_pb2.Person(id_number=WOMAN_55 if temporary else person_id(sequence), name="王小明"),
        circumstances=S.Circumstances(hukou_region="110000") if temporary else None,
        contact=S.ApplicantContact(
            mobile=MOBILE, employer_name=EMPLOYER, employer_mobile=EMPLOYER_MOBILE, portal=portal
        ),
    )


async def transfer_in(demo: Demo, state: str, sequence: int, portal: str = "") -> Case:
    """A transfer Beijing -> Shanghai brought to ``state`` (one of ``STATES``), with a contact and an employer
    (told through ``portal``: default the registry's first)."""
    temporary = state == "temporary_account"
    request = creation(state, sequence, portal)
    t = (await demo.transfers.CreateTransfer(request, metadata=TARGET)).transfer
    tid = t.transfer_id
    case = Case(tid, request.person.id_number)
    if temporary:
        await demo.transfers.OpenTemporaryAccount(
            S.OpenTemporaryAccountRequest(request_id="ta", transfer_id=tid, account_number="LS-1"), metadata=TARGET
        )
        return case
    if state == "submitted":
        return case
    if state == "cancelled":
        await demo.transfers.CancelTransfer(
            S.CancelTransferRequest(request_id="c", transfer_id=tid, reason="本人撤回申请"), metadata=TARGET
        )
        return case
    await demo.transfers.SendContactLetter(
        S.SendContactLetterRequest(request_id="l", transfer_id=tid, letter_number="LXH-1"), metadata=TARGET
    )
    if state == "contact_sent":
        return case
    info = S.TransferInfo(table_number="XB-1", contribution_months=24)
    await demo.transfers.SendTransferInfo(
        S.SendTransferInfoRequest(request_id="i", transfer_id=tid, info=info), metadata=SOURCE
    )
    if state == "funds_sent":
        return case
    if state == "rejected":
        await demo.transfers.RejectTransfer(
            S.RejectTransferRequest(request_id="r", transfer_id=tid, reason="缴费记录与信息表不一致"), metadata=TARGET
        )
        return case
    await demo.transfers.CompleteTransfer(S.CompleteTransferRequest(request_id="d", transfer_id=tid), metadata=TARGET)
    return case
