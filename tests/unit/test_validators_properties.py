"""Property tests for every request validator, with hostile input and no I/O.

For arbitrary protobuf requests (random and hostile field values: huge and negative integers, control and
full-width characters, newlines, 10k-character strings, enum numbers outside the defined range, empty and
missing submessages) each validator either returns a value or raises ``InvalidArgument``, never anything else;
every violation names a field path that exists in the request; no violation text or message echoes an ID number
found anywhere in the request; and a valid request always passes.

The servicers' own per-field checks are covered the same way: each RPC handler runs against a service layer
that raises ``ReachedService`` as soon as it is touched, so a handler either refuses the request (with
``InvalidArgument``, or ``Unauthenticated``/``PermissionDenied`` for the caller) or hands it on; it must do
so without awaiting anything first.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Coroutine
from datetime import date, datetime, timedelta
from typing import Any, cast

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gateway._gen.sigw.v1 import common_pb2, operator_pb2, settlement_pb2, transfer_pb2
from gateway.api.identity import METADATA_KEY, IdentityResolver
from gateway.api.limits import StreamLimit
from gateway.api.operator import OperatorServicer
from gateway.api.pages import PageTokens
from gateway.api.settlements import SettlementServicer
from gateway.api.transfers import TransferServicer
from gateway.domain import idnumber
from gateway.domain.calendar import SHANGHAI
from gateway.domain.errors import FieldViolation, InvalidArgument, PermissionDenied, SigwError, Unauthenticated
from gateway.domain.ids import msgid_time
from gateway.domain.money import MAX_AMOUNT_FEN
from gateway.domain.participants import Participant
from gateway.domain.regions import Registry
from gateway.domain.settlement.records import Bill
from gateway.domain.transfer.model import Application, Kind, State, TransferInfo
from gateway.security.crypto import FieldCipher
from gateway.wire.settlements import bill_from, check_msgid
from gateway.wire.transfers import application_from, info_from, kind_filter, state_filter
from gateway.wire.validation import Violations, fingerprint

S = transfer_pb2
P = settlement_pb2
O = operator_pb2  # noqa: E741

TODAY = date(2026, 3, 2)
RECEIVED = datetime(2026, 3, 2, 23, 59, 30, tzinfo=SHANGHAI)
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

PROPERTIES = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
FEWER = settings(PROPERTIES, max_examples=60)

# ------------------------------------------------------------------------------------------------ strategies

FULL_WIDTH = str.maketrans("0123456789Xx", "０１２３４５６７８９Ｘｘ")


def ascii_digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    """A valid resident ID number."""
    birth = draw(st.dates(min_value=date(1900, 1, 1), max_value=TODAY))
    return idnumber.make_id_number(draw(ascii_digits(6)), birth, draw(st.integers(0, 999)))


def _near_ids(valid: str) -> list[str]:
    """Forms of an ID number a careless validator might echo: full-width, lower-case x, bad check character."""
    wrong_check = valid[:17] + ("0" if valid[17] != "0" else "1")
    return [valid.translate(FULL_WIDTH), valid[:17] + "x", wrong_check, valid + "\n", " " + valid, valid[:-1]]


HOSTILE_TEXTS = [
    "",
    " ",
    "\n",
    "\r\n",
    "\t",
    "\x00",
    "\x00" * 20,
    "\x7f\x1b[2J",
    "\u202e\u200b\ufeff",
    "💥🏥",
    "张三",
    "１１００００",  # a full-width region code
    "110000\n",
    " 110000",
    "11000０",
    "T03-20260302-8F3A2C1D\n",
    "t03-20260302-8f3a2c1d",
    "T03-20260302-8F3A2C1",
    "H44030000001202603020830000001",
    "H44030000001２０２６０３０２０８３０００００１",
    "H44030000001209912312359590001",
    "H44030000001202602300830000001",
    "0-0",
    "18446744073709551615-18446744073709551615",
    "99999999999999999999-99999999999999999999",
    "2026-13",
    "０２０２-03",
    "A" * 64,
    "A" * 65,
    "x" * 501,
    "9" * 10_000,
    "界" * 10_000,
    "a\n" * 5_000,
    "%s%n{0}${x}",
    "'; DROP TABLE t; --",
    "sigw:{s00}:tr:*",
    "agency:310000:hrss",
    "operator:" + "a" * 33,
]


@st.composite
def texts_with_an_id(draw: st.DrawFn) -> str:
    """A hostile string with a (valid, or nearly valid) ID number embedded somewhere."""
    valid = draw(id_numbers())
    embedded = draw(st.sampled_from([valid, *_near_ids(valid)]))
    before = draw(st.sampled_from(["", " ", "ID ", "5", "\n", "X", "身份证", "１"]))
    after = draw(st.sampled_from(["", " ", "5", "\n", "X", "号", "\x00"]))
    return before + embedded + after


def hostile_texts() -> st.SearchStrategy[str]:
    return _TEXTS


_TEXTS = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Nd", "No"]), max_size=30),
    st.sampled_from(HOSTILE_TEXTS),
    id_numbers(),
    texts_with_an_id(),
    st.from_regex(r"[0-9]{6}", fullmatch=True),
    st.from_regex(r"T[0-9]{2}-[0-9]{8}-[0-9A-F]{8}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_.:\-]{1,70}", fullmatch=True),
)


@functools.cache
def hostile_ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    edges = [lo, hi, -1, 0, 1, 2, 3, 12, 13, 100, 101, 1200, 1201, 9999, MAX_AMOUNT_FEN, MAX_AMOUNT_FEN + 1]
    return st.one_of(st.integers(lo, hi), st.sampled_from([e for e in edges if lo <= e <= hi]))


@functools.cache
def dates_msgs() -> st.SearchStrategy[common_pb2.Date]:
    """Dates: real, impossible, unset, partly set, and far out of range."""
    real = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(
        lambda d: common_pb2.Date(year=d.year, month=d.month, day=d.day)
    )
    fields = st.builds(common_pb2.Date, year=hostile_ints(*INT32), month=hostile_ints(*INT32), day=hostile_ints(*INT32))
    edges = st.sampled_from(
        [
            common_pb2.Date(),
            common_pb2.Date(year=2026),
            common_pb2.Date(month=2, day=30),
            common_pb2.Date(year=2025, month=2, day=29),
            common_pb2.Date(year=9999, month=12, day=31),
            common_pb2.Date(year=1, month=1, day=1),
            common_pb2.Date(year=0, month=1, day=1),
        ]
    )
    return st.one_of(real, fields, edges)


AMPLIFY = [1, 1, 1, 1, 2, 11, 101, 1001]


@functools.cache
def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    return _messages(descriptor, depth)


@st.composite
def _messages(draw: st.DrawFn, descriptor: Descriptor, depth: int) -> Message:
    """An arbitrary message of ``descriptor``'s type: each field absent or set to a hostile value."""
    cls = _class_of(descriptor)
    msg = cls()
    if descriptor.full_name == "sigw.v1.Date" and draw(st.booleans()):
        msg.CopyFrom(draw(dates_msgs()))
        return msg
    for field in descriptor.fields:
        if not draw(st.booleans()):
            continue
        if field.is_repeated:
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                continue
            count = draw(st.integers(0, 4))
            values = [_value(draw, field, depth) for _ in range(count)]
            times = draw(st.sampled_from(AMPLIFY)) if values else 1
            container = getattr(msg, field.name)
            if field.message_type is not None:
                for _ in range(times):
                    for value in values:
                        container.add().CopyFrom(value)
            else:
                container.extend(values * times)
        elif field.message_type is not None:
            if depth >= 3 or draw(st.integers(0, 4)) == 0:
                getattr(msg, field.name).SetInParent()  # present but empty
            else:
                getattr(msg, field.name).CopyFrom(_value(draw, field, depth))
        else:
            setattr(msg, field.name, _value(draw, field, depth))
    return msg


def _value(draw: st.DrawFn, field: FieldDescriptor, depth: int) -> Any:
    if field.message_type is not None:
        return draw(messages(field.message_type, depth + 1))
    if field.type == FieldDescriptor.TYPE_STRING:
        return draw(hostile_texts())
    if field.type == FieldDescriptor.TYPE_BOOL:
        return draw(st.booleans())
    if field.type == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None  # an enum field always has its enum type
        defined = [v.number for v in field.enum_type.values]
        return draw(st.one_of(st.sampled_from(defined), hostile_ints(*INT32)))
    if field.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return draw(hostile_ints(*INT64))
    return draw(hostile_ints(*INT32))


_CLASSES: dict[str, type[Message]] = {}
for _module in (common_pb2, transfer_pb2, settlement_pb2, operator_pb2):
    for _name, _descriptor in _module.DESCRIPTOR.message_types_by_name.items():
        _CLASSES[_descriptor.full_name] = getattr(_module, _name)


def _class_of(descriptor: Descriptor) -> type[Message]:
    return _CLASSES[descriptor.full_name]


def requests(cls: type[Message]) -> st.SearchStrategy[Any]:
    return messages(cls.DESCRIPTOR)


# --------------------------------------------------------------------------------------- valid requests


@st.composite
def valid_create_requests(draw: st.DrawFn) -> S.CreateTransferRequest:
    kind = draw(st.sampled_from(list(Kind)))
    request = S.CreateTransferRequest(
        request_id=draw(st.from_regex(r"[A-Za-z0-9_.:\-]{1,64}", fullmatch=True)),
        kind=S.TransferKind.ValueType(kind.value),
        person=common_pb2.Person(
            id_number=draw(id_numbers()),
            name=draw(st.text(min_size=1, max_size=64).filter(lambda s: s.strip())),
        ),
        source_region=draw(ascii_digits(6)),
        target_region=draw(ascii_digits(6)),
        circumstances=S.Circumstances(
            drawing_benefits=draw(st.booleans()),
            hukou_moved=draw(st.booleans()),
            residence_changed=draw(st.booleans()),
            retired=draw(st.booleans()),
            continuous_enrolment_months=draw(st.integers(0, 1200)),
            direction=S.PensionDirection.ValueType(draw(st.sampled_from([0, 1, 2]))),
        ),
        note=draw(st.text(max_size=500)),
    )
    if draw(st.booleans()):
        start = draw(st.dates(min_value=date(1950, 1, 1), max_value=TODAY))
        end = draw(st.dates(min_value=start, max_value=TODAY))
        request.military.CopyFrom(
            S.MilitaryService(
                service_start=common_pb2.Date(year=start.year, month=start.month, day=start.day),
                service_end=common_pb2.Date(year=end.year, month=end.month, day=end.day),
                subsidy_fen=draw(st.integers(0, MAX_AMOUNT_FEN)),
                account_fen=draw(st.integers(0, MAX_AMOUNT_FEN)),
                voucher_numbers=draw(
                    st.lists(st.from_regex(r"[\w\-/.]{1,64}", fullmatch=True), min_size=1, max_size=10)
                ),
                spouse=draw(st.booleans()),
            )
        )
    return request


@st.composite
def valid_infos(draw: st.DrawFn) -> S.TransferInfo:
    amount = st.integers(0, MAX_AMOUNT_FEN)
    return S.TransferInfo(
        table_number=draw(st.from_regex(r"[\w\-/.]{0,64}", fullmatch=True)),
        individual_account_fen=draw(amount),
        pooled_fund_fen=draw(amount),
        funds_fen=draw(amount),
        remaining_benefit_fen=draw(amount),
        medical_subsidy_fen=draw(amount),
        training_subsidy_fen=draw(amount),
        contributions=draw(
            st.lists(
                st.builds(
                    S.ContributionYear,
                    year=hostile_ints(*INT32),
                    first_month=hostile_ints(*INT32),
                    last_month=hostile_ints(*INT32),
                    monthly_base_fen=hostile_ints(*INT64),
                ),
                max_size=100,
            )
        ),
    )


@st.composite
def valid_bills(draw: st.DrawFn) -> P.Bill:
    hospital = draw(st.from_regex(r"[A-Z][0-9A-Z]{11}", fullmatch=True))
    when = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2026, 3, 2, 23, 59, 59)))
    discharge = draw(st.dates(min_value=date(1900, 1, 1), max_value=TODAY))
    admission = draw(st.dates(min_value=date(1900, 1, 1), max_value=discharge))
    items = []
    for i in range(draw(st.integers(1, 12))):
        klass = draw(st.sampled_from([1, 2, 3]))
        items.append(
            P.BillItem(
                code=draw(st.text(min_size=1, max_size=64).filter(lambda s: s.strip())) if i else "X001",
                name=draw(st.text(min_size=1, max_size=64).filter(lambda s: s.strip())),
                catalogue_class=P.CatalogueClass.ValueType(klass),
                amount_fen=draw(st.integers(0, 100_000_000)),
                self_pay_percent=draw(st.integers(0, 100)) if klass == 2 else 0,
            )
        )
    return P.Bill(
        msgid=f"{hospital}{when:%Y%m%d%H%M%S}{draw(ascii_digits(4))}",
        hospital_code=hospital,
        hospital_level=draw(st.sampled_from([1, 2, 3])),
        treatment_region=draw(ascii_digits(6)),
        insured_region=draw(ascii_digits(6)),
        visit_id=draw(st.from_regex(r"[A-Za-z0-9_\-]{1,40}", fullmatch=True)),
        person=common_pb2.Person(
            id_number=draw(id_numbers()), name=draw(st.text(min_size=1, max_size=64).filter(lambda s: s.strip()))
        ),
        credential_type=P.CredentialType.ValueType(draw(st.sampled_from([1, 2, 3]))),
        insurance_type=draw(st.sampled_from(["310", "390"])),
        medical_type=draw(st.sampled_from(["11", "14", "21", "25"])),
        admission_date=common_pb2.Date(year=admission.year, month=admission.month, day=admission.day),
        discharge_date=common_pb2.Date(year=discharge.year, month=discharge.month, day=discharge.day),
        emergency=draw(st.booleans()),
        items=items,
        total_fen=sum(item.amount_fen for item in items),
    )


# ------------------------------------------------------------------------------------------------ checks

_ID_LIKE = re.compile(r"(?=([0-9]{17}[0-9X]))")
TRUNCATED = "..."
_PATH_SEGMENT = re.compile(r"([a-z][a-z0-9_]*)(?:\[([0-9]+)\])?")


def strings_in(msg: Message) -> list[str]:
    """Every string value anywhere in a message."""
    found: list[str] = []
    for field, value in msg.ListFields():
        values = value if field.is_repeated else [value]
        for v in values:
            if field.message_type is not None:
                if not field.message_type.GetOptions().map_entry:
                    found += strings_in(v)
            elif isinstance(v, str):
                found.append(v)
    return found


def ids_in(*texts: str) -> set[str]:
    """Every valid ID number inside the texts, after full-width forms are folded to ASCII; also any run of 17
    digits plus a check character (valid or not) standing on its own."""
    found: set[str] = set()
    for text in texts:
        folded = unicodedata.normalize("NFKC", text).upper()
        for match in _ID_LIKE.finditer(folded):
            candidate = match.group(1)
            if idnumber.is_valid(candidate):
                found.add(candidate)
        found.update(m.upper() for m in idnumber._SCRUB_RE.findall(folded))
    return found


def assert_no_id_echoed(error: SigwError, *sources: Message | str) -> None:
    texts = [t for s in sources for t in (strings_in(s) if isinstance(s, Message) else [s])]
    secrets = ids_in(*texts)
    told = unicodedata.normalize(
        "NFKC",
        " | ".join(
            [error.message, *(f"{v.field} {v.description}" for v in error.violations), *error.metadata.values()]
        ),
    )
    told = told.upper()
    for secret in secrets:
        assert secret not in told, f"an ID number from the request is echoed in: {told[:300]!r}"


def resolves(root: Message, path: str) -> bool:
    """Whether ``path`` (``bill.items[3].amount_fen``) names a field of ``root``; an index must be within
    the repeated field actually sent."""
    msg: Any = root
    segments = path.split(".")
    for n, segment in enumerate(segments):
        match = _PATH_SEGMENT.fullmatch(segment)
        if match is None or not isinstance(msg, Message):
            return False
        field = msg.DESCRIPTOR.fields_by_name.get(match.group(1))
        if field is None:
            return False
        value = getattr(msg, field.name)
        if match.group(2) is not None:
            if not field.is_repeated or int(match.group(2)) >= len(value):
                return False
            value = value[int(match.group(2))]
        elif field.is_repeated and n < len(segments) - 1:
            return False
        msg = value
    return True


def assert_well_formed(error: InvalidArgument, root: Message, *id_sources: Message | str) -> None:
    assert error.reason and error.reason == error.reason.upper()
    assert error.violations, "an InvalidArgument without field violations"
    violations = error.violations
    if violations[-1].field == TRUNCATED:  # a capped list may end with a count of the violations left out
        violations = violations[:-1]
    for v in violations:
        assert isinstance(v, FieldViolation)
        assert v.field and resolves(root, v.field), f"violation names no field of the request: {v.field!r}"
        assert v.description.strip(), f"empty description for {v.field}"
    first = error.violations[0]
    assert f"{first.field}: {first.description}" in error.message
    assert_no_id_echoed(error, root, *id_sources)


def outcome(fn: Callable[..., Any], *args: Any) -> tuple[Any, InvalidArgument | None]:
    """``fn(*args)`` and None, or None and the ``InvalidArgument`` it raised; anything else propagates."""
    try:
        return fn(*args), None
    except InvalidArgument as error:
        return None, error


# ------------------------------------------------------------------------------------------- converters


@PROPERTIES
@given(requests(S.CreateTransferRequest))
def test_application_from_any_request_converts_or_names_the_bad_fields(request: S.CreateTransferRequest) -> None:
    application, error = outcome(application_from, request)
    if error:
        assert_well_formed(error, request)
    else:
        assert isinstance(application, Application)
        assert application.id_number == request.person.id_number and idnumber.is_valid(application.id_number)


@PROPERTIES
@given(valid_create_requests())
def test_a_valid_create_request_always_converts(request: S.CreateTransferRequest) -> None:
    application = application_from(request)
    assert int(application.kind) == request.kind and application.name == request.person.name
    assert (application.military is not None) == request.HasField("military")


@PROPERTIES
@given(valid_create_requests(), texts_with_an_id(), st.sampled_from(["name", "note", "request_id", "source_region"]))
def test_an_id_number_in_any_field_of_a_create_request_is_never_echoed(
    request: S.CreateTransferRequest, hostile: str, where: str
) -> None:
    if where == "name":
        request.person.name = hostile
    elif where == "note":
        request.note = hostile * 30  # past the length limit as well
    else:
        setattr(request, where, hostile)
    request.person.id_number = hostile  # never a valid ID number with anything around it
    assume(not idnumber.is_valid(hostile))
    with pytest.raises(InvalidArgument) as caught:
        application_from(request)
    assert_well_formed(caught.value, request, hostile)


@PROPERTIES
@given(requests(S.SendTransferInfoRequest))
def test_info_from_any_table_converts_and_only_adds_violations(request: S.SendTransferInfoRequest) -> None:
    v = Violations()
    info, error = outcome(info_from, request.info, v)
    assert error is None, "info_from collects violations; it must not raise"
    assert isinstance(info, TransferInfo)
    assert len(info.contributions) == min(len(request.info.contributions), 100)
    _, error = outcome(v.raise_if_any)
    if error:
        assert_well_formed(error, request)


@PROPERTIES
@given(valid_infos())
def test_a_valid_information_table_adds_no_violation(info: S.TransferInfo) -> None:
    v = Violations()
    converted = info_from(info, v)
    assert v.items == []
    assert converted.funds_fen == info.funds_fen and len(converted.contributions) == len(info.contributions)


@PROPERTIES
@given(requests(P.PreSettleRequest))
def test_bill_from_any_bill_parses_or_names_the_bad_fields(request: P.PreSettleRequest) -> None:
    parsed, error = outcome(bill_from, request.bill, RECEIVED)
    if error:
        assert_well_formed(error, request)
    else:
        assert isinstance(parsed, Bill)
        assert parsed.discharge <= TODAY and parsed.admission <= parsed.discharge


@PROPERTIES
@given(valid_bills())
def test_a_valid_bill_always_parses(bill: P.Bill) -> None:
    parsed = bill_from(bill, RECEIVED)
    assert parsed.msgid == bill.msgid and len(parsed.items) == len(bill.items)
    assert parsed.received_at == RECEIVED and parsed.clearing_month == "2026-03"


# A broken field may also make the fields that are checked against it wrong; nothing else.
DEPENDENTS = {"hospital_code": {"msgid"}, "admission_date": {"discharge_date"}, "items": {"total_fen"}}


@PROPERTIES
@given(valid_bills(), st.data())
def test_one_broken_field_of_a_valid_bill_is_the_one_named(bill: P.Bill, data: st.DataObject) -> None:
    field = data.draw(st.sampled_from([f for f in P.Bill.DESCRIPTOR.fields if f.name != "emergency"]), label="field")
    if field.message_type is not None or field.is_repeated:
        cast(Message, bill).ClearField(field.name)  # the field is drawn at run time, not a literal
    else:
        setattr(bill, field.name, data.draw(scalars(field), label="value"))
    request = P.PreSettleRequest(bill=bill)
    parsed, error = outcome(bill_from, bill, RECEIVED)
    if error is None:
        assert isinstance(parsed, Bill)
        return
    assert_well_formed(error, request)
    named = {re.sub(r"\[[0-9]+\]", "", v.field).split(".")[1] for v in error.violations}
    assert named <= {field.name} | DEPENDENTS.get(field.name, set()), (field.name, named)


def scalars(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_STRING:
        return hostile_texts()
    if field.type == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None  # an enum field always has its enum type
        return st.one_of(st.sampled_from([v.number for v in field.enum_type.values]), hostile_ints(*INT32))
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type == FieldDescriptor.TYPE_INT64:
        return hostile_ints(*INT64)
    return hostile_ints(*INT32)


# ------------------------------------------------------------------------------------- Violations' checks

REQUEST_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
TRANSFER_ID = re.compile(r"T[0-9]{2}-[0-9]{8}-[0-9A-F]{8}")


def _only(v: Violations, field: str) -> FieldViolation | None:
    assert all(item.field == field for item in v.items)
    assert len(v.items) <= 1
    return v.items[0] if v.items else None


@PROPERTIES
@given(hostile_texts())
def test_request_id_check(value: str) -> None:
    v = Violations()
    v.request_id(value)
    # The rule's text: 1-64 of the allowed characters, and nothing shaped like an ID number (17 digits and a
    # digit or X, not part of a longer run), which would be kept in the clear.
    id_shaped = re.search(r"(?<![0-9])[0-9]{17}(?:[0-9](?![0-9])|[Xx])", value) is not None
    assert (_only(v, "request_id") is None) == (bool(REQUEST_ID.fullmatch(value)) and not id_shaped)
    _check_raise(v, value)


@PROPERTIES
@given(hostile_texts(), st.sampled_from(["transfer_id", "source_transfer_id"]))
def test_transfer_id_check(value: str, field: str) -> None:
    v = Violations()
    v.transfer_id(value, field)
    assert (_only(v, field) is None) == bool(TRANSFER_ID.fullmatch(value))
    _check_raise(v, value)


@PROPERTIES
@given(hostile_texts())
def test_region_check(value: str) -> None:
    v = Violations()
    v.region("insured_region", value)
    assert (_only(v, "insured_region") is None) == (len(value) == 6 and all(c in "0123456789" for c in value))
    _check_raise(v, value)


@PROPERTIES
@given(st.one_of(hostile_ints(*INT64), st.integers()))
def test_amount_check(value: int) -> None:
    v = Violations()
    v.amount("info.funds_fen", value)
    assert (_only(v, "info.funds_fen") is None) == (0 <= value <= MAX_AMOUNT_FEN)
    _check_raise(v, str(value))


@PROPERTIES
@given(dates_msgs(), st.booleans())
def test_date_check(d: common_pb2.Date, required: bool) -> None:
    v = Violations()
    got = v.date("valid_from", d, required=required)
    violation = _only(v, "valid_from")
    unset = not (d.year or d.month or d.day)
    if got is not None:
        assert violation is None and (got.year, got.month, got.day) == (d.year, d.month, d.day)
    else:
        assert (violation is None) == (unset and not required)
    _check_raise(v, "")


@PROPERTIES
@given(hostile_texts(), st.one_of(st.none(), st.sampled_from(["H44030000001", ""]), hostile_texts()))
def test_check_msgid(msgid: str, hospital: str | None) -> None:
    v = Violations()
    when = check_msgid(v, "msgid", msgid, hospital)
    assert when == msgid_time(msgid)
    violation = _only(v, "msgid")
    if when is None:
        assert violation is not None
    else:
        assert when.tzinfo is not None and len(msgid) == 30
        assert (violation is None) == (hospital is None or msgid.startswith(hospital))
    _check_raise(v, msgid)


@PROPERTIES
@given(hostile_ints(*INT32))
def test_state_and_kind_filters(value: int) -> None:
    v = Violations()
    state = state_filter(value, v)
    kind = kind_filter(value, v)
    assert state is None or isinstance(state, State)
    assert kind is None or isinstance(kind, Kind)
    assert {item.field for item in v.items} <= {"state", "kind"}
    _check_raise(v, "")


def _check_raise(v: Violations, value: str) -> None:
    _, error = outcome(v.raise_if_any)
    assert (error is None) == (not v.items)
    if error:
        assert error.violations == v.items
        assert_no_id_echoed(error, value)


# -------------------------------------------------------------------------------- ID numbers, participants

ID_DESCRIPTIONS = {
    "must be a string",
    "must be 18 characters",
    "must be 17 digits followed by a digit or X",
    "check character X must be upper-case",
    "birth date is not a real date",
    "check character does not match",
}


@PROPERTIES
@given(st.one_of(hostile_texts(), id_numbers().flatmap(lambda i: st.sampled_from([i, *_near_ids(i)]))))
def test_id_number_validation_returns_a_fixed_description(value: str) -> None:
    error = idnumber.validation_error(value)
    assert error is None or error in ID_DESCRIPTIONS
    if error is None:
        assert len(value) == 18 and value.isascii()
    masked = idnumber.mask(value)
    assert len(masked) == len(value) and (len(value) != 18 or masked[4:14] == "*" * 10)


@PROPERTIES
@given(hostile_texts(), id_numbers(), hostile_texts())
def test_scrub_hides_an_embedded_id_number(before: str, valid: str, after: str) -> None:
    # Scrubbing masks ID-like runs that stand on their own: keep digits away from the number's edges.
    before = before.rstrip("0123456789０１２３４５６７８９")
    after = after.lstrip("0123456789０１２３４５６７８９")
    wide = valid.translate(FULL_WIDTH)
    # Only the embedded number: a longer run of digits that happens to contain it is some other number.
    assume(not ids_in(before, after))
    assert valid not in idnumber.scrub(before + valid + after)
    assert wide not in idnumber.scrub(before + wide + after)


PARTICIPANT_TEXTS = st.one_of(
    hostile_texts(),
    st.sampled_from(
        [
            "agency:310000:hrss",
            "agency:110000:healthcare",
            "hospital:440300:H44030000001",
            "operator:fuzz",
            "portal:gov",
            "military:JUN001",
            "agency:310000:HRSS",
            "agency:３１００００:hrss",
            "agency:310000:hrss:x",
            "operator:",
            ":",
            "operator:a:b",
            "hospital:440300:" + "H" * 33,
            " operator:fuzz\n",
        ]
    ),
    st.builds(
        lambda role, middle, code: f"{role}:{middle}{code}",
        st.sampled_from(["agency", "hospital", "operator", "portal", "military", "AGENCY", ""]),
        st.sampled_from(["", "310000:", "31000:", "hrss:"]),
        hostile_texts(),
    ),
)


@PROPERTIES
@given(PARTICIPANT_TEXTS)
def test_participant_parse_names_a_participant_or_refuses(text: str) -> None:
    try:
        participant = Participant.parse(text)
    except Unauthenticated as refused:
        assert (refused.reason, refused.message) == ("UNKNOWN_PARTICIPANT", "the caller names no valid participant")
        return
    assert Participant.parse(str(participant)) == participant
    assert str(participant) == text.strip()


# ------------------------------------------------------------------------------ the servicers' own checks


class ReachedService(Exception):
    """The handler passed its checks and called into the service layer."""


class Probe:
    """Any attribute, any call: raises ``ReachedService`` when called."""

    def __getattr__(self, name: str) -> Probe:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise ReachedService


class FakeService(Probe):
    policy = object()

    @staticmethod
    def clock() -> datetime:
        return NOW


class Context:
    def __init__(self, caller: str | None) -> None:
        self.caller = caller

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ((METADATA_KEY, self.caller),) if self.caller is not None else ()

    def time_remaining(self) -> float | None:
        return None

    def cancelled(self) -> bool:
        return False

    def done(self) -> bool:
        return False


PAGES = PageTokens(FieldCipher({"k1": bytes(range(32))}, "k1", lookup_key=b"L" * 32))


def _servicers() -> dict[str, Any]:
    identity = IdentityResolver(dev_identity=True)
    return {
        "TransferService": TransferServicer(FakeService(), identity, StreamLimit(10), PAGES, Registry({})),  # type: ignore[arg-type]
        "SettlementService": SettlementServicer(FakeService(), Probe(), Probe(), identity),  # type: ignore[arg-type]
        "OperatorService": OperatorServicer(Probe(), identity),  # type: ignore[arg-type]
    }


SERVICERS = _servicers()
RPCS = [
    (service.name, method.name, _class_of(method.input_type), method.server_streaming)
    for module in (transfer_pb2, settlement_pb2, operator_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]
CALLERS = [
    "agency:310000:hrss",
    "agency:110000:healthcare",
    "hospital:440300:H44030000001",
    "operator:fuzz",
    "portal:gov",
    "military:JUN001",
]


def drive(awaitable: Coroutine[Any, Any, Any] | Any) -> Any:
    """Run a handler that must decide without awaiting anything (no I/O before the service layer)."""
    try:
        awaitable.send(None)
    except StopIteration as stop:
        return stop.value
    awaitable.close()
    raise AssertionError("the handler awaited something before calling the service layer")


def call_handler(service: str, method: str, request: Message, caller: str | None, streaming: bool) -> Any:
    handler = getattr(SERVICERS[service], method)
    result = handler(request, Context(caller))
    return drive(result.__anext__() if streaming else result)


@pytest.mark.parametrize(("service", "method", "cls", "streaming"), RPCS, ids=[f"{s}.{m}" for s, m, _, _ in RPCS])
@FEWER
@given(data=st.data())
def test_every_handler_refuses_with_invalid_argument_or_hands_on(
    service: str, method: str, cls: type[Message], streaming: bool, data: st.DataObject
) -> None:
    request = data.draw(requests(cls), label="request")
    caller = data.draw(st.one_of(st.sampled_from(CALLERS), st.none(), PARTICIPANT_TEXTS), label="caller")
    if "request_id" in cls.DESCRIPTOR.fields_by_name:
        fingerprint(request)  # pure: never raises on any request
    try:
        call_handler(service, method, request, caller, streaming)
    except ReachedService:
        pass
    except InvalidArgument as error:
        assert_well_formed(error, request, caller or "")
    except (Unauthenticated, PermissionDenied) as refused:
        assert_no_id_echoed(refused, request, caller or "")
    else:
        raise AssertionError("the handler answered without calling the service layer")


def _d(y: int, m: int, d: int) -> common_pb2.Date:
    return common_pb2.Date(year=y, month=m, day=d)


VALID_ID = idnumber.make_id_number("110105", date(1985, 6, 15), 123)
TID = "T03-20260302-8F3A2C1D"
MSGID = "H44030000001202603020830000001"
VALID_BILL = P.Bill(
    msgid=MSGID,
    hospital_code="H44030000001",
    hospital_level=3,
    treatment_region="440300",
    insured_region="110000",
    visit_id="V1",
    person=common_pb2.Person(id_number=VALID_ID, name="赵六"),
    credential_type=P.CredentialType.ValueType(1),
    insurance_type="310",
    medical_type="21",
    admission_date=_d(2026, 2, 20),
    discharge_date=_d(2026, 3, 1),
    items=[P.BillItem(code="X1", name="item", catalogue_class=P.CatalogueClass.ValueType(1), amount_fen=100)],
    total_fen=100,
)
BASELINES: dict[str, tuple[Message, str]] = {
    "CreateTransfer": (
        S.CreateTransferRequest(
            request_id="r1",
            kind=S.TransferKind.ValueType(1),
            person=common_pb2.Person(id_number=VALID_ID, name="张三"),
            source_region="110000",
            target_region="310000",
        ),
        "agency:310000:hrss",
    ),
    "SendContactLetter": (S.SendContactLetterRequest(request_id="r1", transfer_id=TID), "agency:310000:hrss"),
    "SendTransferInfo": (
        S.SendTransferInfoRequest(request_id="r1", transfer_id=TID, info=S.TransferInfo(funds_fen=1)),
        "agency:110000:hrss",
    ),
    "CompleteTransfer": (S.CompleteTransferRequest(request_id="r1", transfer_id=TID), "agency:310000:hrss"),
    "RejectTransfer": (S.RejectTransferRequest(request_id="r1", transfer_id=TID, reason="no"), "agency:310000:hrss"),
    "CancelTransfer": (S.CancelTransferRequest(request_id="r1", transfer_id=TID, reason="no"), "agency:310000:hrss"),
    "GetTransfer": (S.GetTransferRequest(transfer_id=TID), "operator:fuzz"),
    "ListTransfers": (S.ListTransfersRequest(region_code="310000", page_size=10), "agency:310000:hrss"),
    "WatchTransfer": (S.WatchTransferRequest(transfer_id=TID, after_event_id="1-0"), "operator:fuzz"),
    "QueryTransferStatus": (S.QueryTransferStatusRequest(transfer_id=TID, id_number=VALID_ID), "portal:gov"),
    "OpenTemporaryAccount": (
        S.OpenTemporaryAccountRequest(request_id="r1", transfer_id=TID, account_number="LS-1"),
        "agency:310000:hrss",
    ),
    "DeterminePayingRegion": (
        S.DeterminePayingRegionRequest(
            person=common_pb2.Person(id_number=VALID_ID, name="张三"), hukou_region="110000", region_codes=["310000"]
        ),
        "agency:310000:hrss",
    ),
    "CreateFiling": (
        P.CreateFilingRequest(
            request_id="f1",
            type=P.FilingType.ValueType(2),
            person=common_pb2.Person(id_number=VALID_ID),
            insured_region="110000",
            treatment_region="440300",
            valid_from=_d(2026, 1, 1),
        ),
        "agency:110000:healthcare",
    ),
    "CancelFiling": (
        P.CancelFilingRequest(request_id="f2", filing_id="F01-20260302-8F3A2C1D", reason="back home"),
        "agency:110000:healthcare",
    ),
    "ListFilings": (P.ListFilingsRequest(insured_region="110000", id_number=VALID_ID), "agency:110000:healthcare"),
    "PreSettle": (P.PreSettleRequest(bill=VALID_BILL), "hospital:440300:H44030000001"),
    "Settle": (P.SettleRequest(bill=VALID_BILL), "hospital:440300:H44030000001"),
    "CancelSettlement": (
        P.CancelSettlementRequest(msgid=MSGID, settlement_id="S01-0123456789abcdef"),
        "hospital:440300:H44030000001",
    ),
    "ReverseMessage": (
        P.ReverseMessageRequest(msgid=MSGID, original_msgid="H44030000001202603020829000001"),
        "hospital:440300:H44030000001",
    ),
    "GetSettlement": (P.GetSettlementRequest(settlement_id="S01-0123456789abcdef"), "operator:fuzz"),
    "Reconcile": (
        P.ReconcileRequest(hospital_code="H44030000001", start_date=_d(2026, 3, 1), end_date=_d(2026, 3, 2)),
        "hospital:440300:H44030000001",
    ),
    "CloseMonth": (P.CloseMonthRequest(request_id="c1", month="2026-02"), "operator:fuzz"),
    "GetClearingStatement": (P.GetClearingStatementRequest(month="2026-03"), "operator:fuzz"),
    "RecountMonth": (P.RecountMonthRequest(month="2026-03"), "operator:fuzz"),
    "ListQueued": (O.ListQueuedRequest(lane="priority", limit=10), "operator:fuzz"),
    "ListDeadLetters": (O.ListDeadLettersRequest(limit=10, after_entry_id="1-0"), "operator:fuzz"),
    "RedriveDeadLetters": (O.RedriveDeadLettersRequest(request_id="d1", all=True), "operator:fuzz"),
}


def test_every_rpc_has_a_baseline() -> None:
    assert {m for _, m, _, _ in RPCS} == set(BASELINES)


@pytest.mark.parametrize(("service", "method", "cls", "streaming"), RPCS, ids=[f"{s}.{m}" for s, m, _, _ in RPCS])
def test_a_valid_request_passes_the_handlers_checks(
    service: str, method: str, cls: type[Message], streaming: bool
) -> None:
    request, caller = BASELINES[method]
    assert isinstance(request, cls)
    with pytest.raises(ReachedService):
        call_handler(service, method, request, caller, streaming)


@pytest.mark.parametrize("days", [0, 1, 92])
def test_reconcile_accepts_periods_up_to_92_days(days: int) -> None:
    start = date(2026, 1, 1)
    end = start + timedelta(days=days)
    request = P.ReconcileRequest(
        hospital_code="H44030000001", start_date=_d(2026, 1, 1), end_date=_d(end.year, end.month, end.day)
    )
    with pytest.raises(ReachedService):
        call_handler("SettlementService", "Reconcile", request, "hospital:440300:H44030000001", False)


@FEWER
@given(valid_bills())
def test_a_bill_with_four_bad_fields_names_all_four(bill: P.Bill) -> None:
    while len(bill.items) < 3:
        bill.items.append(P.BillItem(code="X", name="药", catalogue_class=P.CatalogueClass.ValueType(1)))
    bill.hospital_level = 7
    bill.items[0].catalogue_class = P.CatalogueClass.ValueType(9)
    bill.items[1].amount_fen = -1
    bill.items[2].self_pay_percent = 150
    _, error = outcome(bill_from, bill, RECEIVED)
    assert error is not None
    named = {v.field for v in error.violations}
    assert {
        "bill.hospital_level",
        "bill.items[0].catalogue_class",
        "bill.items[1].amount_fen",
        "bill.items[2].self_pay_percent",
    } <= named
