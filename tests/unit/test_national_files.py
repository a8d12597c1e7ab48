"""The national interface's files (9101 / 3202 / 9102): what hospitals upload, read exactly or refused with the
line named; the result file as HIS read it back."""

from __future__ import annotations

import base64
import io
import zipfile

import pytest

from gateway.api.national import files
from gateway.domain.errors import InvalidArgument
from gateway.domain.settlement import reconciliation
from gateway.domain.settlement.reconciliation import Difference, StatementLine

LINE = "S01-0123456789abcdef\tM01-0123456789abcdef\t31000000000000000001\t388.23\t300\t0.50\t0\n"


def zipped(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members:
            archive.writestr(name, content)
    return buffer.getvalue()


def refusal(content: bytes) -> str:
    with pytest.raises(InvalidArgument) as refused:
        files.statement_of(content)
    assert refused.value.reason == "INVALID_FILE"
    return "；".join(f"{v.field}：{v.description}" for v in refused.value.violations)


def test_a_line_is_read_to_the_fen() -> None:
    read = files.statement_of(zipped(("a.txt", LINE.encode())))
    assert read.lines == [StatementLine("S01-0123456789abcdef", "M01-0123456789abcdef", 38823, 30000, 50, False)]
    assert read.person_numbers == {"S01-0123456789abcdef": "31000000000000000001"}


def test_plain_text_with_a_header_a_bom_or_in_gb18030() -> None:
    header = "\t".join(files.STATEMENT_COLUMNS) + "\r\n"
    for content in ((header + LINE).encode("utf-8-sig"), (header + LINE).encode("gb18030"), LINE.encode()):
        assert [line.total_fen for line in files.statement_of(content).lines] == [38823]


def test_the_content_as_base64_or_as_bytes_signed_or_not() -> None:
    content = zipped(("a.txt", LINE.encode()))
    assert files.content_of(base64.b64encode(content).decode()) == content
    assert files.content_of(list(content)) == content
    assert files.content_of([b - 256 if b > 127 else b for b in content]) == content  # Java's byte[]
    for bad in ("%%%", None, 12, [1, "2"], [300]):
        with pytest.raises(InvalidArgument):
            files.content_of(bad)


def test_zips_that_are_not_one_text_of_bounded_size_are_refused() -> None:
    assert "只含一个" in refusal(zipped(("a.txt", LINE.encode()), ("b.txt", LINE.encode())))
    bomb = zipped(("a.txt", b"0" * (files.MAX_TEXT_BYTES + 1)))
    assert len(bomb) < 100_000 and "解压后超过" in refusal(bomb)
    assert "损坏" in refusal(b"PK\x03\x04 not really a zip")


def test_every_bad_line_is_named() -> None:
    text = (
        "S01-a\tM01-b\tP1\t1.001\t0\t0\t0\n"  # three decimals
        "S01-a\tM01-b\t110105199006151234\t1\t-1\t0\t2\n"  # the same setl_id, an ID number, a negative, flag 2
        "only one column\n"
    )
    found = refusal(text.encode())
    for named in ("第1行.medfee_sumamt", "第2行.setl_id", "第2行.psn_no", "第2行.fund_pay_sumamt",
                  "第2行.refd_setl_flag", "第3行.列数"):  # fmt: skip
        assert named in found, named
    assert "110105199006151234" not in found


def test_the_result_file_lists_each_difference() -> None:
    ours = StatementLine("S01-1", "M01-1", 100, 80, 0, False)
    differences = reconciliation.differences(
        [ours, StatementLine("S01-2", "M01-1", 50, 40, 0, True)],
        [StatementLine("S01-1", "M01-9", 100, 80, 0, False), StatementLine("S01-3", "M01-1", 7, 0, 0, False)],
    )
    assert [d.kind for d in differences] == ["AMOUNT_DIFFERS", "MISSING_AT_HOSPITAL", "MISSING_AT_GATEWAY"]
    content = files.result_file(differences, {"S01-1": "P1", "S01-3": "P3"}, {"S01-1": "m1", "S01-2": "m2"})
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        rows = [line.split("\t") for line in archive.read("result.txt").decode().splitlines()]
    assert rows == [
        ["P1", "M01-1", "S01-1", "m1", "1", "0", "就诊ID不一致", "1.00", "0.80", "0.00"],
        ["", "M01-1", "S01-2", "m2", "1", "1", "医药机构对账文件无此结算", "0.50", "0.40", "0.00"],
        ["P3", "M01-1", "S01-3", "", "1", "0", "平台无此结算", "0.07", "0.00", "0.00"],
    ]
    assert files.result_file(list[Difference[StatementLine]](), {}, {}) != b""


def test_issued_numbers_never_look_like_an_id_number() -> None:
    """A file_qury_no or sign_no is an identifier (kept in the clear, refused when ID-shaped): even a random
    token of digits only must not run on from the time's 14 digits into 18."""
    from datetime import UTC, datetime

    from gateway.app.visits import _issued_number
    from gateway.domain import idnumber

    for token in ("1234567890123456", "0000000000000000", "deadbeefdeadbeef"):
        number = _issued_number(datetime(2026, 3, 2, 1, 0, tzinfo=UTC), "F", token)
        assert len(number) == 30 and number.startswith("20260302090000F") and not idnumber.contains(number)


def test_message_ids_never_look_like_an_id_number() -> None:
    """Agencies build their answers' request ids from message ids (the reference agency: ``sim-<message id>``),
    and a request id holding anything shaped like an ID number is refused: a message id must never be one. A
    32-digit-hex UUID had an 18-digit run about once in 300."""
    from gateway.domain import idnumber, ids

    made = {ids.new_message_id() for _ in range(20_000)}
    assert len(made) == 20_000 and not [m for m in made if idnumber.contains(m)]
    assert all(max(len(run) for run in m.split("-")) <= 12 for m in made)


def test_a_file_holding_an_id_number_is_refused_before_it_is_kept() -> None:
    with pytest.raises(InvalidArgument) as refused:
        files.check_no_id_numbers(
            zipped(("a.txt", LINE.replace("31000000000000000001", "110105199006151234").encode()))
        )
    assert refused.value.reason == "INVALID_FILE"
    files.check_no_id_numbers(zipped(("a.txt", LINE.encode())))  # psn_no and amounts only: kept


def test_a_national_msgid_is_no_id_number_but_another_shape_may_be() -> None:
    from gateway.api.national.values import Reader

    standard = "H440300000AB" + "20260302090000" + "0001"  # a code ending in letters: 18 digits of time follow
    r = Reader({"msgid": standard, "other": "X110105199006151234"})
    assert r.msgid("msgid") == standard and r.msgid("other") == ""
    assert [v.field for v in r.problems] == ["other"]
    with pytest.raises(InvalidArgument):
        files.content_of([1, -129])
