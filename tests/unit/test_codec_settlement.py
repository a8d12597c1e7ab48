"""A settlement as the store keeps it: every field of the bill comes back, the person's choice to decline the
individual account too, and a record written before that flag existed reads as not declined."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import orjson

from gateway.domain.settlement.records import Bill, CredentialType, Figures, SettlementRecord
from gateway.domain.settlement.split import BillItem, CatalogueClass, InsuranceType, MedicalType
from gateway.security.crypto import FieldCipher
from gateway.store import codec
from tests.helpers import person_id

CIPHER = FieldCipher({"k1": bytes(range(32))}, "k1", lookup_key=b"L" * 32)
AT = datetime(2026, 3, 2, 1, 2, 3, 456000, tzinfo=UTC)


def record(declined: bool) -> SettlementRecord:
    bill = Bill(
        msgid="H44030000001202603020900000001", hospital_code="H44030000001", hospital_level=3,
        treatment_region="440300", insured_region="310000", visit_id="M01-0123456789abcdef", id_number=person_id(),
        name="张三", credential_type=CredentialType.ID_CARD, insurance_type=InsuranceType.EMPLOYEE,
        medical_type=MedicalType.OUTPATIENT, admission=date(2026, 3, 2), discharge=date(2026, 3, 2),
        emergency=False, items=(BillItem("001101000010000", "检查", CatalogueClass.A, 2500, 0),), total_fen=2500,
        received_at=AT, account_declined=declined,
    )  # fmt: skip
    figures = Figures(2500, 2000, 0, 500, 0, 0, 2500, 0, 0, 80, 1)
    return SettlementRecord("S01-0123456789abcdef", bill, figures, AT)


def test_the_bill_comes_back_whole_with_the_account_choice() -> None:
    for declined in (True, False):
        stored = codec.settlement_to_bytes(record(declined), "fp", CIPHER)
        assert codec.settlement_from_bytes(stored, CIPHER) == (record(declined), "fp")


def test_a_record_written_before_the_flag_reads_as_not_declined() -> None:
    old = replace(record(False).bill, account_declined=False)
    row = codec._bill_row(old)[:-1]  # the layout before account_declined was appended
    assert codec._bill_of(row, old.hospital_code, old.treatment_region, old.insured_region) == old
    assert orjson.dumps(codec._bill_row(old)) != orjson.dumps(row)
