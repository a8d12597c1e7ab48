"""The conformance kit for a region's agency system: what ``RegionAgencyService`` must answer for the gateway to
work with it (``sigw agency-check``).

:data:`CASES` is a plain list of :class:`Case`; each names what it sends and what it expects, and :func:`check`
runs them against one agency and returns a :class:`Result` per case. The kit plays the gateway, and only the
gateway: it builds every request the way the gateway does, and sends it the way the gateway does:

* notices: transfers made up and moved through the gateway's own state machine (``gateway.domain.transfer``),
  their notices encoded by the gateway's ``NoticeEncoding`` (with a trace context, as a tracing gateway sends)
  and delivered by the gateway's agency client (``AgencyClients.deliver``/``deliver_batch``: the same channel
  options, the same mutual TLS that expects the agency's participant name);
* settlements: bills validated by the gateway's ``bill_from``, sent by ``AgencyClients.compute_settlement`` /
  ``refund_settlement``; person information and contribution periods by ``person_info`` /
  ``contribution_periods``, so their answers are read as the gateway reads them;
* malformed requests: a request built as above, then broken in exactly one field.

What the gateway relies on, and so what the cases expect:

* **Delivery.** ``OK`` once a message is durably taken, with ``duplicate=true`` when its ``message_id`` was
  taken before (the gateway delivers at least once: a crash between delivery and acknowledgement, or a message
  routed twice, sends the same id again, also by ``DeliverBatch`` after ``Deliver``, also twice in one batch).
  A notice sent again by the sweeper has a *new* id and is answered ``duplicate=false``.
* **Order.** One gateway process delivers a transfer's messages in commit order, but across processes order is
  not guaranteed (``gateway.dispatch.dispatcher``), so every notice carries the whole transfer and its state: a
  later notice arriving first, or an earlier one arriving after a later one, is taken (``OK``), never refused
  (a refusal sends it to the dead letters) and never held back with ``UNAVAILABLE`` (which the gateway retries
  and counts against the agency's circuit). The kit's transfers are made up, so the agency also takes notices
  about transfers it has no record of (a source agency first hears of a transfer from its contact letter).
* **Batches.** ``DeliverBatch`` answers one result per message, in order, each as ``Deliver`` would: a bad
  message gets its own refusal; failing the whole call with a permanent code would send every message of the
  batch to the dead letters. ``UNIMPLEMENTED`` for the whole call is allowed (the gateway then delivers one by
  one): the batch cases pass with a note.
* **Refusals.** A request the agency cannot apply (a field missing, an enum value it does not know, a message or
  bill for another agency or region) is refused with ``INVALID_ARGUMENT`` or ``FAILED_PRECONDITION``: the
  gateway dead-letters such a message at once and passes a settlement refusal on to the hospital. ``UNKNOWN``
  or ``INTERNAL`` (an unhandled exception) mean the same to the dispatcher but are a defect; to the settlement
  path anything but those two codes means "unavailable, retry", so a crash on a bad bill has the hospital
  retrying a bill that can never settle.
* **Settlement.** A split adds up to the bill (fund + account + cash = total, none negative), else the gateway
  answers ``AGENCY_ANSWER_INCONSISTENT``; a pre-settlement records nothing; a commit is deduplicated on the
  bill's msgid (a repeat answers the first split, however the books moved since, and changes nothing); a refund
  restores the books once and answers ``duplicate=true`` to its repeat; unfiled care is settled or refused with
  ``FAILED_PRECONDITION``.

What the kit does not check: an agency acts on a notice by calling the gateway's ``TransferService`` back
(``SendContactLetter``, ``SendTransferInfo``...); the kit has no gateway, so it checks the ``Deliver`` answers
only, never those calls. Run the agency so that its call-backs go nowhere harmful (the simulated agency:
``act=False``).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

import grpc

from adapters.agency_client import AgencyClients, failure
from gateway._gen.sigw.v1 import agency_pb2, common_pb2, settlement_pb2
from gateway.app.ports import AgencyCallFailed
from gateway.domain import idnumber, ids
from gateway.domain.calendar import SHANGHAI, WorkingDayCalendar
from gateway.domain.participants import AgencyKey, AgencyType, Participant, Role
from gateway.domain.regions import Region, Registry
from gateway.domain.settlement.records import Bill, CredentialType, Figures, SettlementRecord
from gateway.domain.settlement.split import FilingStatus
from gateway.domain.transfer import machine
from gateway.domain.transfer.kinds import EMPLOYEE_FUND_KINDS
from gateway.domain.transfer.model import (
    MILITARY_AREA,
    Application,
    Circumstances,
    Decision,
    Kind,
    MilitaryService,
    NoticeType,
    TransferInfo,
)
from gateway.domain.transfer.pension import ContributionYear, compute_funds
from gateway.domain.transfer.relationship import province
from gateway.wire import settlements as wire
from gateway.wire.transfers import NoticeEncoding, period_from

__all__ = ["CASES", "Case", "Kit", "Mismatch", "Result", "Target", "cases_for", "check", "parse_agency"]

HRSS = frozenset({AgencyType.HRSS})
HEALTHCARE = frozenset({AgencyType.HEALTHCARE_SECURITY})
BOTH = HRSS | HEALTHCARE

REFUSED = ("INVALID_ARGUMENT", "FAILED_PRECONDITION")
"""How an agency refuses what it cannot apply: the gateway dead-letters the message, or passes the refusal on."""
TRANSIENT = ("UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED")

_CANDIDATE_REGIONS = ("110000", "310000", "440300", "510100", "420100", "610100")
"""Other regions the kit's transfers and bills come from (the first ones in other provinces than the agency's)."""


class Mismatch(Exception):
    """The agency answered otherwise than the case expects."""


class NotApplicable(Exception):
    """The agency may leave this out (``DeliverBatch`` answered ``UNIMPLEMENTED``): the case passes with a note."""


@dataclass(frozen=True)
class Target:
    """The agency under test."""

    address: str
    agency: AgencyKey
    credentials: grpc.ChannelCredentials | None = None
    """The gateway's own certificate (``TlsFolder.channel_credentials()``); None: plain text."""
    timeout_s: float = 5.0
    """Each call's deadline (the gateway's per-attempt default)."""
    id_number: str = ""
    """A person insured at the agency, for settlements, person information and contribution periods; empty: a
    made-up one (the simulated agency insures everyone)."""
    name: str = "测试参保人"


@dataclass(frozen=True)
class Answer:
    """What the agency answered one message or call: ``OK`` (with its duplicate flag) or a status code."""

    code: str
    duplicate: bool = False
    detail: str = ""

    @classmethod
    def of(cls, outcome: bool | AgencyCallFailed) -> Answer:
        if isinstance(outcome, AgencyCallFailed):
            return cls(outcome.code, detail=outcome.detail)
        return cls("OK", duplicate=outcome)

    def __str__(self) -> str:
        if self.code == "OK":
            return "OK duplicate=true" if self.duplicate else "OK duplicate=false"
        return f"{self.code} ({self.detail})" if self.detail else self.code


@dataclass(frozen=True)
class Message:
    """One encoded ``DeliverRequest``, as the gateway stores and sends it."""

    type: NoticeType
    message_id: str
    body: bytes

    def request(self) -> agency_pb2.DeliverRequest:
        return agency_pb2.DeliverRequest.FromString(self.body)

    def label(self) -> str:
        return self.type.name.lower().replace("_", "-")


def _fresh(prefix: str = "") -> str:
    return f"{prefix}{secrets.token_hex(4).upper()}"


def _traceparent() -> str:
    """A W3C trace context, as a tracing gateway puts on every message."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


class Kit:
    """The gateway's side of every case: its agency client, its notice encoding, its state machine."""

    def __init__(self, target: Target, now: datetime | None = None) -> None:
        self.target = target
        self.me = target.agency
        self.now = now or datetime.now(SHANGHAI)
        self.today = self.now.date()
        others = [r for r in _CANDIDATE_REGIONS if province(r) != province(self.me.region)]
        self.other, self.third = others[0], others[1]
        regions = {
            self.me.region: Region(self.me.region, self.me.region, {self.me.agency_type: target.address}),
            self.other: Region(self.other, self.other, {}),
            self.third: Region(self.third, self.third, {}),
        }
        self.registry = Registry(regions)
        self.clients = AgencyClients(self.registry, target.credentials)
        self.encode = NoticeEncoding(self.registry)
        self.policy = machine.Policy(calendar=WorkingDayCalendar(), known_regions=self.registry.codes)
        self._hospital = f"H{self.other}{_fresh()[:5]}"
        self._msgids = iter(range(10_000))
        self.person = target.id_number or idnumber.make_id_number(
            self.me.region, date(1980, 1 + secrets.randbelow(12), 1 + secrets.randbelow(28)), 1 + secrets.randbelow(998)
        )

    async def close(self) -> None:
        await self.clients.close()

    # ------------------------------------------------------------------------------------------ transfers

    def agency(self, region: str) -> AgencyKey:
        return AgencyKey(region, self.me.agency_type)

    def actor(self, region: str) -> Participant:
        return Participant.agency_of(self.agency(region))

    @property
    def kind(self) -> Kind:
        return Kind.EMPLOYEE_PENSION if self.me.agency_type is AgencyType.HRSS else Kind.EMPLOYEE_MEDICAL

    def _id_number(self, *, age: int = 30, male: bool = False) -> str:
        born = date(self.today.year - age, 1 + secrets.randbelow(12), 1 + secrets.randbelow(28))
        sequence = 2 * (1 + secrets.randbelow(400)) + (1 if male else 0)
        return idnumber.make_id_number(self.other, born, sequence)

    def application(
        self, source: str, target: str, *, kind: Kind | None = None, temporary: bool = False, **changes: Any
    ) -> Application:
        """An application as the target agency registers it; ``temporary``: a man of 55 moving across provinces
        away from his hukou, so the target opens a temporary account (66号 Art. 5)."""
        person = self._id_number(age=55, male=True) if temporary else self._id_number()
        return Application(
            kind=kind or self.kind,
            id_number=person,
            name="测试转移人",
            source_region=source,
            target_region=target,
            circumstances=Circumstances(hukou_region=source if temporary else ""),
            **changes,
        )

    def info(self, kind: Kind) -> TransferInfo:
        """The table and funds a source agency sends that the gateway accepts."""
        table = _fresh("XX")
        if kind in EMPLOYEE_FUND_KINDS:
            years = (
                ContributionYear(self.today.year - 2, 1, 12, 600_000, 576_000, 0),
                ContributionYear(self.today.year - 1, 1, 12, 630_000, 604_800, 23_000),
            )
            balance = sum((y.account_credit_fen or 0) + (y.interest_fen or 0) for y in years)
            pooled = compute_funds(years, balance).pooled_fund_fen
            return TransferInfo(
                table_number=table,
                individual_account_fen=balance,
                pooled_fund_fen=pooled,
                contributions=years,
                funds_fen=balance + pooled,
            )
        return TransferInfo(table_number=table, individual_account_fen=312_000, funds_fen=312_000)

    def messages(self, decisions: Iterable[Decision]) -> list[Message]:
        """The messages the gateway commits for these decisions to the agency under test, each with a new message
        id and encoded as ``TransferService`` encodes them."""
        out = []
        for decision in decisions:
            today = decision.event.time.astimezone(SHANGHAI).date()
            for notice in decision.notices:
                if notice.recipient == self.me:
                    message_id = ids.new_message_id()
                    body = self.encode(message_id, decision.transfer, notice, today, _traceparent())
                    out.append(Message(notice.type, message_id, body))
        return out

    def opened(self, app: Application, at: datetime | None = None) -> Decision:
        actor = Participant(Role.MILITARY, code="KIT") if app.military else self.actor(app.target_region)
        return machine.open_transfer(app, ids.new_transfer_id(0, at or self.now), actor, at or self.now, self.policy)

    def moved(self, source: str, target: str) -> list[Decision]:
        """A transfer from ``source`` to ``target`` through every step: registered, contact letter, table and
        funds, completed."""
        opened = self.opened(self.application(source, target))
        letter = machine.send_contact_letter(
            opened.transfer, self.actor(target), self.now, self.policy, letter_number=_fresh("LXH-")
        )
        sent = machine.send_transfer_info(
            letter.transfer, self.actor(source), self.now, self.policy, info=self.info(self.kind)
        )
        done = machine.complete(sent.transfer, self.actor(target), self.now)
        return [opened, letter, sent, done]

    def closed(self, source: str, target: str, *, by: str) -> list[Decision]:
        """Registered, contact letter sent, then rejected by the source or cancelled by the target (``by``)."""
        opened = self.opened(self.application(source, target))
        letter = machine.send_contact_letter(
            opened.transfer, self.actor(target), self.now, self.policy, letter_number=_fresh("LXH-")
        )
        if by == source:
            end = machine.reject(letter.transfer, self.actor(source), self.now, reason="no contribution record here")
        else:
            end = machine.cancel(letter.transfer, self.actor(target), self.now, reason="the applicant withdrew")
        return [opened, letter, end]

    def overdue(self) -> list[Decision]:
        """Registered here 60 days ago, no contact letter since: the sweeper's reminder."""
        then = self.now - timedelta(days=60)
        opened = self.opened(self.application(self.other, self.me.region), at=then)
        return [opened, machine.remind_overdue(opened.transfer, self.now)]

    def renotified(self) -> list[Decision]:
        """Registered here, no answer: the sweeper sends the step's notice once more."""
        opened = self.opened(self.application(self.other, self.me.region))
        return [opened, machine.renotify(opened.transfer, self.now, "3 days")]

    def temporary(self, source: str, target: str) -> list[Decision]:
        """A temporary-account case (66号 Art. 5): registered, then the account opened."""
        opened = self.opened(self.application(source, target, temporary=True))
        account = machine.open_temporary_account(opened.transfer, self.actor(target), self.now, account_number="LS-1")
        return [opened, account]

    def military(self) -> list[Decision]:
        """A military transfer (Art. 17) to this region: it arrives with its funds, from area 910000."""
        kind = Kind.MILITARY_PENSION if self.me.agency_type is AgencyType.HRSS else Kind.MILITARY_MEDICAL
        service = MilitaryService(
            service_start=date(self.today.year - 12, 9, 1),
            service_end=date(self.today.year - 1, 12, 31),
            subsidy_fen=5_000_000,
            account_fen=1_200_000,
            vouchers=(_fresh("JY-"),),
        )
        return [self.opened(self.application(MILITARY_AREA, self.me.region, kind=kind, military=service))]

    def foreign(self) -> Message:
        """A correct notice about a transfer between two other regions, addressed to this agency."""
        opened = self.opened(self.application(self.other, self.third))
        notice = replace(opened.notices[0], recipient=self.me)
        return self.messages([replace(opened, notices=(notice,))])[0]

    def requested(self) -> Message:
        """A transfer-requested notice for this agency (the base the malformed deliveries break)."""
        return self.messages([self.opened(self.application(self.other, self.me.region))])[0]

    def broken(self, change: Callable[[agency_pb2.DeliverRequest], None]) -> Message:
        """A correct notice for this agency, then ``change`` applied to it (a new message id first)."""
        message = self.requested()
        request = message.request()
        change(request)
        return Message(message.type, request.message_id, request.SerializeToString())

    # ---------------------------------------------------------------------------------------------- calls

    async def deliver(self, message: Message) -> Answer:
        try:
            return Answer.of(await self.clients.deliver(self.me, message.body, self.target.timeout_s))
        except AgencyCallFailed as failed:
            return Answer.of(failed)

    async def deliver_batch(self, messages: Sequence[Message]) -> list[Answer]:
        """Each message's answer; ``NotApplicable`` when the agency takes no batches."""
        try:
            outcomes = await self.clients.deliver_batch(self.me, [m.body for m in messages], self.target.timeout_s)
        except AgencyCallFailed as failed:
            if failed.code == "UNIMPLEMENTED":
                raise NotApplicable(
                    "DeliverBatch answered UNIMPLEMENTED: allowed (the gateway delivers one by one)"
                ) from failed
            raise Mismatch(
                f"the DeliverBatch call answered {Answer.of(failed)}; expected OK with a result each"
            ) from failed
        return [Answer.of(o) for o in outcomes]

    def msgid(self) -> str:
        """A new msgid of the kit's hospital (unique within the run; the hospital code is the run's own)."""
        return f"{self._hospital}{self.now:%Y%m%d%H%M%S}{next(self._msgids):04d}"

    def bill(self) -> Bill:
        """A bill the gateway accepts from a hospital in another region for the kit's person: 20,000.00 yuan of
        inpatient care (class A 12,000.00, class B 6,000.00 with 10% self-paid, class C 2,000.00)."""
        lines = [(1, 1_200_000, 0), (2, 600_000, 10), (3, 200_000, 0)]
        message = settlement_pb2.Bill(
            msgid=self.msgid(),
            hospital_code=self._hospital,
            hospital_level=3,
            treatment_region=self.other,
            insured_region=self.me.region,
            visit_id=_fresh("V"),
            person=common_pb2.Person(id_number=self.person, name=self.target.name),
            credential_type=settlement_pb2.CREDENTIAL_TYPE_E_VOUCHER,
            insurance_type="310",
            medical_type="21",
            admission_date=_date(self.today - timedelta(days=10)),
            discharge_date=_date(self.today - timedelta(days=1)),
            items=[
                settlement_pb2.BillItem(
                    code=f"X{i:03d}",
                    name=f"item {i}",
                    catalogue_class=settlement_pb2.CatalogueClass.ValueType(c),
                    amount_fen=a,
                    self_pay_percent=s,
                )
                for i, (c, a, s) in enumerate(lines)
            ],
            total_fen=sum(a for _, a, _ in lines),
        )
        return wire.bill_from(message, self.now)

    async def compute(
        self, bill: Bill, *, commit: bool, filing: FilingStatus = FilingStatus.FILED_LONG_TERM
    ) -> Figures:
        """The split, as the gateway asks for it; ``Mismatch`` when the agency refuses or the split does not add
        up to the bill."""
        try:
            figures = await self.clients.compute_settlement(
                bill, filing, commit=commit, settlement_id=self.settlement_id(bill), timeout_s=self.target.timeout_s
            )
        except AgencyCallFailed as failed:
            what = "commit" if commit else "pre-settlement"
            raise Mismatch(f"ComputeSettlement ({what}) answered {Answer.of(failed)}; expected a split") from failed
        if not figures.adds_up_to(bill.total_fen):
            raise Mismatch(
                f"the split does not add up to the bill's {bill.total_fen} fen (total {figures.total_fen}, fund "
                f"{figures.fund_pay_fen} + account {figures.account_pay_fen} + cash {figures.cash_pay_fen}): the "
                "gateway answers AGENCY_ANSWER_INCONSISTENT"
            )
        return figures

    @staticmethod
    def settlement_id(bill: Bill) -> str:
        """As the gateway makes it: deterministic from the msgid."""
        return ids.settlement_id(0, bill.msgid)

    async def refund(self, msgid: str, bill: Bill, figures: Figures) -> bool:
        record = SettlementRecord(self.settlement_id(bill), bill, figures, settled_at=self.now)
        try:
            return await self.clients.refund_settlement(msgid, record, self.target.timeout_s)
        except AgencyCallFailed as failed:
            raise Mismatch(f"RefundSettlement answered {Answer.of(failed)}; expected OK") from failed

    def compute_request(self, bill: Bill, *, commit: bool = False) -> agency_pb2.ComputeSettlementRequest:
        """The request ``AgencyClients.compute_settlement`` sends, to break one field of."""
        return agency_pb2.ComputeSettlementRequest(
            bill=wire.bill_to(bill),
            filing_status=settlement_pb2.FILING_STATUS_FILED_LONG_TERM,
            commit=commit,
            settlement_id=self.settlement_id(bill) if commit else "",
        )

    async def call(self, method: str, request: Any) -> tuple[Answer, Any]:
        """A raw call on the gateway's own channel to the agency (for requests the client cannot express)."""
        stub = self.clients._stub(self.me)  # the channel the gateway's own calls use
        try:
            reply = await getattr(stub, method)(request, timeout=self.target.timeout_s)
        except grpc.aio.AioRpcError as error:
            return Answer.of(failure(error)), None
        return Answer("OK", duplicate=bool(getattr(reply, "duplicate", False))), reply


def _date(d: date) -> common_pb2.Date:
    return common_pb2.Date(year=d.year, month=d.month, day=d.day)


# ----------------------------------------------------------------------------------------------- expectations


def taken(answer: Answer, what: str, *, duplicate: bool = False) -> None:
    if answer.code != "OK":
        hint = ""
        if answer.code in TRANSIENT:
            hint = ": the gateway retries it, and counts the failure against the agency's circuit"
        elif answer.code in ("UNKNOWN", "INTERNAL"):
            hint = ": an unhandled error; the gateway dead-letters the message"
        else:
            hint = ": the gateway dead-letters the message"
        raise Mismatch(f"{what}: answered {answer}; expected OK duplicate={str(duplicate).lower()}{hint}")
    if answer.duplicate != duplicate:
        if duplicate:
            raise Mismatch(f"{what}: answered {answer}; expected duplicate=true (this message_id was taken before)")
        raise Mismatch(f"{what}: answered {answer}; expected duplicate=false (a message_id never sent before)")


def refused(answer: Answer, what: str, codes: Sequence[str] = REFUSED) -> str:
    if answer.code in codes:
        return f"{what}: {answer}"
    expected = " or ".join(codes)
    if answer.code == "OK":
        raise Mismatch(f"{what}: answered OK; expected {expected}")
    if answer.code in ("UNKNOWN", "INTERNAL"):
        raise Mismatch(f"{what}: answered {answer}, an unhandled error; expected {expected}")
    raise Mismatch(f"{what}: answered {answer}; expected {expected}")


# ------------------------------------------------------------------------------------------------------ cases

CaseRun = Callable[[Kit], Awaitable[str]]


@dataclass(frozen=True)
class Case:
    """One check: what it sends, what it expects, and the agency types it applies to (those the gateway sends
    this to). ``run`` returns a note when the agency answered as expected and raises ``Mismatch`` otherwise."""

    name: str
    sends: str
    expects: str
    run: CaseRun = field(repr=False, compare=False)
    agencies: frozenset[AgencyType] = BOTH


@dataclass(frozen=True)
class Result:
    case: Case
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.case.name,
            "passed": self.passed,
            "sends": self.case.sends,
            "expects": self.case.expects,
            "detail": self.detail,
        }


def _deliver_in_order(pick: Callable[[Kit], list[Message]]) -> CaseRun:
    """Deliver the story's messages in commit order, the one the case is about last; each must be taken."""

    async def run(kit: Kit) -> str:
        messages = pick(kit)
        for message in messages:
            taken(await kit.deliver(message), message.label())
        return f"{messages[-1].label()}: OK duplicate=false"

    return run


def _notice_case(
    name: str, sends: str, pick: Callable[[Kit], list[Message]], agencies: frozenset[AgencyType] = BOTH
) -> Case:
    return Case(
        name,
        sends=f"Deliver: {sends}, with every notice of the transfer before it to this agency, in commit order",
        expects="each OK, duplicate=false",
        run=_deliver_in_order(pick),
        agencies=agencies,
    )


async def _dedup(kit: Kit) -> str:
    first, second = kit.messages(kit.moved(kit.other, kit.me.region))
    taken(await kit.deliver(first), "first delivery")
    taken(await kit.deliver(second), "another message")
    taken(await kit.deliver(first), "the first message again (same message_id)", duplicate=True)
    taken(await kit.deliver(first), "the first message a third time", duplicate=True)
    return "repeats answered duplicate=true"


async def _dedup_batch_after_deliver(kit: Kit) -> str:
    first, second = kit.messages(kit.moved(kit.other, kit.me.region))
    taken(await kit.deliver(first), "by Deliver")
    answers = await kit.deliver_batch([first, second])
    if len(answers) != 2:
        raise Mismatch(f"{len(answers)} results for 2 messages")
    taken(answers[0], "the same message_id again in DeliverBatch", duplicate=True)
    taken(answers[1], "a new message in the same batch")
    return "the repeat in the batch answered duplicate=true"


async def _dedup_within_batch(kit: Kit) -> str:
    first, second = kit.messages(kit.moved(kit.other, kit.me.region))
    answers = await kit.deliver_batch([first, first, second])
    taken(answers[0], "result 1 (first copy)")
    taken(answers[1], "result 2 (the same message_id again)", duplicate=True)
    taken(answers[2], "result 3 (another message)")
    return "the second copy answered duplicate=true"


def _everything(kit: Kit) -> list[Message]:
    """Every notice type the gateway sends this agency, in commit order, across several transfers."""
    here, there = kit.me.region, kit.other
    stories = [
        kit.moved(there, here),
        kit.moved(here, there),
        kit.closed(there, here, by=there),
        kit.closed(here, there, by=there),
        kit.overdue(),
        kit.military(),
    ]
    if kit.me.agency_type is AgencyType.HRSS:
        stories += [kit.temporary(there, here), kit.temporary(here, there)]
    return [m for story in stories for m in kit.messages(story)]


async def _batch_in_order(kit: Kit) -> str:
    messages = _everything(kit)
    answers = await kit.deliver_batch(messages)
    if len(answers) != len(messages):
        raise Mismatch(f"{len(answers)} results for {len(messages)} messages")
    for i, (message, answer) in enumerate(zip(messages, answers, strict=True)):
        taken(answer, f"result {i + 1} ({message.label()})")
    types = sorted({m.label() for m in messages})
    return f"{len(messages)} results, all OK: {', '.join(types)}"


async def _batch_partial_refusal(kit: Kit) -> str:
    first, second = kit.messages(kit.moved(kit.other, kit.me.region))
    bad = kit.broken(lambda r: r.transfer_notice.transfer.ClearField("transfer_id"))
    answers = await kit.deliver_batch([first, bad, second])
    if len(answers) != 3:
        raise Mismatch(f"{len(answers)} results for 3 messages")
    taken(answers[0], "result 1 (a correct notice)")
    note = refused(answers[1], "result 2 (no transfer_id)")
    taken(answers[2], "result 3 (a correct notice)")
    return note


async def _later_first(kit: Kit) -> str:
    requested, info = kit.messages(kit.moved(kit.other, kit.me.region))
    taken(await kit.deliver(info), "transfer-info, before its transfer-requested")
    taken(await kit.deliver(requested), "transfer-requested, after the later transfer-info")
    taken(await kit.deliver(info), "transfer-info again (same message_id)", duplicate=True)
    return "both taken in the wrong order; the repeat deduplicated"


async def _closed_first(kit: Kit) -> str:
    letter, closed = kit.messages(kit.closed(kit.me.region, kit.other, by=kit.other))
    taken(await kit.deliver(closed), "transfer-closed, before its contact-letter")
    taken(await kit.deliver(letter), "contact-letter, after the transfer was closed")
    return "both taken in the wrong order"


async def _completed_first(kit: Kit) -> str:
    letter, completed = kit.messages(kit.moved(kit.me.region, kit.other))
    taken(await kit.deliver(completed), "transfer-completed, before its contact-letter")
    taken(await kit.deliver(letter), "contact-letter, after the transfer completed")
    return "both taken in the wrong order"


def _malformed(name: str, sends: str, change: Callable[[agency_pb2.DeliverRequest], None], why: str) -> Case:
    async def run(kit: Kit) -> str:
        return refused(await kit.deliver(kit.broken(change)), sends)

    return Case(name, sends=f"Deliver: a transfer-requested notice with {sends}", expects=why, run=run)


def _no_message_id(r: agency_pb2.DeliverRequest) -> None:
    r.message_id = ""


def _no_body(r: agency_pb2.DeliverRequest) -> None:
    r.ClearField("transfer_notice")


def _unspecified_type(r: agency_pb2.DeliverRequest) -> None:
    r.transfer_notice.type = agency_pb2.NOTICE_TYPE_UNSPECIFIED


def _unknown_type(r: agency_pb2.DeliverRequest) -> None:
    r.transfer_notice.type = agency_pb2.NoticeType.ValueType(99)


def _no_transfer_id(r: agency_pb2.DeliverRequest) -> None:
    r.transfer_notice.transfer.ClearField("transfer_id")


def _no_recipient(r: agency_pb2.DeliverRequest) -> None:
    r.ClearField("recipient")


async def _wrong_recipient(kit: Kit) -> str:
    def change(r: agency_pb2.DeliverRequest) -> None:
        r.recipient.region_code = kit.other

    return refused(await kit.deliver(kit.broken(change)), f"recipient {kit.other}'s agency")


async def _other_agency_type(kit: Kit) -> str:
    other_type = common_pb2.AgencyType.ValueType(3 - int(kit.me.agency_type))

    def change(r: agency_pb2.DeliverRequest) -> None:
        r.recipient.agency_type = other_type

    return refused(await kit.deliver(kit.broken(change)), "recipient: this region's other agency")


async def _foreign_transfer(kit: Kit) -> str:
    return refused(await kit.deliver(kit.foreign()), f"a transfer from {kit.other} to {kit.third}")


# ------------------------------------------------------------------------------------------------ settlement


async def _pre_settlement(kit: Kit) -> str:
    bill = kit.bill()
    figures = await kit.compute(bill, commit=False)
    return (
        f"split adds up: fund {figures.fund_pay_fen} + account {figures.account_pay_fen} + cash {figures.cash_pay_fen}"
    )


async def _pre_settlement_records_nothing(kit: Kit) -> str:
    bill = kit.bill()
    first = await kit.compute(bill, commit=False)
    again = await kit.compute(bill, commit=False)
    if again != first:
        raise Mismatch(f"a second pre-settlement of the same bill answered {again}, the first {first}")
    committed = await kit.compute(bill, commit=True)
    if committed != first:
        raise Mismatch(
            f"the commit answered {committed} after two pre-settlements answered {first}: a pre-settlement moved "
            "the books"
        )
    return "pre-settlements and the commit answered the same split"


async def _commit_dedup(kit: Kit) -> str:
    bill, other, probe = kit.bill(), kit.bill(), kit.bill()
    first = await kit.compute(bill, commit=True)
    await kit.compute(other, commit=True)
    before = await kit.compute(probe, commit=False)
    repeat = await kit.compute(bill, commit=True)
    if repeat != first:
        raise Mismatch(f"the repeated commit answered {repeat}; the first answer was {first}")
    after = await kit.compute(probe, commit=False)
    if after != before:
        raise Mismatch(
            f"a pre-settlement after the repeated commit answered {after}, before it {before}: the repeat was "
            "applied again"
        )
    return "the repeat answered the first split and changed nothing"


async def _refund(kit: Kit) -> str:
    bill, probe = kit.bill(), kit.bill()
    before = await kit.compute(probe, commit=False)
    figures = await kit.compute(bill, commit=True)
    msgid = kit.msgid()  # the cancelling message's own msgid
    if await kit.refund(msgid, bill, figures):
        raise Mismatch("the first refund answered duplicate=true")
    if not await kit.refund(msgid, bill, figures):
        raise Mismatch("the repeated refund (same msgid) answered duplicate=false")
    after = await kit.compute(probe, commit=False)
    if after != before:
        raise Mismatch(f"after settling and refunding once, a pre-settlement answered {after}; before, {before}")
    return "refunded once, the books as before; the repeat answered duplicate=true"


async def _void_frees_the_msgid(kit: Kit) -> str:
    bill, probe = kit.bill(), kit.bill()
    untouched = await kit.compute(probe, commit=False)
    figures = await kit.compute(bill, commit=True)
    if await kit.refund(f"void:{kit.settlement_id(bill)}", bill, figures):  # the gateway could not record it
        raise Mismatch("taking back a settlement just committed answered duplicate=true")
    again = await kit.compute(bill, commit=True)  # the hospital's retry under the same msgid
    if await kit.refund(kit.msgid(), bill, again):  # a cancellation of what the retry settled
        raise Mismatch(
            "the retry after the take-back was not settled anew (refunding it answered duplicate=true): after a "
            "refund the bill's msgid must be free"
        )
    if await kit.compute(probe, commit=False) != untouched:
        raise Mismatch("after the take-back, the retry and its cancellation, the books were not as before")
    return "taken back, the same msgid settled anew, and that settlement cancelled: the books as before"


async def _unfiled(kit: Kit) -> str:
    bill = kit.bill()
    try:
        figures = await kit.compute(bill, commit=False, filing=FilingStatus.UNFILED)
    except Mismatch as mismatch:
        cause = mismatch.__cause__
        if isinstance(cause, AgencyCallFailed) and cause.code == "FAILED_PRECONDITION":
            return f"refused: FAILED_PRECONDITION ({cause.detail})"
        raise
    return f"settled at {figures.ratio_percent}%"


def _malformed_compute(
    name: str, sends: str, change: Callable[[agency_pb2.ComputeSettlementRequest, Kit], None], *, commit: bool = False
) -> Case:
    async def run(kit: Kit) -> str:
        request = kit.compute_request(kit.bill(), commit=commit)
        change(request, kit)
        answer, _ = await kit.call("ComputeSettlement", request)
        return refused(answer, sends)

    return Case(
        name,
        sends=f"ComputeSettlement ({'commit' if commit else 'pre-settlement'}) with {sends}",
        expects="INVALID_ARGUMENT or FAILED_PRECONDITION (the hospital is told; never UNKNOWN/INTERNAL, which the "
        "gateway takes for 'unavailable, retry')",
        run=run,
        agencies=HEALTHCARE,
    )


async def _refund_malformed(kit: Kit, change: Callable[[agency_pb2.RefundSettlementRequest], None], what: str) -> str:
    bill = kit.bill()
    figures = await kit.compute(bill, commit=True)
    request = agency_pb2.RefundSettlementRequest(
        msgid=kit.msgid(),
        settlement_id=kit.settlement_id(bill),
        bill=wire.bill_to(bill),
        split=wire.split_to(figures),
    )
    change(request)
    answer, _ = await kit.call("RefundSettlement", request)
    return refused(answer, what)


async def _refund_no_msgid(kit: Kit) -> str:
    return await _refund_malformed(kit, lambda r: r.ClearField("msgid"), "no msgid")


async def _refund_wrong_region(kit: Kit) -> str:
    def change(r: agency_pb2.RefundSettlementRequest) -> None:
        r.bill.insured_region = kit.other

    return await _refund_malformed(kit, change, f"a bill insured in {kit.other}")


# ------------------------------------------------------------------------------------------- person, periods


async def _person_info(kit: Kit) -> str:
    try:
        person = await kit.clients.person_info(
            kit.me.region, kit.person, kit.target.name, CredentialType.E_VOUCHER, kit.other, kit.target.timeout_s
        )
    except AgencyCallFailed as failed:
        hint = " (name a person insured here with --person)" if failed.code == "NOT_FOUND" else ""
        raise Mismatch(f"GetPersonInfo answered {Answer.of(failed)}{hint}; expected the person") from failed
    return f"person {person.person_number}, {len(person.insurances)} insurance(s) here"


async def _person_malformed(kit: Kit, request: agency_pb2.GetPersonInfoRequest, what: str, codes: Sequence[str]) -> str:
    answer, _ = await kit.call("GetPersonInfo", request)
    return refused(answer, what, codes)


def _person_request(kit: Kit, **changes: Any) -> agency_pb2.GetPersonInfoRequest:
    """The request ``AgencyClients.person_info`` sends."""
    request = agency_pb2.GetPersonInfoRequest(
        person=common_pb2.Person(id_number=kit.person, name=kit.target.name),
        credential_type=settlement_pb2.CREDENTIAL_TYPE_E_VOUCHER,
        treatment_region=kit.other,
    )
    for name, value in changes.items():
        setattr(request, name, value)
    return request


def _bad_check_character(id_number: str) -> str:
    return id_number[:17] + ("0" if id_number[17] != "0" else "1")


async def _person_bad_id(kit: Kit) -> str:
    request = _person_request(kit)
    request.person.id_number = _bad_check_character(kit.person)
    return await _person_malformed(kit, request, "an ID number with a wrong check character", (*REFUSED, "NOT_FOUND"))


async def _person_unknown_credential(kit: Kit) -> str:
    request = _person_request(kit, credential_type=settlement_pb2.CredentialType.ValueType(99))
    return await _person_malformed(kit, request, "credential_type 99", REFUSED)


async def _periods(kit: Kit) -> str:
    try:
        periods = await kit.clients.contribution_periods(
            kit.me.region, kit.person, kit.target.name, kit.target.timeout_s
        )
    except AgencyCallFailed as failed:
        if failed.reason == "AGENCY_ANSWER_INCONSISTENT":
            raise Mismatch(f"a period the gateway cannot read: {failed.detail}") from failed
        raise Mismatch(f"ReportContributionPeriods answered {Answer.of(failed)}; expected OK") from failed
    _, reply = await kit.call("ReportContributionPeriods", _periods_request(kit, kit.person))
    if reply is not None:
        foreign = sorted({p.region_code for p in reply.periods if p.region_code != kit.me.region})
        if foreign:
            raise Mismatch(f"periods of other regions ({', '.join(foreign)}); this region's only")
        for p in reply.periods:
            try:
                period_from(p)
            except ValueError as bad:
                raise Mismatch(f"a malformed period: {bad}") from bad
    return f"{len(periods)} period(s) of {kit.me.region}" if periods else "no periods (allowed: none here)"


def _periods_request(kit: Kit, id_number: str) -> agency_pb2.ReportContributionPeriodsRequest:
    return agency_pb2.ReportContributionPeriodsRequest(
        person=common_pb2.Person(id_number=id_number, name=kit.target.name)
    )


async def _periods_bad_id(kit: Kit) -> str:
    answer, _ = await kit.call("ReportContributionPeriods", _periods_request(kit, _bad_check_character(kit.person)))
    return refused(answer, "an ID number with a wrong check character", (*REFUSED, "NOT_FOUND"))


async def _periods_no_person(kit: Kit) -> str:
    answer, _ = await kit.call("ReportContributionPeriods", agency_pb2.ReportContributionPeriodsRequest())
    return refused(answer, "no person", REFUSED)


# --------------------------------------------------------------------------------------------------- the list

_REFUSAL = "INVALID_ARGUMENT or FAILED_PRECONDITION (dead-lettered at once; never OK, UNKNOWN or INTERNAL)"

CASES: tuple[Case, ...] = (
    # Every notice type the gateway delivers, each after the transfer's earlier notices, by Deliver.
    _notice_case(
        "deliver-transfer-requested",
        "transfer-requested (this agency the target)",
        lambda k: k.messages(k.moved(k.other, k.me.region))[:1],
    ),
    _notice_case(
        "deliver-contact-letter",
        "contact-letter (this agency the source)",
        lambda k: k.messages(k.moved(k.me.region, k.other))[:1],
    ),
    _notice_case(
        "deliver-transfer-info",
        "transfer-info: table and funds (this agency the target)",
        lambda k: k.messages(k.moved(k.other, k.me.region)),
    ),
    _notice_case(
        "deliver-transfer-info-military",
        "transfer-info of a military transfer from area 910000 (Art. 17, the priority lane)",
        lambda k: k.messages(k.military()),
    ),
    _notice_case(
        "deliver-transfer-completed",
        "transfer-completed (this agency the source)",
        lambda k: k.messages(k.moved(k.me.region, k.other)),
    ),
    _notice_case(
        "deliver-transfer-closed-rejected",
        "transfer-closed: rejected by the source (this agency the target)",
        lambda k: k.messages(k.closed(k.other, k.me.region, by=k.other)),
    ),
    _notice_case(
        "deliver-transfer-closed-cancelled",
        "transfer-closed: cancelled by the target (this agency the source)",
        lambda k: k.messages(k.closed(k.me.region, k.other, by=k.other)),
    ),
    _notice_case("deliver-step-overdue", "step-overdue: the sweeper's reminder", lambda k: k.messages(k.overdue())),
    _notice_case(
        "deliver-renotified",
        "transfer-requested sent once more by the sweeper, under a new message_id",
        lambda k: k.messages(k.renotified()),
    ),
    _notice_case(
        "deliver-transfer-requested-temporary-account",
        "transfer-requested with temporary_account (66号 Art. 5; this agency the target)",
        lambda k: k.messages(k.temporary(k.other, k.me.region)),
        HRSS,
    ),
    _notice_case(
        "deliver-temporary-account-opened",
        "temporary-account-opened (this agency the source)",
        lambda k: k.messages(k.temporary(k.me.region, k.other)),
        HRSS,
    ),
    # At least once: duplicates.
    Case(
        "dedup-deliver",
        sends="Deliver: message A, message B, then A twice more (same message_id)",
        expects="A and B duplicate=false; both repeats OK duplicate=true",
        run=_dedup,
    ),
    Case(
        "dedup-batch-after-deliver",
        sends="Deliver: message A; then DeliverBatch [A again, B]",
        expects="the batch's A OK duplicate=true, B OK duplicate=false",
        run=_dedup_batch_after_deliver,
    ),
    Case(
        "dedup-within-batch",
        sends="DeliverBatch [A, A, B] (a message routed twice)",
        expects="results OK duplicate=false, OK duplicate=true, OK duplicate=false",
        run=_dedup_within_batch,
    ),
    # Batches.
    Case(
        "batch-every-notice-type",
        sends="DeliverBatch: every notice type this agency gets, several transfers, in commit order",
        expects="one result per message, in order, each OK duplicate=false (or UNIMPLEMENTED for the call)",
        run=_batch_in_order,
    ),
    Case(
        "batch-partial-refusal",
        sends="DeliverBatch [a correct notice, one with no transfer_id, a correct notice]",
        expects="OK, INVALID_ARGUMENT or FAILED_PRECONDITION, OK: the bad one refused in its own result, the call OK",
        run=_batch_partial_refusal,
    ),
    # Out of order (across gateway processes order is not guaranteed).
    Case(
        "out-of-order-info-before-request",
        sends="Deliver: a transfer's transfer-info, then its earlier transfer-requested, then the transfer-info again",
        expects="OK duplicate=false, OK duplicate=false, OK duplicate=true",
        run=_later_first,
    ),
    Case(
        "out-of-order-closed-before-letter",
        sends="Deliver: a transfer's transfer-closed (cancelled), then its earlier contact-letter",
        expects="both OK duplicate=false (the notices carry the transfer's state)",
        run=_closed_first,
    ),
    Case(
        "out-of-order-completed-before-letter",
        sends="Deliver: a transfer's transfer-completed, then its earlier contact-letter",
        expects="both OK duplicate=false",
        run=_completed_first,
    ),
    # Malformed deliveries.
    _malformed("malformed-no-message-id", "no message_id", _no_message_id, _REFUSAL),
    _malformed("malformed-no-recipient", "no recipient", _no_recipient, _REFUSAL),
    _malformed("malformed-no-body", "no transfer_notice (the body oneof unset)", _no_body, _REFUSAL),
    _malformed("malformed-unspecified-notice-type", "type NOTICE_TYPE_UNSPECIFIED", _unspecified_type, _REFUSAL),
    _malformed("malformed-unknown-notice-type", "type 99 (an enum value not in agency.proto)", _unknown_type, _REFUSAL),
    _malformed("malformed-no-transfer-id", "no transfer.transfer_id", _no_transfer_id, _REFUSAL),
    Case(
        "wrong-recipient-region",
        sends="Deliver: a transfer-requested notice whose recipient is another region's agency",
        expects=_REFUSAL,
        run=_wrong_recipient,
    ),
    Case(
        "wrong-recipient-agency-type",
        sends="Deliver: a transfer-requested notice whose recipient is this region's other agency",
        expects=_REFUSAL,
        run=_other_agency_type,
    ),
    Case(
        "wrong-region-transfer",
        sends="Deliver: a notice addressed to this agency about a transfer between two other regions",
        expects=_REFUSAL,
        run=_foreign_transfer,
    ),
    # Settlement (healthcare-security agencies).
    Case(
        "compute-pre-settlement",
        sends="ComputeSettlement: a 20,000.00 yuan inpatient bill, filed long-term, commit=false",
        expects="a split that adds up: fund + account + cash = total, none negative",
        run=_pre_settlement,
        agencies=HEALTHCARE,
    ),
    Case(
        "compute-pre-settlement-records-nothing",
        sends="ComputeSettlement: the same bill twice with commit=false, then with commit=true",
        expects="three equal splits (a pre-settlement moves no year-to-date figure nor the account)",
        run=_pre_settlement_records_nothing,
        agencies=HEALTHCARE,
    ),
    Case(
        "compute-commit-dedup",
        sends="ComputeSettlement commit: bill A, bill B, pre-settle C, A again (same msgid), pre-settle C again",
        expects="A's repeat answers A's first split (not recomputed after B); C's two pre-settlements equal",
        run=_commit_dedup,
        agencies=HEALTHCARE,
    ),
    Case(
        "refund-dedup",
        sends="pre-settle C; commit D; RefundSettlement D twice (same msgid); pre-settle C again",
        expects="refunds duplicate=false then duplicate=true; C's pre-settlements equal (restored once)",
        run=_refund,
        agencies=HEALTHCARE,
    ),
    Case(
        "void-frees-the-msgid",
        sends="commit A; RefundSettlement A under void:<settlement id> (what the gateway could not record); commit A "
        "again (the hospital's retry); RefundSettlement A under a new msgid",
        expects="both refunds duplicate=false (the retry settled A anew: a refund frees the bill's msgid); the "
        "books as before",
        run=_void_frees_the_msgid,
        agencies=HEALTHCARE,
    ),
    Case(
        "compute-unfiled",
        sends="ComputeSettlement: a bill with filing_status UNFILED, commit=false",
        expects="a split that adds up, or FAILED_PRECONDITION (its policy refuses unfiled care)",
        run=_unfiled,
        agencies=HEALTHCARE,
    ),
    _malformed_compute("compute-malformed-no-bill", "no bill", lambda r, k: r.ClearField("bill")),
    _malformed_compute(
        "compute-malformed-unknown-filing-status",
        "filing_status 99",
        lambda r, k: setattr(r, "filing_status", 99),
    ),
    _malformed_compute(
        "compute-malformed-unknown-insurance-type",
        "bill.insurance_type '999'",
        lambda r, k: setattr(r.bill, "insurance_type", "999"),
    ),
    _malformed_compute(
        "compute-malformed-unknown-catalogue-class",
        "an item of catalogue_class 9",
        lambda r, k: setattr(r.bill.items[0], "catalogue_class", 9),
    ),
    _malformed_compute(
        "compute-malformed-commit-no-settlement-id",
        "commit=true and no settlement_id",
        lambda r, k: r.ClearField("settlement_id"),
        commit=True,
    ),
    _malformed_compute(
        "compute-wrong-region",
        "a bill whose insured_region is another region",
        lambda r, k: setattr(r.bill, "insured_region", k.other),
    ),
    Case(
        "refund-malformed-no-msgid",
        sends="RefundSettlement of a committed settlement with no msgid",
        expects="INVALID_ARGUMENT or FAILED_PRECONDITION (and nothing refunded)",
        run=_refund_no_msgid,
        agencies=HEALTHCARE,
    ),
    Case(
        "refund-wrong-region",
        sends="RefundSettlement of a committed settlement whose bill is insured in another region",
        expects="INVALID_ARGUMENT or FAILED_PRECONDITION",
        run=_refund_wrong_region,
        agencies=HEALTHCARE,
    ),
    # Person information (healthcare-security agencies, national 1101).
    Case(
        "person-info",
        sends="GetPersonInfo: the kit's person, e-voucher, treated in another region",
        expects="OK with an answer the gateway reads: person_number of 1-30 letters or digits, insurances 310/390, "
        "balances not negative",
        run=_person_info,
        agencies=HEALTHCARE,
    ),
    Case(
        "person-info-malformed-id-number",
        sends="GetPersonInfo: an ID number with a wrong check character",
        expects="NOT_FOUND, INVALID_ARGUMENT or FAILED_PRECONDITION",
        run=_person_bad_id,
        agencies=HEALTHCARE,
    ),
    Case(
        "person-info-unknown-credential-type",
        sends="GetPersonInfo: credential_type 99",
        expects="INVALID_ARGUMENT or FAILED_PRECONDITION",
        run=_person_unknown_credential,
        agencies=HEALTHCARE,
    ),
    # Contribution periods (HRSS agencies, 66号 Art. 6).
    Case(
        "contribution-periods",
        sends="ReportContributionPeriods: the kit's person",
        expects="OK; every period this region's and well formed (6-digit region, months >= 0, ends after it starts); "
        "none is an empty answer, not an error",
        run=_periods,
        agencies=HRSS,
    ),
    Case(
        "contribution-periods-malformed-id-number",
        sends="ReportContributionPeriods: an ID number with a wrong check character",
        expects="INVALID_ARGUMENT, FAILED_PRECONDITION or NOT_FOUND",
        run=_periods_bad_id,
        agencies=HRSS,
    ),
    Case(
        "contribution-periods-no-person",
        sends="ReportContributionPeriods: no person",
        expects="INVALID_ARGUMENT or FAILED_PRECONDITION",
        run=_periods_no_person,
        agencies=HRSS,
    ),
)


def cases_for(agency_type: AgencyType, names: Iterable[str] = ()) -> list[Case]:
    """The cases that apply to this type of agency (only ``names``, when given; ``KeyError`` for an unknown one)."""
    wanted = list(names)
    unknown = sorted(set(wanted) - {c.name for c in CASES})
    if unknown:
        raise KeyError(", ".join(unknown))
    return [c for c in CASES if agency_type in c.agencies and (not wanted or c.name in wanted)]


def parse_agency(text: str) -> AgencyKey:
    """``agency:REGION:hrss|healthcare``; ``ValueError`` otherwise."""
    parts = text.split(":")
    if len(parts) != 3 or parts[0] != "agency" or not (len(parts[1]) == 6 and parts[1].isdigit()):
        raise ValueError(f"not an agency participant: {text!r} (agency:REGION:hrss or agency:REGION:healthcare)")
    return AgencyKey(parts[1], AgencyType.from_slug(parts[2]))


async def check(target: Target, cases: Iterable[Case] | None = None) -> list[Result]:
    """Run ``cases`` (default: every case for the target's agency type) one after another; a result each."""
    kit = Kit(target)
    results = []
    try:
        for case in cases_for(target.agency.agency_type) if cases is None else cases:
            try:
                note = await case.run(kit)
            except NotApplicable as skipped:
                results.append(Result(case, True, str(skipped)))
            except Mismatch as mismatch:
                results.append(Result(case, False, str(mismatch)))
            except AgencyCallFailed as failed:
                results.append(Result(case, False, f"answered {Answer.of(failed)}"))
            except Exception as error:  # a kit defect, or an answer it could not read: that case fails, not the run
                results.append(Result(case, False, f"the kit could not run this case: {type(error).__name__}: {error}"))
            else:
                results.append(Result(case, True, note))
    finally:
        await kit.close()
    return results
